#!/usr/bin/env bash
# The paper's claims at CPU scale, each arm through the CLI with its breaker (issue 7, part 4). Writes runs to
# $OUT (default /tmp/identityinit-fidelity) and the table to bench/fidelity-runs.md; bench/fidelity.md discusses it.
#   bench/fidelity.sh [constnet|leakynet|toy]...   (default: all three groups)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/identityinit-fidelity}
dotnet build IdentityInit.Training -c Release -v q -nologo >/dev/null
CLI=IdentityInit.Training/bin/Release/net10.0/linux-x64/IdentityInit.Training
GROUPS_TO_RUN=${*:-constnet leakynet toy}
run() { local name=$1; shift; [ -f "$OUT/$name/run.json" ] || "$CLI" train --out "$OUT/$name" "$@" >"$OUT/$name.log" 2>&1 || true; }
mkdir -p "$OUT"
for group in $GROUPS_TO_RUN; do
  case $group in
    constnet)
      # Depth 10, widen 2, Fashion-MNIST, 2 epochs, constant lr 0.03, no augmentation, one seed.
      common=(--set depth=10 --set widen=2 --set epochs=2 --set schedule=constant --set augment=false --set threads=2)
      run constnet-deterministic --preset constnet-deterministic "${common[@]}"
      run constnet-dropout-0.01 --preset constnet-deterministic-dropout "${common[@]}"
      run constnet-init-noise-1e-4 --preset constnet-init-noise --set initNoise=1e-4 "${common[@]}"
      run constnet-he --preset constnet-he "${common[@]}" ;;
    leakynet)
      for s in h_hhhh_hhhh_hhhh i_iiii_iiii_iiii 1_iiii_iiii_iiii 1_iiii_11ii_iiii 1_iiii_1111_iiii 1_ii11_ii11_ii11 1_1111_1111_1111; do
        run "leakynet-$s" --preset "leakynet-$s" --set threads=2
      done ;;
    toy)
      for k in 1 2 4 16 64 256; do
        run "toy-k$k-jitter" --preset "toy-k$k" --set threads=2
        run "toy-k$k-none" --preset "toy-k$k" --set roundingJitter=0 --set threads=2
      done ;;
  esac
done
/usr/bin/python3 bench/fidelity_table.py "$OUT" > bench/fidelity-runs.md
cat bench/fidelity-runs.md
