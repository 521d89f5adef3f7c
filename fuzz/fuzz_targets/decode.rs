//! The capture path on arbitrary bytes, as `edge` runs it: decode (DICOM or raster, sniffed
//! from content), then the quality gate and preprocessing on whatever decodes. Every failure
//! must be an error value, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use shared::decode::decode_bytes;
use shared::preprocess::{PreprocessConfig, prepare};
use shared::quality::{QualityConfig, assess};

fuzz_target!(|data: &[u8]| {
    let Ok(decoded) = decode_bytes(data, "fuzz-input") else {
        return;
    };
    let report = assess(&decoded.image, &QualityConfig::default());
    let _ = prepare(&decoded.image, &PreprocessConfig::default(), report.fov);
});
