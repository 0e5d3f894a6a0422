"""Summarises bench/fidelity.sh's run folders (run.json, symmetry.csv) as a markdown table."""
import json
import pathlib
import sys

root = pathlib.Path(sys.argv[1])


def get(d, key):
    """run.json is camelCase; folders written before 2026-11-29 are PascalCase."""
    return d.get(key, d.get(key[0].upper() + key[1:]))


print("| run | breakers | train acc. (last epoch) | test acc. (final / best) | layers broken | max final spread | steps | seconds |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for run in sorted(root.iterdir(), key=lambda p: p.name):
    file = run / "run.json"
    if not file.is_file():
        continue
    summary = json.loads(file.read_text())["summary"]
    symmetry = get(summary, "symmetry")
    broken = sum(1 for layer in symmetry if get(layer, "brokeAtStep") is not None)
    spread = max((get(layer, "spread") for layer in symmetry), default=0.0)
    record = get(summary, "record") or {}
    final, best = get(summary, "finalTestAccuracy"), get(summary, "bestTestAccuracy")
    accuracy = "-" if final is None else f"{100 * final:.2f} % / {100 * best:.2f} %"
    epochs = (run / "epochs.csv").read_text().strip().splitlines()
    train = f"{100 * float(epochs[-1].split(',')[3]):.2f} %" if len(epochs) > 1 else "-"
    print(f"| {run.name} | {', '.join(get(record, 'breakers') or [])} | {train} | {accuracy} | {broken} of {len(symmetry)} | "
          f"{spread:.3g} | {get(summary, 'steps')} | {get(summary, 'seconds'):.0f} |")
