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


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's tiny torch models on one thread: on a busy 2-core machine, OpenMP threads that
    wait for each other at every small op made the suite ~40x slower (7 min instead of 10 s)."""
    torch = pytest.importorskip("torch")
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)
