//! A safe matrix product over `f32` slices for fovea's own kernels, on the `gemm` crate (the
//! one burn's flex backend multiplies with).
//!
//! Why not burn's `matmul`: flex allocates every product's output as a zeroed byte vector and
//! then copies it into a 16-byte-aligned buffer (`FlexTensor::empty` → `Bytes::from_bytes_vec`),
//! a memset and a memcpy of the output per call: the memcpy alone was 4.1 % of a
//! frozen-backbone Lite0 step in `perf` (call graph), beside part of memset's 4.7 %. Here the
//! output is a `Vec<f32>` the caller owns, written by gemm and never copied; [`batched_new`]
//! writes a new one without zero-filling it first.

use std::mem::MaybeUninit;

use rayon::prelude::*;

/// A row-major `rows × cols` matrix in `data`, or (after [`Matrix::t`]) the transpose of one,
/// read in place through strides.
#[derive(Clone, Copy, Debug)]
pub struct Matrix<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    /// Element `(i, j)` is `data[i·cols + j]` when false, `data[j·rows + i]` when true.
    transposed: bool,
}

impl<'a> Matrix<'a> {
    /// `data` as a row-major `rows × cols` matrix. Panics unless `data.len() == rows·cols`.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert_eq!(
            data.len(),
            rows * cols,
            "matrix: {rows}×{cols} needs that many values"
        );
        Matrix {
            data,
            rows,
            cols,
            transposed: false,
        }
    }

    /// The transpose, as a view.
    pub fn t(self) -> Self {
        Matrix {
            rows: self.cols,
            cols: self.rows,
            transposed: !self.transposed,
            ..self
        }
    }

    /// `(row stride, column stride)` in elements.
    fn strides(&self) -> (isize, isize) {
        if self.transposed {
            (1, self.rows as isize)
        } else {
            (self.cols as isize, 1)
        }
    }
}

/// `dst = a · b` (`accumulate` false) or `dst += a · b` (true), `dst` row-major
/// `a.rows × b.cols`; split over rayon's threads when `parallel`.
pub fn product(dst: &mut [f32], a: Matrix, b: Matrix, accumulate: bool, parallel: bool) {
    assert_eq!(a.cols, b.rows, "matrix product: inner dimensions");
    let (m, n, k) = (a.rows, b.cols, a.cols);
    assert_eq!(dst.len(), m * n, "matrix product: output length");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst.fill(0.0);
        }
        return;
    }
    // SAFETY: `dst` holds m·n values (asserted above) and is borrowed mutably while `a` and `b`
    // are shared borrows, so they do not alias; gemm reads it only when `accumulate`.
    unsafe { gemm_call(dst.as_mut_ptr(), a, b, accumulate, parallel) }
}

