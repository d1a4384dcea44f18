// Runtime choice of the scan kernels' instruction-set variant (never the build machine's flags).
#pragma once

#include <string>
#include <vector>

#include "scan_common.h"

namespace nnm::cpu {

// Variants this CPU can run, fastest first: a subset of
// {"avx512_vnni", "avx512", "avx2_vnni", "avx2", "generic"}.
std::vector<std::string> supported_isas();

// Every variant this build holds, fastest first, whether or not this CPU can run it (an x86 build
// holds all five; other targets only "generic"): what tests list and skip by name.
std::vector<std::string> built_isas();

// "auto" picks the fastest supported variant; a name forces one (std::invalid_argument if this CPU
// or build cannot run it).
const KernelTable& kernel_table_for(const std::string& isa);

// The inner instruction sequences of variant `isa`'s kernels (see peak_probe.cpp), and one's
// single-core throughput in GOP/s (2 ops per pair-dim), measured for about `seconds`.
std::vector<std::string> peak_sequences(const std::string& isa);
double peak_probe(const std::string& isa, const std::string& sequence, double seconds);

}  // namespace nnm::cpu
