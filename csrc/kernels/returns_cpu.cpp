// CPU scans for the returns family (math in returns.h). CMake compiles this file once per
// instruction set, with PYRL_CPU_ISA naming the copy; returns_dispatch.cpp picks one at run time.
// No std:: algorithms here: their shared out-of-line copies could carry the wrong ISA.
//
// The backward recurrences run time-outer, columns-inner: each time step reads a contiguous slice
// of every input row, four float64 lanes at a time (GCC/Clang vector extensions: AVX2 registers in
// the AVX2 copy, SSE2 pairs in the baseline one). See backward_scan for how columns are grouped.
#include <cmath>
#include <cstring>
#if defined(__AVX__)
#include <immintrin.h>
#endif

#include "returns.h"

#if defined(__GLIBC__) && defined(__x86_64__)
// glibc declares exp's vector variants (libmvec, accurate to 4 ulp) only under -ffast-math;
// declaring them here lets the off-policy scans vectorise their ratios across columns without
// fast-math's other licences (-fno-math-errno is enough, see CMakeLists.txt).
extern "C" double exp(double) noexcept __attribute__((simd("notinbranch")));
#endif

namespace pyrl::kernels {
inline namespace PYRL_CPU_ISA {
namespace {

constexpr int kLanes = 4;
using Lanes = acc_t __attribute__((vector_size(kLanes * sizeof(acc_t))));
using Mask = int64_t __attribute__((vector_size(kLanes * sizeof(int64_t))));

using Floats = float __attribute__((vector_size(kLanes * sizeof(float))));

inline Lanes load(const double* p) {
  Lanes x;
  std::memcpy(&x, p, sizeof(x));
  return x;
}

inline Lanes load(const float* p) {
#if defined(__AVX__)
  // GCC 12 splits __builtin_convertvector(float4 -> double4) through the stack; one vcvtps2pd.
  return _mm256_cvtps_pd(_mm_loadu_ps(p));
#else
  Floats x;
  std::memcpy(&x, p, sizeof(x));
  return __builtin_convertvector(x, Lanes);
#endif
}

inline void store(double* p, Lanes x) { std::memcpy(p, &x, sizeof(x)); }

inline void store(float* p, Lanes x) {
  const Floats y = __builtin_convertvector(x, Floats);
  std::memcpy(p, &y, sizeof(y));
}

inline Mask flags(const uint8_t* p) {
  const Mask x = {p[0], p[1], p[2], p[3]};
  return x != 0;
}

// All lanes set on the rollout's last step, which always ends the trace.
inline Mask last_step(int64_t t, int64_t steps) {
  return Mask{} - static_cast<int64_t>(t == steps - 1);
}

// A discount of lanes [i, i + kLanes) (or of element i): the per-step tensor's where given, else
// the scalar. Only the per-step copies of the rows (PerStep) read them.
template <typename T>
inline Lanes discount_lanes(const T* per_step, int64_t i, acc_t scalar) {
  return per_step != nullptr ? load(per_step + i) : Lanes{} + scalar;
}

template <typename T>
inline acc_t discount_at(const T* per_step, int64_t i, acc_t scalar) {
  return per_step != nullptr ? acc_t(per_step[i]) : scalar;
}

// A row functor updates one time step: row(t, column, carry) for Lanes or acc_t carries, where
// the carry is that of step t + 1 and the result that of step t.

// Narrow rollouts: a group of P * kLanes columns keeps its carries in registers through the whole
// scan over time, so the recurrence runs at its latency.
template <int P, typename Row>
inline void scan_group(const Row& row, int64_t steps, int64_t first) {
  Lanes carry[P] = {};
  for (int64_t t = steps - 1; t >= 0; --t) {
#pragma GCC unroll 4
    for (int p = 0; p < P; ++p) carry[p] = row(t, first + p * kLanes, carry[p]);
  }
}

template <typename Row>
inline void scan_column(const Row& row, int64_t steps, int64_t column) {
  acc_t carry = 0;
  for (int64_t t = steps - 1; t >= 0; --t) carry = row(t, column, carry);
}

// Wide rollouts: each time step sweeps a whole row of up to kSweep columns, the carries kept in
// an L1-sized stack array. Walking a narrow group down all T rows instead would touch a new page
// per row and array, and thrash the TLB once T is in the hundreds.
constexpr int64_t kSweep = 1024;

template <typename Row>
inline void sweep_rows(const Row& row, int64_t steps, int64_t first, int64_t width) {
  alignas(64) acc_t carry[kSweep];
  for (int64_t c = 0; c < width; ++c) carry[c] = 0;
  const int64_t vector_width = width - width % kLanes;
  for (int64_t t = steps - 1; t >= 0; --t) {
    for (int64_t c = 0; c < vector_width; c += kLanes) {
      Lanes next;
      std::memcpy(&next, carry + c, sizeof(next));
      const Lanes x = row(t, first + c, next);
      std::memcpy(carry + c, &x, sizeof(x));
    }
    for (int64_t c = vector_width; c < width; ++c) carry[c] = row(t, first + c, carry[c]);
  }
}

template <typename Row>
void backward_scan(const Row& row, int64_t steps, int64_t begin, int64_t end) {
  int64_t c = begin;
  if (end - begin >= 64) {
    for (; c < end; c += kSweep) sweep_rows(row, steps, c, end - c < kSweep ? end - c : kSweep);
    return;
  }
  for (; c + 4 * kLanes <= end; c += 4 * kLanes) scan_group<4>(row, steps, c);
  if (c + 2 * kLanes <= end) scan_group<2>(row, steps, c), c += 2 * kLanes;
  if (c + kLanes <= end) scan_group<1>(row, steps, c), c += kLanes;
  for (; c < end; ++c) scan_column(row, steps, c);
}

// PerStep: gamma and lmbda from the per-step tensors (RolloutArgs::gammas / lmbdas).
template <typename T, bool PerStep>
struct GaeRow {
  const RolloutArgs<T> a;  // a copy, so stores to the outputs cannot alias it
  T* advantage;
  T* value_target;

  inline Lanes operator()(int64_t t, int64_t c, Lanes next) const {
    const int64_t i = t * a.columns + c;
    const Mask term = flags(a.terminated + i);
    const Mask ends = term | flags(a.truncated + i) | last_step(t, a.steps);
    const Lanes v = load(a.value + i), r = load(a.reward + i), nv = load(a.next_value + i);
    Lanes x;
    if constexpr (PerStep) {
      const Lanes g = discount_lanes(a.gammas, i, a.gamma);
      x = gae_step(r, v, nv, term, ends, g, g * discount_lanes(a.lmbdas, i, a.lmbda), next);
    } else {
      x = gae_step(r, v, nv, term, ends, a.gamma, a.gamma * a.lmbda, next);
    }
    store(advantage + i, x);
    store(value_target + i, x + v);
    return x;
  }

  inline acc_t operator()(int64_t t, int64_t c, acc_t next) const {
    const int64_t i = t * a.columns + c;
    const bool term = a.terminated[i] != 0;
    const bool ends = term || a.truncated[i] != 0 || t == a.steps - 1;
    const acc_t v = a.value[i];
    const acc_t g = PerStep ? discount_at(a.gammas, i, a.gamma) : a.gamma;
    const acc_t l = PerStep ? discount_at(a.lmbdas, i, a.lmbda) : a.lmbda;
    const acc_t x =
        gae_step<acc_t, bool>(a.reward[i], v, a.next_value[i], term, ends, g, g * l, next);
    advantage[i] = T(x);
    value_target[i] = T(x + v);
    return x;
  }
};

// The two single-output returns share a row: discounted_return (Lambda false) and lambda_return.
template <typename T, bool Lambda, bool PerStep>
struct ReturnRow {
  const RolloutArgs<T> a;  // a copy, so stores to the outputs cannot alias it
  T* out;

  template <typename A, typename M, typename G>
  inline A step(A reward, A next_value, M terminated, M ends, G gamma, G lmbda, A next) const {
    if constexpr (Lambda)
      return lambda_step(reward, next_value, terminated, ends, gamma, lmbda, next);
    return discounted_step(reward, next_value, terminated, ends, gamma, next);
  }

  inline Lanes operator()(int64_t t, int64_t c, Lanes next) const {
    const int64_t i = t * a.columns + c;
    const Mask ends = flags(a.truncated + i) | last_step(t, a.steps);
    const Lanes r = load(a.reward + i), nv = load(a.next_value + i);
    const Mask term = flags(a.terminated + i);
    Lanes x;
    if constexpr (PerStep) {
      x = step(r, nv, term, ends, discount_lanes(a.gammas, i, a.gamma),
               discount_lanes(a.lmbdas, i, a.lmbda), next);
    } else {
      x = step(r, nv, term, ends, a.gamma, a.lmbda, next);
    }
    store(out + i, x);
    return x;
  }

  inline acc_t operator()(int64_t t, int64_t c, acc_t next) const {
    const int64_t i = t * a.columns + c;
    const bool ends = a.truncated[i] != 0 || t == a.steps - 1;
    const acc_t g = PerStep ? discount_at(a.gammas, i, a.gamma) : a.gamma;
    const acc_t l = PerStep ? discount_at(a.lmbdas, i, a.lmbda) : a.lmbda;
    const acc_t x =
        step(acc_t(a.reward[i]), acc_t(a.next_value[i]), a.terminated[i] != 0, ends, g, l, next);
    out[i] = T(x);
    return x;
  }
};

template <typename T>
bool per_step(const RolloutArgs<T>& a) {
  return a.gammas != nullptr || a.lmbdas != nullptr;
}

template <typename T>
void gae_cpu(const RolloutArgs<T>& a, T* advantage, T* value_target, int64_t begin, int64_t end) {
  if (per_step(a))
    return backward_scan(GaeRow<T, true>{a, advantage, value_target}, a.steps, begin, end);
  backward_scan(GaeRow<T, false>{a, advantage, value_target}, a.steps, begin, end);
}

template <typename T>
void discounted_return_cpu(const RolloutArgs<T>& a, T* out, int64_t begin, int64_t end) {
  if (per_step(a)) return backward_scan(ReturnRow<T, false, true>{a, out}, a.steps, begin, end);
  backward_scan(ReturnRow<T, false, false>{a, out}, a.steps, begin, end);
}

template <typename T>
void lambda_return_cpu(const RolloutArgs<T>& a, T* out, int64_t begin, int64_t end) {
  if (per_step(a)) return backward_scan(ReturnRow<T, true, true>{a, out}, a.steps, begin, end);
  backward_scan(ReturnRow<T, true, false>{a, out}, a.steps, begin, end);
}

template <typename T>
void nstep_return_cpu(const WindowArgs<T>& a, T* ret, T* discount, int64_t* boot, int64_t begin,
                      int64_t end) {
  const NstepReturnBody<T> body{a, ret, discount, boot};
  for (int64_t i = begin; i < end; ++i) body(i);
}

template <typename T>
void nstep_gae_cpu(const WindowArgs<T>& a, T* credit, T* discount, int64_t* boot, int64_t begin,
                   int64_t end) {
  const NstepGaeBody<T> body{a, credit, discount, boot};
  for (int64_t i = begin; i < end; ++i) body(i);
}

// The off-policy scans: time-outer over a block of up to kSweep columns, one carry per column.
// Each row's ratios exp(log_rho) come first, in a loop of their own that vectorises (libmvec).
template <typename T>
inline void exp_row(const T* __restrict log_rho, acc_t* __restrict ratio, int64_t width) {
  for (int64_t k = 0; k < width; ++k) ratio[k] = ::exp(acc_t(log_rho[k]));
}

// Narrow rollouts (fewer columns than a vector, all of them in this task): a row is too short to
// vectorise its ratios, so all of them are taken in one pass over the contiguous array first.
constexpr int64_t kWholeRatios = int64_t{1} << 16;

template <typename T>
const acc_t* whole_ratios(const OffPolicyArgs<T>& a, int64_t begin, int64_t end) {
  if (begin != 0 || end != a.columns || a.columns >= kLanes || a.steps * a.columns > kWholeRatios) {
    return nullptr;
  }
  thread_local acc_t* ratios = new acc_t[kWholeRatios];  // scratch of each thread, kept
  exp_row(a.log_rho, ratios, a.steps * a.columns);
  return ratios;
}

inline Lanes load_lanes(const acc_t* p) { return load(p); }

// V-trace over columns [first, first + width) of row t, kLanes columns at a time, then one by
// one; `ratio` holds the row's exp(log_rho), `carry` the columns' d_{t+1}.
template <bool PerStep, typename T>
inline void vtrace_row(const OffPolicyArgs<T>& a, T* vs, T* pg, int64_t t, int64_t first,
                       int64_t width, const acc_t* ratio, acc_t* carry) {
  const bool last = t == a.steps - 1;
  const int64_t row = t * a.columns + first;
  int64_t k = 0;
  for (; k + kLanes <= width; k += kLanes) {
    const int64_t i = row + k;
    const Mask term = flags(a.terminated + i);
    const Mask ends = term | flags(a.truncated + i) | last_step(t, a.steps);
    const Lanes rho = clip(load_lanes(ratio + k), a.rho_bar);
    const Lanes v = load(a.value + i), nv = load(a.next_value + i), r = load(a.reward + i);
    const Lanes next = load_lanes(carry + k);
    const Lanes next_vs = last ? Lanes{} : load(a.value + i + a.columns) + next;
    Lanes d, advantage;
    if constexpr (PerStep) {
      const Lanes g = discount_lanes(a.gammas, i, a.gamma);
      const Lanes c = discount_lanes(a.lmbdas, i, a.lmbda) * clip(load_lanes(ratio + k), a.c_bar);
      d = vtrace_diff(r, v, nv, term, ends, rho, c, g, next);
      advantage = vtrace_pg(r, v, nv, next_vs, term, ends, rho, g);
    } else {
      const Lanes c = a.lmbda * clip(load_lanes(ratio + k), a.c_bar);
      d = vtrace_diff(r, v, nv, term, ends, rho, c, a.gamma, next);
      advantage = vtrace_pg(r, v, nv, next_vs, term, ends, rho, a.gamma);
    }
    store(vs + i, v + d);
    store(pg + i, advantage);
    std::memcpy(carry + k, &d, sizeof(d));
  }
  for (; k < width; ++k) {
    const int64_t i = row + k;
    const bool term = a.terminated[i] != 0;
    const bool ends = term || a.truncated[i] != 0 || last;
    const acc_t g = PerStep ? discount_at(a.gammas, i, a.gamma) : a.gamma;
    const acc_t l = PerStep ? discount_at(a.lmbdas, i, a.lmbda) : a.lmbda;
    const acc_t rho = clip(ratio[k], a.rho_bar), c = l * clip(ratio[k], a.c_bar);
    const acc_t v = acc_t(a.value[i]), nv = acc_t(a.next_value[i]), r = acc_t(a.reward[i]);
    const acc_t next_vs = last ? acc_t(0) : acc_t(a.value[i + a.columns]) + carry[k];
    const acc_t d = vtrace_diff<acc_t, bool>(r, v, nv, term, ends, rho, c, g, carry[k]);
    vs[i] = T(v + d);
    pg[i] = T(vtrace_pg<acc_t, bool>(r, v, nv, next_vs, term, ends, rho, g));
    carry[k] = d;
  }
}

template <bool PerStep, typename T>
void vtrace_scan(const OffPolicyArgs<T>& a, T* vs, T* pg_advantage, int64_t begin, int64_t end) {
  alignas(64) acc_t carry[kSweep];
  alignas(64) acc_t row_ratio[kSweep];
  const acc_t* whole = whole_ratios(a, begin, end);
  for (int64_t first = begin; first < end; first += kSweep) {
    const int64_t width = end - first < kSweep ? end - first : kSweep;
    for (int64_t k = 0; k < width; ++k) carry[k] = 0;
    for (int64_t t = a.steps - 1; t >= 0; --t) {
      const int64_t row = t * a.columns + first;
      if (whole == nullptr) exp_row(a.log_rho + row, row_ratio, width);
      vtrace_row<PerStep>(a, vs, pg_advantage, t, first, width,
                          whole != nullptr ? whole + row : row_ratio, carry);
    }
  }
}

template <typename T>
void vtrace_cpu(const OffPolicyArgs<T>& a, T* vs, T* pg_advantage, int64_t begin, int64_t end) {
  if (a.gammas != nullptr || a.lmbdas != nullptr) {
    return vtrace_scan<true>(a, vs, pg_advantage, begin, end);
  }
  vtrace_scan<false>(a, vs, pg_advantage, begin, end);
}

// Retrace over columns [first, first + width) of row t; `next_ratio` holds exp(log_rho) of row
// t + 1, `carry` the columns' G_{t+1} - q_{t+1}.
template <bool PerStep, typename T>
inline void retrace_row(const OffPolicyArgs<T>& a, T* target, int64_t t, int64_t first,
                        int64_t width, const acc_t* next_ratio, acc_t* carry) {
  const bool last = t == a.steps - 1;
  const int64_t row = t * a.columns + first;
  int64_t k = 0;
  for (; k + kLanes <= width; k += kLanes) {
    const int64_t i = row + k;
    const Mask term = flags(a.terminated + i);
    const Mask ends = term | flags(a.truncated + i) | last_step(t, a.steps);
    const Lanes r = load(a.reward + i), nv = load(a.next_value + i), next = load_lanes(carry + k);
    Lanes g;
    if constexpr (PerStep) {
      const Lanes next_c =
          discount_lanes(a.lmbdas, i, a.lmbda) * clip(load_lanes(next_ratio + k), 1.0);
      g = retrace_step(r, nv, term, ends, next_c, discount_lanes(a.gammas, i, a.gamma), next);
    } else {
      const Lanes next_c = a.lmbda * clip(load_lanes(next_ratio + k), 1.0);
      g = retrace_step(r, nv, term, ends, next_c, a.gamma, next);
    }
    store(target + i, g);
    const Lanes x = g - load(a.value + i);
    std::memcpy(carry + k, &x, sizeof(x));
  }
  for (; k < width; ++k) {
    const int64_t i = row + k;
    const bool term = a.terminated[i] != 0;
    const bool ends = term || a.truncated[i] != 0 || last;
    const acc_t l = PerStep ? discount_at(a.lmbdas, i, a.lmbda) : a.lmbda;
    const acc_t gamma = PerStep ? discount_at(a.gammas, i, a.gamma) : a.gamma;
    const acc_t next_c = l * clip(next_ratio[k], 1.0);
    const acc_t g = retrace_step<acc_t, bool>(acc_t(a.reward[i]), acc_t(a.next_value[i]), term,
                                              ends, next_c, gamma, carry[k]);
    target[i] = T(g);
    carry[k] = g - acc_t(a.value[i]);
  }
}

template <bool PerStep, typename T>
void retrace_scan(const OffPolicyArgs<T>& a, T* target, int64_t begin, int64_t end) {
  alignas(64) acc_t carry[kSweep];
  alignas(64) acc_t row_ratio[kSweep];  // the ratios of the row after the current one
  const acc_t* whole = whole_ratios(a, begin, end);
  for (int64_t first = begin; first < end; first += kSweep) {
    const int64_t width = end - first < kSweep ? end - first : kSweep;
    for (int64_t k = 0; k < width; ++k) carry[k] = row_ratio[k] = 0;
    for (int64_t t = a.steps - 1; t >= 0; --t) {
      const int64_t row = t * a.columns + first;
      const bool last = t == a.steps - 1;
      retrace_row<PerStep>(a, target, t, first, width,
                           whole != nullptr && !last ? whole + row + a.columns : row_ratio, carry);
      if (whole == nullptr) exp_row(a.log_rho + row, row_ratio, width);
    }
  }
}

template <typename T>
void retrace_cpu(const OffPolicyArgs<T>& a, T* target, int64_t begin, int64_t end) {
  if (a.gammas != nullptr || a.lmbdas != nullptr) return retrace_scan<true>(a, target, begin, end);
  retrace_scan<false>(a, target, begin, end);
}

}  // namespace

#define PYRL_STRINGIFY_(x) #x
#define PYRL_STRINGIFY(x) PYRL_STRINGIFY_(x)

extern const CpuScans<float> scans_float{&gae_cpu<float>,           &discounted_return_cpu<float>,
                                         &lambda_return_cpu<float>, &nstep_return_cpu<float>,
                                         &nstep_gae_cpu<float>,     &vtrace_cpu<float>,
                                         &retrace_cpu<float>};
extern const CpuScans<double> scans_double{
    &gae_cpu<double>,          &discounted_return_cpu<double>, &lambda_return_cpu<double>,
    &nstep_return_cpu<double>, &nstep_gae_cpu<double>,         &vtrace_cpu<double>,
    &retrace_cpu<double>};
extern const char* const isa_name = PYRL_STRINGIFY(PYRL_CPU_ISA);

}  // namespace PYRL_CPU_ISA
}  // namespace pyrl::kernels
