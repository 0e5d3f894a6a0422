#!/usr/bin/env bash
# Training throughput of WRN-16-2 on Fashion-MNIST (batch 128): the engine (TorchSharp) against the same model in
# PyTorch (Debian's python3-torch), interleaved A B A B at 1 and 2 threads. Prints img/s for both and the ratio.
# Both sides get the same allocator and OpenMP settings (the engine applies them itself at start-up).
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-40}
REPS=${REPS:-2}
dotnet build bench/IdentityInit.Bench -c Release -v q -nologo >/dev/null
BENCH=bench/IdentityInit.Bench/bin/Release/net10.0/linux-x64/IdentityInit.Bench
for threads in 1 2; do
  ts=(); py=()
  for rep in $(seq "$REPS"); do
    ts+=("$("$BENCH" throughput --threads "$threads" --steps "$STEPS" | sed 's/.*img\/s=//')")
    py+=("$(OMP_WAIT_POLICY=PASSIVE MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=1073741824 \
      /usr/bin/python3 bench/wrn_pytorch.py --threads "$threads" --steps "$STEPS" | sed 's/.*img\/s=//')")
  done
  python3 - "$threads" "${ts[*]}" "${py[*]}" <<'PY'
import sys, statistics
threads, ts, py = sys.argv[1], [float(v) for v in sys.argv[2].split()], [float(v) for v in sys.argv[3].split()]
t, p = statistics.median(ts), statistics.median(py)
print(f"threads={threads}: torchsharp {t:.1f} img/s {ts}, pytorch {p:.1f} img/s {py}, ratio {t / p:.2f} (goal >= 1.0)")
PY
done
