//! Test support: locating the cached real sample images and ImageNet weights fetched by
//! `scripts/fetch-samples.sh` and `scripts/fetch-weights.sh`, and the peer-tool ONNX exports
//! made by `scripts/make-peer-onnx.sh`. Included by the host and edge
//! test binaries too (`#[path]`), so the skip rule is written once.
#![allow(dead_code)] // each test binary that includes this file uses a different subset
use std::io::Write;
use std::path::PathBuf;

/// The fetch scripts' cache (`$FOVEA_CACHE`, default `~/.cache/fovea`).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("FOVEA_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/fovea")
        })
}

/// Path of one cached sample, or `None` after printing why the calling test skips.
///
/// The message goes straight to the process's stderr, past the test harness's capture, so a
/// skip is always visible. With `FOVEA_REQUIRE_SAMPLES=1` (set by `scripts/test.sh` once the
/// fetch succeeded) a missing file fails the test instead.
pub fn sample(name: &str) -> Option<PathBuf> {
    cached(
        "samples",
        name,
        "scripts/fetch-samples.sh",
        "FOVEA_REQUIRE_SAMPLES",
    )
}

/// Path of cached ImageNet weights (`efficientnet-lite0.pth`, …), or `None` after saying why.
pub fn weights(name: &str) -> Option<PathBuf> {
    cached(
        "weights",
        name,
        "scripts/fetch-weights.sh",
        "FOVEA_REQUIRE_SAMPLES",
    )
}

/// Path of a cached export from a peer tool (`keras-b0.onnx`, …), or `None` after saying why;
/// `FOVEA_REQUIRE_PEER_ONNX=1` (set by `scripts/test.sh` once the script succeeded) makes a
/// missing file a failure.
pub fn peer_onnx(name: &str) -> Option<PathBuf> {
    cached(
        "peer-onnx",
        name,
        "scripts/make-peer-onnx.sh",
        "FOVEA_REQUIRE_PEER_ONNX",
    )
}

/// Path of a cached timm export (`timm-b0.onnx`, …), made only with `FOVEA_PEER_TIMM=1`
/// (PyPI's torch is 5.6 GB with its CUDA libraries), or `None` after saying why;
/// `FOVEA_REQUIRE_PEER_TIMM=1` makes a missing file a failure.
pub fn peer_onnx_timm(name: &str) -> Option<PathBuf> {
    cached(
        "peer-onnx",
        name,
        "FOVEA_PEER_TIMM=1 scripts/make-peer-onnx.sh",
        "FOVEA_REQUIRE_PEER_TIMM",
    )
}

fn cached(folder: &str, name: &str, script: &str, require: &str) -> Option<PathBuf> {
    let path = cache_dir().join(folder).join(name);
    if path.is_file() {
        return Some(path);
    }
    let msg = format!(
        "SKIPPED: {} is not cached; run {script} (needs PyPI)",
        path.display()
    );
    if std::env::var(require).is_ok_and(|v| v == "1") {
        panic!("{msg}");
    }
    let _ = writeln!(std::io::stderr(), "{msg}");
    None
}
