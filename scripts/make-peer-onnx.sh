#!/usr/bin/env bash
# Peer-tool ONNX exports for the structural weight-import tests (scripts/make_peer_onnx.py),
# with onnxruntime's logits, into $FOVEA_CACHE/peer-onnx (default ~/.cache/fovea/peer-onnx):
# - always: Keras EfficientNetB0 through tf2onnx. Installs tensorflow-cpu, tf2onnx and
#   onnxruntime from PyPI into the venv bench-train-vs-keras.sh also uses (~1 min).
# - FOVEA_PEER_TIMM=1: timm efficientnet_b0 and tf_efficientnet_b0 through torch.onnx.export.
#   PyPI's torch wheel needs its CUDA libraries, ~5.6 GB of venv, so CI leaves this out; the
#   timm tests print SKIPPED without it.
# Reuses a complete cache; exits non-zero (and the tests print SKIPPED) when PyPI is out of
# reach.
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${FOVEA_CACHE:-$HOME/.cache/fovea}"
out="$cache/peer-onnx"
mkdir -p "$out"

# venv PATH PACKAGE... : a venv at PATH where `import` of the modules works, else made.
venv() {
  local dir="$1" check="$2"
  shift 2
  if ! "$dir/bin/python" -c "import $check" 2>/dev/null; then
    echo "== installing $* into $dir" >&2
    python3 -m venv "$dir"
    "$dir/bin/python" -m pip install --quiet --upgrade pip
    "$dir/bin/python" -m pip install --quiet "$@"
  fi
}

if [[ -f "$out/.complete-keras-v1" ]]; then
  echo "peer-onnx: Keras export cached in $out"
else
  venv "$cache/venv-keras" "tensorflow, tf2onnx, onnxruntime" \
    "tensorflow-cpu==${TF_VERSION:-2.21.0}" tf2onnx==1.17.0 onnxruntime==1.32.0 onnx==1.23.2
  "$cache/venv-keras/bin/python" scripts/make_peer_onnx.py "$out"
  touch "$out/.complete-keras-v1"
fi

if [[ "${FOVEA_PEER_TIMM:-0}" == 1 ]]; then
  if [[ -f "$out/.complete-timm-v1" ]]; then
    echo "peer-onnx: timm exports cached in $out"
  else
    venv "$cache/venv-timm" "timm, torch, onnxruntime" \
      torch==2.15.0 torchvision==0.29.2 timm==1.0.31 pillow onnx==1.23.2 onnxruntime==1.32.0
    "$cache/venv-timm/bin/python" scripts/make_peer_onnx.py --timm "$out"
    touch "$out/.complete-timm-v1"
  fi
fi
