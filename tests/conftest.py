"""Shared test fixtures: every kernel test runs on each CPU variant this machine has, and on CUDA
when a GPU and a CUDA build are present (skipped cleanly otherwise)."""
from __future__ import annotations

import pytest

import nnmargin

BACKENDS = [pytest.param(("cpu", isa), id=f"cpu-{isa}") for isa in nnmargin.cpu_isas()] + [
    pytest.param(
        ("cuda", "auto"),
        id="cuda",
        marks=[
            pytest.mark.gpu,
            pytest.mark.skipif(not nnmargin.cuda_available(), reason="needs a CUDA GPU and a CUDA build"),
        ],
    )
]


@pytest.fixture(params=BACKENDS)
def backend(request):
    """(device, isa) pair to pass to nnmargin.certify."""
    return request.param
