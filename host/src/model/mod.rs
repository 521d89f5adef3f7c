//! The EfficientNet model specification: block strings, the B0 base table, the scaling
//! table of B0–B7 and Lite0–4, and the per-block architecture they expand to.
//!
//! - [`block`]: one stage as a timm block string (`ir_r2_k3_s2_e6_c24_se0.25`);
//! - [`base`]: the seven B0 stages, stem and head;
//! - [`scaling`]: [`Variant`], the released (width, depth, resolution, dropout) table,
//!   `round_channels` and `round_repeats`;
//! - [`arch`]: [`Architecture`], every block of a variant, and its parameter count;
//! - [`net`]: the burn network built from an [`Architecture`];
//! - [`import`]: pretrained efficientnet_pytorch / EfficientNet-Lite weights onto [`net`].
pub mod arch;
pub mod base;
pub mod block;
pub mod import;
pub mod net;
pub mod scaling;

pub use arch::Architecture;
pub use scaling::Variant;
