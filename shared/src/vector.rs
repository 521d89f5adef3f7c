//! One register of `f32` lanes on x86_64 — 16 of AVX-512F, 8 of AVX2 — and a way to run a
//! kernel written once over [`Vector`] with that register's target features enabled
//! ([`Vector::run`]): the channels-last depthwise kernel (`depthwise/channels_last/kernel.rs`)
//! and the 1×1 product with the channels in the lanes (`infer/channel_lanes.rs`) run on it. A
//! NEON form (4 lanes) would be a third `impl`.
//!
//! Why a trait and not `multiversion`: those kernels hold a block of sums in named registers
//! across a loop (output columns or pixels × a group of channels) and transpose or mask on the
//! way out, which the compiler does not find from plain loops; the arithmetic is each ISA's
//! own instruction, so the kernels keep their rounding: `mul` then `add` is two roundings,
//! `mul_add` one (as gemm's and tract's products).
use std::arch::x86_64::{
    __m256, __m256i, __m512, __mmask16, _mm256_add_ps, _mm256_castpd_ps, _mm256_cmpgt_epi32,
    _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_maskload_ps, _mm256_maskstore_ps, _mm256_max_ps,
    _mm256_min_ps, _mm256_mul_ps, _mm256_permute2f128_ps, _mm256_set1_epi32, _mm256_set1_ps,
    _mm256_setr_epi32, _mm256_setzero_ps, _mm256_shuffle_ps, _mm256_storeu_ps, _mm256_unpackhi_ps,
    _mm256_unpacklo_ps, _mm512_add_ps, _mm512_castps_pd, _mm512_castps512_ps256,
    _mm512_extractf64x4_pd, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_mask_storeu_ps,
    _mm512_maskz_loadu_ps, _mm512_max_ps, _mm512_min_ps, _mm512_mul_ps, _mm512_permutex2var_ps,
    _mm512_set1_ps, _mm512_setr_epi32, _mm512_setzero_ps, _mm512_shuffle_ps, _mm512_storeu_ps,
    _mm512_unpackhi_ps, _mm512_unpacklo_ps,
};

/// The lanes of the widest vector this CPU runs: AVX-512's 16, else AVX2's 8 (with FMA), else
/// none (then neither [`run_widest`] nor the kernels over [`Vector`] run).
#[cfg_attr(not(feature = "infer"), allow(dead_code))] // `infer`'s kernels only
pub(crate) fn widest_lanes() -> Option<usize> {
    if Avx512::available() {
        Some(Avx512::LANES)
    } else if Avx2::available() {
        Some(Avx2::LANES)
    } else {
        None
    }
}

/// `task` on the widest vector this CPU runs: AVX-512F, else AVX2 with FMA.
///
/// # Safety
/// One of them runs here ([`widest_lanes`] is some); the rest as the task's.
#[cfg_attr(not(feature = "infer"), allow(dead_code))]
pub(crate) unsafe fn run_widest<T: Task>(task: T) -> T::Output {
    // SAFETY: the caller's.
    unsafe {
        if Avx512::available() {
            Avx512::run(task)
        } else {
            Avx2::run(task)
        }
    }
}

/// A kernel written over [`Vector`], run by [`Vector::run`] with the vector's target features.
pub(crate) trait Task {
    /// What the kernel returns.
    type Output;
    /// The kernel on `V`; an implementation marks it `#[inline(always)]` so that it compiles
    /// inside [`Vector::run`]'s target features, not apart from them.
    ///
    /// # Safety
    /// `V`'s instructions run (the caller checked [`Vector::available`]); the rest is the
    /// kernel's own contract.
    unsafe fn run<V: Vector>(self) -> Self::Output;
}

