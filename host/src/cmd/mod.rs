//! One module per `host` subcommand, each with its `Args` and `pub fn run`.
pub mod bench;
pub mod bundle;
pub mod eval;
pub mod export;
pub mod flash;
pub mod keygen;
pub mod model;
pub mod quantize;
pub mod synth;
pub mod train;
pub mod weights;
