// L-BFGS-B options and the argument checks of the whole-run solver ops, shared by their CPU and CUDA entry points
// (torch headers).
#pragma once

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <algorithm>

#include "common/op_checks.h"
#include "optim/lbfgsb.h"

namespace pdfsolve {

inline optim::Options solver_options(const char* op, int64_t m, double ftol, double gtol, int64_t maxiter,
                                     int64_t maxfun, int64_t maxls) {
  TORCH_CHECK(m >= 1, op, ": m must be >= 1, got ", m);
  TORCH_CHECK(maxiter >= 1 && maxfun >= 1 && maxls >= 1, op, ": maxiter, maxfun and maxls must be >= 1");
  TORCH_CHECK(ftol >= 0 && gtol >= 0, op, ": ftol and gtol must be >= 0");
  optim::Options opt;
  opt.m = m;
  opt.ftol = ftol;
  opt.gtol = gtol;
  opt.maxiter = maxiter;
  opt.maxfun = maxfun;
  opt.maxls = maxls;
  return opt;
}

//! Options of the whole-run reconstruction ops: scipy's maxfun default (raised for long runs) and scipy's maxls.
inline optim::Options reconstruction_options(const char* op, int64_t m, double ftol, double gtol, int64_t maxiter) {
  return solver_options(op, m, ftol, gtol, maxiter, std::max<int64_t>(15000, 2 * maxiter), 20);
}

//! trilaterate's tensors: x0 (B, N, 3) float/double, mask (B, N) bool, target_pair (B, N, N), target_points
//! (B, N, P) and points (P, 3), all on x0's device.
inline void check_trilateration_args(const char* op, const at::Tensor& x0, const at::Tensor& mask,
                                     const at::Tensor& target_pair, const at::Tensor& target_points,
                                     const at::Tensor& points) {
  check_masked_atoms(op, x0, mask);
  const int64_t B = x0.size(0), N = x0.size(1);
  TORCH_CHECK(points.dim() == 2 && points.size(1) == 3, op, ": points must have shape (P, 3), got ", points.sizes());
  const int64_t P = points.size(0);
  TORCH_CHECK(target_pair.sizes() == at::IntArrayRef({B, N, N}), op, ": target_pair must have shape (", B, ", ", N,
              ", ", N, "), got ", target_pair.sizes());
  TORCH_CHECK(target_points.sizes() == at::IntArrayRef({B, N, P}), op, ": target_points must have shape (", B, ", ",
              N, ", ", P, "), got ", target_points.sizes());
  for (const at::Tensor* t : {&target_pair, &target_points, &points})
    TORCH_CHECK(t->device() == x0.device(), op, ": target_pair, target_points and points must be on x0's device (",
                x0.device(), "), got ", t->device());
}

//! fit_affinity's tensors: x0 (B, N, 3) float/double, mask (B, N) bool, target (B, N, N) on x0's device and sigma
//! (B,) of x0's dtype and device, finite and > 0 (read: one sync on CUDA).
inline void check_affinity_args(const char* op, const at::Tensor& x0, const at::Tensor& mask, const at::Tensor& target,
                                const at::Tensor& sigma) {
  check_masked_atoms(op, x0, mask);
  const int64_t B = x0.size(0), N = x0.size(1);
  TORCH_CHECK(target.sizes() == at::IntArrayRef({B, N, N}), op, ": target must have shape (", B, ", ", N, ", ", N,
              "), got ", target.sizes());
  TORCH_CHECK(target.device() == x0.device(), op, ": target must be on x0's device (", x0.device(), "), got ",
              target.device());
  check_sigma(op, sigma, x0);
}

}  // namespace pdfsolve
