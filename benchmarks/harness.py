"""Timing and reporting of the CPU benchmark: interleaved timing rounds and medians, snapshots of
the CPU other processes use, machine info (CPU model, ISA variants, git revision, library
versions), and the output files (JSON with everything, markdown with the table).

Imported by bench_cpu.py after the thread-count environment variables are set.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import faiss
import numpy as np

import nnmargin

# ---------------------------------------------------------------------------------------- timing


@dataclass
class Method:
    """A method to time: ``run()`` returns (result, {phase name: seconds})."""

    name: str
    run: Callable
    repeats: int


# Pause before every timed run. The thread pools of the libraries in this one process busy-wait
# after a call (OpenBLAS's for up to 2^28 cycles, ~0.08 s here) and took cores from whichever method
# ran next: nnmargin on 2 threads right after a numpy float32 matmul ran 6-13 % slower (Zen 4, uint8
# l2 2000 x 10000 x 3072: 244-265 GOP/s instead of 278-281; 262-278 after a 0.25 s pause).
SETTLE_SECONDS = 0.3


def interleaved(methods, warmup: int = 1) -> dict:
    """Time ``methods`` in alternation: one untimed warm-up each, then rounds in which every method
    that still has repeats left runs once, each run after a pause of SETTLE_SECONDS. On a shared
    machine, load that comes and goes then affects all methods alike instead of whichever happened
    to run at that moment.

    Returns {name: {"phases": {phase: [seconds per repeat]}, "result": the last result}}."""
    out = {}
    for method in methods:
        result = None
        for _ in range(warmup):
            result, _ = method.run()
        out[method.name] = {"phases": {}, "result": result}
    for round_index in range(max(method.repeats for method in methods)):
        for method in methods:
            if round_index < method.repeats:
                time.sleep(SETTLE_SECONDS)
                result, phases = method.run()
                out[method.name]["result"] = result
                for phase, seconds in phases.items():
                    out[method.name]["phases"].setdefault(phase, []).append(seconds)
    return out


def median(values) -> float:
    return float(statistics.median(values))


def phase_sum(timing: dict, phases) -> list:
    """Per-repeat sum of the given phases, e.g. build + search."""
    return [sum(values) for values in zip(*(timing["phases"][p] for p in phases))]


# ------------------------------------------------------------------------------------- CPU load


def cpu_snapshot() -> dict:
    """Machine-wide busy and steal CPU seconds (/proc/stat), this process's CPU seconds, wall time."""
    tick = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat", encoding="utf-8") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    own = os.times()
    return {"busy": (user + nice + system + irq + softirq) / tick, "steal": steal / tick,
            "own": own.user + own.system, "wall": time.perf_counter()}


def other_load(start: dict, end: dict) -> dict:
    """CPU used by other processes between two snapshots, in cores (0 = the machine was ours).

    The load average cannot tell this: it counts this benchmark's own threads too."""
    wall = max(end["wall"] - start["wall"], 1e-9)
    others = (end["busy"] - start["busy"]) - (end["own"] - start["own"])
    return {"other_processes_cores": round(max(others, 0.0) / wall, 3),
            "steal_cores": round((end["steal"] - start["steal"]) / wall, 3), "seconds": round(wall, 1)}


# ---------------------------------------------------------------------------------- machine info


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        info = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        fields = ("Model name", "CPU family", "Model", "Stepping", "Hypervisor vendor", "L2 cache", "L3 cache")
        return "; ".join(f"{k.strip()}: {info[k].strip()}" for k in fields if k in info)
    except (OSError, subprocess.CalledProcessError):
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "unknown")


def git_revision() -> str:
    try:
        root = Path(__file__).resolve().parent.parent
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True).stdout
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "csrc", "python"], cwd=root,
                               capture_output=True, text=True).stdout
        return rev.strip() + (" (csrc/ or python/ modified)" if dirty.strip() else "")
    except OSError:
        return "unknown"


def core_module_info() -> str:
    """Path and build time of the loaded nnmargin extension (the C++ may be rebuilt between runs)."""
    path = Path(nnmargin._core.__file__)
    built = datetime.datetime.fromtimestamp(path.stat().st_mtime, datetime.timezone.utc)
    return f"{path.name}, built {built.isoformat(timespec='seconds')}"


def blas_name() -> str:
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # show_config's layout varies across numpy versions
        return "unknown"


