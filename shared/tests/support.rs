//! Test support: locating the cached real sample images fetched by `scripts/fetch-samples.sh`.
use std::io::Write;
use std::path::PathBuf;

/// Directory holding the cached samples (`$FOVEA_CACHE/samples`, default `~/.cache/fovea/samples`).
pub fn samples_dir() -> PathBuf {
    let cache = std::env::var_os("FOVEA_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/fovea")
        });
    cache.join("samples")
}

/// Path of one cached sample, or `None` after printing why the calling test skips.
///
/// The message goes straight to the process's stderr, past the test harness's capture, so a
/// skip is always visible. With `FOVEA_REQUIRE_SAMPLES=1` (set by `scripts/test.sh` once the
/// fetch succeeded) a missing sample fails the test instead.
pub fn sample(name: &str) -> Option<PathBuf> {
    let path = samples_dir().join(name);
    if path.is_file() {
        return Some(path);
    }
    let msg = format!(
        "SKIPPED: sample {} is not cached; run scripts/fetch-samples.sh (needs PyPI)",
        path.display()
    );
    if std::env::var("FOVEA_REQUIRE_SAMPLES").is_ok_and(|v| v == "1") {
        panic!("{msg}");
    }
    let _ = writeln!(std::io::stderr(), "{msg}");
    None
}
