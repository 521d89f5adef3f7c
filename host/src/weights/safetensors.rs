//! Hugging Face safetensors files, through the `safetensors` crate.
use std::path::Path;

use safetensors::{Dtype as St, SafeTensors};

use super::{Dtype, Format, StateDict, Tensor, WeightsError};

/// Read every tensor of the safetensors file at `path` (little-endian by the format's spec).
pub(super) fn load(path: &Path) -> Result<StateDict, WeightsError> {
    let bytes = std::fs::read(path).map_err(|cause| WeightsError::Io {
        path: path.to_owned(),
        cause,
    })?;
    let file = SafeTensors::deserialize(&bytes).map_err(|cause| WeightsError::Safetensors {
        path: path.to_owned(),
        cause,
    })?;
    let mut tensors = Vec::with_capacity(file.len());
    for (name, view) in file.iter() {
        let dtype = dtype(view.dtype()).ok_or_else(|| WeightsError::UnsupportedDtype {
            path: path.to_owned(),
            name: name.to_owned(),
            dtype: view.dtype().to_string(),
        })?;
        // The crate has checked that the data span matches shape × element size.
        let data = super::convert::to_f32(view.data(), dtype, true);
        tensors.push((
            name.to_owned(),
            Tensor {
                shape: view.shape().to_vec(),
                dtype,
                data,
            },
        ));
    }
    Ok(StateDict::new(Format::Safetensors, tensors))
}

fn dtype(d: St) -> Option<Dtype> {
    Some(match d {
        St::F64 => Dtype::F64,
        St::F32 => Dtype::F32,
        St::F16 => Dtype::F16,
        St::BF16 => Dtype::BF16,
        St::I64 => Dtype::I64,
        St::I32 => Dtype::I32,
        St::I16 => Dtype::I16,
        St::I8 => Dtype::I8,
        St::U64 => Dtype::U64,
        St::U32 => Dtype::U32,
        St::U16 => Dtype::U16,
        St::U8 => Dtype::U8,
        St::BOOL => Dtype::Bool,
        _ => return None,
    })
}
