//! One module per `edge` subcommand, each with its `Args` and `pub fn run`.
pub mod bench;
pub mod check;
