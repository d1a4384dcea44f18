"""Input checking and conversion shared by every public entry point.

Every problem a user can cause ends here as an :class:`~nnmargin.InputError` (``InputTypeError`` for
wrong types) whose message names the argument and what is wrong, before any compiled code runs.
"""
from __future__ import annotations

import numpy as np

from ._errors import InputError, InputTypeError

# Largest integer magnitude float64 holds exactly: integer inputs beyond it cannot be searched exactly.
_MAX_EXACT_INT = 2**53
# Float magnitudes that keep squared differences clear of float overflow and underflow (see
# scan_driver.cpp: the screening bound assumes no overflow and only tiny absolute underflow).
_F32_SAFE = (1e-15, 1e15)
_F64_SAFE = (1e-140, 1e140)
# Elements per step of the magnitude scan (256 KB of float32): its temporaries stay in L2.
_RANGE_CHUNK = 1 << 16


def is_torch_tensor(x) -> bool:
    return type(x).__module__.split(".")[0] == "torch" and hasattr(x, "detach")


def to_numpy(x, name: str) -> np.ndarray:
    """A numpy view of ``x`` (numpy array, torch tensor, cupy array or array-like), copying only if
    needed. GPU arrays are copied to the host: the search reads host memory in this version."""
    if isinstance(x, np.ndarray):
        return x
    if is_torch_tensor(x):
        if x.device.type != "cpu":
            return x.detach().cpu().numpy()
        return x.detach().numpy()  # shares memory with the tensor
    if type(x).__module__.split(".")[0] == "cupy" and hasattr(x, "get"):
        return x.get()
    try:
        return np.asarray(x)
    except Exception as exc:  # ragged lists and other things numpy cannot hold
        raise InputTypeError(f"{name} cannot be converted to an array: {exc}") from None


def as_points(x, name: str) -> np.ndarray:
    """Points as a C-contiguous (N, D) array of uint8, float32 or float64.

    ``x`` is (N, ...) (images keep their shape until here and are flattened to D features). Other
    integer dtypes become float64 (exactly); float16 becomes float32 (exactly).
    """
    arr = to_numpy(x, name)
    if arr.dtype == np.bool_ or arr.dtype.kind not in "uif":
        raise InputTypeError(f"{name} must hold numbers (uint8, float32 or float64), got dtype {arr.dtype}")
    if arr.ndim < 2:
        raise InputError(
            f"{name} must have shape (points, features...), got shape {arr.shape}; "
            f"for one feature per point use x[:, None]"
        )
    n = arr.shape[0]
    dim = int(np.prod(arr.shape[1:]))
    if dim == 0:
        raise InputError(f"{name} has no features (shape {arr.shape})")
    if arr.dtype.kind in "ui" and arr.dtype != np.uint8:
        if arr.size and max(abs(int(arr.min())), abs(int(arr.max()))) > _MAX_EXACT_INT:
            raise InputError(f"{name} holds integers beyond 2**53, which float64 cannot represent exactly")
        arr = arr.astype(np.float64)
    elif arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    elif arr.dtype.kind == "f" and arr.dtype not in (np.float32, np.float64):
        raise InputTypeError(f"{name} has dtype {arr.dtype}; use uint8, float32 or float64")
    if not arr.dtype.isnative:  # e.g. big-endian data read from a file: the kernels read native order
        arr = arr.astype(arr.dtype.newbyteorder("="))
    arr = np.ascontiguousarray(arr.reshape(n, dim))
    # min / max propagate NaN and show +-inf: two passes without the (N, D) bool array of isfinite
    if arr.dtype != np.uint8 and arr.size and not (np.isfinite(arr.min()) and np.isfinite(arr.max())):
        finite = np.isfinite(arr)
        if not finite.all():
            bad = np.argwhere(~finite)[0]
            count = int((~finite).sum())
            raise InputError(
                f"{name} contains {count} NaN or infinite value(s), first at point {bad[0]}, feature {bad[1]}"
            )
    return arr


def magnitude_range(a: np.ndarray) -> tuple:
    """(smallest non-zero |value|, largest |value|) of a float array; (inf, 0) when all zero or empty."""
    if not a.size:
        return np.inf, 0.0
    flat, lo, hi = a.reshape(-1), np.inf, 0.0
    for start in range(0, flat.size, _RANGE_CHUNK):  # chunks: the temporaries stay in cache
        magnitude = np.abs(flat[start:start + _RANGE_CHUNK])
        lo = float(np.minimum(lo, magnitude.min(where=magnitude > 0, initial=np.inf)))
        hi = float(np.maximum(hi, magnitude.max()))  # NaN stays NaN, as over the whole array
    return lo, hi


