"""Single-thread GOP/s of every CPU kernel variant on this machine, each with the % of its inner
instruction sequence's single-core peak. Writes cpu_variants_1thread.{md,json} to the folder given
(default benchmarks/results):

    python benchmarks/bench_variants.py [OUT_DIR]
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import nnmargin
import nnmargin._core as core

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import cpu_model  # noqa: E402
from peaks import kernel_sequence  # noqa: E402

_parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
_parser.add_argument("out_dir", nargs="?", type=Path, default=Path(__file__).resolve().parent / "results",
                     help="folder for cpu_variants_1thread.{md,json} (default: benchmarks/results)")
OUT = _parser.parse_args().out_dir  # before any timing: --help or a stray option must not start a run
rng = np.random.default_rng(0)


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


ROUNDS = 5  # every (variant, kernel) once per round: a slow spell of a VM hits one round, not one variant

cases = [("uint8", "l2", (256, 8000, 3072)), ("uint8", "l1", (128, 4000, 3072)), ("uint8", "linf", (128, 4000, 3072)),
         ("float32", "l2", (256, 8000, 512))]
data = {}
for dtype, metric, (n, m, d) in cases:
    if dtype == "uint8":
        t = rng.integers(0, 256, (m, d)).astype(np.uint8); x = rng.integers(0, 256, (n, d)).astype(np.uint8)
    else:
        t = rng.normal(size=(m, d)).astype(np.float32); x = rng.normal(size=(n, d)).astype(np.float32)
    ty, y = rng.integers(0, 10, m), rng.integers(0, 10, n)
    ts = nnmargin.TrainSet(t, ty); ts.prepared(metric)
    data[(dtype, metric)] = (x, y, ts, 2.0 * n * m * d)
keys = [(isa, dm) for isa in core.cpu_isas() for dm in data]
best = {key: float("inf") for key in keys}
peak = {key: 0.0 for key in keys}
for isa, (dtype, metric) in keys:  # warm-up
    x, y, ts, _ = data[(dtype, metric)]
    nnmargin.certify(x[:8], y[:8], ts, metric=metric, isa=isa, num_threads=1)
for _ in range(ROUNDS):
    for isa, (dtype, metric) in keys:
        x, y, ts, _ = data[(dtype, metric)]
        best[(isa, (dtype, metric))] = min(best[(isa, (dtype, metric))], seconds(
            lambda: nnmargin.certify(x, y, ts, metric=metric, isa=isa, num_threads=1)))
        seq = kernel_sequence(isa, dtype, metric)
        if seq:
            peak[(isa, (dtype, metric))] = max(peak[(isa, (dtype, metric))], core.peak_probe(isa, seq, 0.05))
rows = []
for isa, (dtype, metric) in keys:
    g = data[(dtype, metric)][3] / best[(isa, (dtype, metric))] / 1e9
    seq = kernel_sequence(isa, dtype, metric)
    p = peak[(isa, (dtype, metric))] if seq else None
    rows.append({"isa": isa, "kernel": f"{dtype} {metric}", "gops_1_thread": g, "sequence": seq, "sequence_peak": p,
                 "percent_of_peak": 100 * g / p if p else None})
    print(rows[-1], flush=True)
lines = ["# Kernel variants, one thread", "", "`python " + " ".join(sys.argv) + "` (one thread; single runs on a 2-core machine whose other core may be busy)", "",
         f"CPU: {cpu_model()}", "", "GOP/s = 2 N M D / s; sizes: uint8 l2 256 x 8000 x 3072, l1 / l-inf 128 x 4000 x 3072, "
         "float32 l2 256 x 8000 x 512, 10 classes, random data; best of " + str(ROUNDS) + " rounds, each timing every "
         "variant and kernel once. Peak = the single-core GOP/s of the kernel's inner sequence run from registers "
         "(`nnmargin._core.peak_probe`, the best of one probe per round).", "",
         "| variant | kernel | GOP/s | % of peak | sequence (peak GOP/s) |", "| --- | --- | ---: | ---: | --- |"]
for r in rows:
    lines.append(f"| {r['isa']} | {r['kernel']} | {r['gops_1_thread']:.0f} | " + (f"{r['percent_of_peak']:.0f} %" if r['percent_of_peak'] else "") +
                 f" | {r['sequence'] or ''}" + (f" ({r['sequence_peak']:.0f})" if r['sequence_peak'] else "") + " |")
OUT.mkdir(parents=True, exist_ok=True)
(OUT / "cpu_variants_1thread.md").open("w").write("\n".join(lines) + "\n")
json.dump({"cpu": cpu_model(), "rows": rows}, (OUT / "cpu_variants_1thread.json").open("w"), indent=1)
