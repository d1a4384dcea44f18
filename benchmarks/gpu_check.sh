#!/usr/bin/env bash
# The GPU check, for one short window on a fresh H100 / H200 machine (see the device tool's notes):
#   1. preflight: nvidia-smi, nvcc, Python headers, torch        (stops here if the GPU or nvcc is missing)
#   2. build for sm_90 only, NNMARGIN_CUDA=ON                     (stops here if the build fails)
#   3. CUDA vs CPU on every case of benchmarks/gpu_check.py --check (exact, index for index)
#   4. timings against torch (gpu_check.py --bench): JSON + markdown with the device and % of int8 peak
#   5. the GPU tests of the suite (pytest -m gpu) and the emulation tests
#   6. compute-sanitizer memcheck and racecheck on small cases (skipped where the tool refuses the device)
# Every step has a timeout and the whole script stops starting optional steps after DEADLINE seconds
# (default 390), so it ends in about 7 minutes at most and one rerun fits a 15-minute window.
# Results go to $OUT (device runs) or benchmarks/results/gpu/ (elsewhere), at most 8 files.
# Exit status: 0 when every step that ran passed, 1 otherwise; gpu_steps.log lists each step's status.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-benchmarks/results/gpu}"
mkdir -p "$out"
deadline="${DEADLINE:-390}"
py="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1 CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-16}"
steps="$out/gpu_steps.log"
: >"$steps"
failed=0

# step NAME TIMEOUT LOG COMMAND...: runs COMMAND with a timeout, appends its output to LOG, records
# ok / FAILED (exit status) / TIMEOUT with the seconds it took.
step() {
  local name=$1 limit=$2 log=$3 start=$SECONDS rc
  shift 3
  echo "=== $name (timeout ${limit}s)" | tee -a "$log"
  timeout --kill-after=10 "$limit" "$@" >>"$log" 2>&1
  rc=$?
  local took=$((SECONDS - start)) status=ok
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then status=TIMEOUT; elif [ $rc -ne 0 ]; then status="FAILED (exit $rc)"; fi
  echo "$name: $status, ${took}s" | tee -a "$steps"
  tail -n 5 "$log"
  [ "$status" = ok ] || failed=1
  return $rc
}

time_left() { [ $SECONDS -lt "$deadline" ] || { echo "skipped after the ${deadline}s deadline: $1" | tee -a "$steps"; failed=1; return 1; }; }

preflight() {
  nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv || return 1
  command -v nvcc && nvcc --version | tail -n 2 || return 1
  "$py" - <<'EOF' || return 1
import pathlib, sys, sysconfig
inc = pathlib.Path(sysconfig.get_paths()["include"]) / "Python.h"
print(sys.version.split()[0], "headers:", inc, inc.exists())
for name in ("numpy", "pybind11", "scikit_build_core", "pytest", "hypothesis", "torch"):
    try:
        mod = __import__(name)
        print(f"{name} {getattr(mod, '__version__', '?')}")
    except ImportError:
        print(f"{name} MISSING")
import torch
print("torch sees", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")
sys.exit(0 if inc.exists() else 1)
EOF
}

step preflight 60 "$out/gpu_build.log" preflight || { echo "preflight failed: no GPU, nvcc or Python headers"; exit 1; }

step build 300 "$out/gpu_build.log" env NNMARGIN_CUDA=ON "$py" -m pip install --no-build-isolation --no-deps -v . \
  -Cbuild-dir=build/gpu -Ccmake.define.CMAKE_CUDA_ARCHITECTURES=90 || { echo "build failed: see gpu_build.log"; exit 1; }
step import 30 "$out/gpu_build.log" "$py" -c "import nnmargin._core as c; print(c.built_with_cuda(), c.cuda_status()); assert c.built_with_cuda() and c.cuda_device_count() > 0, c.cuda_status()" \
  || { echo "the build has no usable CUDA device"; exit 1; }

time_left check && step check 150 "$out/gpu_check.log" "$py" benchmarks/gpu_check.py --check --out "$out"
time_left bench && step bench 180 "$out/gpu_check.log" "$py" benchmarks/gpu_check.py --bench --out "$out"
time_left tests && step tests 150 "$out/gpu_tests.log" "$py" -m pytest -q -p no:cacheprovider -x \
  -m "gpu or not gpu" -k "cuda or emulated" tests/test_search.py tests/test_certify.py tests/test_bad_input.py tests/test_cuda_emulated.py
if time_left sanitizer; then
  if command -v compute-sanitizer >/dev/null; then
    for tool in memcheck racecheck; do
      saved=$failed
      step "sanitizer $tool" 60 "$out/gpu_sanitizer.log" compute-sanitizer --tool "$tool" --error-exitcode 9 \
        "$py" benchmarks/gpu_check.py --small --out "$out" && continue
      # Under gVisor the tool refuses the device ("Device not supported"): no verdict on nnmargin.
      if grep -qi "device not supported" "$out/gpu_sanitizer.log"; then
        failed=$saved
        echo "sanitizer $tool: compute-sanitizer refuses this device; not counted" | tee -a "$steps"
      fi
    done
  else
    echo "sanitizer: compute-sanitizer not on PATH" | tee -a "$steps"
  fi
fi
echo "--- steps"; cat "$steps"
exit $failed
