#!/usr/bin/env bash
# Training throughput of WRN-16-2 on Fashion-MNIST (batch 128): the engine (TorchSharp) against the same model in
# PyTorch (Debian's python3-torch), and the library floor (the bare step in TorchSharp, stock SGD, no probes) against
# PyTorch, interleaved engine / floor / PyTorch at 1 and 2 threads; then where the engine's step time goes (decompose).
# Both sides get the same allocator and OpenMP settings (the engine applies them itself at start-up).
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-40}
REPS=${REPS:-2}
dotnet build bench/IdentityInit.Bench -c Release -v q -nologo >/dev/null
BENCH=bench/IdentityInit.Bench/bin/Release/net10.0/linux-x64/IdentityInit.Bench
for threads in 1 2; do
  ts=(); fl=(); py=()
  for rep in $(seq "$REPS"); do
    ts+=("$("$BENCH" throughput --threads "$threads" --steps "$STEPS" | sed 's/.*img\/s=//')")
    fl+=("$("$BENCH" floor --threads "$threads" --steps "$STEPS" | sed 's/.*img\/s=//')")
    py+=("$(OMP_WAIT_POLICY=PASSIVE MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=1073741824 \
      /usr/bin/python3 bench/wrn_pytorch.py --threads "$threads" --steps "$STEPS" | sed 's/.*img\/s=//')")
  done
  python3 - "$threads" "${ts[*]}" "${fl[*]}" "${py[*]}" <<'PY'
import sys, statistics
threads = sys.argv[1]
ts, fl, py = ([float(v) for v in a.split()] for a in sys.argv[2:5])
t, f, p = statistics.median(ts), statistics.median(fl), statistics.median(py)
print(f"threads={threads}: engine {t:.1f} img/s {ts}, floor {f:.1f} img/s {fl}, pytorch {p:.1f} img/s {py}")
print(f"  engine/pytorch {t / p:.2f} (goal >= 1.0), floor/pytorch {f / p:.2f} (the library), engine/floor {t / f:.2f} (ours)")
PY
  "$BENCH" decompose --threads "$threads" --steps "$STEPS" --pairs "$REPS"
done
