#!/usr/bin/env bash
# The paper's ConstNet study at CPU scale through the app (6 arms x 3 seeds, Fashion-MNIST subset, 3 epochs each):
# how long it takes on this machine, and the results table and claims it produced. Figures in bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build bench/IdentityInit.Bench -c Release -v q -nologo >/dev/null
bench/IdentityInit.Bench/bin/Release/net10.0/linux-x64/IdentityInit.Bench study --preset "${1:-constnet-breakers}"
