#include "cpu_features.h"

#include <stdexcept>

namespace nnm::cpu {
namespace {

// One entry per variant, fastest first. GCC/Clang's __builtin_cpu_supports includes the OS's XSAVE
// support for the wide registers.
struct Variant {
  const char* name;
  bool (*supported)();
  const KernelTable& (*table)();
  std::vector<std::string> (*sequences)();
  double (*probe)(const std::string&, double);
};

#if defined(NNM_HAVE_X86_VARIANTS)
bool has_avx2() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
bool has_avx512() {
  return has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}
bool has_avx512_vnni() { return has_avx512() && __builtin_cpu_supports("avx512vnni"); }
bool has_avx2_vnni() { return has_avx2() && __builtin_cpu_supports("avxvnni"); }
#endif
bool always() { return true; }

const std::vector<Variant>& variants() {
  static const std::vector<Variant> all = {
#if defined(NNM_HAVE_X86_VARIANTS)
      {"avx512_vnni", has_avx512_vnni, avx512_vnni::kernel_table, avx512_vnni::peak_sequences, avx512_vnni::peak_probe},
      {"avx512", has_avx512, avx512::kernel_table, avx512::peak_sequences, avx512::peak_probe},
      {"avx2_vnni", has_avx2_vnni, avx2_vnni::kernel_table, avx2_vnni::peak_sequences, avx2_vnni::peak_probe},
      {"avx2", has_avx2, avx2::kernel_table, avx2::peak_sequences, avx2::peak_probe},
#endif
      {"generic", always, generic::kernel_table, generic::peak_sequences, generic::peak_probe},
  };
  return all;
}

}  // namespace

std::vector<std::string> built_isas() {
  std::vector<std::string> out;
  for (const Variant& v : variants()) out.push_back(v.name);
  return out;
}

std::vector<std::string> supported_isas() {
  std::vector<std::string> out;
  for (const Variant& v : variants())
    if (v.supported()) out.push_back(v.name);
  return out;
}

namespace {
const Variant& variant_for(const std::string& isa) {
  const std::string chosen = isa == "auto" ? supported_isas().front() : isa;
  for (const Variant& v : variants())
    if (chosen == v.name && v.supported()) return v;
  throw std::invalid_argument("instruction set '" + isa + "' is not available on this CPU or build");
}
}  // namespace

const KernelTable& kernel_table_for(const std::string& isa) { return variant_for(isa).table(); }

std::vector<std::string> peak_sequences(const std::string& isa) { return variant_for(isa).sequences(); }

double peak_probe(const std::string& isa, const std::string& sequence, double seconds) {
  const double gops = variant_for(isa).probe(sequence, seconds);
  if (gops < 0) throw std::invalid_argument("variant '" + isa + "' has no peak sequence '" + sequence + "'");
  return gops;
}

}  // namespace nnm::cpu
