#pragma once
// The returns ops written once for every backend: argument checks, contiguous inputs, outputs on
// the input's device, and then `run(body)` with the kernel body of csrc/kernels/returns.h for the
// input's dtype. The backends differ only in `run`: the CPU's vectorised scans (returns.cpp),
// one CUDA thread per work item (returns_cuda.cpp), and the test-only CPU grid runner (grid.cpp).
//
// Inputs are time-first: reward [T, N] or [T, N, m] (m reward heads), episode flags [T, N].
// Any strides are accepted; the kernels read contiguous copies.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include <cmath>
#include <optional>
#include <tuple>

#include "../kernels/returns.h"
#include "checks.h"

namespace pyrl::returns_ops {

using at::Tensor;

// Episode flags as contiguous bytes: bool and uint8 are read as they are, other dtypes as != 0.
inline Tensor flag_bytes(const char* op, const char* name, const Tensor& flag,
                         const Tensor& reward) {
  checks::shaped(op, name, flag, reward.sizes().slice(0, 2), "reward", reward);
  const bool bytes = flag.scalar_type() == at::kBool || flag.scalar_type() == at::kByte;
  return (bytes ? flag : flag.ne(0)).contiguous();
}

inline const uint8_t* bytes_of(const Tensor& t) {
  return static_cast<const uint8_t*>(t.const_data_ptr());
}

inline void check_rollout(const char* op, const Tensor& reward, double gamma) {
  checks::floating(op, "reward", reward);
  checks::rank(op, "reward", reward, 2, 3, "2-D [T, N] or 3-D [T, N, m]");
  checks::unit_interval(op, "gamma", gamma);
}

// The GAE family scans columns; with m heads each flag column is repeated for its m heads.
inline Tensor per_column(const Tensor& flags, const Tensor& reward) {
  if (reward.dim() == 2) return flags;
  return flags.unsqueeze(-1).expand(reward.sizes()).contiguous();
}

// A per-step gamma or lmbda tensor: [T, N] of the reward's dtype, on its device. Its values must
// be in [0, 1]: checked on the CPU; on a GPU they are not read back (no op synchronises on its
// hot path), and a value outside gives targets as the formulas do. Returns it contiguous, one
// value per reward element (repeated over the m heads) when `per_head`; undefined when absent.
inline Tensor per_step(const char* op, const char* name, const std::optional<Tensor>& given,
                       const Tensor& reward, bool per_head) {
  if (!given.has_value()) return Tensor();
  const Tensor& x = *given;
  checks::shaped(op, name, x, reward.sizes().slice(0, 2), "reward", reward);
  TORCH_CHECK_VALUE(x.scalar_type() == reward.scalar_type(), op, ": ", name,
                    " should have reward's dtype ", reward.scalar_type(), ", got ",
                    x.scalar_type());
  const Tensor values = x.contiguous();
  if (values.is_cpu()) {
    AT_DISPATCH_FLOATING_TYPES(values.scalar_type(), "pyrl::per_step", [&] {
      const scalar_t* v = values.const_data_ptr<scalar_t>();
      const int64_t count = values.numel();
      bool outside = false;
      for (int64_t i = 0; i < count; ++i) outside |= !(v[i] >= 0 && v[i] <= 1);  // NaN too
      for (int64_t i = 0; outside && i < count; ++i) {
        TORCH_CHECK_VALUE(v[i] >= 0 && v[i] <= 1, op, ": ", name,
                          " should be in [0, 1] everywhere, got ", static_cast<double>(v[i]),
                          " at flat position ", i);
      }
    });
  }
  return per_head ? per_column(values, reward).contiguous() : values;
}

template <typename T>
const T* data_or_null(const Tensor& t) {
  return t.defined() ? t.const_data_ptr<T>() : nullptr;
}

template <typename T>
kernels::RolloutArgs<T> rollout_args(const Tensor& reward, const Tensor& value,
                                     const Tensor& next_value, const Tensor& terminated,
                                     const Tensor& truncated, double gamma, double lmbda,
                                     const Tensor& gammas, const Tensor& lmbdas) {
  const int64_t steps = reward.size(0);
  return {reward.const_data_ptr<T>(),
          value.defined() ? value.const_data_ptr<T>() : nullptr,
          next_value.const_data_ptr<T>(),
          bytes_of(terminated),
          bytes_of(truncated),
          steps,
          steps == 0 ? 0 : reward.numel() / steps,
          gamma,
          lmbda,
          data_or_null<T>(gammas),
          data_or_null<T>(lmbdas)};
}

template <typename Run>
std::tuple<Tensor, Tensor> gae(const Run& run, const Tensor& reward, const Tensor& value,
                               const Tensor& next_value, const Tensor& terminated,
                               const Tensor& truncated, double gamma, double lmbda,
                               const std::optional<Tensor>& gammas,
                               const std::optional<Tensor>& lmbdas) {
  constexpr const char* op = "pyrl::gae";
  check_rollout(op, reward, gamma);
  checks::unit_interval(op, "lmbda", lmbda);
  checks::like(op, "value", value, "reward", reward);
  checks::like(op, "next_value", next_value, "reward", reward);
  const auto term = per_column(flag_bytes(op, "terminated", terminated, reward), reward);
  const auto trunc = per_column(flag_bytes(op, "truncated", truncated, reward), reward);
  const auto g = per_step(op, "gamma", gammas, reward, true);
  const auto l = per_step(op, "lmbda", lmbdas, reward, true);
  const auto r = reward.contiguous(), v = value.contiguous(), nv = next_value.contiguous();
  auto advantage = at::empty_like(r), value_target = at::empty_like(r);
  AT_DISPATCH_FLOATING_TYPES(r.scalar_type(), op, [&] {
    run(kernels::GaeBody<scalar_t>{
        rollout_args<scalar_t>(r, v, nv, term, trunc, gamma, lmbda, g, l),
        advantage.mutable_data_ptr<scalar_t>(), value_target.mutable_data_ptr<scalar_t>()});
  });
  return {advantage, value_target};
}

// discounted_return (lambda_form false, lmbda unused) and lambda_return.
template <typename Run>
Tensor single_return(const Run& run, const char* op, const Tensor& reward, const Tensor& next_value,
                     const Tensor& terminated, const Tensor& truncated, double gamma, double lmbda,
                     bool lambda_form, const std::optional<Tensor>& gammas,
                     const std::optional<Tensor>& lmbdas) {
  check_rollout(op, reward, gamma);
  checks::unit_interval(op, "lmbda", lmbda);
  checks::like(op, "next_value", next_value, "reward", reward);
  const auto term = per_column(flag_bytes(op, "terminated", terminated, reward), reward);
  const auto trunc = per_column(flag_bytes(op, "truncated", truncated, reward), reward);
  const auto g = per_step(op, "gamma", gammas, reward, true);
  const auto l = per_step(op, "lmbda", lmbdas, reward, true);
  const auto r = reward.contiguous(), nv = next_value.contiguous();
  auto out = at::empty_like(r);
  AT_DISPATCH_FLOATING_TYPES(r.scalar_type(), "pyrl::single_return", [&] {
    run(kernels::ReturnBody<scalar_t>{
        rollout_args<scalar_t>(r, Tensor(), nv, term, trunc, gamma, lmbda, g, l),
        out.mutable_data_ptr<scalar_t>(), lambda_form});
  });
  return out;
}

template <typename Run>
Tensor discounted_return(const Run& run, const Tensor& reward, const Tensor& next_value,
                         const Tensor& terminated, const Tensor& truncated, double gamma,
                         const std::optional<Tensor>& gammas) {
  return single_return(run, "pyrl::discounted_return", reward, next_value, terminated, truncated,
                       gamma, /*lmbda=*/1.0, /*lambda_form=*/false, gammas, std::nullopt);
}

template <typename Run>
Tensor lambda_return(const Run& run, const Tensor& reward, const Tensor& next_value,
                     const Tensor& terminated, const Tensor& truncated, double gamma, double lmbda,
                     const std::optional<Tensor>& gammas, const std::optional<Tensor>& lmbdas) {
  return single_return(run, "pyrl::lambda_return", reward, next_value, terminated, truncated, gamma,
                       lmbda, /*lambda_form=*/true, gammas, lmbdas);
}

// Shared set-up of the two window ops: checks, contiguous inputs and [T, N] outputs.
struct WindowInputs {
  Tensor reward, value, next_value, terminated, truncated, uniform, gammas, lmbdas;
};

inline WindowInputs window_inputs(const char* op, const Tensor& reward, const Tensor& value,
                                  const Tensor& next_value, const Tensor& terminated,
                                  const Tensor& truncated, const std::optional<Tensor>& uniform,
                                  int64_t n, double gamma, const std::optional<Tensor>& gammas,
                                  const std::optional<Tensor>& lmbdas) {
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
  in.gammas = per_step(op, "gamma", gammas, reward, false);
  in.lmbdas = per_step(op, "lmbda", lmbdas, reward, false);
  return in;
}

template <typename T>
kernels::WindowArgs<T> window_args(const WindowInputs& in, int64_t n, double gamma, double lmbda) {
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
          lmbda,
          data_or_null<T>(in.gammas),
          data_or_null<T>(in.lmbdas)};
}

