"""``nnmargin info``: version, CPU kernels, CUDA (and what device="auto" picks), data directory."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from .. import __version__, _core, cpu_isas, datasets
from .._names import AUTO_USES_CUDA
from ._common import Command


def cuda_status() -> str:
    """``available (N device(s))`` or ``not available (<reason>)``."""
    usable, reason = _core.cuda_status()
    return f"available ({usable} device(s))" if usable else f"not available ({reason})"


def auto_device_status() -> str:
    """What ``device="auto"`` selects, and why."""
    if AUTO_USES_CUDA:
        return "cuda when available (margin bound), else cpu"
    return ("cpu: device=\"auto\" uses the CPU until the CUDA backend has passed its GPU check "
            "(--device cuda selects it explicitly)")


def _data_dir_source(data_dir) -> str:
    if data_dir is not None:
        return "--data-dir"
    if os.environ.get(datasets.DATA_ENV_VAR):
        return f"${datasets.DATA_ENV_VAR}"
    return f"default; set ${datasets.DATA_ENV_VAR} or pass --data-dir to change"


def _dataset_folder_status(root: Path, name: str) -> str:
    folder = root / ("cifar-10" if name == "cifar10" else name)
    files = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    if not files:
        return f"{folder}  ({'empty' if folder.is_dir() else 'absent'}: files are downloaded on first use)"
    return f"{folder}  ({len(files)} file(s): {', '.join(files[:4])}{', ...' if len(files) > 4 else ''})"


def add_arguments(p) -> None:
    p.add_argument("--data-dir", metavar="DIR", help="show this data root instead of the default one")


def _missing_isas() -> str:
    """The variants built but beyond this CPU (an AVX2 machine lacks the AVX-512 ones), or ''."""
    missing = [isa for isa in _core.built_isas() if isa not in cpu_isas()]
    return f"; built, not for this CPU: {', '.join(missing)}" if missing else ""


def run(args, argv) -> int:
    """``nnmargin info``: version, kernels, CUDA and where datasets are looked up."""
    root = datasets.resolve_data_dir(args.data_dir)
    lines = [
        f"nnmargin {__version__}  ({Path(__file__).parents[1]})",
        f"  python        {sys.version.split()[0]}, numpy {np.__version__}",
        f"  cpu kernels   {', '.join(cpu_isas())}  (fastest first; {os.cpu_count()} cores){_missing_isas()}",
        f"  cuda          {cuda_status()}",
        f"  device auto   {auto_device_status()}",
        f"  data root     {root}  ({_data_dir_source(args.data_dir)})",
    ]
    lines += [f"    {name:<14}{_dataset_folder_status(root, name)}" for name in datasets.DATASETS]
    lines.append(f"  sample        {datasets.SAMPLE_PATH}  (used by 'nnmargin certify' without --dataset)")
    print("\n".join(lines))
    return 0


COMMAND = Command(
    name="info",
    help="version, CPU kernels, CUDA and data directory",
    description="Show what this nnmargin installation can use.",
    add_arguments=add_arguments,
    run=run,
)
