"""CUDA backend check and timing (run on a GPU machine through gpu_check.sh).

1. Correctness: CUDA results equal the CPU backend's, index for index, on random and adversarial
   inputs (duplicates, near-ties, an empty class) for every dtype and metric.
2. Speed: nnmargin CUDA (kernel time from CUDA events, and end to end) against torch brute force:
   fp32 matmul + masked min, and torch._int_mm (int8 x int8 -> int32) + masked min, on CIFAR-shaped
   uint8 data (N=10000, M=50000, D=3072), MNIST-shaped (N=10000, M=60000, D=784) and float32
   features (N=10000, M=50000, D=512). Writes gpu_benchmark.json and gpu_benchmark.md.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

import nnmargin
import nnmargin._core as core
from nnmargin._names import METRICS

INT8_PEAK_TOPS = {"H100": 1979.0, "H200": 1979.0}  # dense int8 tensor-core peak, SXM parts


def compare_backends(rng) -> list:
    """CUDA vs CPU on random and adversarial problems; returns a list of failure descriptions."""
    failures = []
    cases = []
    for dtype in (np.uint8, np.float32, np.float64):
        for d in (1, 7, 130, 784):
            t = rng.integers(0, 4, (3000, d)) if dtype == np.uint8 else rng.normal(size=(3000, d))
            x = rng.integers(0, 4, (257, d)) if dtype == np.uint8 else rng.normal(size=(257, d))
            cases.append((f"{np.dtype(dtype).name} d={d}", x.astype(dtype), t.astype(dtype)))
    distinct = rng.integers(0, 256, (4, 300)).astype(np.uint8)
    cases.append(("uint8 duplicates", distinct[rng.integers(0, 4, 200)], distinct[rng.integers(0, 4, 5000)]))
    for name, x, t in cases:
        ty, y = rng.integers(0, 3, len(t)), rng.integers(0, 4, len(x))  # class 3: no training point
        for metric in METRICS:
            ts = nnmargin.TrainSet(t, ty)
            a = nnmargin.certify(x, y, ts, metric=metric, device="cpu")
            b = nnmargin.certify(x, y, ts, metric=metric, device="cuda")
            for field in ("idx_same", "idx_other", "dist_same", "dist_other"):
                if not np.array_equal(getattr(a, field), getattr(b, field)):
                    bad = int((getattr(a, field) != getattr(b, field)).sum())
                    failures.append(f"{name} {metric} {field}: {bad} of {len(x)} differ")
    return failures


def masked_min_torch(dist: torch.Tensor, same: torch.Tensor):
    big = torch.finfo(dist.dtype).max if dist.is_floating_point() else torch.iinfo(dist.dtype).max
    return dist.masked_fill(~same, big).min(1), dist.masked_fill(same, big).min(1)


def torch_fp32(x, t, y, ty, chunk=2048):
    """fp32 brute force: |x|^2 + |t|^2 - 2 x.t by matmul, masked min per class group."""
    xf, tf = x.float(), t.float()
    tn = (tf * tf).sum(1)
    for i in range(0, len(xf), chunk):
        q = xf[i:i + chunk]
        d = (q * q).sum(1, keepdim=True) + tn[None] - 2 * q @ tf.T
        masked_min_torch(d, y[i:i + chunk, None] == ty[None])
    torch.cuda.synchronize()


def torch_int_mm(x8, t8, xn, tn, y, ty, chunk=2048):
    """int8 x int8 -> int32 with torch._int_mm on shifted data, then the same masked min."""
    for i in range(0, len(x8), chunk):
        q = x8[i:i + chunk]
        d = xn[i:i + chunk, None] + tn[None] - 2 * torch._int_mm(q, t8.T.contiguous())
        masked_min_torch(d, y[i:i + chunk, None] == ty[None])
    torch.cuda.synchronize()


def timed(fn, repeats=5):
    fn()
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def bench_case(name, n, m, d, dtype, rng):
    x = (rng.integers(0, 256, (n, d)) if dtype == np.uint8 else rng.normal(size=(n, d))).astype(dtype)
    t = (rng.integers(0, 256, (m, d)) if dtype == np.uint8 else rng.normal(size=(m, d))).astype(dtype)
    y, ty = rng.integers(0, 2, n), rng.integers(0, 2, m)
    ts = nnmargin.TrainSet(t, ty)
    ops = 2.0 * n * m * d
    row = {"case": name, "n": n, "m": m, "d": d, "dtype": np.dtype(dtype).name}
    end_to_end = timed(lambda: nnmargin.certify(x, y, ts, device="cuda"), repeats=3)
    row["nnmargin_s"] = end_to_end
    row["nnmargin_kernel_s"] = core.cuda_last_kernel_ms() / 1e3
    row["nnmargin_kernel_tops"] = ops / row["nnmargin_kernel_s"] / 1e12
    xg, tg = torch.from_numpy(x).cuda(), torch.from_numpy(t).cuda()
    yg, tyg = torch.from_numpy(y).cuda(), torch.from_numpy(ty).cuda()
    row["torch_fp32_s"] = timed(lambda: torch_fp32(xg, tg, yg, tyg), repeats=3)
    if dtype == np.uint8:
        x8, t8 = (xg.int() - 128).to(torch.int8), (tg.int() - 128).to(torch.int8)
        xn, tn = (x8.int() ** 2).sum(1), (t8.int() ** 2).sum(1)
        try:
            row["torch_int_mm_s"] = timed(lambda: torch_int_mm(x8, t8, xn, tn, yg, tyg), repeats=3)
        except RuntimeError as exc:  # shape constraints of _int_mm
            row["torch_int_mm_error"] = str(exc).splitlines()[0]
    row["speedup_vs_torch_fp32_kernel"] = row["torch_fp32_s"] / row["nnmargin_kernel_s"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    out = Path(args.out)
    rng = np.random.default_rng(0)
    device = torch.cuda.get_device_name(0)
    report = {"device": device, "torch": torch.__version__, "nnmargin": nnmargin.__version__,
              "host": platform.node(), "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    report["correctness_failures"] = compare_backends(rng)
    print("CUDA vs CPU:", "identical" if not report["correctness_failures"] else report["correctness_failures"])
    rows = [
        bench_case("CIFAR-shaped uint8", 10000, 50000, 3072, np.uint8, rng),
        bench_case("MNIST-shaped uint8", 10000, 60000, 784, np.uint8, rng),
        bench_case("float32 features", 10000, 50000, 512, np.float32, rng),
    ]
    peak = next((v for k, v in INT8_PEAK_TOPS.items() if k in device), None)
    for row in rows:
        if peak and row["dtype"] == "uint8":
            row["fraction_of_int8_peak"] = row["nnmargin_kernel_tops"] / peak
    report["rows"] = rows
    (out / "gpu_benchmark.json").write_text(json.dumps(report, indent=1) + "\n")
    lines = [f"# nnmargin CUDA on {device}", "", "| case | nnmargin kernel s | TOP/s | end-to-end s | torch fp32 s | torch _int_mm s | speedup vs fp32 |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['nnmargin_kernel_s']:.4f} | {r['nnmargin_kernel_tops']:.0f} | {r['nnmargin_s']:.3f} "
                     f"| {r['torch_fp32_s']:.4f} | {r.get('torch_int_mm_s', float('nan')):.4f} | {r['speedup_vs_torch_fp32_kernel']:.1f}x |")
    (out / "gpu_benchmark.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
