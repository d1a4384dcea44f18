#!/usr/bin/env bash
# One command for a GPU machine (see DEVELOPERS.md, device tool): build with CUDA, run the whole test
# suite including GPU tests, compare CUDA against the CPU backend, time against torch baselines.
# Results land in $OUT (device runs) or benchmarks/results/ (elsewhere).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-benchmarks/results}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu_device.txt"
NNMARGIN_CUDA=ON python3 -m pip install --no-build-isolation --no-deps -q . 2>&1 | tail -5 | tee "$out/gpu_build.log"
python3 -m pytest -q -p no:cacheprovider tests/test_search.py tests/test_certify.py tests/test_bad_input.py 2>&1 \
  | tail -15 | tee "$out/gpu_tests.log"
python3 benchmarks/gpu_check.py --out "$out" 2>&1 | tee "$out/gpu_check.log"
