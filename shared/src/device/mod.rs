//! The device side of the bundle: the folder layout on the board (or its SD card) and the
//! atomic install / rollback of bundles there, shared by `host flash` and `edge`.
pub mod install;
pub mod layout;

pub use install::{DeviceError, Installed, install, keys_in, rollback, trusted_keys};
pub use layout::{DeviceLayout, INCOMING_PREFIX};