// The window ops' outputs: the return or credit shaped like reward, discount and boot [T, N].
inline std::tuple<Tensor, Tensor, Tensor> window_outputs(const Tensor& reward) {
  const auto steps_by_envs = reward.sizes().slice(0, 2);
  return {at::empty_like(reward), at::empty(steps_by_envs, reward.options()),
          at::empty(steps_by_envs, reward.options().dtype(at::kLong))};
}

template <typename Run>
std::tuple<Tensor, Tensor, Tensor> nstep_return(const Run& run, const Tensor& reward,
                                                const Tensor& terminated, const Tensor& truncated,
                                                const std::optional<Tensor>& uniform, int64_t n,
                                                double gamma, const std::optional<Tensor>& gammas) {
  constexpr const char* op = "pyrl::nstep_return";
  const auto in = window_inputs(op, reward, Tensor(), Tensor(), terminated, truncated, uniform, n,
                                gamma, gammas, std::nullopt);
  auto [ret, discount, boot] = window_outputs(in.reward);
  AT_DISPATCH_FLOATING_TYPES(in.reward.scalar_type(), op, [&] {
    run(kernels::NstepReturnBody<scalar_t>{
        window_args<scalar_t>(in, n, gamma, 0.0), ret.mutable_data_ptr<scalar_t>(),
        discount.mutable_data_ptr<scalar_t>(), boot.mutable_data_ptr<int64_t>()});
  });
  return {ret, discount, boot};
}