/// The one call into `gemm`: `dst = a·b`, or `dst += a·b` when `accumulate`.
///
/// # Safety
/// `dst` must be valid for writes (and, when `accumulate`, reads) of `a.rows · b.cols` values
/// addressed row-major, must not overlap `a` or `b`, and `a.cols == b.rows > 0`.
unsafe fn gemm_call(dst: *mut f32, a: Matrix, b: Matrix, accumulate: bool, parallel: bool) {
    let (m, n, k) = (a.rows, b.cols, a.cols);
    let (a_rs, a_cs) = a.strides();
    let (b_rs, b_cs) = b.strides();
    let parallelism = if parallel {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: `Matrix::new` checked that each input slice holds exactly rows·cols values, and
    // the strides of a matrix or of its transpose address only indices below that; the caller
    // guarantees `dst` (m·n values, row stride n, column stride 1) and that it does not alias
    // the inputs. `gemm` reads `dst` only when `accumulate` (read_dst) is set and then
    // computes 1·dst + 1·a·b; otherwise 1·a·b, writing every element.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a_cs,
            a_rs,
            b.data.as_ptr(),
            b_cs,
            b_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// `out[s] = a_s · b_s` for `s < count`, each `m × n` row-major, one after another in a new
/// vector written straight into fresh memory (no zero-fill first): in parallel over `s` when
/// there are at least as many products as threads, else each product split over the threads.
/// `operands(s)` gives `(a_s, b_s)`; each must be `m × k` and `k × n` for one `k`.
pub fn batched_new<'a, F>(count: usize, m: usize, n: usize, operands: F) -> Vec<f32>
where
    F: Fn(usize) -> (Matrix<'a>, Matrix<'a>) + Sync,
{
    let len = count * m * n;
    let mut out = Vec::with_capacity(len);
    if len > 0 {
        let dst = &mut out.spare_capacity_mut()[..len];
        let one = |s: usize, d: &mut [MaybeUninit<f32>], parallel: bool| {
            let (a, b) = operands(s);
            assert!(a.rows == m && b.cols == n, "batched product: output shape");
            product_uninit(d, a, b, parallel);
        };
        if count >= rayon::current_num_threads() {
            dst.par_chunks_mut(m * n)
                .enumerate()
                .for_each(|(s, d)| one(s, d, false));
        } else {
            for (s, d) in dst.chunks_mut(m * n).enumerate() {
                one(s, d, true);
            }
        }
    }
    // SAFETY: the chunks of `m·n` cover `0..len` exactly once and `product_uninit` writes
    // every element of its chunk; a panic propagates before this line.
    unsafe { out.set_len(len) };
    out
}

/// `dst = a · b` into memory not yet written: every element of `dst` is written, none read.
fn product_uninit(dst: &mut [MaybeUninit<f32>], a: Matrix, b: Matrix, parallel: bool) {
    assert_eq!(a.cols, b.rows, "matrix product: inner dimensions");
    let (m, n, k) = (a.rows, b.cols, a.cols);
    assert_eq!(dst.len(), m * n, "matrix product: output length");
    if dst.is_empty() {
        return;
    }
    if k == 0 {
        dst.iter_mut().for_each(|d| {
            d.write(0.0);
        });
        return;
    }
    // SAFETY: as in `product` with `accumulate` false: gemm writes all m·n elements of `dst`
    // (row stride n, column stride 1) without reading them (`read_dst` false), so `dst` may
    // be uninitialized; a `MaybeUninit<f32>` has the layout of an `f32`.
    unsafe { gemm_call(dst.as_mut_ptr().cast::<f32>(), a, b, false, parallel) }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A = [[1, 2, 3], [4, 5, 6]] (2×3), B = [[1, 0], [−1, 2], [0.5, 1]] (3×2), by hand:
    //   A·B = [[1 − 2 + 1.5, 0 + 4 + 3], [4 − 5 + 3, 0 + 10 + 6]] = [[0.5, 7], [2, 16]]
    //   Aᵀ·A (3×3) = [[17, 22, 27], [22, 29, 36], [27, 36, 45]]
    //   B·Bᵀ's first row = [1, −1, 0.5]; Bᵀ·Aᵀ = (A·B)ᵀ = [[0.5, 2], [7, 16]]
    #[test]
    fn products_by_hand_with_transposed_views_and_accumulation() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [1.0, 0.0, -1.0, 2.0, 0.5, 1.0];
        let (am, bm) = (Matrix::new(&a, 2, 3), Matrix::new(&b, 3, 2));
        let mut ab = vec![9.0; 4];
        product(&mut ab, am, bm, false, false);
        assert_eq!(ab, vec![0.5, 7.0, 2.0, 16.0]);
        let mut ata = vec![0.0; 9];
        product(&mut ata, am.t(), am, false, true);
        assert_eq!(
            ata,
            vec![17.0, 22.0, 27.0, 22.0, 29.0, 36.0, 27.0, 36.0, 45.0]
        );
        let mut bt_at = vec![1.0; 4];
        product(&mut bt_at, bm.t(), am.t(), true, false);
        assert_eq!(bt_at, vec![1.5, 3.0, 8.0, 17.0], "accumulated onto ones");
        let mut bbt = vec![0.0; 9];
        product(&mut bbt, bm, bm.t(), false, false);
        assert_eq!(&bbt[..3], &[1.0, -1.0, 0.5]);
    }

    /// [`batched_new`] with the matrices above: `A·B` then `(A·B)ᵀ = Bᵀ·Aᵀ`, in parallel over
    /// the products (two or more products) and one product over the threads (one product); and
    /// an empty inner dimension gives zeros.
    #[test]
    fn batched_products_by_hand() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [1.0, 0.0, -1.0, 2.0, 0.5, 1.0];
        let (am, bm) = (Matrix::new(&a, 2, 3), Matrix::new(&b, 3, 2));
        let pair = |s: usize| {
            if s.is_multiple_of(2) {
                (am, bm)
            } else {
                (bm.t(), am.t())
            }
        };
        let many = batched_new(4, 2, 2, pair);
        assert_eq!(
            many,
            [
                0.5, 7.0, 2.0, 16.0, 0.5, 2.0, 7.0, 16.0, 0.5, 7.0, 2.0, 16.0, 0.5, 2.0, 7.0, 16.0
            ]
        );
        assert_eq!(batched_new(1, 2, 2, pair), [0.5, 7.0, 2.0, 16.0]);
        let none: [f32; 0] = [];
        let (e1, e2) = (Matrix::new(&none, 2, 0), Matrix::new(&none, 0, 3));
        assert_eq!(batched_new(2, 2, 3, |_| (e1, e2)), [0.0; 12]);
        assert!(batched_new(0, 2, 2, pair).is_empty());
    }

    #[test]
    #[should_panic(expected = "inner dimensions")]
    fn mismatched_shapes_are_refused() {
        let a = [1.0; 6];
        product(
            &mut [0.0; 4],
            Matrix::new(&a, 2, 3),
            Matrix::new(&a, 2, 3),
            false,
            false,
        );
    }
}
