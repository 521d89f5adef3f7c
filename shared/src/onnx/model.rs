//! A file's bytes as an ONNX model, or a refusal: [`decode`].
//!
//! Why not protobuf decoding alone: protobuf has no magic number, and most short byte strings
//! that are not a message fail to decode, but not all: a 32-byte ed25519 secret key given as a
//! model decoded as an empty `ModelProto` in about 0.2 % of tries (`onnx.ModelProto()
//! .ParseFromString(os.urandom(32))`, 38 of 20 000), and `host bundle` then blamed missing
//! metadata instead of the file (a flaky `host/tests/bundle.rs`). Every ONNX model carries
//! an IR version and a graph (both required by the ONNX spec, written by every exporter), so a
//! message without them is refused as not a model.
use prost::Message;
use tract_onnx::pb::ModelProto;

use super::OnnxError;

/// The ONNX model in `bytes`.
///
/// # Errors
/// [`OnnxError::NotAModel`] when `bytes` is no protobuf message, or one with no IR version or
/// no graph.
pub fn decode(bytes: &[u8]) -> Result<ModelProto, OnnxError> {
    let model = ModelProto::decode(bytes).map_err(|e| OnnxError::NotAModel(e.to_string()))?;
    if model.ir_version < 1 {
        return Err(OnnxError::NotAModel("no IR version".into()));
    }
    if model.graph.is_none() {
        return Err(OnnxError::NotAModel("no graph".into()));
    }
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::pb::GraphProto;

    /// A message with an IR version and a graph decodes; bytes that are no message, the empty
    /// message (what random bytes decode to) and a message lacking either field are refused,
    /// each saying why.
    #[test]
    fn refuses_what_is_not_a_model() {
        let whole = ModelProto {
            ir_version: 7,
            graph: Some(GraphProto::default()),
            ..Default::default()
        };
        assert!(decode(&whole.encode_to_vec()).is_ok());
        let reason = |bytes: &[u8]| decode(bytes).unwrap_err().to_string();
        // Field 15, wire type 7: no protobuf wire type.
        assert!(
            reason(&[0x7f]).starts_with("not an ONNX model: "),
            "{}",
            reason(&[0x7f])
        );
        assert_eq!(reason(&[]), "not an ONNX model: no IR version");
        let no_graph = ModelProto {
            ir_version: 7,
            ..Default::default()
        };
        assert_eq!(
            reason(&no_graph.encode_to_vec()),
            "not an ONNX model: no graph"
        );
        let no_version = ModelProto {
            graph: Some(GraphProto::default()),
            ..Default::default()
        };
        assert_eq!(
            reason(&no_version.encode_to_vec()),
            "not an ONNX model: no IR version"
        );
    }
}