def float_dtype_for(dtype, lo: float, hi: float) -> np.dtype:
    """The float dtype the kernels use for float data of ``dtype`` whose non-zero magnitudes lie in
    [lo, hi]: ``dtype`` unless float32 cannot hold the squared differences safely (then float64)."""
    dtype = np.dtype(dtype)
    if hi == 0.0:
        return dtype
    if dtype == np.float32 and (lo < _F32_SAFE[0] or hi > _F32_SAFE[1]):
        dtype = np.dtype(np.float64)
    if dtype == np.float64 and (lo < _F64_SAFE[0] or hi > _F64_SAFE[1]):
        raise InputError(
            f"values with magnitudes between {lo:.3g} and {hi:.3g} are outside the range where distances "
            f"are computed exactly ({_F64_SAFE[0]:g} to {_F64_SAFE[1]:g}); rescale the data"
        )
    return dtype


def safe_float_dtype(*arrays: np.ndarray) -> np.dtype:
    """The float dtype the kernels use for these float arrays: float32 unless magnitudes need float64."""
    ranges = [magnitude_range(a) for a in arrays]
    return float_dtype_for(np.result_type(*arrays), min(r[0] for r in ranges), max(r[1] for r in ranges))


def as_labels(y, n: int, name: str) -> np.ndarray:
    """Integer class labels as an int64 array of length ``n``."""
    arr = to_numpy(y, name)
    if arr.ndim != 1:
        arr = arr.reshape(-1) if arr.ndim == 2 and 1 in arr.shape else arr
    if arr.ndim != 1:
        raise InputError(f"{name} must be 1-D (one label per point), got shape {arr.shape}")
    if arr.shape[0] != n:
        raise InputError(f"{name} has {arr.shape[0]} labels but there are {n} points")
    if arr.dtype == np.bool_:
        return arr.astype(np.int64)
    if arr.dtype.kind in "ui":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or not (arr == np.round(arr)).all():
            raise InputError(f"{name} must be integer class labels; found non-integer values")
        return arr.astype(np.int64)
    raise InputTypeError(f"{name} must be integer class labels, got dtype {arr.dtype}")


def as_num_threads(num_threads) -> int:
    if num_threads is None:
        return 0
    if isinstance(num_threads, bool) or not isinstance(num_threads, (int, np.integer)) or num_threads < 1:
        raise InputError(f"num_threads must be a positive integer or None, got {num_threads!r}")
    return int(num_threads)


def as_k(k, maximum: int) -> int:
    """The number of voting neighbours of the k-NN classifier, 1 to ``maximum``."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= maximum:
        raise InputError(f"k must be an integer from 1 to {maximum}, got {k!r}")
    return int(k)


def as_pivots(pivots, maximum: int) -> int:
    """The number of same-class pivots of the bisector bound, 1 to ``maximum``."""
    if isinstance(pivots, bool) or not isinstance(pivots, (int, np.integer)) or not 1 <= pivots <= maximum:
        raise InputError(f"pivots must be an integer from 1 to {maximum}, got {pivots!r}")
    return int(pivots)


def as_scale(scale, is_uint8: bool, default: float):
    """Units of one uint8 step (``default`` when None); None for float data, which is taken as given."""
    if not is_uint8:
        if scale is not None:
            raise InputError("scale applies to uint8 input only; float input is taken as given")
        return None
    scale = default if scale is None else scale
    try:
        scale = float(scale)
    except (TypeError, ValueError):
        raise InputError(f"scale must be a positive finite number, got {scale!r}") from None
    if not (np.isfinite(scale) and scale > 0):
        raise InputError(f"scale must be a positive finite number, got {scale!r}")
    return scale


def as_box(box, is_uint8: bool, unit: float):
    """The box perturbed points must stay in, as (lo, hi) in the data's units, or None.

    ``box=True`` is the valid image domain [0, 255 * unit] of uint8 data."""
    if box is None or box is False:
        return None
    if box is True:
        if not is_uint8:
            raise InputError("box=True means [0, 255 * scale] for uint8 data; give (lo, hi) for float data")
        return (0.0, 255.0 * unit)
    try:
        lo, hi = (float(v) for v in box)
    except (TypeError, ValueError):
        raise InputError(f"box must be True or a pair (lo, hi), got {box!r}") from None
    if not lo < hi:
        raise InputError(f"box needs lo < hi, got {box!r}")
    return (lo, hi)


def as_processes(processes, trainset) -> int:
    """Worker processes of a certify call: a positive integer; more than 1 needs a training set that
    can be sent to other processes (a local TrainSet)."""
    if isinstance(processes, bool) or not isinstance(processes, (int, np.integer)) or processes < 1:
        raise InputError(f"processes must be a positive integer, got {processes!r}")
    if processes > 1 and getattr(trainset, "points", None) is None:
        raise InputError(f"processes={processes} needs a local nnmargin.TrainSet (its data goes to each worker), "
                         f"got {type(trainset).__name__}")
    return int(processes)