/// A vector of `f32` lanes, one channel each.
///
/// # Safety
/// Every method but [`available`](Vector::available) runs this vector's instructions: the
/// caller must have checked `available()`, and the pointers must be valid for the lanes read
/// or written.
pub(crate) unsafe trait Vector: Copy {
    /// Lanes (channels) per vector.
    const LANES: usize;
    /// Vector registers the instruction set has: what decides how large a block of sums a
    /// kernel keeps in them (32 on AVX-512 and NEON, 16 on AVX2).
    const REGISTERS: usize;
    /// Which lanes a load or store of a partial block of channels touches.
    type Mask: Copy;
    /// Whether this CPU runs the vector's instructions.
    fn available() -> bool;
    /// The first `n` lanes (`n < LANES`).
    unsafe fn mask(n: usize) -> Self::Mask;
    /// All lanes zero.
    unsafe fn zero() -> Self;
    /// `LANES` values from `p`.
    unsafe fn load(p: *const f32) -> Self;
    /// The lanes of `m` from `p`, the others zero (nothing outside `m` is read).
    unsafe fn load_masked(p: *const f32, m: Self::Mask) -> Self;
    /// All lanes to `p`.
    unsafe fn store(self, p: *mut f32);
    /// The lanes of `m` to `p` (nothing outside `m` is written).
    unsafe fn store_masked(self, p: *mut f32, m: Self::Mask);
    /// Lane by lane `self + o`, rounded once.
    unsafe fn add(self, o: Self) -> Self;
    /// Lane by lane `self · o`, rounded once.
    unsafe fn mul(self, o: Self) -> Self;
    /// 8 output columns (`acc[b]`: column `b`, lane `k` channel `k`) into `LANES` planes:
    /// channel `k`'s 8 values at `out + k·plane`.
    unsafe fn store_planes(acc: [Self; 8], out: *mut f32, plane: usize);
    /// `v` in every lane.
    #[cfg_attr(not(feature = "infer"), allow(dead_code))] // `infer::channel_lanes` only
    unsafe fn splat(v: f32) -> Self;
    /// Lane by lane `self · a + b`, rounded once.
    #[cfg_attr(not(feature = "infer"), allow(dead_code))]
    unsafe fn mul_add(self, a: Self, b: Self) -> Self;
    /// Lane by lane `min(max(self, 0), 6)`; a NaN lane stays NaN, as `f32::clamp`.
    unsafe fn relu6(self) -> Self;
    /// `task` with this vector's target features enabled.
    unsafe fn run<T: Task>(task: T) -> T::Output;
}

/// 16 lanes of AVX-512F.
#[derive(Clone, Copy)]
pub(crate) struct Avx512(__m512);

/// `task` compiled for AVX-512F.
///
/// # Safety
/// AVX-512F; the rest as the task's.
#[target_feature(enable = "avx512f")]
unsafe fn run_avx512<T: Task>(task: T) -> T::Output {
    // SAFETY: the caller's.
    unsafe { task.run::<Avx512>() }
}

// SAFETY: each method runs AVX-512F instructions only, on the lanes its contract names.
unsafe impl Vector for Avx512 {
    const LANES: usize = 16;
    const REGISTERS: usize = 32;
    type Mask = __mmask16;

    fn available() -> bool {
        std::arch::is_x86_feature_detected!("avx512f")
    }

