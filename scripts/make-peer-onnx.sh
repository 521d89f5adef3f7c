#!/usr/bin/env bash
# Peer-tool ONNX exports for the structural weight-import tests (scripts/make_peer_onnx.py):
# Keras EfficientNetB0 through tf2onnx, with onnxruntime's logits, into
# $FOVEA_CACHE/peer-onnx (default ~/.cache/fovea/peer-onnx). Installs tensorflow-cpu, tf2onnx
# and onnxruntime from PyPI into the venv bench-train-vs-keras.sh also uses. Reuses a complete
# cache; exits non-zero (and the tests print SKIPPED) when PyPI is out of reach.
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${FOVEA_CACHE:-$HOME/.cache/fovea}"
out="$cache/peer-onnx"
stamp="$out/.complete-v1"
if [[ -f "$stamp" ]]; then
  echo "peer-onnx: cached in $out"
  exit 0
fi
TF_VERSION="${TF_VERSION:-2.21.0}"
venv="$cache/venv-keras"
py="$venv/bin/python"
pins=("tensorflow-cpu==$TF_VERSION" "tf2onnx==1.17.0" "onnxruntime==1.32.0" "onnx==1.23.2")
if ! "$py" -c "import tensorflow, tf2onnx, onnxruntime" 2>/dev/null; then
  echo "== installing ${pins[*]} into $venv" >&2
  python3 -m venv "$venv"
  "$py" -m pip install --quiet --upgrade pip
  "$py" -m pip install --quiet "${pins[@]}"
fi
rm -rf "$out"
"$py" scripts/make_peer_onnx.py "$out"
touch "$stamp"
