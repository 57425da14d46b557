// pyrl returns ops: schemas, argument checks and CPU implementations (math in
// csrc/kernels/returns.h, scans in csrc/kernels/returns_cpu.cpp).
//
// Inputs are time-first: reward [T, N] or [T, N, m] (m reward heads), episode flags [T, N].
// Any strides are accepted; the kernels read contiguous copies.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include <cmath>
#include <tuple>

#include "../kernels/returns.h"
#include "checks.h"

namespace pyrl {
namespace {

using kernels::RolloutArgs;
using kernels::WindowArgs;

// Below this many elements per task (about 0.2 ms of work on one core), at::parallel_for's
// start-up costs more than it saves, and on a busy machine a second thread that is not scheduled
// makes a 20 µs op wait milliseconds for it (DESIGN decision 12): small work stays on one thread.
constexpr int64_t kMinWorkPerTask = 1 << 18;

// Episode flags as contiguous bytes: bool and uint8 are read as they are, other dtypes as != 0.
at::Tensor flag_bytes(const char* op, const char* name, const at::Tensor& flag,
                      const at::Tensor& reward) {
  checks::shaped(op, name, flag, reward.sizes().slice(0, 2), "reward", reward);
  const bool bytes = flag.scalar_type() == at::kBool || flag.scalar_type() == at::kByte;
  return (bytes ? flag : flag.ne(0)).contiguous();
}

const uint8_t* bytes_of(const at::Tensor& t) {
  return static_cast<const uint8_t*>(t.const_data_ptr());
}

void check_rollout(const char* op, const at::Tensor& reward, double gamma) {
  checks::floating(op, "reward", reward);
  checks::rank(op, "reward", reward, 2, 3, "2-D [T, N] or 3-D [T, N, m]");
  checks::unit_interval(op, "gamma", gamma);
}

// The GAE family scans columns; with m heads each flag column is repeated for its m heads.
at::Tensor per_column(const at::Tensor& flags, const at::Tensor& reward) {
  if (reward.dim() == 2) return flags;
  return flags.unsqueeze(-1).expand(reward.sizes()).contiguous();
}

template <typename T>
RolloutArgs<T> rollout_args(const at::Tensor& reward, const at::Tensor& value,
                            const at::Tensor& next_value, const at::Tensor& terminated,
                            const at::Tensor& truncated, double gamma, double lmbda) {
  const int64_t steps = reward.size(0);
  return {reward.const_data_ptr<T>(),
          value.defined() ? value.const_data_ptr<T>() : nullptr,
          next_value.const_data_ptr<T>(),
          bytes_of(terminated),
          bytes_of(truncated),
          steps,
          steps == 0 ? 0 : reward.numel() / steps,
          gamma,
          lmbda};
}

template <typename Fn>
void parallel_columns(int64_t steps, int64_t columns, const Fn& fn) {
  const int64_t grain = std::max<int64_t>(1, kMinWorkPerTask / std::max<int64_t>(1, steps));
  at::parallel_for(0, columns, grain, fn);
}

std::tuple<at::Tensor, at::Tensor> gae_cpu(const at::Tensor& reward, const at::Tensor& value,
                                           const at::Tensor& next_value,
                                           const at::Tensor& terminated,
                                           const at::Tensor& truncated, double gamma,
                                           double lmbda) {
  constexpr const char* op = "pyrl::gae";
  check_rollout(op, reward, gamma);
  checks::unit_interval(op, "lmbda", lmbda);
  checks::like(op, "value", value, "reward", reward);
  checks::like(op, "next_value", next_value, "reward", reward);
  const auto term = per_column(flag_bytes(op, "terminated", terminated, reward), reward);
  const auto trunc = per_column(flag_bytes(op, "truncated", truncated, reward), reward);
  const auto r = reward.contiguous(), v = value.contiguous(), nv = next_value.contiguous();
  auto advantage = at::empty_like(r), value_target = at::empty_like(r);
  AT_DISPATCH_FLOATING_TYPES(r.scalar_type(), "pyrl::gae", [&] {
    const auto args = rollout_args<scalar_t>(r, v, nv, term, trunc, gamma, lmbda);
    auto* adv = advantage.mutable_data_ptr<scalar_t>();
    auto* ret = value_target.mutable_data_ptr<scalar_t>();
    parallel_columns(args.steps, args.columns, [&](int64_t begin, int64_t end) {
      kernels::cpu_scans<scalar_t>().gae(args, adv, ret, begin, end);
    });
  });
  return {advantage, value_target};
}

// discounted_return and lambda_return: one output shaped like reward; `scan_of(scans)` picks the
// CPU scan from the dispatch table.
template <typename ScanOf>
at::Tensor single_return(const char* op, const at::Tensor& reward, const at::Tensor& next_value,
                         const at::Tensor& terminated, const at::Tensor& truncated, double gamma,
                         double lmbda, ScanOf scan_of) {
  check_rollout(op, reward, gamma);
  checks::unit_interval(op, "lmbda", lmbda);
  checks::like(op, "next_value", next_value, "reward", reward);
  const auto term = per_column(flag_bytes(op, "terminated", terminated, reward), reward);
  const auto trunc = per_column(flag_bytes(op, "truncated", truncated, reward), reward);
  const auto r = reward.contiguous(), nv = next_value.contiguous();
  auto out = at::empty_like(r);
  AT_DISPATCH_FLOATING_TYPES(r.scalar_type(), "pyrl::single_return", [&] {
    const auto args = rollout_args<scalar_t>(r, at::Tensor(), nv, term, trunc, gamma, lmbda);
    const auto scan = scan_of(kernels::cpu_scans<scalar_t>());
    auto* g = out.mutable_data_ptr<scalar_t>();
    parallel_columns(args.steps, args.columns, [&](int64_t begin, int64_t end) {
      scan(args, g, begin, end);
    });
  });
  return out;
}

at::Tensor discounted_return_cpu(const at::Tensor& reward, const at::Tensor& next_value,
                                 const at::Tensor& terminated, const at::Tensor& truncated,
                                 double gamma) {
  return single_return("pyrl::discounted_return", reward, next_value, terminated, truncated, gamma,
                       /*lmbda=*/1.0, [](const auto& scans) { return scans.discounted_return; });
}

at::Tensor lambda_return_cpu(const at::Tensor& reward, const at::Tensor& next_value,
                             const at::Tensor& terminated, const at::Tensor& truncated,
                             double gamma, double lmbda) {
  return single_return("pyrl::lambda_return", reward, next_value, terminated, truncated, gamma,
                       lmbda, [](const auto& scans) { return scans.lambda_return; });
}

// Shared set-up of the two window ops: checks, contiguous inputs and [T, N] outputs.
struct WindowInputs {
  at::Tensor reward, value, next_value, terminated, truncated, uniform;
};

WindowInputs window_inputs(const char* op, const at::Tensor& reward, const at::Tensor& value,
                           const at::Tensor& next_value, const at::Tensor& terminated,
                           const at::Tensor& truncated, const std::optional<at::Tensor>& uniform,
                           int64_t n, double gamma) {
  check_rollout(op, reward, gamma);
  TORCH_CHECK(n >= 1, op, ": n should be >= 1, got ", n);
  WindowInputs in;
  if (value.defined()) {
    checks::like(op, "value", value, "reward", reward);
    checks::like(op, "next_value", next_value, "reward", reward);
    in.value = value.contiguous();
    in.next_value = next_value.contiguous();
  }
  in.reward = reward.contiguous();
  in.terminated = flag_bytes(op, "terminated", terminated, reward);
  in.truncated = flag_bytes(op, "truncated", truncated, reward);
  if (uniform.has_value()) {
    checks::shaped(op, "uniform", *uniform, reward.sizes().slice(0, 2), "reward", reward);
    TORCH_CHECK(uniform->scalar_type() == reward.scalar_type(), op,
                ": uniform should have reward's dtype ", reward.scalar_type(), ", got ",
                uniform->scalar_type());
    in.uniform = uniform->contiguous();
  }
  return in;
}

template <typename T>
WindowArgs<T> window_args(const WindowInputs& in, int64_t n, double gamma, double lmbda) {
  const auto& r = in.reward;
  return {r.const_data_ptr<T>(),
          in.value.defined() ? in.value.const_data_ptr<T>() : nullptr,
          in.next_value.defined() ? in.next_value.const_data_ptr<T>() : nullptr,
          bytes_of(in.terminated),
          bytes_of(in.truncated),
          in.uniform.defined() ? in.uniform.const_data_ptr<T>() : nullptr,
          r.size(0),
          r.size(1),
          r.dim() == 3 ? r.size(2) : 1,
          n,
          gamma,
          lmbda};
}

// The window ops' outputs: the return or credit shaped like reward, discount and boot [T, N].
std::tuple<at::Tensor, at::Tensor, at::Tensor> window_outputs(const at::Tensor& reward) {
  const auto steps_by_envs = reward.sizes().slice(0, 2);
  return {at::empty_like(reward), at::empty(steps_by_envs, reward.options()),
          at::empty(steps_by_envs, reward.options().dtype(at::kLong))};
}

template <typename Fn>
void parallel_windows(const WindowInputs& in, int64_t n, const Fn& fn) {
  const int64_t windows = in.reward.size(0) * in.reward.size(1);
  const int64_t per_window = n * (in.reward.numel() / std::max<int64_t>(1, windows));
  const int64_t grain = std::max<int64_t>(1, kMinWorkPerTask / std::max<int64_t>(1, per_window));
  at::parallel_for(0, windows, grain, fn);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> nstep_return_cpu(
    const at::Tensor& reward, const at::Tensor& terminated, const at::Tensor& truncated,
    const std::optional<at::Tensor>& uniform, int64_t n, double gamma) {
  const auto in = window_inputs("pyrl::nstep_return", reward, at::Tensor(), at::Tensor(),
                                terminated, truncated, uniform, n, gamma);
  auto [ret, discount, boot] = window_outputs(in.reward);
  AT_DISPATCH_FLOATING_TYPES(in.reward.scalar_type(), "pyrl::nstep_return", [&] {
    const auto args = window_args<scalar_t>(in, n, gamma, 0.0);
    auto* r = ret.mutable_data_ptr<scalar_t>();
    auto* d = discount.mutable_data_ptr<scalar_t>();
    auto* b = boot.mutable_data_ptr<int64_t>();
    parallel_windows(in, n, [&](int64_t begin, int64_t end) {
      kernels::cpu_scans<scalar_t>().nstep_return(args, r, d, b, begin, end);
    });
  });
  return {ret, discount, boot};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> nstep_gae_cpu(
    const at::Tensor& reward, const at::Tensor& value, const at::Tensor& next_value,
    const at::Tensor& terminated, const at::Tensor& truncated,
    const std::optional<at::Tensor>& uniform, int64_t n, double gamma, double lmbda) {
  constexpr const char* op = "pyrl::nstep_gae";
  checks::unit_interval(op, "lmbda", lmbda);
  const auto in =
      window_inputs(op, reward, value, next_value, terminated, truncated, uniform, n, gamma);
  auto [credit, discount, boot] = window_outputs(in.reward);
  AT_DISPATCH_FLOATING_TYPES(in.reward.scalar_type(), "pyrl::nstep_gae", [&] {
    const auto args = window_args<scalar_t>(in, n, gamma, lmbda);
    auto* c = credit.mutable_data_ptr<scalar_t>();
    auto* d = discount.mutable_data_ptr<scalar_t>();
    auto* b = boot.mutable_data_ptr<int64_t>();
    parallel_windows(in, n, [&](int64_t begin, int64_t end) {
      kernels::cpu_scans<scalar_t>().nstep_gae(args, c, d, b, begin, end);
    });
  });
  return {credit, discount, boot};
}

}  // namespace

// ---- off-policy corrections ------------------------------------------------------------------

// Shared set-up of V-trace and Retrace: checks, contiguous inputs, the arguments.
struct OffPolicyInputs {
  at::Tensor log_rho, reward, value, next_value, terminated, truncated;
};

OffPolicyInputs off_policy_inputs(const char* op, const at::Tensor& log_rho,
                                  const at::Tensor& reward, const at::Tensor& value,
                                  const char* value_name, const at::Tensor& next_value,
                                  const char* next_name, const at::Tensor& terminated,
                                  const at::Tensor& truncated, double gamma, double lmbda) {
  checks::floating(op, "reward", reward);
  checks::rank(op, "reward", reward, 2, 2, "2-D [T, N]");
  checks::unit_interval(op, "gamma", gamma);
  checks::unit_interval(op, "lmbda", lmbda);
  checks::like(op, "log_rho", log_rho, "reward", reward);
  checks::like(op, value_name, value, "reward", reward);
  checks::like(op, next_name, next_value, "reward", reward);
  OffPolicyInputs in{log_rho.contiguous(), reward.contiguous(), value.contiguous(),
                     next_value.contiguous(), flag_bytes(op, "terminated", terminated, reward),
                     flag_bytes(op, "truncated", truncated, reward)};
  AT_DISPATCH_FLOATING_TYPES(in.log_rho.scalar_type(), "pyrl::off_policy", [&] {
    // A NaN ratio would poison every target before it in its column: refuse it by name.
    const scalar_t* x = in.log_rho.const_data_ptr<scalar_t>();
    const int64_t count = in.log_rho.numel();
    bool any_nan = false;
    for (int64_t i = 0; i < count; ++i) any_nan |= x[i] != x[i];  // branch-free: vectorises
    for (int64_t i = 0; any_nan && i < count; ++i) {
      TORCH_CHECK(x[i] == x[i], op, ": log_rho should not be NaN, got NaN at flat position ", i,
                  " (a behaviour probability of 0 gives -inf, not NaN)");
    }
  });
  return in;
}

template <typename T>
kernels::OffPolicyArgs<T> off_policy_args(const OffPolicyInputs& in, double gamma,
                                          double rho_bar, double c_bar, double lmbda) {
  const int64_t steps = in.reward.size(0);
  return {in.log_rho.const_data_ptr<T>(), in.reward.const_data_ptr<T>(),
          in.value.const_data_ptr<T>(),   in.next_value.const_data_ptr<T>(),
          bytes_of(in.terminated),        bytes_of(in.truncated),
          steps,                          steps == 0 ? 0 : in.reward.numel() / steps,
          gamma,                          rho_bar,
          c_bar,                          lmbda};
}

std::tuple<at::Tensor, at::Tensor> vtrace_cpu(const at::Tensor& log_rho, const at::Tensor& reward,
                                              const at::Tensor& value,
                                              const at::Tensor& next_value,
                                              const at::Tensor& terminated,
                                              const at::Tensor& truncated, double gamma,
                                              double rho_bar, double c_bar, double lmbda) {
  constexpr const char* op = "pyrl::vtrace";
  TORCH_CHECK(std::isfinite(rho_bar) && rho_bar > 0, op,
              ": rho_bar should be a finite number > 0, got ", rho_bar);
  TORCH_CHECK(std::isfinite(c_bar) && c_bar > 0, op, ": c_bar should be a finite number > 0, got ",
              c_bar);
  const auto in = off_policy_inputs(op, log_rho, reward, value, "value", next_value, "next_value",
                                    terminated, truncated, gamma, lmbda);
  auto vs = at::empty_like(in.reward), pg_advantage = at::empty_like(in.reward);
  AT_DISPATCH_FLOATING_TYPES(in.reward.scalar_type(), op, [&] {
    const auto args = off_policy_args<scalar_t>(in, gamma, rho_bar, c_bar, lmbda);
    auto* out_vs = vs.mutable_data_ptr<scalar_t>();
    auto* out_pg = pg_advantage.mutable_data_ptr<scalar_t>();
    parallel_columns(args.steps, args.columns, [&](int64_t begin, int64_t end) {
      kernels::cpu_scans<scalar_t>().vtrace(args, out_vs, out_pg, begin, end);
    });
  });
  return {vs, pg_advantage};
}

at::Tensor retrace_cpu(const at::Tensor& log_rho, const at::Tensor& reward, const at::Tensor& q,
                       const at::Tensor& next_v, const at::Tensor& terminated,
                       const at::Tensor& truncated, double gamma, double lmbda) {
  constexpr const char* op = "pyrl::retrace";
  const auto in = off_policy_inputs(op, log_rho, reward, q, "q", next_v, "next_v", terminated,
                                    truncated, gamma, lmbda);
  auto target = at::empty_like(in.reward);
  AT_DISPATCH_FLOATING_TYPES(in.reward.scalar_type(), op, [&] {
    const auto args = off_policy_args<scalar_t>(in, gamma, 1.0, 1.0, lmbda);
    auto* out = target.mutable_data_ptr<scalar_t>();
    parallel_columns(args.steps, args.columns, [&](int64_t begin, int64_t end) {
      kernels::cpu_scans<scalar_t>().retrace(args, out, begin, end);
    });
  });
  return target;
}

TORCH_LIBRARY_FRAGMENT(pyrl, m) {
  m.def(
      "gae(Tensor reward, Tensor value, Tensor next_value, Tensor terminated, Tensor truncated, "
      "float gamma, float lmbda) -> (Tensor advantage, Tensor value_target)");
  m.def(
      "discounted_return(Tensor reward, Tensor next_value, Tensor terminated, Tensor truncated, "
      "float gamma) -> Tensor");
  m.def(
      "lambda_return(Tensor reward, Tensor next_value, Tensor terminated, Tensor truncated, "
      "float gamma, float lmbda) -> Tensor");
  m.def(
      "nstep_return(Tensor reward, Tensor terminated, Tensor truncated, Tensor? uniform, int n, "
      "float gamma) -> (Tensor ret, Tensor discount, Tensor boot)");
  m.def(
      "nstep_gae(Tensor reward, Tensor value, Tensor next_value, Tensor terminated, "
      "Tensor truncated, Tensor? uniform, int n, float gamma, float lmbda) "
      "-> (Tensor credit, Tensor discount, Tensor boot)");
  m.def(
      "vtrace(Tensor log_rho, Tensor reward, Tensor value, Tensor next_value, Tensor terminated, "
      "Tensor truncated, float gamma, float rho_bar, float c_bar, float lmbda) "
      "-> (Tensor vs, Tensor pg_advantage)");
  m.def(
      "retrace(Tensor log_rho, Tensor reward, Tensor q, Tensor next_v, Tensor terminated, "
      "Tensor truncated, float gamma, float lmbda) -> Tensor");
}

TORCH_LIBRARY_IMPL(pyrl, CPU, m) {
  m.impl("gae", &gae_cpu);
  m.impl("discounted_return", &discounted_return_cpu);
  m.impl("lambda_return", &lambda_return_cpu);
  m.impl("nstep_return", &nstep_return_cpu);
  m.impl("nstep_gae", &nstep_gae_cpu);
  m.impl("vtrace", &vtrace_cpu);
  m.impl("retrace", &retrace_cpu);
}

}  // namespace pyrl
