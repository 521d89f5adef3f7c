//! Why a weights file could not be read: every variant names the file.
//!
//! Causes are written into the message rather than chained as `source()`: `pytorch-reader`'s
//! errors already repeat their cause in both, so an `{:#}` chain would print it three times.
use std::io;
use std::path::PathBuf;

/// Failure to read a pretrained-weights file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WeightsError {
    /// The file could not be opened or read.
    #[error("reading weights {path}: {cause}")]
    Io {
        /// The weights file.
        path: PathBuf,
        /// What the operating system said.
        cause: io::Error,
    },
    /// The first bytes match none of the formats [`super::load`] reads.
    #[error(
        "weights {path}: not a PyTorch (legacy pickle or zip) or safetensors file: it starts with {head}"
    )]
    UnknownFormat {
        /// The weights file.
        path: PathBuf,
        /// The first bytes, in hex.
        head: String,
    },
    /// A pickle stream without torch's legacy magic number `0x1950a86a20f9469cfc6c` after it.
    #[error(
        "weights {path}: a pickle stream but not a torch.save file (no legacy magic number 0x1950a86a20f9469cfc6c)"
    )]
    BadMagic {
        /// The weights file.
        path: PathBuf,
    },
    /// The PyTorch container or its pickle is malformed, truncated or uses something unsupported.
    #[error("weights {path}: {cause}")]
    Torch {
        /// The weights file.
        path: PathBuf,
        /// The reader's diagnosis.
        cause: pytorch_reader::PytorchError,
    },
    /// The ONNX protobuf is malformed or truncated.
    #[error("weights {path}: ONNX: {cause}")]
    Onnx {
        /// The weights file.
        path: PathBuf,
        /// The protobuf decoder's diagnosis.
        cause: String,
    },
    /// The safetensors header or data is malformed or truncated.
    #[error("weights {path}: safetensors: {cause}")]
    Safetensors {
        /// The weights file.
        path: PathBuf,
        /// The reader's diagnosis.
        cause: safetensors::SafeTensorError,
    },
    /// One tensor's bytes could not be read (its storage is missing or shorter than declared).
    #[error("weights {path}: tensor {name}: {cause}")]
    TensorData {
        /// The weights file.
        path: PathBuf,
        /// The tensor's state-dict name.
        name: String,
        /// What went wrong.
        cause: io::Error,
    },
    /// A tensor of an element type that has no lossless-enough path to `f32` (complex, fp8, ...).
    #[error("weights {path}: tensor {name} has element type {dtype}, which is not read")]
    UnsupportedDtype {
        /// The weights file.
        path: PathBuf,
        /// The tensor's state-dict name.
        name: String,
        /// The element type as the file spells it.
        dtype: String,
    },
    /// The file parsed but holds no tensor at all (e.g. the pickle is not a state dict).
    #[error("weights {path}: no tensors found (is it a state dict?)")]
    NoTensors {
        /// The weights file.
        path: PathBuf,
    },
}
