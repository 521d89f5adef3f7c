//! The bundle reader on arbitrary bytes: `inspect` (header + manifest, unverified) and
//! `read_bundle` (signature, model hash) must return an error for anything malformed, never
//! panic or allocate without bound.
#![no_main]
use libfuzzer_sys::fuzz_target;
use shared::bundle::{SigningKey, inspect, read_bundle};

fuzz_target!(|data: &[u8]| {
    let key = SigningKey::from_seed([7; 32]).verifying_key();
    let _ = inspect(data);
    let _ = read_bundle(data, &[key]);
});
