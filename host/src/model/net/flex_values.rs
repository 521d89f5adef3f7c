//! Raw `f32` access to burn flex tensors for fovea's own kernels ([`depthwise`](super::depthwise),
//! [`fused_activation`](super::fused_activation)): row-major values in, a new tensor out, or
//! the values overwritten in place when the tensor owns them alone.
use std::borrow::Cow;

use burn::backend::flex::FlexTensor;
use burn::tensor::TensorData;

/// The values of an f32 tensor in row-major order: borrowed when its layout already is, copied
/// otherwise. Callers route only f32 tensors here (they check the dtype before dispatching).
pub fn values(t: &FlexTensor) -> Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(v) => Cow::Borrowed(v),
        None => Cow::Owned(
            t.to_contiguous()
                .as_slice::<f32>()
                .expect("fovea's flex kernels take f32 tensors only (checked by the caller)")
                .to_vec(),
        ),
    }
}

/// The values of an f32 tensor to overwrite in place: `Some` when it is row-major contiguous
/// and the only owner of its buffer (so nothing else — autodiff's saved inputs, another clone —
/// sees the change), `None` otherwise. Element-wise kernels take this path to reuse the
/// buffer instead of allocating an output beside their input.
pub fn values_mut(t: &mut FlexTensor) -> Option<&mut [f32]> {
    let (start, end) = t.layout().contiguous_offsets()?;
    t.try_storage_mut::<f32>().map(|v| &mut v[start..end])
}

/// A flex tensor of `shape` holding `values` (row-major).
pub fn tensor(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// The shape of a flex tensor.
pub fn shape(t: &FlexTensor) -> Vec<usize> {
    t.layout().shape().to_vec()
}