    #[inline(always)]
    unsafe fn mask(n: usize) -> __mmask16 {
        (1 << n) - 1
    }

    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: the trait's.
        unsafe { Avx512(_mm512_setzero_ps()) }
    }

    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the trait's.
        unsafe { Avx512(_mm512_loadu_ps(p)) }
    }

    #[inline(always)]
    unsafe fn load_masked(p: *const f32, m: __mmask16) -> Self {
        // SAFETY: the trait's.
        unsafe { Avx512(_mm512_maskz_loadu_ps(m, p)) }
    }

    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the trait's.
        unsafe { _mm512_storeu_ps(p, self.0) }
    }

    #[inline(always)]
    unsafe fn store_masked(self, p: *mut f32, m: __mmask16) {
        // SAFETY: the trait's.
        unsafe { _mm512_mask_storeu_ps(p, m, self.0) }
    }

    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        // SAFETY: the trait's.
        unsafe { Avx512(_mm512_add_ps(self.0, o.0)) }
    }

    #[inline(always)]
    unsafe fn mul(self, o: Self) -> Self {
        // SAFETY: the trait's.
        unsafe { Avx512(_mm512_mul_ps(self.0, o.0)) }
    }

    /// An 8×8 transpose in each 256-bit half (channels 0–7 and 8–15) by unpacks and shuffles
    /// within 128-bit lanes, then a two-source permute of the 128-bit lanes; 16 stores of 8
    /// values.
    #[inline(always)]
    unsafe fn store_planes(acc: [Self; 8], out: *mut f32, plane: usize) {
        // SAFETY: the trait's.
        unsafe {
            let [r0, r1, r2, r3, r4, r5, r6, r7] = acc.map(|a| a.0);
            let (t0, t1) = (_mm512_unpacklo_ps(r0, r1), _mm512_unpackhi_ps(r0, r1));
            let (t2, t3) = (_mm512_unpacklo_ps(r2, r3), _mm512_unpackhi_ps(r2, r3));
            let (t4, t5) = (_mm512_unpacklo_ps(r4, r5), _mm512_unpackhi_ps(r4, r5));
            let (t6, t7) = (_mm512_unpacklo_ps(r6, r7), _mm512_unpackhi_ps(r6, r7));
            // Per 128-bit lane: u0 = columns 0–3 of element 0 (lane's first), u1 element 1, …
            let u0 = _mm512_shuffle_ps::<0x44>(t0, t2);
            let u1 = _mm512_shuffle_ps::<0xEE>(t0, t2);
            let u2 = _mm512_shuffle_ps::<0x44>(t1, t3);
            let u3 = _mm512_shuffle_ps::<0xEE>(t1, t3);
            let v0 = _mm512_shuffle_ps::<0x44>(t4, t6);
            let v1 = _mm512_shuffle_ps::<0xEE>(t4, t6);
            let v2 = _mm512_shuffle_ps::<0x44>(t5, t7);
            let v3 = _mm512_shuffle_ps::<0xEE>(t5, t7);
            // 128-bit lanes [a0, b0, a2, b2] (channels j, j + 8) and [a1, b1, a3, b3] (j + 4,
            // j + 12).
            let even = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
            let odd = _mm512_setr_epi32(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
            for (j, (u, v)) in [(u0, v0), (u1, v1), (u2, v2), (u3, v3)]
                .into_iter()
                .enumerate()
            {
                for (k, idx) in [(j, even), (j + 4, odd)] {
                    let o = _mm512_permutex2var_ps(u, idx, v);
                    let lo = _mm512_castps512_ps256(o);
                    let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(o)));
                    _mm256_storeu_ps(out.add(k * plane), lo);
                    _mm256_storeu_ps(out.add((k + 8) * plane), hi);
                }
            }
        }
    }

    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        // SAFETY: the trait's.
        unsafe { Avx512(_mm512_set1_ps(v)) }
    }

    #[inline(always)]
    unsafe fn mul_add(self, a: Self, b: Self) -> Self {
        // SAFETY: the trait's.
        unsafe { Avx512(_mm512_fmadd_ps(self.0, a.0, b.0)) }
    }

    #[inline(always)]
    unsafe fn relu6(self) -> Self {
        // max(0, a) then min(6, ·) return `a` where it is NaN, as `f32::clamp`.
        // SAFETY: the trait's.
        unsafe {
            let (zero, six) = (_mm512_setzero_ps(), _mm512_set1_ps(6.0));
            Avx512(_mm512_min_ps(six, _mm512_max_ps(zero, self.0)))
        }
    }

    unsafe fn run<T: Task>(task: T) -> T::Output {
        // SAFETY: the trait's.
        unsafe { run_avx512(task) }
    }
}

/// 8 lanes of AVX2 (256-bit AVX arithmetic, AVX2's integer compare for the masks, FMA's
/// multiply-add: every AVX2 CPU fovea has met has FMA, and [`available`](Vector::available)
/// checks both).
#[derive(Clone, Copy)]
pub(crate) struct Avx2(__m256);

/// `task` compiled for AVX2 and FMA.
///
/// # Safety
/// AVX2 and FMA; the rest as the task's.
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2<T: Task>(task: T) -> T::Output {
    // SAFETY: the caller's.
    unsafe { task.run::<Avx2>() }
}

// SAFETY: each method runs AVX, AVX2 and FMA instructions only, on the lanes its contract names.
unsafe impl Vector for Avx2 {
    const LANES: usize = 8;
    const REGISTERS: usize = 16;
    type Mask = __m256i;

    fn available() -> bool {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }

