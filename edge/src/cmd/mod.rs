//! One module per `edge` subcommand, each with its `Args` and `pub fn run`.
pub mod bench;
pub mod check;
pub mod device_args;
pub mod rollback;
pub mod run;
pub mod screen;
pub mod verify_log;
