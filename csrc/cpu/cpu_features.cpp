#include "cpu_features.h"

#include <stdexcept>

namespace nnm::cpu {
namespace {

bool cpu_has_avx512() {
#if defined(NNM_HAVE_X86_VARIANTS)
  // GCC/Clang's checks include the OS's XSAVE support for the wide registers.
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

bool cpu_has_avx2() {
#if defined(NNM_HAVE_X86_VARIANTS)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

}  // namespace

std::vector<std::string> supported_isas() {
  std::vector<std::string> out;
  if (cpu_has_avx512()) out.push_back("avx512");
  if (cpu_has_avx2()) out.push_back("avx2");
  out.push_back("generic");
  return out;
}

const KernelTable& kernel_table_for(const std::string& isa) {
  const std::string chosen = isa == "auto" ? supported_isas().front() : isa;
#if defined(NNM_HAVE_X86_VARIANTS)
  if (chosen == "avx512" && cpu_has_avx512()) return avx512::kernel_table();
  if (chosen == "avx2" && cpu_has_avx2()) return avx2::kernel_table();
#endif
  if (chosen == "generic") return generic::kernel_table();
  throw std::invalid_argument("instruction set '" + isa + "' is not available on this CPU or build");
}

}  // namespace nnm::cpu
