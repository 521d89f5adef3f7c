//! The screening runtime: a verified bundle loaded once, then image → result.
//!
//! ```text
//! file bytes ─ shared::decode ─ shared::quality (manifest thresholds) ─┬─ ungradable → Ungradable
//!                                                                      └─ shared::preprocess
//!                                       (manifest PreprocessConfig) ─ tract ─ softmax ─ threshold
//! ```
//! Nothing is derived from the variant name: preprocessing, quality thresholds and the operating
//! point all come from the signed manifest.
pub mod cam;
pub mod heap;
pub mod model;
pub mod outcome;
pub mod screener;
pub mod spin;

pub use outcome::{Finding, Outcome};
pub use screener::Screener;