def machine_info(threads: int, isa: str = "auto") -> dict:
    return {
        "isa_pinned": isa,
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(shlex.quote(a) for a in [sys.executable.rsplit("/", 1)[-1]] + sys.argv),
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "threads_used": threads,
        "load_average_at_start": list(os.getloadavg()),
        "nnmargin_version": nnmargin.__version__,
        "nnmargin_git": git_revision(),
        "nnmargin_core_module": core_module_info(),
        "nnmargin_cpu_isas": nnmargin.cpu_isas(),
        "faiss_version": faiss.__version__,
        "faiss_compile_options": faiss.get_compile_options().strip(),
        "numpy_version": np.__version__,
        "numpy_blas": blas_name(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


# --------------------------------------------------------------------------------------- outputs


@dataclass
class Row:
    """One line of the results table."""

    problem: str
    method: str
    seconds: float
    gops: float
    speedup: float | None  # baseline seconds / nnmargin seconds, like for like; None for nnmargin rows
    check: str
    detail: dict = field(default_factory=dict)


def format_seconds(s: float) -> str:
    return f"{s:.3f}" if s >= 0.1 else f"{s:.4f}"


def markdown_table(rows) -> str:
    lines = ["| problem | method | seconds | GOP/s | % of peak (ISA) | nnmargin speedup | check |",
             "|---|---|---:|---:|---:|---:|---|"]
    for r in rows:
        speed = f"**{r.speedup:.1f}x**" if r.speedup else ""
        if r.speedup and "paired_speedup_median" in r.detail:
            speed += f" ({r.detail['paired_speedup_median']:.1f}x)"
        share = r.detail.get("percent_of_peak")
        peak = f"{share:.0f} % ({r.detail['isa']})" if share else (r.detail.get("isa") or "")
        lines.append(f"| {r.problem} | {r.method} | {format_seconds(r.seconds)} | {r.gops:.1f} | {peak} | {speed} | "
                     f"{r.check} |")
    return "\n".join(lines)


def headline(rows) -> list[dict]:
    """Like-for-like nnmargin speedups over faiss: the numbers the README quotes."""
    return [{"problem": r.problem, "comparison": r.method, "speedup": round(r.speedup, 2)}
            for r in rows if r.method.startswith("faiss") and r.speedup]


def all_checks_ok(rows) -> bool:
    return all("MISMATCH" not in r.check and "DIFFERS" not in r.check for r in rows)


def fmt_load(values) -> str:
    return "/".join(f"{v:.2f}" for v in values)


def fmt_contention(c: dict) -> str:
    return f"{c['other_processes_cores']:.2f} cores (hypervisor steal {c['steal_cores']:.2f})"


def worst_section(problems) -> str:
    worst = max(problems, key=lambda p: p["contention"]["other_processes_cores"])
    return f"{fmt_contention(worst['contention'])} ({worst['name']})"


def write_outputs(out_dir: Path, info: dict, rows, problems, quick: bool) -> None:
    """cpu_benchmark[_quick].json (everything) and .md (header + table) in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = "cpu_benchmark_quick" if quick else "cpu_benchmark"
    all_ok = all_checks_ok(rows)
    payload = {"machine": info, "all_checks_ok": all_ok, "problems": problems,
               "ops_convention": "GOP/s = 2*N*M*D / seconds / 1e9 for every method and metric "
                                 "(one multiply-add, or one subtract + abs/max, counted as 2 ops)",
               "headline": headline(rows), "rows": [r.__dict__ for r in rows]}
    (out_dir / f"{stem}.json").write_text(json.dumps(payload, indent=1, default=float) + "\n", encoding="utf-8")
    md = [f"# nnmargin CPU benchmark{' (quick smoke run)' if quick else ''}", "",
          f"- command: `{info['command']}`", f"- date (UTC): {info['date_utc']}",
          f"- CPU: {info['cpu']}; {info['logical_cpus']} logical CPUs; **{info['threads_used']} threads for every method**",
          f"- load average (1/5/15 min) at start {fmt_load(info['load_average_at_start'])}, "
          f"at end {fmt_load(info['load_average_at_end'])} (the load average counts this benchmark's own threads); "
          f"CPU used by other processes during the run: {fmt_contention(info['contention_during_run'])}, "
          f"worst section {worst_section(problems)}",
          f"- nnmargin {info['nnmargin_version']} (git {info['nnmargin_git']}; {info['nnmargin_core_module']}), "
          f"ISAs {info['nnmargin_cpu_isas']}"
          + (f" (**every nnmargin row pinned to isa={info['isa_pinned']}**, faiss and OpenBLAS pinned to the same "
             f"instruction set)" if info.get("isa_pinned", "auto") != "auto" else "") + "; "
          f"faiss {info['faiss_version']} ({info['faiss_compile_options']}); numpy {info['numpy_version']} "
          f"({info['numpy_blas']}); Python {info['python']}",
          f"- total benchmark wall time: {info['total_seconds']:.0f} s; all correctness checks: "
          f"**{'passed' if all_ok else 'FAILED'}**", "",
          "Seconds are medians after one warm-up run. GOP/s = 2·N·M·D / seconds for every method and metric. "
          "\"nnmargin speedup\" = baseline seconds / nnmargin seconds, like for like (search vs search, "
          "end-to-end vs end-to-end, same query set); in brackets the median of the per-round ratios (methods "
          "are timed in alternating rounds, so each round's ratio sees one machine load; every timed run starts "
          f"after a {SETTLE_SECONDS} s pause, so no library's idle threads still spin from the previous one).", "",
          "\"% of peak\" = GOP/s / (single-core GOP/s of the kernel's inner instruction sequence, run from "
          "registers by `nnmargin._core.peak_probe`, the larger of a probe before and one after the timings, "
          "x threads); the per-core peaks are in the JSON (`machine.peaks`). A section timed in a slow spell of "
          "a virtual machine shows a lower % than one timed at full clock.", "",
          markdown_table(rows), ""]
    (out_dir / f"{stem}.md").write_text("\n".join(md), encoding="utf-8")
