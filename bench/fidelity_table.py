"""Summarises bench/fidelity.sh's run folders (run.json, symmetry.csv) as a markdown table."""
import json
import pathlib
import sys

root = pathlib.Path(sys.argv[1])
print("| run | breakers | train acc. (last epoch) | test acc. (final / best) | layers broken | max final spread | steps | seconds |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for run in sorted(root.iterdir(), key=lambda p: p.name):
    file = run / "run.json"
    if not file.is_file():
        continue
    summary = json.loads(file.read_text())["summary"]
    symmetry = summary["Symmetry"]
    broken = sum(1 for layer in symmetry if layer["BrokeAtStep"] is not None)
    spread = max((layer["Spread"] for layer in symmetry), default=0.0)
    record = summary.get("Record") or {}
    final, best = summary.get("FinalTestAccuracy"), summary.get("BestTestAccuracy")
    accuracy = "-" if final is None else f"{100 * final:.2f} % / {100 * best:.2f} %"
    epochs = (run / "epochs.csv").read_text().strip().splitlines()
    train = f"{100 * float(epochs[-1].split(',')[3]):.2f} %" if len(epochs) > 1 else "-"
    print(f"| {run.name} | {', '.join(record.get('Breakers', []))} | {train} | {accuracy} | {broken} of {len(symmetry)} | "
          f"{spread:.3g} | {summary['Steps']} | {summary['Seconds']:.0f} |")