template <typename Run>
std::tuple<Tensor, Tensor, Tensor> nstep_gae(const Run& run, const Tensor& reward,
                                             const Tensor& value, const Tensor& next_value,
                                             const Tensor& terminated, const Tensor& truncated,
                                             const std::optional<Tensor>& uniform, int64_t n,
                                             double gamma, double lmbda,
                                             const std::optional<Tensor>& gammas,
                                             const std::optional<Tensor>& lmbdas) {
  constexpr const char* op = "pyrl::nstep_gae";
  checks::unit_interval(op, "lmbda", lmbda);
  const auto in = window_inputs(op, reward, value, next_value, terminated, truncated, uniform, n,
                                gamma, gammas, lmbdas);
  auto [credit, discount, boot] = window_outputs(in.reward);
  AT_DISPATCH_FLOATING_TYPES(in.reward.scalar_type(), op, [&] {
    run(kernels::NstepGaeBody<scalar_t>{
        window_args<scalar_t>(in, n, gamma, lmbda), credit.mutable_data_ptr<scalar_t>(),
        discount.mutable_data_ptr<scalar_t>(), boot.mutable_data_ptr<int64_t>()});
  });
  return {credit, discount, boot};
}

// ---- off-policy corrections ------------------------------------------------------------------

struct OffPolicyInputs {
  Tensor log_rho, reward, value, next_value, terminated, truncated, gammas, lmbdas;
};

