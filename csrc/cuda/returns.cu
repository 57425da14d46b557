// CUDA launches of the returns bodies (csrc/kernels/returns.h). The recurrences give a thread a
// column and walk time backwards; consecutive threads read consecutive columns of a row, so each
// step's loads are coalesced. The window ops give a thread a window start.
#include "launch.cuh"
#include "returns.h"

namespace pyrl::cuda {

#define PYRL_INSTANTIATE(T)                                                      \
  template cudaError_t launch(const kernels::GaeBody<T>&, cudaStream_t);         \
  template cudaError_t launch(const kernels::ReturnBody<T>&, cudaStream_t);      \
  template cudaError_t launch(const kernels::NstepReturnBody<T>&, cudaStream_t); \
  template cudaError_t launch(const kernels::NstepGaeBody<T>&, cudaStream_t);    \
  template cudaError_t launch(const kernels::VtraceBody<T>&, cudaStream_t);      \
  template cudaError_t launch(const kernels::RetraceBody<T>&, cudaStream_t);
PYRL_INSTANTIATE(float)
PYRL_INSTANTIATE(double)
#undef PYRL_INSTANTIATE

}  // namespace pyrl::cuda
