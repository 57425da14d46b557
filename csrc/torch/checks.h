#pragma once
// Argument checks shared by the op families. Every message names the op, the argument and what
// came in, e.g. "pyrl::gae: reward should be float32 or float64, got Long".
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <string>

namespace pyrl::checks {

inline std::string shape_of(const at::Tensor& t) {
  return std::to_string(t.dim()) + "-D " + c10::str(t.sizes());
}

inline void floating(const char* op, const char* name, const at::Tensor& t) {
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, op, ": ", name,
              " should be float32 or float64, got ", t.scalar_type());
}

inline void rank(const char* op, const char* name, const at::Tensor& t, int64_t lo, int64_t hi,
                 const char* layout) {
  TORCH_CHECK(t.dim() >= lo && t.dim() <= hi, op, ": ", name, " should be ", layout, ", got ",
              shape_of(t));
}

// `t` must match `ref` in shape, dtype and device.
inline void like(const char* op, const char* name, const at::Tensor& t, const char* ref_name,
                 const at::Tensor& ref) {
  TORCH_CHECK(t.device() == ref.device(), op, ": ", name, " should be on ", ref_name, "'s device ",
              ref.device(), ", got ", t.device());
  TORCH_CHECK(t.sizes() == ref.sizes(), op, ": ", name, " should have ", ref_name, "'s shape ",
              ref.sizes(), ", got ", t.sizes());
  TORCH_CHECK(t.scalar_type() == ref.scalar_type(), op, ": ", name, " should have ", ref_name,
              "'s dtype ", ref.scalar_type(), ", got ", t.scalar_type());
}

// `t` must be on ref's device with the given leading shape (dtype checked separately).
inline void shaped(const char* op, const char* name, const at::Tensor& t, at::IntArrayRef shape,
                   const char* ref_name, const at::Tensor& ref) {
  TORCH_CHECK(t.device() == ref.device(), op, ": ", name, " should be on ", ref_name, "'s device ",
              ref.device(), ", got ", t.device());
  TORCH_CHECK(t.sizes() == shape, op, ": ", name, " should have shape ", shape, " (from ", ref_name,
              "), got ", t.sizes());
}

inline void unit_interval(const char* op, const char* name, double x) {
  TORCH_CHECK(x >= 0.0 && x <= 1.0, op, ": ", name, " should be in [0, 1], got ", x);
}

}  // namespace pyrl::checks
