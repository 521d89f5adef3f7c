#!/usr/bin/env bash
# Training speed of fovea (burn flex CPU backend) against Keras (tensorflow-cpu) on the same
# shapes, one case after the other, nothing else in parallel:
#   (a) b0     224 px, batch 16, full training     vs keras EfficientNetB0, all layers trainable
#   (b) lite0  224 px, batch 16, frozen backbone   vs keras EfficientNetB0(include_top=False)
#       with trainable=False + a new Dense head (Keras has no EfficientNet-Lite; B0 is the
#       closest peer: same 224 px input, same stage layout, SiLU + SE instead of ReLU6).
# Both sides: 5 classes, random inputs, AdamW, one untimed warm-up step, median of $STEPS timed
# steps, peak RSS of their own process. Neither side's thread count is restricted.
#
# Env: STEPS (default 5), ROUNDS (default 3: the table gives each side's median over rounds),
#      QUICK=1 (img 64, batch 4, steps 2, one round: a smoke test of the script),
#      FOVEA_CACHE (venv at $FOVEA_CACHE/venv-keras, default ~/.cache/fovea), TF_VERSION.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

TF_VERSION="${TF_VERSION:-2.21.0}"
if [[ "${QUICK:-0}" == 1 ]]; then
  img=64 batch=4 steps="${STEPS:-2}" rounds="${ROUNDS:-1}"
else
  img=224 batch=16 steps="${STEPS:-5}" rounds="${ROUNDS:-3}"
fi

# 1. Keras in a venv outside git (reused when tensorflow is already importable there).
venv="${FOVEA_CACHE:-$HOME/.cache/fovea}/venv-keras"
py="$venv/bin/python"
if ! "$py" -c "import tensorflow as tf, sys; sys.exit(tf.__version__ != '$TF_VERSION')" 2>/dev/null; then
  echo "== installing tensorflow-cpu==$TF_VERSION into $venv" >&2
  python3 -m venv "$venv"
  "$py" -m pip install --quiet --upgrade pip
  "$py" -m pip install --quiet "tensorflow-cpu==$TF_VERSION"
fi

# 2. fovea's host, release build.
echo "== cargo build --release -p fovea-host" >&2
cargo build --quiet --release -p fovea-host
host="${CARGO_TARGET_DIR:-$root/target}/release/host"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# 3. Cases: name | fovea args | keras mode. Each round runs every case, Keras then fovea, so
# the two sides of a case are measured minutes apart at most; the table takes each side's
# median over the rounds (this 2-core machine moves by up to ~20 % from run to run).
cases=(
  "b0 full training|--variant b0|full"
  "lite0 frozen backbone (Keras peer: B0 frozen)|--variant lite0 --freeze-backbone|frozen"
)
commands=()
for r in $(seq "$rounds"); do
  i=0
  for c in "${cases[@]}"; do
    IFS='|' read -r name fovea_args keras_mode <<<"$c"
    i=$((i + 1))
    keras_cmd="$py scripts/bench_keras_train.py --mode $keras_mode --img-size $img --batch-size $batch --steps $steps"
    fovea_cmd="$host bench train $fovea_args --img-size $img --batch-size $batch --steps $steps --json"
    [[ "$r" == 1 ]] && commands+=("$keras_cmd" "$fovea_cmd")
    echo "== round $r/$rounds [$i/${#cases[@]}] $name: keras" >&2
    if ! $keras_cmd >"$tmp/keras$i.$r.json" 2>"$tmp/keras$i.log"; then
      tail -n 30 "$tmp/keras$i.log" >&2
      echo "keras run failed: $keras_cmd" >&2
      exit 1
    fi
    echo "== round $r/$rounds [$i/${#cases[@]}] $name: fovea" >&2
    $fovea_cmd >"$tmp/fovea$i.$r.json"
    echo "$name" >"$tmp/name$i"
  done
done

# 4. Table.
nproc_n="$(nproc)"
cpu="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
"$py" - "$tmp" "$i" "$rounds" "$nproc_n" "$cpu" "$img" "$batch" "$steps" <<'PY'
import json, statistics, sys
tmp, n, rounds, nproc, cpu, img, batch, steps = sys.argv[1:]
rows = []
tf_version = None
for i in range(1, int(n) + 1):
    name = open(f"{tmp}/name{i}").read().strip()
    fs = [json.load(open(f"{tmp}/fovea{i}.{r}.json")) for r in range(1, int(rounds) + 1)]
    ks = [json.load(open(f"{tmp}/keras{i}.{r}.json")) for r in range(1, int(rounds) + 1)]
    k = ks[0]
    tf_version = f"{k['tensorflow']} (Keras {k['keras']}, jit_compile={k['jit_compile']})"
    fv = statistics.median(f["images_per_second"] for f in fs)
    kv = statistics.median(k["images_per_second"] for k in ks)
    per_round = " ".join(f"{f['images_per_second'] / k['images_per_second']:.2f}"
                         for f, k in zip(fs, ks))
    frss = [f["peak_rss_mib"] for f in fs if f["peak_rss_mib"] is not None]
    rows.append((name, f"{fv:.2f}", f"{kv:.2f}", f"{fv / kv:.2f}x", per_round,
                 f"{max(frss):.0f}" if frss else "n/a",
                 f"{max(k['peak_rss_mib'] for k in ks):.0f}"))
head = ("case", "fovea img/s", "Keras img/s", "fovea/Keras", "per round",
        "fovea peak RSS MiB", "Keras peak RSS MiB")
w = [max(len(r[j]) for r in rows + [head]) for j in range(len(head))]
line = lambda r: "| " + " | ".join(c.ljust(w[j]) for j, c in enumerate(r)) + " |"
print(f"nproc {nproc}, CPU {cpu}; tensorflow-cpu {tf_version}; "
      f"{img} px, batch {batch}, median of {steps} steps after 1 warm-up, 5 classes, AdamW; "
      f"img/s: median over {rounds} rounds (each round: Keras, then fovea, per case); "
      f"fovea/Keras: ratio of the medians; per round: each round's ratio; RSS: the most of any round")
print(line(head))
print("|" + "|".join("-" * (x + 2) for x in w) + "|")
for r in rows:
    print(line(r))
PY
echo
echo "commands (in this order, one at a time, each round):"
for c in "${commands[@]}"; do
  echo "  ${c#"$root/"}"
done
