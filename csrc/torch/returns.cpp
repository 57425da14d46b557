// pyrl returns ops: schemas and the CPU backend. The ops themselves (checks, inputs, outputs)
// are written once in returns.h; on the CPU the rollout recurrences run the vectorised scans of
// csrc/kernels/returns_cpu.cpp and the window ops run their kernel bodies in a loop.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>

#include "returns.h"

namespace pyrl {
namespace {

using returns_ops::Tensor;

// Below this many elements per task (about 0.2 ms of work on one core), at::parallel_for's
// start-up costs more than it saves, and on a busy machine a second thread that is not scheduled
// makes a 20 µs op wait milliseconds for it (DESIGN decision 12): small work stays on one thread.
constexpr int64_t kMinWorkPerTask = 1 << 18;

// Items [0, items) in tasks of at least kMinWorkPerTask elements, `work_per_item` each.
template <typename Fn>
void parallel_items(int64_t items, int64_t work_per_item, const Fn& fn) {
  const int64_t grain = std::max<int64_t>(1, kMinWorkPerTask / std::max<int64_t>(1, work_per_item));
  at::parallel_for(0, items, grain, fn);
}

// The CPU backend: one overload per kernel body.
struct CpuRun {
  explicit CpuRun(const Tensor&) {}

  template <typename T>
  void operator()(const kernels::GaeBody<T>& b) const {
    parallel_items(b.in.columns, b.in.steps, [&](int64_t begin, int64_t end) {
      kernels::cpu_scans<T>().gae(b.in, b.advantage, b.value_target, begin, end);
    });
  }
  template <typename T>
  void operator()(const kernels::ReturnBody<T>& b) const {
    const auto scan = b.lambda_form ? kernels::cpu_scans<T>().lambda_return
                                    : kernels::cpu_scans<T>().discounted_return;
    parallel_items(b.in.columns, b.in.steps,
                   [&](int64_t begin, int64_t end) { scan(b.in, b.out, begin, end); });
  }
  template <typename T>
  void operator()(const kernels::NstepReturnBody<T>& b) const {
    parallel_items(b.threads(), b.in.n * b.in.heads, [&](int64_t begin, int64_t end) {
      kernels::cpu_scans<T>().nstep_return(b.in, b.ret, b.discount, b.boot, begin, end);
    });
  }
  template <typename T>
  void operator()(const kernels::NstepGaeBody<T>& b) const {
    parallel_items(b.threads(), b.in.n * b.in.heads, [&](int64_t begin, int64_t end) {
      kernels::cpu_scans<T>().nstep_gae(b.in, b.credit, b.discount, b.boot, begin, end);
    });
  }
  template <typename T>
  void operator()(const kernels::VtraceBody<T>& b) const {
    parallel_items(b.in.columns, b.in.steps, [&](int64_t begin, int64_t end) {
      kernels::cpu_scans<T>().vtrace(b.in, b.vs, b.pg_advantage, begin, end);
    });
  }
  template <typename T>
  void operator()(const kernels::RetraceBody<T>& b) const {
    parallel_items(b.in.columns, b.in.steps, [&](int64_t begin, int64_t end) {
      kernels::cpu_scans<T>().retrace(b.in, b.target, begin, end);
    });
  }
};

}  // namespace

std::tuple<Tensor, Tensor> gae_cpu(const Tensor& reward, const Tensor& value,
                                   const Tensor& next_value, const Tensor& terminated,
                                   const Tensor& truncated, double gamma, double lmbda) {
  return returns_ops::gae(CpuRun(reward), reward, value, next_value, terminated, truncated, gamma,
                          lmbda, std::nullopt, std::nullopt);
}

Tensor discounted_return_cpu(const Tensor& reward, const Tensor& next_value,
                             const Tensor& terminated, const Tensor& truncated, double gamma) {
  return returns_ops::discounted_return(CpuRun(reward), reward, next_value, terminated, truncated,
                                        gamma, std::nullopt);
}

Tensor lambda_return_cpu(const Tensor& reward, const Tensor& next_value, const Tensor& terminated,
                         const Tensor& truncated, double gamma, double lmbda) {
  return returns_ops::lambda_return(CpuRun(reward), reward, next_value, terminated, truncated,
                                    gamma, lmbda, std::nullopt, std::nullopt);
}

std::tuple<Tensor, Tensor> vtrace_cpu(const Tensor& log_rho, const Tensor& reward,
                                      const Tensor& value, const Tensor& next_value,
                                      const Tensor& terminated, const Tensor& truncated,
                                      double gamma, double rho_bar, double c_bar, double lmbda) {
  return returns_ops::vtrace(CpuRun(reward), log_rho, reward, value, next_value, terminated,
                             truncated, gamma, rho_bar, c_bar, lmbda, std::nullopt, std::nullopt);
}

Tensor retrace_cpu(const Tensor& log_rho, const Tensor& reward, const Tensor& q,
                   const Tensor& next_v, const Tensor& terminated, const Tensor& truncated,
                   double gamma, double lmbda) {
  return returns_ops::retrace(CpuRun(reward), log_rho, reward, q, next_v, terminated, truncated,
                              gamma, lmbda, std::nullopt, std::nullopt);
}

TORCH_LIBRARY_FRAGMENT(pyrl, m) {
  for (const char* schema : returns_ops::kSchemas) m.def(schema);
}

TORCH_LIBRARY_IMPL(pyrl, CPU, m) { returns_ops::register_impls<CpuRun>(m); }

}  // namespace pyrl
