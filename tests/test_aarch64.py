"""The generic kernels on aarch64: tools/aarch64/run.sh cross-compiles them with the search driver and a
brute-force kernel test driver (tools/aarch64/kernel_driver.cpp) and runs it under qemu-aarch64.
About 20 s; skipped where Debian's g++-aarch64-linux-gnu or qemu-user is not installed."""
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "aarch64" / "run.sh"


@pytest.mark.skipif(shutil.which("aarch64-linux-gnu-g++") is None or shutil.which("qemu-aarch64") is None,
                    reason="needs g++-aarch64-linux-gnu and qemu-user (apt-get install -y g++-aarch64-linux-gnu qemu-user)")
def test_generic_kernels_exact_on_aarch64():
    if not SCRIPT.exists():
        pytest.skip("tools/aarch64 is not in this checkout")
    r = subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert " 0 failed" in r.stdout
