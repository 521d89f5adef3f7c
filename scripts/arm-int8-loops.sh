#!/usr/bin/env bash
# The inner loops of fovea's int8 1×1 kernels as an aarch64 board would run them, read off the
# compiler's output (no board here, and qemu's times mean nothing): builds shared for
# aarch64-unknown-linux-gnu (release, as the `device` profile before its link-time optimization),
# emits the assembly, and prints per kernel of shared/src/infer/int8_product.rs (the sdot, NEON
# and portable loops) its innermost loop's instructions, the products they compute and the
# products per instruction (scripts/arm_int8_loops.py). For scale: tract's and fovea's f32
# kernels on NEON compute 4 products per `fmla`. Counts, not times: a board's issue width and
# latencies decide the rest.
#
#   scripts/arm-int8-loops.sh
#
# Needs the aarch64 rustup target (scripts/install-toolchain.sh) and, for tract-linalg's
# assembly, gcc-aarch64-linux-gnu (scripts/build-edge-arm.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
target=aarch64-unknown-linux-gnu
tdir="${CARGO_TARGET_DIR:-$PWD/target}"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
cargo rustc --quiet --release -p fovea-shared --features infer --lib --target "$target" -- --emit asm
asm=$(ls -t "$tdir/$target/release/deps"/shared-*.s | head -1)
python3 scripts/arm_int8_loops.py "$asm"
