#pragma once
// PYRL_HD marks the math that both the CPU ops and the CUDA kernels run: it is written once,
// here in csrc/kernels/, with no torch or Python headers, so nvcc can compile it anywhere.
#if defined(__CUDACC__)
#define PYRL_HD __host__ __device__
#else
#define PYRL_HD
#endif
