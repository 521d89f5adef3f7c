//! ONNX files as a state dict: every f32 initializer by name (`raw_data` little-endian or
//! `float_data`), read through `tract_onnx::pb` (prost). Other element types are refused by
//! name, as the other readers do.
use std::path::Path;

use tract_onnx::pb::tensor_proto::DataType;

use super::{Dtype, Format, StateDict, Tensor, WeightsError};

/// Reads the initializers of the ONNX model in `path`.
pub fn load(path: &Path) -> Result<StateDict, WeightsError> {
    let bytes = std::fs::read(path).map_err(|cause| WeightsError::Io {
        path: path.to_owned(),
        cause,
    })?;
    let model = shared::onnx::model::decode(&bytes).map_err(|e| WeightsError::Onnx {
        path: path.to_owned(),
        cause: e.to_string(),
    })?;
    let graph = model.graph.unwrap_or_default();
    let mut tensors = Vec::with_capacity(graph.initializer.len());
    for t in graph.initializer {
        let bad = |cause: String| WeightsError::TensorData {
            path: path.to_owned(),
            name: t.name.clone(),
            cause: std::io::Error::new(std::io::ErrorKind::InvalidData, cause),
        };
        if t.data_type != DataType::Float as i32 {
            // Integer initializers (shapes, axes) are not weights; anything else is refused
            // later by name, as unexpected or missing.
            continue;
        }
        let shape: Vec<usize> = t.dims.iter().map(|&d| d.max(0) as usize).collect();
        let numel: usize = shape.iter().product();
        let data: Vec<f32> = if !t.raw_data.is_empty() {
            t.raw_data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        } else {
            t.float_data.clone()
        };
        if data.len() != numel {
            return Err(bad(format!(
                "{} values for shape {shape:?} (external data is not read)",
                data.len()
            )));
        }
        tensors.push((
            t.name.clone(),
            Tensor {
                shape,
                dtype: Dtype::F32,
                data,
            },
        ));
    }
    if tensors.is_empty() {
        return Err(WeightsError::NoTensors {
            path: path.to_owned(),
        });
    }
    Ok(StateDict::new(Format::Onnx, tensors))
}
