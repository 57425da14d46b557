// The direct route of pyrl.returns' rollout ops (gae, discounted_return, lambda_return, vtrace,
// retrace) for their common call: plain CPU tensors, float discounts, a next value of the reward's
// shape. The dispatcher's argument parsing costs more than a short rollout's scan, so these skip
// it and run the very functions the dispatcher's CPU kernels run (returns.h): both routes share
// every check. Each returns None for anything else (another device, a tensor subclass or one that
// requires grad, tensor or integer discounts, a [N] next value), which the Python wrapper then
// sends the general way.
#include <torch/csrc/autograd/python_variable.h>
#include <torch/csrc/utils/pybind.h>

#include <array>

#include "torch/returns.h"

namespace py = pybind11;

namespace pyrl {
namespace {

// Rollouts of at least this many elements release the GIL while they run; a shorter scan takes
// less time than handing the GIL over and back.
constexpr int64_t kReleaseGilFrom = int64_t{1} << 16;

// The tensor behind `value` if it is a plain torch.Tensor on the CPU with storage that does not
// require grad; null otherwise.
const at::Tensor* plain_cpu(py::handle value) {
  if (!THPVariable_CheckExact(value.ptr())) return nullptr;
  const at::Tensor& t = THPVariable_Unpack(value.ptr());
  return t.is_cpu() && t.has_storage() && !t.requires_grad() ? &t : nullptr;
}

// A direct call's arguments: every tensor plain (plain_cpu), every scalar a Python float, and the
// tensor at `next` (the next value) of the reward's (at `reward`) shape; or false.
template <size_t kTensors, size_t kFloats>
struct DirectArgs {
  std::array<const at::Tensor*, kTensors> t{};
  std::array<double, kFloats> f{};

  bool read(const std::array<py::handle, kTensors>& tensors,
            const std::array<py::handle, kFloats>& floats, size_t reward, size_t next) {
    for (size_t i = 0; i < kTensors; ++i) {
      t[i] = plain_cpu(tensors[i]);
      if (t[i] == nullptr) return false;
    }
    for (size_t i = 0; i < kFloats; ++i) {
      if (!PyFloat_CheckExact(floats[i].ptr())) return false;
      f[i] = PyFloat_AS_DOUBLE(floats[i].ptr());
    }
    return t[next]->sizes() == t[reward]->sizes();
  }

  const at::Tensor& operator[](size_t i) const { return *t[i]; }
};

// run() as a Python value, with the GIL released for a long rollout.
template <typename Run>
py::object call(const at::Tensor& reward, const Run& run) {
  decltype(run()) out;
  if (reward.numel() >= kReleaseGilFrom) {
    py::gil_scoped_release release;
    out = run();
  } else {
    out = run();
  }
  return py::cast(std::move(out));
}

py::object gae_direct(py::handle reward, py::handle value, py::handle next_value,
                      py::handle terminated, py::handle truncated, py::handle gamma,
                      py::handle lmbda) {
  DirectArgs<5, 2> a;
  if (!a.read({reward, value, next_value, terminated, truncated}, {gamma, lmbda}, 0, 2)) {
    return py::none();
  }
  return call(a[0], [&] { return gae_cpu(a[0], a[1], a[2], a[3], a[4], a.f[0], a.f[1]); });
}

py::object discounted_return_direct(py::handle reward, py::handle next_value, py::handle terminated,
                                    py::handle truncated, py::handle gamma) {
  DirectArgs<4, 1> a;
  if (!a.read({reward, next_value, terminated, truncated}, {gamma}, 0, 1)) return py::none();
  return call(a[0], [&] { return discounted_return_cpu(a[0], a[1], a[2], a[3], a.f[0]); });
}

py::object lambda_return_direct(py::handle reward, py::handle next_value, py::handle terminated,
                                py::handle truncated, py::handle gamma, py::handle lmbda) {
  DirectArgs<4, 2> a;
  if (!a.read({reward, next_value, terminated, truncated}, {gamma, lmbda}, 0, 1)) {
    return py::none();
  }
  return call(a[0], [&] { return lambda_return_cpu(a[0], a[1], a[2], a[3], a.f[0], a.f[1]); });
}

py::object vtrace_direct(py::handle log_rho, py::handle reward, py::handle value,
                         py::handle next_value, py::handle terminated, py::handle truncated,
                         py::handle gamma, py::handle rho_bar, py::handle c_bar, py::handle lmbda) {
  DirectArgs<6, 4> a;
  if (!a.read({log_rho, reward, value, next_value, terminated, truncated},
              {gamma, rho_bar, c_bar, lmbda}, 1, 3)) {
    return py::none();
  }
  return call(a[1], [&] {
    return vtrace_cpu(a[0], a[1], a[2], a[3], a[4], a[5], a.f[0], a.f[1], a.f[2], a.f[3]);
  });
}

py::object retrace_direct(py::handle log_rho, py::handle reward, py::handle q, py::handle next_v,
                          py::handle terminated, py::handle truncated, py::handle gamma,
                          py::handle lmbda) {
  DirectArgs<6, 2> a;
  if (!a.read({log_rho, reward, q, next_v, terminated, truncated}, {gamma, lmbda}, 1, 3)) {
    return py::none();
  }
  return call(a[1],
              [&] { return retrace_cpu(a[0], a[1], a[2], a[3], a[4], a[5], a.f[0], a.f[1]); });
}

}  // namespace

void bind_returns_host(py::module_& m) {
  const char* doc =
      "A pyrl.returns op's direct route (see returns_host.cpp); None if it does "
      "not apply.";
  m.def("gae_direct", &gae_direct, doc);
  m.def("discounted_return_direct", &discounted_return_direct, doc);
  m.def("lambda_return_direct", &lambda_return_direct, doc);
  m.def("vtrace_direct", &vtrace_direct, doc);
  m.def("retrace_direct", &retrace_direct, doc);
}

}  // namespace pyrl
