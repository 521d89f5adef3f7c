#!/usr/bin/env bash
# tract (`edge bench`, release) vs onnxruntime on the same ONNX files: fp32 and each int8 form,
# B0 and Lite0 at 224 px, batch 1, 1 and 2 threads. Prints a markdown table (median ms, the
# tract/onnxruntime ratio, load(+optimize) ms, peak RSS MiB) and the machine load.
#
#   scripts/bench-edge.sh [WORKDIR] [RUNS]
#
# Needs: a host binary with `host export` (HOST=..., default target/debug/host), python with
# onnx + onnxruntime (PY=..., default ~/.cache/fovea/venv-onnx/bin/python; pip install onnx
# onnxruntime numpy). The int8 files come from scripts/quant-candidates.py (speed only: random
# calibration); `host quantize` makes the accuracy-gated ones.
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-/tmp/fovea-bench-edge}"
runs="${2:-30}"
target="${CARGO_TARGET_DIR:-target}"
HOST="${HOST:-$target/debug/host}"
PY="${PY:-$HOME/.cache/fovea/venv-onnx/bin/python}"
lite0_pth="$HOME/.cache/fovea/weights/efficientnet-lite0.pth"

cargo build --release -q -p fovea-edge
EDGE="$target/release/edge"
mkdir -p "$work"
for v in b0 lite0; do
  if [[ ! -f "$work/$v.onnx" ]]; then
    extra=(--randomize-bn)
    [[ $v == lite0 && -f $lite0_pth ]] && extra=(--pretrained "$lite0_pth")
    "$HOST" export --variant "$v" --num-classes 5 "${extra[@]}" --out "$work/$v.onnx" >&2
    "$PY" scripts/quant-candidates.py "$work/$v.onnx" "$work/$v" >&2 2> >(grep -v WARNING >&2)
  fi
done

echo "machine: $(nproc) cores; load before: $(uptime | sed 's/.*load average: //')"
echo
echo "| model | form | size MB | threads | tract ms | ort ms | tract/ort | tract load ms | ort load ms | tract RSS MiB | ort RSS MiB |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for v in b0 lite0; do
  for form in fp32 weights qop qop-dwfloat qdq; do
    f="$work/$v/$form.onnx"
    [[ $form == fp32 ]] && f="$work/$v.onnx"
    size=$(awk -v b="$(stat -c %s "$f")" 'BEGIN{printf "%.1f", b/1e6}')
    for t in 1 2; do
      tr=$("$EDGE" bench "$f" --threads "$t" --runs "$runs" 2>/dev/null || echo '{}')
      ort=$("$PY" scripts/bench_ort.py "$f" "$t" "$runs" 2>/dev/null || echo '{}')
      "$PY" - "$v" "$form" "$size" "$t" "$tr" "$ort" <<'PYEOF'
import json, sys
v, form, size, t, tr, ort = sys.argv[1:7]
tr, ort = json.loads(tr), json.loads(ort)
g = lambda d, k: "fails" if k not in d else (f"{d[k]:.1f}" if d[k] is not None else "-")
ratio = f"{tr['median_ms'] / ort['median_ms']:.2f}" if "median_ms" in tr and "median_ms" in ort else "-"
print(f"| {v} | {form} | {size} | {t} | {g(tr,'median_ms')} | {g(ort,'median_ms')} | {ratio} | "
      f"{g(tr,'load_ms')} | {g(ort,'load_ms')} | {g(tr,'peak_rss_mb')} | {g(ort,'peak_rss_mb')} |")
PYEOF
    done
  done
done
echo
echo "load after: $(uptime | sed 's/.*load average: //')"
