//! [`InferError`]: why a model could not be loaded or planned with fovea's ops.
use thiserror::Error;
use tract_onnx::prelude::TractError;

/// A model load that failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum InferError {
    /// Folding the model's constant weight dequantization failed.
    #[error(transparent)]
    Onnx(#[from] crate::onnx::OnnxError),
    /// An output asked for by name is not a tensor of the model.
    #[error("the model has no tensor named {name}")]
    NoTensor {
        /// The name asked for.
        name: String,
    },
    /// A tract step failed; `step` says which.
    #[error("{step}")]
    Tract {
        /// What was being done.
        step: String,
        /// tract's error.
        #[source]
        source: TractError,
    },
}
