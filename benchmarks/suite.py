"""The sections of the CPU benchmark: which cases are timed with which methods, checked how, and
the table rows that come out (see README.md, "What is measured").

Imported by bench_cpu.py after the thread-count environment variables are set.
"""
from __future__ import annotations

import time

import numpy as np

import nnmargin
from baselines import FIELDS, Neighbours, faiss_method, nnmargin_method, nnmargin_prepare, numpy_method
from cases import BenchCase, Sizes, mnist_case, random_float32_case, random_uint8_case
from checks import baseline_rtol, check_against_baseline, check_exact, check_label, exact_reference
from harness import Method, Row, cpu_snapshot, interleaved, median, other_load, phase_sum
from peaks import measure_peaks, percent_of_peak


class Runner:
    """Runs the benchmarks, collecting table rows and raw measurements."""

    def __init__(self, args, sizes: Sizes):
        self.args = args
        self.sizes = sizes
        self.rows: list[Row] = []
        self.problems: list[dict] = []
        self._section_start = None
        self.peaks = measure_peaks()  # {isa: {sequence: single-core GOP/s}}, before any timing
        self.log("single-core peaks (GOP/s): " + "; ".join(
            f"{isa}: " + ", ".join(f"{k} {v:.0f}" for k, v in seq.items()) for isa, seq in self.peaks.items()))

    def peak_share(self, case: BenchCase, gops: float, isa: str | None = None) -> dict:
        """{"isa", "percent_of_peak"} of an nnmargin row (the default variant unless ``isa``)."""
        isa = isa or (self.args.isa if self.args.isa != "auto" else nnmargin.cpu_isas()[0])
        kernel = {"isa": isa, "dtype": str(case.x_train.dtype), "metric": case.metric}
        return {**kernel, "percent_of_peak": percent_of_peak(gops, self.args.threads, peaks=self.peaks, **kernel)}

    def remeasure_peaks(self) -> None:
        """Probe again after the timings and keep each sequence's larger reading: a probe in one of
        a virtual machine's slow spells reads low (once 0.9x the kernel it is the peak of), never
        high. Every row's % of peak is recomputed from the kept values."""
        again = measure_peaks()
        self.peaks = {isa: {k: max(v, again[isa][k]) for k, v in seq.items()} for isa, seq in self.peaks.items()}
        for row in self.rows:
            d = row.detail
            if d.get("percent_of_peak") is not None:
                d["percent_of_peak"] = percent_of_peak(row.gops, self.args.threads, d["isa"], d["dtype"], d["metric"],
                                                       self.peaks)

    def run_all(self) -> None:
        """Sections 1-5, in order, on data drawn from ``args.seed``."""
        rng = np.random.default_rng(self.args.seed)
        self.uint8_l2_random(rng)
        self.uint8_l2_mnist()
        self.uint8_l1_linf(rng)
        self.float32_l2(rng)
        self.isa_variants(rng)
        self.thread_scaling(rng)
        self.close_section()
        self.remeasure_peaks()

    def log(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        speed = ""
        if row.speedup:
            speed = f"  nnmargin x{row.speedup:.2f} (paired x{row.detail['paired_speedup_median']:.2f})"
        share = row.detail.get("percent_of_peak")
        peak = f" ({share:.0f} % of peak)" if share else ""
        self.log(f"  {row.method:<52} {row.seconds:9.4f} s {row.gops:8.1f} GOP/s{peak}{speed}  [{row.check}]")

    def register(self, case: BenchCase, section: str) -> None:
        """Start a case's section (and close the previous one's CPU-contention measurement)."""
        self.close_section()
        self.problems.append({"section": section, **case.describe()})
        self._section_start = cpu_snapshot()
        self.log(f"{section}: {case.name} (N={case.n}, M={case.m}, D={case.d}, "
                 f"{case.n_classes} classes, {case.ops() / 1e9:.1f} GOP nominal)")

    def close_section(self) -> None:
        if self._section_start is not None:
            self.problems[-1]["contention"] = other_load(self._section_start, cpu_snapshot())
            self._section_start = None

    # --- timing, checks and rows of one case ---

    def compare(self, case: BenchCase, baseline_queries: int | None = None, with_numpy: bool = True) -> None:
        """Time nnmargin, faiss and (l2) numpy on ``case``, interleaved; check; add table rows.

        With ``baseline_queries`` the baselines run on the first that many queries only: they are
        compared like for like with nnmargin on the same subset, and scaled up to all N."""
        args = self.args
        sub = case
        if baseline_queries is not None and baseline_queries < case.n:
            sub = case.subset(baseline_queries, name=f"{case.name} [first {baseline_queries} queries]")
        methods = [Method("nnmargin", nnmargin_method(case, args.threads, args.isa), args.repeats)]
        if sub is not case:
            methods.append(Method("nnmargin_subset", nnmargin_method(sub, args.threads, args.isa), args.repeats))
        methods.append(Method("faiss", faiss_method(sub), args.slow_repeats))
        if with_numpy:
            methods.append(Method("numpy", numpy_method(sub), args.slow_repeats))
        timings = interleaved(methods)

        ref = exact_reference(case, args.check_queries)
        ours = self.add_nnmargin_rows(case, timings["nnmargin"], ref)
        if sub is case:
            targets = [(case, timings["nnmargin"], "")]
        else:  # like for like on the subset, then scaled up to all N
            self.add_nnmargin_rows(sub, timings["nnmargin_subset"], ref.head(sub.n))
            targets = [(sub, timings["nnmargin_subset"], ""),
                       (case, timings["nnmargin"], f" vs nnmargin on all {case.n}")]
        for name in ("faiss", "numpy"):
            if name in timings:
                check = check_against_baseline(sub, ours, timings[name]["result"], baseline_rtol(case.metric))
                for target, our_timing, versus in targets:
                    self.add_baseline_rows(name, target, sub.n, timings[name], our_timing, check, versus)

    def add_nnmargin_rows(self, case: BenchCase, timing: dict, ref: Neighbours) -> Neighbours:
        """Rows "search" and "end-to-end" for nnmargin, checked against the exact reference ``ref``."""
        result = timing["result"]
        check = check_exact(result, ref)
        search = median(timing["phases"]["search"])
        e2e = median(phase_sum(timing, ("prepare", "search")))
        gops = case.ops() / search / 1e9
        detail = {"seconds_all": timing["phases"], "exact_check": check, **self.peak_share(case, gops)}
        self.add(Row(case.name, "nnmargin search (prepared TrainSet)", search, gops, None, check_label(check), detail))
        self.add(Row(case.name, "nnmargin end-to-end (TrainSet + prepare + search)", e2e,
                     case.ops() / e2e / 1e9, None, check_label(check), {}))
        return result

    def add_baseline_rows(self, name: str, target: BenchCase, timed_queries: int, timing: dict, ours: dict,
                          check: dict, versus: str) -> None:
        """Rows for a baseline measured on ``timed_queries`` queries, its search time scaled to
        ``target``'s query count, with speedups of nnmargin (timing ``ours``) like for like."""
        scale = target.n / timed_queries
        extra = f"; extrapolated from {timed_queries} queries" if scale != 1.0 else ""
        if name == "faiss":
            build = timing["phases"]["build"]
            search = [s * scale for s in timing["phases"]["search"]]
            total = [b + s for b, s in zip(build, search)]
            variants = ((f"faiss search + combine (indexes built{extra}){versus}", search, ours["phases"]["search"]),
                        (f"faiss end-to-end (float32 conv. + build + search{extra}){versus}", total,
                         phase_sum(ours, ("prepare", "search"))))
        else:
            total = [s * scale for s in timing["phases"]["total"]]
            variants = ((f"numpy float32 matmul trick (end-to-end{extra}){versus}", total,
                         phase_sum(ours, ("prepare", "search"))),)
        for method, theirs, mine in variants:
            seconds = median(theirs)
            paired = [t / m for t, m in zip(theirs, mine)]  # same round: same machine load
            detail = {"seconds_all": theirs, "scale": scale, "timed_queries": timed_queries,
                      "paired_speedup_median": median(paired), "check": check}
            self.add(Row(target.name, method, seconds, target.ops() / seconds / 1e9, seconds / median(mine),
                         check_label(check), detail))

    # --- the benchmark sections ---

    def uint8_l2_random(self, rng) -> None:
        n, m, d = self.sizes.cifar
        for n_classes in self.sizes.cifar_classes:
            case = random_uint8_case(f"CIFAR-shaped random uint8 l2, {n_classes} classes", n, m, d,
                                     n_classes, "l2", rng)
            self.register(case, "1. uint8 l2, CIFAR-shaped")
            self.compare(case)

    def uint8_l2_mnist(self) -> None:
        s = self.sizes
        case = mnist_case(self.args.data_dir, s.mnist_queries, s.mnist_train)
        self.register(case, "2. MNIST uint8 l2")
        self.compare(case)

    def uint8_l1_linf(self, rng) -> None:
        n, m, d = self.sizes.lp
        base = random_uint8_case("", n, m, d, 10, "linf", rng)
        for metric in ("linf", "l1"):
            case = base.with_metric(metric, f"CIFAR-shaped random uint8 {metric}, 10 classes")
            self.register(case, f"3. uint8 {metric}")
            self.compare(case, baseline_queries=self.sizes.lp_faiss_queries, with_numpy=False)
        # real images, where early abandoning pays (l-inf is left out: faiss's METRIC_Linf would
        # take minutes on the faiss subset)
        s = self.sizes
        mnist = mnist_case(self.args.data_dir, s.mnist_queries, s.mnist_train).with_metric("l1", "MNIST uint8 l1")
        self.register(mnist, "3. uint8 l1")
        self.compare(mnist, baseline_queries=self.sizes.lp_faiss_queries, with_numpy=False)

    def float32_l2(self, rng) -> None:
        for n, m, d in self.sizes.float32:
            case = random_float32_case(f"float32 features l2 (D={d}), 10 classes", n, m, d, 10, rng)
            self.register(case, "4. float32 l2")
            self.compare(case)

    def isa_variants(self, rng) -> None:
        """Every CPU kernel variant on one case per (dtype, metric), interleaved; results must be
        identical across variants and exact."""
        n, m, d = self.sizes.isa
        uint8_base = random_uint8_case("", n, m, d, 10, "l2", rng)
        float_base = random_float32_case("", n, m, 512, 10, rng)
        isas = nnmargin.cpu_isas()
        for base, metric in ((uint8_base, "l2"), (uint8_base, "l1"), (uint8_base, "linf"), (float_base, "l2")):
            case = base.with_metric(metric, f"ISA variants: {base.x_train.dtype} {metric} (N={n}, M={m}, D={base.d})")
            self.register(case, "5. ISA dispatch")
            trainset = nnmargin_prepare(case, self.args.threads)
            timings = interleaved([Method(isa, nnmargin_method(case, self.args.threads, isa, trainset),
                                          self.args.slow_repeats) for isa in isas])
            ref = exact_reference(case, self.args.check_queries)
            fastest = timings[isas[0]]
            for isa in isas:
                got = timings[isa]["result"]
                check = check_exact(got, ref)
                identical = all(np.array_equal(getattr(got, f), getattr(fastest["result"], f)) for f in FIELDS)
                label = check_label(check) + (f", identical to {isas[0]}" if identical else f", DIFFERS from {isas[0]}")
                t = median(timings[isa]["phases"]["search"])
                self.add(Row(case.name, f"nnmargin isa={isa}", t, case.ops() / t / 1e9, None, label,
                             {"seconds_all": timings[isa]["phases"]["search"], "exact_check": check,
                              **self.peak_share(case, case.ops() / t / 1e9, isa),
                              f"slowdown_vs_{isas[0]}": t / median(fastest["phases"]["search"]),
                              "identical": identical}))

    def thread_scaling(self, rng) -> None:
        """The default (or --isa) variant at 1 thread and at --threads, interleaved, on the ISA-section sizes
        (uint8 l2, uint8 l-inf, the bisector pass): how the search scales with cores."""
        n, m, d = self.sizes.isa
        base = random_uint8_case("", n, m, d, 10, "l2", rng)
        threads = sorted({1, self.args.threads})
        for metric, bound in (("l2", "margin"), ("linf", "margin"), ("l2", "bisector")):
            case = base.with_metric(metric, f"thread scaling: uint8 {metric} {bound} (N={n}, M={m}, D={d})")
            self.register(case, "6. threads")
            trainset = nnmargin_prepare(case, self.args.threads)
            trainset.prepared("l1")  # the bisector's dual-norm layout, outside the timing

            def method(k):
                def run():
                    start = time.perf_counter()
                    nnmargin.certify(case.x_query, case.y_query, trainset, metric=metric, bound=bound, num_threads=k,
                                     isa=self.args.isa)
                    return None, {"search": time.perf_counter() - start}
                return run

            timings = interleaved([Method(f"{k}", method(k), self.args.slow_repeats) for k in threads])
            one = median(timings["1"]["phases"]["search"])
            for k in threads:
                t = median(timings[f"{k}"]["phases"]["search"])
                self.add(Row(case.name, f"nnmargin {bound}, {k} thread(s)", t, case.ops() / t / 1e9, None,
                             f"scaling x{one / t:.2f} of 1 thread", {"seconds_all": timings[f"{k}"]["phases"]["search"],
                                                                   "threads": k, "scaling_vs_1_thread": one / t}))
