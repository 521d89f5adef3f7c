#!/usr/bin/env bash
# Fuzzes what a device reads from outside, each target for a bounded time (no panic, no crash):
#   bundle_reader  shared::bundle::{inspect, read_bundle} on arbitrary bytes
#   decode         shared::decode::decode_bytes → quality::assess → preprocess::prepare
# The decode corpus starts from the cached real samples (scripts/fetch-samples.sh: PNG, JPEG,
# ophthalmic and X-ray DICOM, a dark capture); the bundle corpus from nothing (libFuzzer's comparison tracing finds
# the magic and the section lengths).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 60)
#
# Installs cargo-fuzz (crates.io) when missing. It runs on the stable toolchain: cargo-fuzz's
# -Z flags are allowed through RUSTC_BOOTSTRAP=1, and `-s none` turns off the sanitizer (which
# would need a nightly std); coverage instrumentation still guides the search. A crash leaves
# its input in fuzz/artifacts/TARGET/ and exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
cache="${FOVEA_CACHE:-$HOME/.cache/fovea}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== cargo install cargo-fuzz" >&2
  cargo install cargo-fuzz --locked --version 0.13.2 ||
    { echo "SKIPPED: fuzz: could not install cargo-fuzz (offline?)" >&2; exit 0; }
fi
corpus=fuzz/corpus/decode
mkdir -p "$corpus" fuzz/corpus/bundle_reader
for f in DRIVE_22.png HRF_07_dr.jpg CHASEDB1_08L.png retina.jpg sample_dark.png issue_3.dcm RG1_UNCR.dcm; do
  [[ -f "$cache/samples/$f" ]] && cp -n "$cache/samples/$f" "$corpus/" || true
done

# Only for cargo fuzz (it changes cargo's fingerprints: a plain build after it rebuilds).
export RUSTC_BOOTSTRAP=1
for target in bundle_reader decode; do
  echo "== cargo fuzz run $target ($secs s)" >&2
  log="fuzz/$target.log"
  rc=0
  cargo fuzz run -s none --fuzz-dir fuzz "$target" "fuzz/corpus/$target" -- \
    -max_total_time="$secs" -max_len=1048576 -rss_limit_mb=4096 -print_final_stats=1 \
    >"$log" 2>&1 || rc=$?
  grep -E "^#[0-9]+[[:space:]]+(INITED|DONE)|stat::number_of_executed_units|ERROR|panicked|SUMMARY" "$log" || true
  [[ $rc -eq 0 ]] || { echo "fuzz: $target failed (exit $rc; $log, fuzz/artifacts/$target/)" >&2; exit 1; }
done
echo "fuzz: no crash in ${secs} s per target"
