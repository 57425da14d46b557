#pragma once
// Launchers for the returns kernels in returns.cu: raw pointers, sizes and the caller's stream.
// Same argument structs as the CPU scans (csrc/kernels/returns.h).
#include <cuda_runtime_api.h>

#include "../kernels/returns.h"

namespace pyrl::cuda {

template <typename T>
cudaError_t gae(const kernels::RolloutArgs<T>& args, T* advantage, T* value_target,
                cudaStream_t stream);

template <typename T>
cudaError_t discounted_return(const kernels::RolloutArgs<T>& args, T* out, cudaStream_t stream);

template <typename T>
cudaError_t lambda_return(const kernels::RolloutArgs<T>& args, T* out, cudaStream_t stream);

template <typename T>
cudaError_t nstep_return(const kernels::WindowArgs<T>& args, T* ret, T* discount, int64_t* boot,
                         cudaStream_t stream);

template <typename T>
cudaError_t nstep_gae(const kernels::WindowArgs<T>& args, T* credit, T* discount, int64_t* boot,
                      cudaStream_t stream);

template <typename T>
cudaError_t vtrace(const kernels::OffPolicyArgs<T>& args, T* vs, T* pg_advantage,
                   cudaStream_t stream);

template <typename T>
cudaError_t retrace(const kernels::OffPolicyArgs<T>& args, T* target, cudaStream_t stream);

}  // namespace pyrl::cuda
