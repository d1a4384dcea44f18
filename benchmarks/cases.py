"""The problems the CPU benchmark times: random uint8 (CIFAR-shaped) and float32 data, and MNIST.

Imported by bench_cpu.py after the thread-count environment variables are set (numpy loads here).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

import nnmargin


@dataclass
class Sizes:
    """Problem sizes of one benchmark run (full or --quick)."""

    cifar: tuple  # (N queries, M train, D)
    cifar_classes: tuple
    mnist_queries: int
    mnist_train: int
    lp: tuple  # l1 / linf problem (N, M, D)
    lp_faiss_queries: int  # faiss l1 / linf run on this subset, scaled up
    float32: tuple  # float32 l2 problems ((N, M, D), ...): network features of two widths
    isa: tuple  # the small problem every ISA variant runs


FULL = Sizes(cifar=(2000, 10000, 3072), cifar_classes=(2, 10), mnist_queries=10000, mnist_train=60000,
             lp=(2000, 10000, 3072), lp_faiss_queries=200,
             float32=((2000, 20000, 512), (10000, 100000, 64)), isa=(512, 4000, 3072))
QUICK = Sizes(cifar=(200, 1000, 3072), cifar_classes=(2, 10), mnist_queries=500, mnist_train=5000,
              lp=(200, 1000, 3072), lp_faiss_queries=20,
              float32=((200, 2000, 512), (500, 5000, 64)), isa=(32, 256, 3072))


@dataclass
class BenchCase:
    """One benchmark problem: training set, queries, metric."""

    name: str
    x_train: np.ndarray  # (M, D) uint8 or float32
    y_train: np.ndarray
    x_query: np.ndarray  # (N, D)
    y_query: np.ndarray
    metric: str

    @property
    def n(self) -> int:
        return self.x_query.shape[0]

    @property
    def m(self) -> int:
        return self.x_train.shape[0]

    @property
    def d(self) -> int:
        return self.x_train.shape[1]

    @property
    def n_classes(self) -> int:
        return int(np.unique(self.y_train).size)

    def ops(self, n_queries=None) -> float:
        """Nominal operation count 2*N*M*D (one multiply-add, or subtract+abs/max, = 2 ops)."""
        return 2.0 * (self.n if n_queries is None else n_queries) * self.m * self.d

    def subset(self, n_queries: int, name: str | None = None) -> "BenchCase":
        """The first ``n_queries`` queries against the same training set."""
        return replace(self, name=self.name if name is None else name, x_query=self.x_query[:n_queries],
                       y_query=self.y_query[:n_queries])

    def with_metric(self, metric: str, name: str) -> "BenchCase":
        """The same data under another metric (and name)."""
        return replace(self, name=name, metric=metric)

    def user_units(self, values, squared: bool) -> np.ndarray:
        """Distances as nnmargin reports them: uint8 data on the [0, 1] scale (integer distance / 255).

        ``squared``: ``values`` are squared l2 distances (their square root is taken first)."""
        values = np.asarray(values, dtype=np.float64)
        if squared:
            values = np.sqrt(np.maximum(values, 0.0))
        return values / 255.0 if self.x_train.dtype == np.uint8 else values

    def describe(self) -> dict:
        return {"name": self.name, "metric": self.metric, "dtype": str(self.x_train.dtype), "N": self.n,
                "M": self.m, "D": self.d, "classes": self.n_classes, "nominal_ops": self.ops()}


def random_uint8_case(name, n, m, d, n_classes, metric, rng) -> BenchCase:
    """Uniform random uint8 points with uniform random labels (CIFAR-shaped when d=3072)."""
    return BenchCase(name, rng.integers(0, 256, (m, d), dtype=np.uint8), rng.integers(0, n_classes, m),
                     rng.integers(0, 256, (n, d), dtype=np.uint8), rng.integers(0, n_classes, n), metric)


def random_float32_case(name, n, m, d, n_classes, rng) -> BenchCase:
    """Standard-normal float32 features (embedding-like) with random labels, l2."""
    return BenchCase(name, rng.standard_normal((m, d), dtype=np.float32), rng.integers(0, n_classes, m),
                     rng.standard_normal((n, d), dtype=np.float32), rng.integers(0, n_classes, n), "l2")


def mnist_case(data_dir: str, n_queries: int, n_train: int) -> BenchCase:
    """MNIST test queries against the training set, uint8, flattened to 784 dims, l2."""
    x_train, y_train = nnmargin.datasets.load_mnist(split="train", data_dir=data_dir)
    x_test, y_test = nnmargin.datasets.load_mnist(split="test", data_dir=data_dir)
    return BenchCase(f"MNIST {n_queries}x{n_train} uint8 l2", x_train[:n_train].reshape(n_train, -1),
                     y_train[:n_train], x_test[:n_queries].reshape(n_queries, -1), y_test[:n_queries], "l2")
