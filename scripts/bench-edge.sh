#!/usr/bin/env bash
# tract (`edge bench`, release) vs onnxruntime on the same ONNX files: fp32 and each int8 form,
# B0 and Lite0 at 224 px, batch 1, 1 and 2 threads. Prints a markdown table (median ms, the
# tract/onnxruntime ratio, load(+optimize) ms, peak RSS MiB, how many depthwise, 1×1, int8 1×1
# and k×k convs ran fovea's ops inside tract), then each int8 form's tract time over tract's fp32
# time (issue 7: the int8 default faster than fp32), and the machine load.
#
#   [ROUNDS=3] [FORMS="fp32 weights …"] scripts/bench-edge.sh [WORKDIR] [RUNS]
#
# Each row runs ROUNDS rounds, tract then onnxruntime in each, and reports the median of the
# rounds' medians and each round's ratio: on this 2-core machine one pass moved by ±25 % between
# consecutive runs (B0 fp32 one thread 19.0 then 14.5 ms, Lite0 two threads 10.0 then 17.9).
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
rounds="${ROUNDS:-3}"
forms="${FORMS:-fp32 weights compute qop qop-dwfloat}"
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

medians="$(mktemp)"
trap 'rm -f "$medians"' EXIT
echo "machine: $(nproc) cores; load before: $(uptime | sed 's/.*load average: //')"
echo "$rounds rounds, each: tract then onnxruntime (swapped every other round), $runs runs apiece; ms: median over the rounds of each round's median; per round: each round's tract/ort"
echo
echo "| model | form | size MB | threads | tract ms | ort ms | tract/ort | per round | tract load ms | ort load ms | tract RSS MiB | ort RSS MiB | fovea dw | fovea 1×1 | fovea int8 1×1 | fovea k×k |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for v in b0 lite0; do
  for form in $forms; do
    f="$work/$v/$form.onnx"
    [[ $form == fp32 ]] && f="$work/$v.onnx"
    size=$(awk -v b="$(stat -c %s "$f")" 'BEGIN{printf "%.1f", b/1e6}')
    for t in 1 2; do
      trs="" orts=""
      # The order swapped every other round, so that neither side always runs first: in an A/A
      # control (one binary run twice a round, B0 at one thread, 12 rounds) the two runs of a
      # round read 1.1-9.2 % apart, the first faster in 8 (docs/PERFORMANCE.md).
      for ((r = 0; r < rounds; r++)); do
        if ((r % 2 == 1)); then
          orts+="$("$PY" scripts/bench_ort.py "$f" "$t" "$runs" 2>/dev/null || echo '{}')"$'\n'
        fi
        trs+="$("$EDGE" bench "$f" --threads "$t" --runs "$runs" 2>/dev/null || echo '{}')"$'\n'
        if ((r % 2 == 0)); then
          orts+="$("$PY" scripts/bench_ort.py "$f" "$t" "$runs" 2>/dev/null || echo '{}')"$'\n'
        fi
      done
      "$PY" - "$v" "$form" "$size" "$t" "$trs" "$orts" "$medians" <<'PYEOF'
import json, statistics, sys
v, form, size, t, trs, orts = sys.argv[1:7]
trs = [json.loads(l) for l in trs.splitlines() if l.strip()]
orts = [json.loads(l) for l in orts.splitlines() if l.strip()]
med = lambda runs, k: statistics.median(d[k] for d in runs) if runs and all(d.get(k) is not None for d in runs) else None
f = lambda x: "fails" if x is None else f"{x:.1f}"
tr_ms, ort_ms = med(trs, "median_ms"), med(orts, "median_ms")
ratio = f"{tr_ms / ort_ms:.2f}" if tr_ms and ort_ms else "-"
rounds = " ".join(f"{a['median_ms'] / b['median_ms']:.2f}" for a, b in zip(trs, orts)
                  if "median_ms" in a and "median_ms" in b) or "-"
last = trs[-1] if trs else {}
print(f"| {v} | {form} | {size} | {t} | {f(tr_ms)} | {f(ort_ms)} | {ratio} | {rounds} | "
      f"{f(med(trs, 'load_ms'))} | {f(med(orts, 'load_ms'))} | {f(max((d.get('peak_rss_mb') or 0) for d in trs) if trs else None)} | "
      f"{f(max((d.get('peak_rss_mb') or 0) for d in orts) if orts else None)} | "
      f"{last.get('fovea_depthwise', '-')} | {last.get('fovea_pointwise', '-')} | "
      f"{last.get('fovea_int8_pointwise', '-')} | {last.get('fovea_dense', '-')} |")
if tr_ms:
    with open(sys.argv[7], "a") as out:
        out.write(f"{v} {form} {t} {tr_ms}\n")
PYEOF
    done
  done
done
echo
echo "tract, int8 form vs fp32 (median ms over median ms, the rows above):"
echo
"$PY" - "$medians" <<'PYEOF'
import sys
ms = {}
for line in open(sys.argv[1]):
    v, form, t, m = line.split()
    ms[v, form, t] = float(m)
print("| model | form | threads | int8 ms | fp32 ms | int8/fp32 |")
print("|---|---|---|---|---|---|")
for (v, form, t), m in ms.items():
    fp32 = ms.get((v, "fp32", t))
    if form != "fp32" and fp32:
        print(f"| {v} | {form} | {t} | {m:.1f} | {fp32:.1f} | {m / fp32:.2f} |")
PYEOF
echo
echo "load after: $(uptime | sed 's/.*load average: //')"
