#!/usr/bin/env bash
# Checks `host export` with the reference ONNX tools: installs onnx, onnxruntime and numpy
# from PyPI into a venv under the fovea cache, exports B0 (random BN statistics, 64 px,
# linear head), B3 (96 px, MLP head) and Lite0 (symmetric padding), each with reference
# inputs (synthetic fundus photographs from `host synth`, plus real ones when cached) and the
# host model's logits; trains a tiny Lite0 run and quantizes its export in both `host quantize`
# modes (reference: the device runtime's logits on the int8 file, shared::infer); then runs scripts/check_onnx.py:
# onnx.checker.check_model(full_check=True) and onnxruntime's logits against the reference.
#
# Env: FOVEA_CACHE (venv at $FOVEA_CACHE/venv-onnx, default ~/.cache/fovea), CARGO_TARGET_DIR.
# PyPI unreachable with no venv yet: prints SKIPPED and exits 0 (the CI path stays offline-safe).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
cache="${FOVEA_CACHE:-$HOME/.cache/fovea}"
venv="$cache/venv-onnx"
py="$venv/bin/python"

if ! "$py" -c "import onnx, onnxruntime, numpy" 2>/dev/null; then
  echo "== installing onnx, onnxruntime, numpy into $venv" >&2
  python3 -m venv "$venv"
  if ! "$py" -m pip install --quiet --disable-pip-version-check \
      onnx==1.23.2 onnxruntime==1.32.0 numpy==2.4.6; then
    echo "SKIPPED: check-onnx: could not install onnx/onnxruntime from PyPI (offline?)" >&2
    exit 0
  fi
fi

echo "== cargo build -p fovea-host" >&2
cargo build --quiet -p fovea-host
host="${CARGO_TARGET_DIR:-$root/target}/debug/host"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$host" synth --out "$tmp/synth" --n 6 --seed 5 --size 256 >/dev/null
# The generator's gradable photographs (column `gradable`), two of them.
mapfile -t images < <(awk -F, -v d="$tmp/synth/train_images" \
  'NR > 1 && $8 == 1 { print d "/" $1 ".png" }' "$tmp/synth/train.csv" | head -n 2)
for f in DRIVE_22.png HRF_07_dr.jpg; do
  [[ -f "$cache/samples/$f" ]] && images+=("$cache/samples/$f")
done

pairs=()
export_case() {
  local name="$1"
  shift
  "$host" export --out "$tmp/$name.onnx" --reference "$tmp/$name-ref" "$@" --images "${images[@]}"
  pairs+=("$tmp/$name.onnx" "$tmp/$name-ref")
}
export_case b0 --variant b0 --num-classes 5 --img-size 64 --seed 1 --randomize-bn
export_case b3 --variant b3 --num-classes 2 --img-size 96 --seed 2 --randomize-bn --head mlp
export_case lite0 --variant lite0 --num-classes 5 --img-size 64 --seed 3 --randomize-bn --symmetric-padding

# int8: a tiny trained run (the gate is tested in host/tests/quantize.rs; here --max-drop 1),
# three epochs so its logits are separated enough that QDQ rounding ties do not flip a class.
"$host" train --variant lite0 --img-size 64 --batch-size 8 --synth-n 40 --seed 4 --epochs 3 \
  --out "$tmp/run" >/dev/null
"$host" export --run "$tmp/run" >/dev/null
for mode in weights compute; do
  "$host" quantize --model "$tmp/run/model.onnx" --run "$tmp/run" --mode "$mode" --max-drop 1 \
    --out "$tmp/$mode.onnx" --reference "$tmp/$mode-ref" --images "${images[@]}"
  pairs+=("$tmp/$mode.onnx" "$tmp/$mode-ref")
done

"$py" scripts/check_onnx.py "${pairs[@]}"
