#!/usr/bin/env bash
# The README's test command, and what .ci/run calls: fetch the sample data (and make the Keras
# ONNX export the weight-import test reads), then every check CI makes (cargo fmt, cargo clippy,
# cargo doc, the aarch64 build of shared, cargo test, the ONNX checks, edge on aarch64 under
# qemu), in that order.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n== %s\n' "$*"; }

step "real sample images and ImageNet weights (scripts/fetch-samples.sh, scripts/fetch-weights.sh)"
scripts/fetch-samples.sh
scripts/fetch-weights.sh
cache="${FOVEA_CACHE:-$HOME/.cache/fovea}"
if [[ -f "$cache/samples/.complete-v1" && -f "$cache/weights/efficientnet-lite0.pth" ]]; then
  export FOVEA_REQUIRE_SAMPLES=1   # fetched: a missing sample is now a failure, not a skip
else
  echo "WARNING: sample or weights cache is cold; the tests that need them will print SKIPPED" >&2
fi

step "peer-tool ONNX exports for the structural import test (scripts/make-peer-onnx.sh)"
if scripts/make-peer-onnx.sh; then
  export FOVEA_REQUIRE_PEER_ONNX=1   # made: the Keras import test must run, not skip
else
  echo "WARNING: the Keras ONNX export could not be made; its import test will print SKIPPED" >&2
fi

step "toolchain components (scripts/install-toolchain.sh)"
scripts/install-toolchain.sh

step "headless Chromium for the report-render test (scripts/install-chromium.sh)"
if scripts/install-chromium.sh; then
  export FOVEA_REQUIRE_CHROMIUM=1   # installed: the render test must run, not skip
else
  echo "WARNING: chromium could not be installed; the report-render test will print SKIPPED" >&2
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "cargo doc -D warnings (broken and private intra-doc links)"
RUSTDOCFLAGS="-D warnings" cargo doc --quiet --workspace --no-deps

step "shared builds for aarch64"
# edge needs a C cross-compiler for tract-linalg's assembly kernels: its aarch64 build and the
# qemu run are the last step (scripts/build-edge-arm.sh installs the cross tools).
cargo check --quiet -p fovea-shared --target aarch64-unknown-linux-gnu

step "cargo test"
cargo test --workspace

step "ONNX exports: onnx checker and onnxruntime vs host logits (scripts/check-onnx.sh)"
scripts/check-onnx.sh

step "edge on aarch64 under qemu vs x86 (scripts/build-edge-arm.sh)"
scripts/build-edge-arm.sh
