#!/usr/bin/env bash
# Replays the engine against a PyTorch twin (bench/replay_twin.py) step for step: the same initial weights (the engine's
# safetensors export of step 0), the same unshuffled Fashion-MNIST batches, depth 10 widen 2, SGD 0.03 / 0.9 / 5e-4,
# constant lr, no augmentation, 2 threads. Prints, per init, the largest relative per-step loss difference over the
# first STEPS steps (goal < 1e-4 on CPU) and how far the final weights and BatchNorm running statistics are apart;
# then (unless SEEDS is empty) the 2-epoch test accuracy of both sides per seed, for the He init.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-50}
SEEDS=${SEEDS-1 2 3}
PY=/usr/bin/python3   # Debian's python3-torch
dotnet build IdentityInit.Training -c Release -v q -nologo >/dev/null
ENGINE="dotnet IdentityInit.Training/bin/Release/net10.0/linux-x64/IdentityInit.Training.dll"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

engine_run() { # init seed steps epochs dir
  $ENGINE train --preset constnet-deterministic --out "$5" \
    --set init="$1" --set seed="$2" --set maxSteps="$3" --set epochs="$4" --set widen=2 --set schedule=constant \
    --set augment=false --set shuffle=false --set threads=2 --set metricsEvery=1 --set checkpointEvery=0 \
    --set correlationEvery=0 >"$5.log"
  $ENGINE export-weights --run "$5" --step 0 --out "$5/init.safetensors" >/dev/null
  $ENGINE export-weights --run "$5" --out "$5/final.safetensors" >/dev/null
}

for init in const he-fanout; do
  dir="$work/$init"
  engine_run "$init" 1 "$STEPS" 1 "$dir"
  twin=$($PY bench/replay_twin.py --init "$dir/init.safetensors" --final "$dir/final.safetensors" --steps "$STEPS" --losses "$dir/twin.txt")
  $PY - "$init" "$dir/steps.csv" "$dir/twin.txt" "$twin" <<'PY'
import sys, csv, json
init, steps, twin, result = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
engine = [float(r["loss"]) for r in csv.DictReader(open(steps))]
peer = [float(l) for l in open(twin)]
rel = [abs(a - b) / abs(b) for a, b in zip(engine, peer)]
worst = max(range(len(rel)), key=rel.__getitem__)
print(f"{init:10s} steps={len(rel)} max per-step relative loss difference {rel[worst]:.2e} (step {worst + 1}; goal < 1e-4)"
      f" | final weights {result['max_rel_diff_weights'][0]:.1e}, running_mean {result['max_rel_diff_running_mean'][0]:.1e},"
      f" running_var {result['max_rel_diff_running_var'][0]:.1e}, num_batches_tracked twin/engine {result['num_batches_tracked']}")
PY
done

for seed in $SEEDS; do
  dir="$work/acc-$seed"
  engine_run he-fanout "$seed" 0 2 "$dir"
  twin=$($PY bench/replay_twin.py --init "$dir/init.safetensors" --steps 0 --epochs 2 --losses "$dir/twin.txt")
  $PY - "$seed" "$dir/epochs.csv" "$twin" <<'PY'
import sys, csv, json
seed, epochs, result = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
engine = [float(r["test_accuracy"]) for r in csv.DictReader(open(epochs))]
print(f"he-fanout seed {seed}: 2-epoch test accuracy engine {' '.join(f'{a:.2%}' for a in engine)}"
      f" | twin {' '.join(f'{a:.2%}' for a in result['test_accuracy'])}")
PY
done
