"""The machine's peak for each kernel: the per-core throughput of the kernel's inner instruction
sequence (``nnmargin._core.peak_probe``, run from registers), times the threads used. A kernel row
of the benchmark is then reported as % of that peak beside its ratio to faiss.

Units: GOP/s with 2 ops per (query, training point, dim), the unit of every GOP/s in the benchmark.
"""
from __future__ import annotations

import nnmargin._core as core

# The inner sequence each variant's kernel runs, per (dtype, metric); see csrc/cpu/peak_probe.cpp.
_U8_L2 = {"avx512_vnni": "u8_dpbusd", "avx2_vnni": "u8_dpbusd", "avx512": "u8_maddubs_nibble",
          "avx2": "u8_madd_words"}
# float32 l2 screens in GEMM form (one FMA per pair-dim); far from the origin it falls back to
# direct differences (fp32_diff_fma), so its % of peak is measured against the faster sequence.
_SEQUENCES = {("uint8", "l1"): "u8_sad", ("uint8", "linf"): "u8_absmax", ("float32", "l2"): "fp32_fma"}


def kernel_sequence(isa: str, dtype: str, metric: str) -> str | None:
    """The peak sequence of variant ``isa``'s kernel for (dtype, metric), or None (not probed)."""
    if isa == "generic":  # vectorised by the compiler: no hand-written sequence stands for it
        return None
    if (dtype, metric) == ("uint8", "l2"):
        return _U8_L2.get(isa)
    return _SEQUENCES.get((dtype, metric))


def measure_peaks(seconds: float = 0.1, tries: int = 3) -> dict:
    """{isa: {sequence: single-core GOP/s}} for every variant this machine runs: the best of
    ``tries`` probes (a probe that shares its core with another process reads low, never high)."""
    return {isa: {s: max(core.peak_probe(isa, s, seconds) for _ in range(tries)) for s in core.peak_sequences(isa)}
            for isa in core.cpu_isas()}


def percent_of_peak(gops: float, threads: int, isa: str, dtype: str, metric: str, peaks: dict) -> float | None:
    """A kernel's GOP/s as % of its sequence's single-core peak times ``threads``; None if not probed."""
    sequence = kernel_sequence(isa, dtype, metric)
    peak = peaks.get(isa, {}).get(sequence) if sequence else None
    return 100.0 * gops / (peak * threads) if peak else None
