//! `edge`: the device-side command line of fovea.
fn main() {}
