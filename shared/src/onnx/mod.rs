//! ONNX model reading that host and device must do alike (feature `onnx`): what counts as an
//! ONNX model, initializer values, the linear head behind the class activation map, and the
//! constant weight dequantization done before tract loads an int8 `weights` model.
//! - [`model`]: a file's bytes decoded as a model, or refused;
//! - [`initializer`]: f32 and int8 / uint8 values of initializers, counts checked;
//! - [`head`]: the GAP → linear head of an export with a `features` output;
//! - [`dequant`]: constant `DequantizeLinear` nodes folded into f32 initializers;
//! - [`error`] holds [`OnnxError`], which names the initializer or node at fault.
pub mod dequant;
pub mod error;
pub mod head;
pub mod initializer;
pub mod model;

pub use self::error::OnnxError;
