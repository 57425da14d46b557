// Picks the copy of the CPU scans (returns_cpu.cpp) built for the widest instruction set that
// this CPU runs. Compiled for the baseline instruction set only.
#include "returns.h"

namespace pyrl::kernels {

#define PYRL_DECLARE_SCANS(isa)               \
  namespace isa {                             \
  extern const CpuScans<float> scans_float;   \
  extern const CpuScans<double> scans_double; \
  extern const char* const isa_name;          \
  }
PYRL_DECLARE_SCANS(baseline)
#if defined(PYRL_HAVE_AVX2)
PYRL_DECLARE_SCANS(avx2)
#endif
#undef PYRL_DECLARE_SCANS

namespace {

bool use_avx2() {
#if defined(PYRL_HAVE_AVX2)
  static const bool supported = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return supported;
#else
  return false;
#endif
}

}  // namespace

template <>
const CpuScans<float>& cpu_scans<float>() {
#if defined(PYRL_HAVE_AVX2)
  if (use_avx2()) return avx2::scans_float;
#endif
  return baseline::scans_float;
}

template <>
const CpuScans<double>& cpu_scans<double>() {
#if defined(PYRL_HAVE_AVX2)
  if (use_avx2()) return avx2::scans_double;
#endif
  return baseline::scans_double;
}

const char* cpu_isa() {
#if defined(PYRL_HAVE_AVX2)
  if (use_avx2()) return avx2::isa_name;
#endif
  return baseline::isa_name;
}

}  // namespace pyrl::kernels
