#!/usr/bin/env bash
# Cross-compiles the generic scan kernels with the search driver and tools/aarch64/kernel_driver.cpp
# for aarch64 (static, Debian's g++-aarch64-linux-gnu) and runs the driver under qemu-aarch64
# (Debian's qemu-user). Exit status non-zero on a build failure or any mismatch with the reference.
# Usage: tools/aarch64/run.sh [output file]   (the log also goes to stdout)
# Needs: apt-get install -y g++-aarch64-linux-gnu qemu-user
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cxx="${CXX_AARCH64:-aarch64-linux-gnu-g++}"
qemu="${QEMU_AARCH64:-qemu-aarch64}"
out="${1:-/dev/null}"
build="$(mktemp -d)"
trap 'rm -rf "$build"' EXIT
cd "$root"
# -ffp-contract=off: the exact float64 re-check in scan_driver.cpp must not fuse (as in CMakeLists.txt);
# GCC fuses by default on aarch64. The kernels themselves get the flags of the generic variant.
cmd_kernels="$cxx -std=c++17 -O3 -fno-math-errno -DNNM_ISA=generic -c csrc/cpu/scan_kernels.cpp -o $build/scan_kernels.o"
cmd_rest="$cxx -std=c++17 -O3 -ffp-contract=off -static csrc/cpu/scan_driver.cpp csrc/cpu/train_layout.cpp tools/aarch64/kernel_driver.cpp $build/scan_kernels.o -o $build/kernel_driver"
{
  echo "# tools/aarch64/run.sh: generic kernels on aarch64 (qemu-user), $(date -u +%Y-%m-%d)"
  echo "# compiler: $($cxx --version | head -1)"
  echo "# emulator: $($qemu --version | head -1)"
  echo "# build: ${cmd_kernels//$build/\$BUILD}"
  echo "#        ${cmd_rest//$build/\$BUILD}"
  echo "# run:   $qemu \$BUILD/kernel_driver"
} | tee "$out"
$cmd_kernels
$cmd_rest
command -v file >/dev/null && file "$build/kernel_driver" | sed "s|$build|\$BUILD|; s/^/# binary: /" | tee -a "$out"
# the kernels really are NEON code: count vector multiply instructions in the object
echo "# NEON multiply / max / abs-diff instructions in scan_kernels.o: $("${cxx%g++}objdump" -d "$build/scan_kernels.o" | grep -cE '\s(mul|smull2?|umax|uabd|uabdl2?|smlal2?)\s+v[0-9]+\.')" | tee -a "$out"
status=0
start=$(date +%s)
"$qemu" "$build/kernel_driver" | tee -a "$out" || status=$?
echo "# exit status $status, $(( $(date +%s) - start )) s under qemu" | tee -a "$out"
exit $status
