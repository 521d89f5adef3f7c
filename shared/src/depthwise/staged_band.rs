//! [`StagedBand`]: a band of a stride-1 layer's output rows on the plane path, convolved from
//! input rows the caller wrote straight into the plane path's staged layout (zero-padded rows
//! of `width` values, input column `x` at position `x + pw`), so that nothing is staged again:
//! `infer::stem_depthwise` writes the stem's output rows there and convolves them while they
//! are in cache, and the plane path's split by rows (`super::rows_into`) stages each thread's
//! run of a plane's rows there. The kernel and the sums are the plane path's
//! ([`super::forward_into`]'s), so the values are that path's bit for bit (tested in
//! `infer::stem_depthwise` and `super::tests`).
use std::mem::MaybeUninit;

use super::{Geometry, Kernel, Staging};

/// `oh` output rows of one plane of a stride-1 layer, from `oh + kh − 1` staged input rows.
pub(crate) struct StagedBand {
    /// The band as a layer of its own: one plane, `oh` output rows, no padding rows (the
    /// caller stages zero rows where the band reaches past the image).
    geo: Geometry,
    kernel: Kernel,
    stage: Staging,
}

impl StagedBand {
    /// `rows` output rows (at least one) of a plane of `layer`, or `None` unless `layer` has
    /// stride 1.
    pub(crate) fn new(layer: &Geometry, rows: usize) -> Option<Self> {
        if layer.sh != 1 || layer.sw != 1 || rows == 0 {
            return None;
        }
        let geo = Geometry {
            n: 1,
            c: 1,
            h: rows + layer.kh - 1,
            oh: rows,
            ph: 0,
            ..*layer
        };
        let kernel = Kernel::best();
        Some(StagedBand {
            geo,
            kernel,
            stage: Staging::new(&geo, kernel),
        })
    }

    /// Values of one plane's staged rows: at least the band's `rows + kh − 1` input rows (the
    /// register block may read rows past them, whose outputs are dropped).
    pub(crate) fn plane_len(&self) -> usize {
        self.stage.len()
    }

    /// Values per staged row; input column `x` of a row is at position `x + pw`, and every
    /// other position must hold zero.
    pub(crate) fn width(&self) -> usize {
        self.stage.width
    }

    /// One plane's band of output rows `yp` (`rows · ow` values) from its staged input rows
    /// (`staged`, [`StagedBand::plane_len`] values: staged row `i` is the input row `i − ph`
    /// below the band's first output row), the channel's `kh·kw` weights and its bias.
    ///
    /// # Panics
    /// If a length is not the band's.
    pub(crate) fn convolve(
        &self,
        staged: &[f32],
        wc: &[f32],
        bias: f32,
        yp: &mut [MaybeUninit<f32>],
    ) {
        assert_eq!(
            staged.len(),
            self.plane_len(),
            "depthwise band: staged length"
        );
        let (geo, stage) = (&self.geo, &self.stage);
        match self.kernel {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => super::plane_kernel::convolve::<crate::vector::Avx512>(
                staged, wc, bias, geo, stage, yp,
            ),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => super::plane_kernel::convolve::<crate::vector::Avx2>(
                staged, wc, bias, geo, stage, yp,
            ),
            Kernel::Portable => super::convolve(staged, wc, bias, geo, stage, yp),
        }
    }
}
