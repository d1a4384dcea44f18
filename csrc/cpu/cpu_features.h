// Runtime choice of the scan kernels' instruction-set variant (never the build machine's flags).
#pragma once

#include <string>
#include <vector>

#include "scan_common.h"

namespace nnm::cpu {

// Variants this CPU can run, fastest first: a subset of {"avx512", "avx2", "generic"}.
std::vector<std::string> supported_isas();

// "auto" picks the fastest supported variant; a name forces one (std::invalid_argument if this CPU
// or build cannot run it).
const KernelTable& kernel_table_for(const std::string& isa);

}  // namespace nnm::cpu
