"""nnmargin: exact, fast robustness certificates for nearest-neighbour classifiers.

>>> import nnmargin
>>> cert = nnmargin.certify(x_test, y_test, (x_train, y_train))   # doctest: +SKIP
>>> cert.robust_accuracy(0.5)                                       # doctest: +SKIP
"""
from __future__ import annotations

import importlib

from . import _core
from ._errors import InputError
from .adversarial import AttackResult, attack_1nn
from .certify import certify
from .knn_attack import attack_knn
from .result import CertifyResult
from .separation import SeparationResult, separation
from .trainset import TrainSet

__version__ = "0.1.0"
__all__ = ["certify", "attack_1nn", "attack_knn", "AttackResult", "CertifyResult", "separation", "SeparationResult", "TrainSet",
           "InputError", "cpu_isas", "cuda_available", "datasets", "reference", "__version__"]
__all__ += ["lipschitz", "features", "lipschitz_bound"]  # nnmargin.lipschitz (needs torch), loaded on first use


def cpu_isas() -> list:
    """CPU kernel variants this machine can run, fastest first (e.g. ['avx512_vnni', 'avx512', 'avx2_vnni', 'avx2', 'generic'])."""
    return list(_core.cpu_isas())


def cuda_available() -> bool:
    """True when nnmargin was built with CUDA and a device of compute capability >= 8.0 is visible
    (``nnmargin info`` says why not)."""
    return _core.cuda_device_count() > 0


def __getattr__(name):  # submodules load on first use, keeping `import nnmargin` light
    if name in ("datasets", "cli", "reference", "lipschitz"):
        return importlib.import_module(f".{name}", __name__)
    if name in ("features", "lipschitz_bound"):
        return getattr(importlib.import_module(".lipschitz", __name__), name)
    raise AttributeError(f"module 'nnmargin' has no attribute {name!r}")
