//! The screening runtime: a verified bundle loaded once, then image → result.
//!
//! ```text
//! file bytes ─ shared::decode ─ shared::quality (manifest thresholds) ─┬─ ungradable → Ungradable
//!                                                                      └─ shared::preprocess
//!                                       (manifest PreprocessConfig) ─ tract ─ softmax ─ threshold
//! ```
//! Nothing is derived from the variant name: preprocessing, quality thresholds and the operating
//! point all come from the signed manifest.
pub mod activation;
pub mod cam;
pub mod conv_patch;
pub mod dense_conv;
pub mod depthwise;
pub mod fake_quant;
pub mod heap;
pub mod int8_pointwise;
mod int8_product;
pub mod model;
pub mod outcome;
pub mod plane_sum;
pub mod pointwise;
pub mod screener;

pub use outcome::{Finding, Outcome};
pub use screener::Screener;
