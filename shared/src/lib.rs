//! fovea-shared: everything the training host and the screening device must agree on.
//!
//! Both sides link this crate so the device sees exactly what training saw:
//! - [`decode`]: image files (PNG/JPEG/TIFF/BMP) and DICOM into one 8-bit RGB raster;
//! - [`preprocess`]: field-of-view crop, resize, Graham colour normalisation, tensor layout,
//!   training augmentation, all driven by one serde [`preprocess::PreprocessConfig`];
//! - [`quality`]: the gradability gate (an ungradable image is never a negative);
//! - [`metrics`]: classification, ROC/AUC, kappa, calibration and interval statistics;
//! - [`dataset`]: image folders, CSV manifests and patient-grouped stratified splits;
//! - [`task`]: what a model predicts and its headline metric (QWK, AUC, accuracy);
//! - [`bundle`]: the signed device bundle (manifest + model, ed25519) the edge verifies;
//! - [`device`]: the device folder layout `host flash` writes and `edge` reads;
//! - [`heatmap`]: class-activation / Grad-CAM maps and their overlay on the fundus;
//! - [`depthwise`]: the depthwise convolution kernel, forward and gradients: the host trains
//!   with it and the device runs it inside tract, so both compute the same values;
//! - [`lane_sum`]: sums in eight vector lanes (the host's plane means and statistics, the
//!   device's squeeze-excitation means);
//! - [`onnx`] (feature `onnx`): initializer values, the linear head and constant weight
//!   dequantization of ONNX models, read alike by host and device;
//! - [`infer`] (feature `infer`): tract with fovea's own ops placed in the model, what the device
//!   runs and `host quantize`'s accuracy gate scores.
//!
//! No training or accelerator dependency lives here; the crate builds for aarch64 and armv7.
#![warn(missing_docs)]

pub mod bundle;
mod channel_blocks;
pub mod dataset;
pub mod decode;
pub mod depthwise;
pub mod device;
pub mod heatmap;
#[cfg(feature = "infer")]
pub mod infer;
pub mod lane_sum;
pub mod metrics;
#[cfg(feature = "onnx")]
pub mod onnx;
pub mod preprocess;
pub mod quality;
mod shared_out;
pub mod task;
mod thread_rows;
#[cfg(target_arch = "x86_64")]
mod vector;
