// pyrl._C.gae_direct: the common call of pyrl.returns.gae (CPU tensors, float gamma and lmbda, a
// [T, N] next_value) without the dispatcher, whose argument parsing costs more than a short
// rollout's scan. It runs the very function the dispatcher's CPU kernel runs (returns.h), so both
// routes share every check; it returns None for anything else (another device, a tensor subclass
// or one that requires grad, tensor gammas), which the Python wrapper sends the general way.
#include <torch/csrc/autograd/python_variable.h>
#include <torch/csrc/utils/pybind.h>

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

py::object gae_direct(py::handle reward, py::handle value, py::handle next_value,
                      py::handle terminated, py::handle truncated, py::handle gamma,
                      py::handle lmbda) {
  const at::Tensor* in[5];
  const py::handle given[5] = {reward, value, next_value, terminated, truncated};
  for (int i = 0; i < 5; ++i) {
    in[i] = plain_cpu(given[i]);
    if (in[i] == nullptr) return py::none();
  }
  if (!PyFloat_CheckExact(gamma.ptr()) || !PyFloat_CheckExact(lmbda.ptr()) ||
      in[2]->sizes() != in[0]->sizes()) {
    return py::none();
  }
  const double g = PyFloat_AS_DOUBLE(gamma.ptr()), l = PyFloat_AS_DOUBLE(lmbda.ptr());
  std::tuple<at::Tensor, at::Tensor> out;
  if (in[0]->numel() >= kReleaseGilFrom) {
    py::gil_scoped_release release;
    out = gae_cpu(*in[0], *in[1], *in[2], *in[3], *in[4], g, l);
  } else {
    out = gae_cpu(*in[0], *in[1], *in[2], *in[3], *in[4], g, l);
  }
  return py::cast(std::move(out));
}

}  // namespace

void bind_returns_host(py::module_& m) {
  m.def("gae_direct", &gae_direct,
        "pyrl.returns.gae's direct route (see returns_host.cpp); None when it does not apply.");
}

}  // namespace pyrl