// Shared set-up of V-trace and Retrace: checks, contiguous inputs. A NaN ratio would poison every
// target before it in its column, so it is refused by name (on a GPU this check reads one value
// back, the op's only synchronisation).
inline OffPolicyInputs off_policy_inputs(const char* op, const Tensor& log_rho,
                                         const Tensor& reward, const Tensor& value,
                                         const char* value_name, const Tensor& next_value,
                                         const char* next_name, const Tensor& terminated,
                                         const Tensor& truncated, double gamma, double lmbda,
                                         const std::optional<Tensor>& gammas,
                                         const std::optional<Tensor>& lmbdas) {
  checks::floating(op, "reward", reward);
  checks::rank(op, "reward", reward, 2, 2, "2-D [T, N]");
  checks::unit_interval(op, "gamma", gamma);
  checks::unit_interval(op, "lmbda", lmbda);
  checks::like(op, "log_rho", log_rho, "reward", reward);
  checks::like(op, value_name, value, "reward", reward);
  checks::like(op, next_name, next_value, "reward", reward);
  OffPolicyInputs in{log_rho.contiguous(),
                     reward.contiguous(),
                     value.contiguous(),
                     next_value.contiguous(),
                     flag_bytes(op, "terminated", terminated, reward),
                     flag_bytes(op, "truncated", truncated, reward),
                     per_step(op, "gamma", gammas, reward, false),
                     per_step(op, "lmbda", lmbdas, reward, false)};
  if (!in.log_rho.is_cpu()) {
    TORCH_CHECK(!in.log_rho.isnan().any().item<bool>(), op,
                ": log_rho should not be NaN, got NaN at flat position ",
                in.log_rho.isnan().flatten().nonzero()[0].item<int64_t>(),
                " (a behaviour probability of 0 gives -inf, not NaN)");
    return in;
  }
  AT_DISPATCH_FLOATING_TYPES(in.log_rho.scalar_type(), "pyrl::off_policy", [&] {
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
kernels::OffPolicyArgs<T> off_policy_args(const OffPolicyInputs& in, double gamma, double rho_bar,
                                          double c_bar, double lmbda) {
  const int64_t steps = in.reward.size(0);
  return {in.log_rho.const_data_ptr<T>(),
          in.reward.const_data_ptr<T>(),
          in.value.const_data_ptr<T>(),
          in.next_value.const_data_ptr<T>(),
          bytes_of(in.terminated),
          bytes_of(in.truncated),
          steps,
          steps == 0 ? 0 : in.reward.numel() / steps,
          gamma,
          rho_bar,
          c_bar,
          lmbda,
          data_or_null<T>(in.gammas),
          data_or_null<T>(in.lmbdas)};
}

template <typename Run>
std::tuple<Tensor, Tensor> vtrace(const Run& run, const Tensor& log_rho, const Tensor& reward,
                                  const Tensor& value, const Tensor& next_value,
                                  const Tensor& terminated, const Tensor& truncated, double gamma,
                                  double rho_bar, double c_bar, double lmbda,
                                  const std::optional<Tensor>& gammas,
                                  const std::optional<Tensor>& lmbdas) {
  constexpr const char* op = "pyrl::vtrace";
  TORCH_CHECK(std::isfinite(rho_bar) && rho_bar > 0, op,
              ": rho_bar should be a finite number > 0, got ", rho_bar);
  TORCH_CHECK(std::isfinite(c_bar) && c_bar > 0, op, ": c_bar should be a finite number > 0, got ",
              c_bar);
  const auto in = off_policy_inputs(op, log_rho, reward, value, "value", next_value, "next_value",
                                    terminated, truncated, gamma, lmbda, gammas, lmbdas);
  auto vs = at::empty_like(in.reward), pg_advantage = at::empty_like(in.reward);
  AT_DISPATCH_FLOATING_TYPES(in.reward.scalar_type(), op, [&] {
    run(kernels::VtraceBody<scalar_t>{off_policy_args<scalar_t>(in, gamma, rho_bar, c_bar, lmbda),
                                      vs.mutable_data_ptr<scalar_t>(),
                                      pg_advantage.mutable_data_ptr<scalar_t>()});
  });
  return {vs, pg_advantage};
}

template <typename Run>
Tensor retrace(const Run& run, const Tensor& log_rho, const Tensor& reward, const Tensor& q,
               const Tensor& next_v, const Tensor& terminated, const Tensor& truncated,
               double gamma, double lmbda, const std::optional<Tensor>& gammas,
               const std::optional<Tensor>& lmbdas) {
  constexpr const char* op = "pyrl::retrace";
  const auto in = off_policy_inputs(op, log_rho, reward, q, "q", next_v, "next_v", terminated,
                                    truncated, gamma, lmbda, gammas, lmbdas);
  auto target = at::empty_like(in.reward);
  AT_DISPATCH_FLOATING_TYPES(in.reward.scalar_type(), op, [&] {
    run(kernels::RetraceBody<scalar_t>{off_policy_args<scalar_t>(in, gamma, 1.0, 1.0, lmbda),
                                       target.mutable_data_ptr<scalar_t>()});
  });
  return target;
}

// The schemas of the seven ops (registered in returns.cpp; the grid runner's test library
// grid.cpp registers the same ones).
inline constexpr const char* kSchemas[] = {
    "gae(Tensor reward, Tensor value, Tensor next_value, Tensor terminated, Tensor truncated, "
    "float gamma, float lmbda, Tensor? gammas=None, Tensor? lmbdas=None) "
    "-> (Tensor advantage, Tensor value_target)",
    "discounted_return(Tensor reward, Tensor next_value, Tensor terminated, Tensor truncated, "
    "float gamma, Tensor? gammas=None) -> Tensor",
    "lambda_return(Tensor reward, Tensor next_value, Tensor terminated, Tensor truncated, "
    "float gamma, float lmbda, Tensor? gammas=None, Tensor? lmbdas=None) -> Tensor",
    "nstep_return(Tensor reward, Tensor terminated, Tensor truncated, Tensor? uniform, int n, "
    "float gamma, Tensor? gammas=None) -> (Tensor ret, Tensor discount, Tensor boot)",
    "nstep_gae(Tensor reward, Tensor value, Tensor next_value, Tensor terminated, "
    "Tensor truncated, Tensor? uniform, int n, float gamma, float lmbda, Tensor? gammas=None, "
    "Tensor? lmbdas=None) -> (Tensor credit, Tensor discount, Tensor boot)",
    "vtrace(Tensor log_rho, Tensor reward, Tensor value, Tensor next_value, Tensor terminated, "
    "Tensor truncated, float gamma, float rho_bar, float c_bar, float lmbda, Tensor? gammas=None, "
    "Tensor? lmbdas=None) -> (Tensor vs, Tensor pg_advantage)",
    "retrace(Tensor log_rho, Tensor reward, Tensor q, Tensor next_v, Tensor terminated, "
    "Tensor truncated, float gamma, float lmbda, Tensor? gammas=None, Tensor? lmbdas=None) "
    "-> Tensor"};

// Registers the seven ops' implementations in `m` (a TORCH_LIBRARY_IMPL block), each running
// its kernel body with a Run made from the op's reward tensor (the CUDA backend takes its device).
template <typename Run>
void register_impls(torch::Library& m) {
  using O = std::optional<Tensor>;
  m.impl("gae",
         [](const Tensor& r, const Tensor& v, const Tensor& nv, const Tensor& term,
            const Tensor& trunc, double gamma, double lmbda, const O& gammas, const O& lmbdas) {
           return gae(Run(r), r, v, nv, term, trunc, gamma, lmbda, gammas, lmbdas);
         });
  m.impl("discounted_return", [](const Tensor& r, const Tensor& nv, const Tensor& term,
                                 const Tensor& trunc, double gamma, const O& gammas) {
    return discounted_return(Run(r), r, nv, term, trunc, gamma, gammas);
  });
  m.impl("lambda_return",
         [](const Tensor& r, const Tensor& nv, const Tensor& term, const Tensor& trunc,
            double gamma, double lmbda, const O& gammas, const O& lmbdas) {
           return lambda_return(Run(r), r, nv, term, trunc, gamma, lmbda, gammas, lmbdas);
         });
  m.impl("nstep_return", [](const Tensor& r, const Tensor& term, const Tensor& trunc, const O& u,
                            int64_t n, double gamma, const O& gammas) {
    return nstep_return(Run(r), r, term, trunc, u, n, gamma, gammas);
  });
  m.impl("nstep_gae", [](const Tensor& r, const Tensor& v, const Tensor& nv, const Tensor& term,
                         const Tensor& trunc, const O& u, int64_t n, double gamma, double lmbda,
                         const O& gammas, const O& lmbdas) {
    return nstep_gae(Run(r), r, v, nv, term, trunc, u, n, gamma, lmbda, gammas, lmbdas);
  });
  m.impl("vtrace", [](const Tensor& log_rho, const Tensor& r, const Tensor& v, const Tensor& nv,
                      const Tensor& term, const Tensor& trunc, double gamma, double rho_bar,
                      double c_bar, double lmbda, const O& gammas, const O& lmbdas) {
    return vtrace(Run(r), log_rho, r, v, nv, term, trunc, gamma, rho_bar, c_bar, lmbda, gammas,
                  lmbdas);
  });
  m.impl("retrace", [](const Tensor& log_rho, const Tensor& r, const Tensor& q, const Tensor& nv,
                       const Tensor& term, const Tensor& trunc, double gamma, double lmbda,
                       const O& gammas, const O& lmbdas) {
    return retrace(Run(r), log_rho, r, q, nv, term, trunc, gamma, lmbda, gammas, lmbdas);
  });
}

}  // namespace pyrl::returns_ops

namespace pyrl {

// The CPU rollout ops with float discounts: the direct route's calls (csrc/returns_host.cpp).
std::tuple<at::Tensor, at::Tensor> gae_cpu(const at::Tensor& reward, const at::Tensor& value,
                                           const at::Tensor& next_value,
                                           const at::Tensor& terminated,
                                           const at::Tensor& truncated, double gamma, double lmbda);
at::Tensor discounted_return_cpu(const at::Tensor& reward, const at::Tensor& next_value,
                                 const at::Tensor& terminated, const at::Tensor& truncated,
                                 double gamma);
at::Tensor lambda_return_cpu(const at::Tensor& reward, const at::Tensor& next_value,
                             const at::Tensor& terminated, const at::Tensor& truncated,
                             double gamma, double lmbda);
std::tuple<at::Tensor, at::Tensor> vtrace_cpu(const at::Tensor& log_rho, const at::Tensor& reward,
                                              const at::Tensor& value, const at::Tensor& next_value,
                                              const at::Tensor& terminated,
                                              const at::Tensor& truncated, double gamma,
                                              double rho_bar, double c_bar, double lmbda);
at::Tensor retrace_cpu(const at::Tensor& log_rho, const at::Tensor& reward, const at::Tensor& q,
                       const at::Tensor& next_v, const at::Tensor& terminated,
                       const at::Tensor& truncated, double gamma, double lmbda);

}  // namespace pyrl
