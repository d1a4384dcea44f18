"""Shared test fixtures: every kernel test runs on each CPU variant this machine has, and on CUDA
when a GPU and a CUDA build are present (skipped cleanly otherwise)."""
from __future__ import annotations

import pytest
from hypothesis import settings

import nnmargin

# Property tests run the same examples on every run (CI must not fail on a draw no one can replay);
# `pytest --hypothesis-profile=explore` searches fresh random examples, and any failure it finds
# belongs in the test as an @example.
settings.register_profile("default", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, max_examples=200, print_blob=True)
settings.load_profile("default")

def _isa_marks(isa):
    """Every variant of the build is listed; those this CPU cannot run skip, by name, so a run says
    which variants it did not test."""
    return [pytest.mark.skipif(isa not in nnmargin.cpu_isas(), reason=f"this CPU cannot run the {isa} kernels")]


ISAS = [pytest.param(isa, id=isa, marks=_isa_marks(isa)) for isa in nnmargin._core.built_isas()]

BACKENDS = [pytest.param(("cpu", isa), id=f"cpu-{isa}", marks=_isa_marks(isa)) for isa in nnmargin._core.built_isas()] + [
    pytest.param(
        ("cuda", "auto"),
        id="cuda",
        marks=[
            pytest.mark.gpu,
            pytest.mark.skipif(not nnmargin.cuda_available(), reason="needs a CUDA GPU and a CUDA build"),
        ],
    )
]


@pytest.fixture(params=ISAS)
def isa(request):
    """One CPU kernel variant of this build (skipped where this CPU cannot run it)."""
    return request.param


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
