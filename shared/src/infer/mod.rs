//! fovea's inference (feature `infer`): tract 0.23.9 with fovea's own ops placed in the model,
//! used alike by the device (`edge screen`, `edge bench`) and by `host quantize`'s accuracy gate,
//! so the gate scores the values the device will compute.
//! - [`plan`]: load an ONNX message, place the ops, optimize and plan;
//! - [`depthwise`]: the depthwise convolution on [`crate::depthwise`]'s kernel, and the declutter
//!   that places it before tract changes the layout;
//! - [`pointwise`]: the 1×1 convolution on gemm (on `pixel_lanes.rs` into few planes where
//!   AVX-512 runs); [`int8_pointwise`] (on `int8_product`): a
//!   `compute` model's quantized 1×1 convolution in integers;
//! - [`expand_depthwise`]: an MBConv's expansion and depthwise conv in one op, band by band
//!   (its expansion on `channel_lanes.rs` where AVX-512 or AVX2 runs it);
//! - [`stem_depthwise`]: the stem and the depthwise conv after it (and its projection) in one
//!   op, band by band;
//! - [`dense_conv`]: the k×k convolution (the stem; computed directly by `dense_kernel.rs` where
//!   AVX-512 or AVX2 runs); [`conv_patch`]: what the conv ops share when they replace tract's
//!   `Conv`;
//! - [`plane_sum`]: squeeze-excitation's plane sums on [`crate::lane_sum`]; [`se_gate`]: its
//!   gate folded into the 1×1 projection after it;
//! - [`activation`]: ReLU6 fused into the convolutions; [`fake_quant`]: an activation's uint8
//!   round trip in one pass;
//! - [`error`] holds [`InferError`].
//!
//! The ops run on tract-linalg's executor: one thread unless the caller sets a multithread one.
pub mod activation;
#[cfg(target_arch = "x86_64")]
mod channel_lanes;
pub mod conv_patch;
pub mod dense_conv;
#[cfg(target_arch = "x86_64")]
mod dense_kernel;
pub mod depthwise;
pub mod error;
pub mod expand_depthwise;
pub mod fake_quant;
pub mod int8_pointwise;
mod int8_product;
#[cfg(target_arch = "x86_64")]
mod pixel_lanes;
pub mod plan;
pub mod plane_sum;
pub mod pointwise;
mod row_runs;
pub mod se_gate;
pub mod stem_depthwise;

pub use self::error::InferError;
