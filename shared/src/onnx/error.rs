//! What can be wrong in an ONNX model's weights as fovea reads them.
use thiserror::Error;

/// A problem in an ONNX graph's initializers or nodes, named so the user can find it.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OnnxError {
    /// An initializer holds a different number of values than its shape says.
    #[error("initializer {name}: {values} values for shape {dims:?} (external data is not read)")]
    Count {
        /// Initializer name.
        name: String,
        /// Values read.
        values: usize,
        /// Its shape.
        dims: Vec<i64>,
    },
    /// An initializer has another element type than its use needs.
    #[error("initializer {name} is not {expected}")]
    ElementType {
        /// Initializer name.
        name: String,
        /// What was needed.
        expected: &'static str,
    },
    /// A constant `DequantizeLinear` node that cannot be computed.
    #[error("DequantizeLinear {node}: {problem}")]
    Dequantize {
        /// The node's name (or its output's, when unnamed).
        node: String,
        /// What is wrong.
        problem: String,
    },
    /// The bytes are not an ONNX model: no protobuf message, or one without the IR version
    /// and graph every ONNX model has.
    #[error("not an ONNX model: {0}")]
    NotAModel(String),
    /// The graph is not what the operation needs (no graph, a missing initializer, …).
    #[error("{0}")]
    Graph(String),
}
