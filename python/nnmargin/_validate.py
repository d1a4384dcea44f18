"""Input checking and conversion shared by every public entry point.

Every problem a user can cause ends here as a ``TypeError`` or ``ValueError`` whose message names the
argument and what is wrong, before any compiled code runs.
"""
from __future__ import annotations

import numpy as np

# Largest integer magnitude float64 holds exactly: integer inputs beyond it cannot be searched exactly.
_MAX_EXACT_INT = 2**53
# Float magnitudes that keep squared differences clear of float overflow and underflow (see
# scan_driver.cpp: the screening bound assumes no overflow and only tiny absolute underflow).
_F32_SAFE = (1e-15, 1e15)
_F64_SAFE = (1e-140, 1e140)


def _is_torch_tensor(x) -> bool:
    return type(x).__module__.split(".")[0] == "torch" and hasattr(x, "detach")


def to_numpy(x, name: str) -> np.ndarray:
    """A numpy view of ``x`` (numpy array, torch tensor, cupy array or array-like), copying only if
    needed. GPU arrays are copied to the host: the search reads host memory in this version."""
    if isinstance(x, np.ndarray):
        return x
    if _is_torch_tensor(x):
        if x.device.type != "cpu":
            return x.detach().cpu().numpy()
        return x.detach().numpy()  # shares memory with the tensor
    if type(x).__module__.split(".")[0] == "cupy" and hasattr(x, "get"):
        return x.get()
    try:
        return np.asarray(x)
    except Exception as exc:  # ragged lists and other things numpy cannot hold
        raise TypeError(f"{name} cannot be converted to an array: {exc}") from None


def as_points(x, name: str) -> np.ndarray:
    """Points as a C-contiguous (N, D) array of uint8, float32 or float64.

    ``x`` is (N, ...) (images keep their shape until here and are flattened to D features). Other
    integer dtypes become float64 (exactly); float16 becomes float32 (exactly).
    """
    arr = to_numpy(x, name)
    if arr.dtype == np.bool_ or arr.dtype.kind not in "uif":
        raise TypeError(f"{name} must hold numbers (uint8, float32 or float64), got dtype {arr.dtype}")
    if arr.ndim < 2:
        raise ValueError(
            f"{name} must have shape (points, features...), got shape {arr.shape}; "
            f"for one feature per point use x[:, None]"
        )
    n = arr.shape[0]
    dim = int(np.prod(arr.shape[1:]))
    if dim == 0:
        raise ValueError(f"{name} has no features (shape {arr.shape})")
    if arr.dtype.kind in "ui" and arr.dtype != np.uint8:
        if arr.size and max(abs(int(arr.min())), abs(int(arr.max()))) > _MAX_EXACT_INT:
            raise ValueError(f"{name} holds integers beyond 2**53, which float64 cannot represent exactly")
        arr = arr.astype(np.float64)
    elif arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    elif arr.dtype.kind == "f" and arr.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} has dtype {arr.dtype}; use uint8, float32 or float64")
    arr = np.ascontiguousarray(arr.reshape(n, dim))
    if arr.dtype != np.uint8:
        finite = np.isfinite(arr)
        if not finite.all():
            bad = np.argwhere(~finite)[0]
            count = int((~finite).sum())
            raise ValueError(
                f"{name} contains {count} NaN or infinite value(s), first at point {bad[0]}, feature {bad[1]}"
            )
    return arr


def safe_float_dtype(*arrays: np.ndarray) -> np.dtype:
    """The float dtype the kernels use for these float arrays: float32 unless magnitudes need float64."""
    dtype = np.result_type(*arrays)
    lo, hi = np.inf, 0.0
    for a in arrays:
        if a.size:
            magnitude = np.abs(a)
            lo = min(lo, float(magnitude.min(where=magnitude > 0, initial=np.inf)))
            hi = max(hi, float(magnitude.max()))
    if hi == 0.0:
        return dtype
    if dtype == np.float32 and (lo < _F32_SAFE[0] or hi > _F32_SAFE[1]):
        dtype = np.dtype(np.float64)
    if dtype == np.float64 and (lo < _F64_SAFE[0] or hi > _F64_SAFE[1]):
        raise ValueError(
            f"values with magnitudes between {lo:.3g} and {hi:.3g} are outside the range where distances "
            f"are computed exactly ({_F64_SAFE[0]:g} to {_F64_SAFE[1]:g}); rescale the data"
        )
    return dtype


def as_labels(y, n: int, name: str) -> np.ndarray:
    """Integer class labels as an int64 array of length ``n``."""
    arr = to_numpy(y, name)
    if arr.ndim != 1:
        arr = arr.reshape(-1) if arr.ndim == 2 and 1 in arr.shape else arr
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one label per point), got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} labels but there are {n} points")
    if arr.dtype == np.bool_:
        return arr.astype(np.int64)
    if arr.dtype.kind in "ui":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or not (arr == np.round(arr)).all():
            raise ValueError(f"{name} must be integer class labels; found non-integer values")
        return arr.astype(np.int64)
    raise TypeError(f"{name} must be integer class labels, got dtype {arr.dtype}")


METRICS = ("l2", "l1", "linf")
_METRIC_ALIASES = {"l2": "l2", "euclidean": "l2", "l1": "l1", "manhattan": "l1", "linf": "linf", "inf": "linf"}


def as_metric(metric) -> str:
    key = str(metric).lower().replace("_", "").replace("∞", "inf")
    if key not in _METRIC_ALIASES:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    return _METRIC_ALIASES[key]


def as_num_threads(num_threads) -> int:
    if num_threads is None:
        return 0
    if isinstance(num_threads, bool) or not isinstance(num_threads, (int, np.integer)) or num_threads < 1:
        raise ValueError(f"num_threads must be a positive integer or None, got {num_threads!r}")
    return int(num_threads)
