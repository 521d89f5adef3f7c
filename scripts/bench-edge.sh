#!/usr/bin/env bash
# tract (`edge bench`, release) vs onnxruntime on the same ONNX files: fp32 and each int8 form,
# B0 and Lite0 at 224 px, batch 1, 1 and 2 threads. Prints a markdown table (median ms, the
# tract/onnxruntime ratio, load(+optimize) ms, peak RSS MiB, how many depthwise and 1×1 convs ran
# fovea's ops inside tract) and the machine load.
#
#   scripts/bench-edge.sh [WORKDIR] [RUNS]
#
# The models: a one-epoch `host train` run per variant at 224 px on the synthetic default (the
# weights' values do not change the timings; Lite0 starts from ImageNet when cached), its
# `host export` (fp32), `host quantize --mode weights` and `--mode compute` (the shipped int8
# forms; --max-drop 1 because a one-epoch model's accuracy is not the point here, the gate is
# tested in host/tests/quantize.rs), and scripts/quant-candidates.py's QLinearConv forms.
# Needs: python with onnx + onnxruntime (PY=..., default ~/.cache/fovea/venv-onnx/bin/python;
# scripts/check-onnx.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-/tmp/fovea-bench-edge}"
runs="${2:-30}"
target="${CARGO_TARGET_DIR:-target}"
PY="${PY:-$HOME/.cache/fovea/venv-onnx/bin/python}"
lite0_pth="$HOME/.cache/fovea/weights/efficientnet-lite0.pth"

cargo build --release -q -p fovea-edge -p fovea-host
EDGE="$target/release/edge"
HOST="$target/release/host"
mkdir -p "$work"
for v in b0 lite0; do
  if [[ ! -f "$work/$v/qop.onnx" ]]; then
    extra=()
    [[ $v == lite0 && -f $lite0_pth ]] && extra=(--pretrained "$lite0_pth")
    "$HOST" train --variant "$v" "${extra[@]}" --img-size 224 --batch-size 8 --synth-n 40 \
      --epochs 1 --seed 0 --out "$work/$v-run" >&2
    "$HOST" export --run "$work/$v-run" --out "$work/$v.onnx" >&2
    mkdir -p "$work/$v"
    for mode in weights compute; do
      "$HOST" quantize --model "$work/$v.onnx" --run "$work/$v-run" --mode "$mode" \
        --max-drop 1 --out "$work/$v/$mode.onnx" >&2
    done
    "$PY" scripts/quant-candidates.py "$work/$v.onnx" "$work/$v" >&2 2> >(grep -v WARNING >&2)
  fi
done

echo "machine: $(nproc) cores; load before: $(uptime | sed 's/.*load average: //')"
echo
echo "| model | form | size MB | threads | tract ms | ort ms | tract/ort | tract load ms | ort load ms | tract RSS MiB | ort RSS MiB | fovea dw | fovea 1×1 |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for v in b0 lite0; do
  for form in fp32 weights compute qop qop-dwfloat; do
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
      f"{g(tr,'load_ms')} | {g(ort,'load_ms')} | {g(tr,'peak_rss_mb')} | {g(ort,'peak_rss_mb')} | "
      f"{tr.get('fovea_depthwise', '-')} | {tr.get('fovea_pointwise', '-')} |")
PYEOF
    done
  done
done
echo
echo "load after: $(uptime | sed 's/.*load average: //')"
