//! A safe matrix product over `f32` slices for fovea's own kernels, on the `gemm` crate (the
//! one burn's flex backend multiplies with).
//!
//! Why not burn's `matmul`: flex allocates every product's output as a zeroed byte vector and
//! then copies it into a 16-byte-aligned buffer (`FlexTensor::empty` → `Bytes::from_bytes_vec`),
//! a memset and a memcpy of the output per call: the memcpy alone was 4.1 % of a
//! frozen-backbone Lite0 step in `perf` (call graph), beside part of memset's 4.7 %. Here the
//! output is a `Vec<f32>` the caller owns: zeroed by the caller, written by gemm, never copied.

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
    let (a_rs, a_cs) = a.strides();
    let (b_rs, b_cs) = b.strides();
    let parallelism = if parallel {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: `Matrix::new` checked that each input slice holds exactly rows·cols values, and
    // the strides of a matrix or of its transpose address only indices below that; `dst` holds
    // m·n values addressed row-major (row stride n, column stride 1); `dst` is borrowed mutably
    // while `a` and `b` are shared borrows, so they do not alias. `gemm` reads `dst` only when
    // `accumulate` (read_dst) is set and then computes 1·dst + 1·a·b; otherwise 1·a·b.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
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
