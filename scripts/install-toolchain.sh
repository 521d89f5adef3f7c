#!/usr/bin/env bash
# Toolchain pieces the checks need beyond a plain rustup install: rustfmt, clippy, and the
# aarch64 standard library (shared must build for the ARM boards). Idempotent.
set -euo pipefail
rustup component add rustfmt clippy >/dev/null
rustup target add aarch64-unknown-linux-gnu >/dev/null
echo "install-toolchain: rustfmt, clippy, aarch64-unknown-linux-gnu ready"
