//! PyTorch `torch.save` files, legacy pickle stream and zip, through `pytorch-reader`.
//!
//! `pytorch-reader` (tracel-ai/burn, the reader behind `burn-store`) reads both containers
//! this project meets: the legacy stream of PyTorch 0.1.10–1.5 that the EfficientNet-Lite
//! `.pth` files use (magic, protocol 1001, sys_info, the pickled object with
//! `('storage', torch.FloatStorage, key, location, numel, view)` persistent ids, the storage
//! key list, then per key an `i64` element count and the raw bytes) and the zip of 1.6+.
//! It rebuilds `torch._utils._rebuild_tensor_v2` with storage offsets and strides (a strided
//! view is gathered contiguous), refuses big-endian files, and checks every declared
//! length against the file, so a hand-written unpickler was not needed. Also looked at:
//! candle-core's `pickle` (its `read_pth_tensor_info` opens the zip container only) and
//! `serde-pickle` (plain Python values, no hook for torch's persistent storage ids); both
//! would have needed the legacy framing and tensor rebuilding written around them.
use std::path::Path;

use pytorch_reader::{DType, FileFormat, PytorchReader};

use super::{Dtype, Format, StateDict, Tensor, WeightsError};

/// Read every tensor of the torch file at `path`, which [`super::sniff`] took for `format`.
pub(super) fn load(path: &Path, format: Format) -> Result<StateDict, WeightsError> {
    let torch = |cause| WeightsError::Torch {
        path: path.to_owned(),
        cause,
    };
    let reader = PytorchReader::new(path).map_err(torch)?;
    let found = &reader.metadata().format_type;
    let expected = match format {
        Format::TorchZip => FileFormat::Zip,
        _ => FileFormat::Legacy,
    };
    if *found != expected {
        return Err(torch(pytorch_reader::PytorchError::InvalidFormat(format!(
            "header says {format} but the reader found {found:?}"
        ))));
    }
    let mut tensors = Vec::with_capacity(reader.len());
    for (name, tensor) in reader.into_tensors() {
        let data_err = |cause| WeightsError::TensorData {
            path: path.to_owned(),
            name: name.clone(),
            cause,
        };
        let bytes = tensor.read().map_err(data_err)?;
        let dtype = dtype(tensor.dtype());
        let data = to_f32(&bytes, dtype);
        if data.len() != tensor.num_elements() {
            return Err(data_err(std::io::Error::other(format!(
                "{} bytes of {dtype} for shape {:?}",
                bytes.len(),
                tensor.shape()
            ))));
        }
        let shape = tensor.shape().to_vec();
        tensors.push((name, Tensor { shape, dtype, data }));
    }
    Ok(StateDict::new(format, tensors))
}

fn dtype(d: DType) -> Dtype {
    match d {
        DType::F64 => Dtype::F64,
        DType::F32 => Dtype::F32,
        DType::F16 => Dtype::F16,
        DType::BF16 => Dtype::BF16,
        DType::I64 => Dtype::I64,
        DType::I32 => Dtype::I32,
        DType::I16 => Dtype::I16,
        DType::I8 => Dtype::I8,
        DType::U64 => Dtype::U64,
        DType::U32 => Dtype::U32,
        DType::U16 => Dtype::U16,
        DType::U8 => Dtype::U8,
        DType::Bool => Dtype::Bool,
    }
}

/// Native-endian bytes (what `Tensor::read` returns) of `dtype` elements, as `f32`.
fn to_f32(bytes: &[u8], dtype: Dtype) -> Vec<f32> {
    super::convert::to_f32(bytes, dtype, cfg!(target_endian = "little"))
}
