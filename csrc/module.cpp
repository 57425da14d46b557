// pyrl._C: importing it runs the TORCH_LIBRARY registrars of csrc/torch/*.cpp (the ops live in
// torch.ops.pyrl); the pybind11 module itself only reports how the extension was built.
#include <ATen/Parallel.h>
#include <pybind11/pybind11.h>

#include "kernels/returns.h"

namespace py = pybind11;

namespace {

py::dict build_info() {
  py::dict info;
  info["torch_version"] = PYRL_TORCH_VERSION;
  info["compiler"] = std::string(PYRL_COMPILER_ID) + " " + __VERSION__;
  info["cxx_standard"] = static_cast<long>(__cplusplus);
#if defined(_OPENMP)
  info["openmp"] = true;
#else
  info["openmp"] = false;
#endif
  info["threads"] = at::get_num_threads();
  info["cpu_isa"] = pyrl::kernels::cpu_isa();
  info["parallel_backend"] = at::get_parallel_info();
#if defined(PYRL_WITH_CUDA)
  info["cuda"] = true;
#else
  info["cuda"] = false;
#endif
  return info;
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "pyrl compiled extension; its ops are registered as torch.ops.pyrl.*";
  m.def("build_info", &build_info,
        "How this extension was built: torch version, compiler, OpenMP, threads, CUDA kernels.");
}
