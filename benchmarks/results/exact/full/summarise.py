"""The table of README.md here, from the runs' JSON files: one row per (dataset, norm, box) run.

    python benchmarks/results/exact/full/summarise.py
"""
from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
NORM_TEXT = {"l2": "l2", "linf": "l∞", "l1": "l1"}


def wall_times() -> dict:
    """run name -> wall seconds from wall_times.txt (runs of run_all.sh)."""
    out = {}
    path = HERE / "wall_times.txt"
    if path.exists():
        for line in path.read_text().splitlines():
            name, _, rest = line.partition(":")
            out[name.strip()] = float(rest.split()[0])
    return out


def row(path: Path, walls: dict) -> str:
    d = json.loads(path.read_text())
    name = path.stem
    box = "[0, 1]" if "_box" in name else "none"
    points = int(round(d["accuracy"] * d["n_queries"]))
    acc = ", ".join(f"{float(e):g}: {100 * v:.2f} %" for e, v in d["robust_accuracy"].items())
    closed = points - d.get("not_closed", 0)
    per_core = d["exact_seconds"] / max(points, 1)
    wall = walls.get(name)
    wall_text = f"{wall:.0f} s" if wall is not None else f"{d['timings']['total_s']:.0f} s"
    processes = "2" if "--processes" in " ".join(d.get("argv", [])) else "1"
    return (f"| {d['dataset']} | {NORM_TEXT[d['norm']]} | {box} | {d['n_queries']} | {100 * d['accuracy']:.2f} % | {acc} "
            f"| {closed} / {points} | {d['gap_median']:.1e} / {d['gap_max']:.1e} | {d['programs_solved'] / max(points, 1):.2f} "
            f"| {per_core:.3f} s | {processes} | {wall_text} |")


def main() -> None:
    walls = wall_times()
    print("| dataset | norm | box | points | clean | exact robust accuracy | intervals closed | median / max relative gap "
          "| programs per point | seconds per point and core | processes | wall time |")
    print("| --- | --- | --- | ---: | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: |")
    for path in sorted(HERE.glob("*_exact*.json")):
        print(row(path, walls))


if __name__ == "__main__":
    main()
