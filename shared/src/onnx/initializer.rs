//! Values of ONNX initializers (`TensorProto`) as host and device read them: f32 weights (the
//! linear head, quantization, dequantization, weight import), int8 / uint8 levels and int64
//! values (shapes, pads). Element
//! types other than asked for are `None`; a value count that disagrees with the shape is an
//! error naming the initializer.
use tract_onnx::pb::TensorProto;
use tract_onnx::pb::tensor_proto::DataType;

use super::OnnxError;

/// Integer levels of an int8 / uint8 initializer (`raw_data`, or `int32_data` as ONNX stores
/// small integers when not raw), or `None` for other element types.
pub fn levels(t: &TensorProto) -> Result<Option<Vec<i32>>, OnnxError> {
    let signed = match t.data_type {
        x if x == DataType::Int8 as i32 => true,
        x if x == DataType::Uint8 as i32 => false,
        _ => return Ok(None),
    };
    let values: Vec<i32> = if !t.raw_data.is_empty() {
        t.raw_data
            .iter()
            .map(|&b| {
                if signed {
                    i32::from(b as i8)
                } else {
                    i32::from(b)
                }
            })
            .collect()
    } else {
        t.int32_data.clone()
    };
    check_count(t, values.len())?;
    Ok(Some(values))
}

/// An f32 initializer's values (`raw_data` little-endian or `float_data`), or `None` when it
/// is not f32.
pub fn floats(t: &TensorProto) -> Result<Option<Vec<f32>>, OnnxError> {
    if t.data_type != DataType::Float as i32 {
        return Ok(None);
    }
    let values: Vec<f32> = if t.raw_data.is_empty() {
        t.float_data.clone()
    } else {
        t.raw_data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    };
    check_count(t, values.len())?;
    Ok(Some(values))
}

/// An int64 initializer's values (`raw_data` little-endian or `int64_data`: shapes, axes,
/// `Pad`'s pads), or `None` when it is not int64.
pub fn int64s(t: &TensorProto) -> Result<Option<Vec<i64>>, OnnxError> {
    if t.data_type != DataType::Int64 as i32 {
        return Ok(None);
    }
    let values: Vec<i64> = if t.raw_data.is_empty() {
        t.int64_data.clone()
    } else {
        t.raw_data
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().expect("chunks of 8")))
            .collect()
    };
    check_count(t, values.len())?;
    Ok(Some(values))
}

/// An f32 initializer's values; any other element type is an error naming it.
pub fn f32_values(t: &TensorProto) -> Result<Vec<f32>, OnnxError> {
    floats(t)?.ok_or_else(|| OnnxError::ElementType {
        name: t.name.clone(),
        expected: "f32",
    })
}

/// An initializer of raw little-endian bytes (`raw` already in `data_type`'s layout).
pub fn raw_tensor(name: &str, dims: &[i64], data_type: DataType, raw: Vec<u8>) -> TensorProto {
    TensorProto {
        name: name.to_owned(),
        dims: dims.to_vec(),
        data_type: data_type as i32,
        raw_data: raw,
        ..Default::default()
    }
}

/// The shape's element count must be the number of values read (external data is not read).
fn check_count(t: &TensorProto, n: usize) -> Result<(), OnnxError> {
    let numel: usize = t.dims.iter().map(|&d| d.max(0) as usize).product();
    if n == numel {
        Ok(())
    } else {
        Err(OnnxError::Count {
            name: t.name.clone(),
            values: n,
            dims: t.dims.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_by_type_and_counts_checked_by_name() {
        let t = raw_tensor;
        let f = t(
            "f",
            &[2],
            DataType::Float,
            [1.5f32, -2.0]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        );
        assert_eq!(floats(&f).unwrap(), Some(vec![1.5, -2.0]));
        assert_eq!(levels(&f).unwrap(), None, "f32 is not levels");
        let q = t("q", &[3], DataType::Int8, vec![0xff, 0x80, 0x7f]);
        assert_eq!(levels(&q).unwrap(), Some(vec![-1, -128, 127]));
        let u = t("u", &[3], DataType::Uint8, vec![0xff, 0x80, 0x7f]);
        assert_eq!(levels(&u).unwrap(), Some(vec![255, 128, 127]));
        assert_eq!(floats(&q).unwrap(), None, "int8 is not f32");
        let short = t(
            "w.scale",
            &[3],
            DataType::Float,
            1.0f32.to_le_bytes().to_vec(),
        );
        let e = floats(&short).unwrap_err().to_string();
        assert!(e.contains("w.scale") && e.contains("1 values"), "{e}");
        let e = f32_values(&q).unwrap_err().to_string();
        assert_eq!(e, "initializer q is not f32");
        let pads = t(
            "pads",
            &[2],
            DataType::Int64,
            [-3i64, 1 << 40]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        );
        assert_eq!(int64s(&pads).unwrap(), Some(vec![-3, 1 << 40]));
        assert_eq!(int64s(&f).unwrap(), None, "f32 is not int64");
        let listed = TensorProto {
            dims: vec![1],
            data_type: DataType::Int64 as i32,
            int64_data: vec![7],
            ..Default::default()
        };
        assert_eq!(int64s(&listed).unwrap(), Some(vec![7]));
    }
}