    /// Lane `k` all ones where `k < n` (the sign bit is what the masked moves read).
    #[inline(always)]
    unsafe fn mask(n: usize) -> __m256i {
        // SAFETY: the trait's.
        unsafe {
            _mm256_cmpgt_epi32(
                _mm256_set1_epi32(n as i32),
                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
            )
        }
    }

    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: the trait's.
        unsafe { Avx2(_mm256_setzero_ps()) }
    }

    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the trait's.
        unsafe { Avx2(_mm256_loadu_ps(p)) }
    }

    #[inline(always)]
    unsafe fn load_masked(p: *const f32, m: __m256i) -> Self {
        // SAFETY: the trait's.
        unsafe { Avx2(_mm256_maskload_ps(p, m)) }
    }

    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the trait's.
        unsafe { _mm256_storeu_ps(p, self.0) }
    }

    #[inline(always)]
    unsafe fn store_masked(self, p: *mut f32, m: __m256i) {
        // SAFETY: the trait's.
        unsafe { _mm256_maskstore_ps(p, m, self.0) }
    }

    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        // SAFETY: the trait's.
        unsafe { Avx2(_mm256_add_ps(self.0, o.0)) }
    }

    #[inline(always)]
    unsafe fn mul(self, o: Self) -> Self {
        // SAFETY: the trait's.
        unsafe { Avx2(_mm256_mul_ps(self.0, o.0)) }
    }

    /// The 8×8 transpose: unpacks and shuffles within 128-bit lanes give each channel's
    /// columns 0–3 and 4–7 in the two halves of a pair of registers, a 128-bit permute joins
    /// them; 8 stores of 8 values.
    #[inline(always)]
    unsafe fn store_planes(acc: [Self; 8], out: *mut f32, plane: usize) {
        // SAFETY: the trait's.
        unsafe {
            let [r0, r1, r2, r3, r4, r5, r6, r7] = acc.map(|a| a.0);
            let (t0, t1) = (_mm256_unpacklo_ps(r0, r1), _mm256_unpackhi_ps(r0, r1));
            let (t2, t3) = (_mm256_unpacklo_ps(r2, r3), _mm256_unpackhi_ps(r2, r3));
            let (t4, t5) = (_mm256_unpacklo_ps(r4, r5), _mm256_unpackhi_ps(r4, r5));
            let (t6, t7) = (_mm256_unpacklo_ps(r6, r7), _mm256_unpackhi_ps(r6, r7));
            // Per 128-bit lane: u_j = columns 0–3 of the lane's element j (channels j, j + 4),
            // v_j columns 4–7.
            let u = [
                _mm256_shuffle_ps::<0x44>(t0, t2),
                _mm256_shuffle_ps::<0xEE>(t0, t2),
                _mm256_shuffle_ps::<0x44>(t1, t3),
                _mm256_shuffle_ps::<0xEE>(t1, t3),
            ];
            let v = [
                _mm256_shuffle_ps::<0x44>(t4, t6),
                _mm256_shuffle_ps::<0xEE>(t4, t6),
                _mm256_shuffle_ps::<0x44>(t5, t7),
                _mm256_shuffle_ps::<0xEE>(t5, t7),
            ];
            for j in 0..4 {
                let low = _mm256_permute2f128_ps::<0x20>(u[j], v[j]);
                let high = _mm256_permute2f128_ps::<0x31>(u[j], v[j]);
                _mm256_storeu_ps(out.add(j * plane), low);
                _mm256_storeu_ps(out.add((j + 4) * plane), high);
            }
        }
    }

    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        // SAFETY: the trait's.
        unsafe { Avx2(_mm256_set1_ps(v)) }
    }

    #[inline(always)]
    unsafe fn mul_add(self, a: Self, b: Self) -> Self {
        // SAFETY: the trait's.
        unsafe { Avx2(_mm256_fmadd_ps(self.0, a.0, b.0)) }
    }

    #[inline(always)]
    unsafe fn relu6(self) -> Self {
        // max(0, a) then min(6, ·) return `a` where it is NaN, as `f32::clamp`.
        // SAFETY: the trait's.
        unsafe {
            let (zero, six) = (_mm256_setzero_ps(), _mm256_set1_ps(6.0));
            Avx2(_mm256_min_ps(six, _mm256_max_ps(zero, self.0)))
        }
    }

    unsafe fn run<T: Task>(task: T) -> T::Output {
        // SAFETY: the trait's.
        unsafe { run_avx2(task) }
    }
}
