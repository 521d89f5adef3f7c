//! An output buffer as a raw pointer several threads write through at once, each only elements
//! no other touches: the column tiles and bands of `infer`'s convolutions, the channel blocks of
//! `depthwise::ChannelsLast`.

/// A pointer to an output shared across threads (see the module doc).
#[derive(Clone, Copy)]
pub(crate) struct SharedOut(pub(crate) *mut f32);

// SAFETY: every user writes through it only elements no other thread addresses meanwhile
// (`infer::pointwise::product`, `infer::dense_conv`, `infer::int8_product`,
// `depthwise::ChannelsLast::run`).
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

impl SharedOut {
    /// The pointer `k` values on (a method, so closures capture the `Sync` wrapper, not its
    /// raw field).
    ///
    /// # Safety
    /// `k` must lie inside the output.
    pub(crate) unsafe fn at(self, k: usize) -> *mut f32 {
        unsafe { self.0.add(k) }
    }
}
