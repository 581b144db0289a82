// CUDA dispatch of the reconstruction solvers trilaterate and fit_affinity (schemas in csrc/ops.cpp, CPU kernels in
// csrc/cpu/reconstruct_cpu.cpp): the CPU ops' argument checks and options (csrc/cpu/solver_options.h), then one
// shared path: x0 copied to float64, the bounds (padding atoms fixed), the outputs and workspace, the raw launcher of
// csrc/cuda/lbfgsb_kernels.cu on the current stream (which synchronises it every few rounds). Compiled only with a
// CUDA-enabled torch.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <limits>
#include <tuple>
#include <utility>

#include "cpu/solver_options.h"
#include "cuda/lbfgsb_kernels.h"

namespace pdfsolve {
namespace {

using SolverResult = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

//! Bounds (B, 3N) of the coordinates x (B, N, 3) float64: free for real atoms (mask), fixed at x for padding.
std::pair<at::Tensor, at::Tensor> padding_bounds(const at::Tensor& x, const at::Tensor& mask) {
  const int64_t B = x.size(0), N = x.size(1);
  const auto flat = x.view({B, 3 * N});
  const auto real = mask.unsqueeze(-1).expand({B, N, 3}).reshape({B, 3 * N});
  const double inf = std::numeric_limits<double>::infinity();
  return {at::where(real, -inf, flat).contiguous(), at::where(real, inf, flat).contiguous()};
}

//! Whole runs from x0 (B, N, 3) on its device (padding atoms of mask (B, N) fixed), under the caller's guard of
//! that device: launch(x, lower, upper, mask, f, iterations, status, workspace, stream) runs the raw launcher on
//! float64 x (B, N, 3) and bounds (B, 3N). Returns (x in x0's dtype, f, iterations, status).
template <typename Launch>
SolverResult solve_on_device(const char* op, const at::Tensor& x0, const at::Tensor& mask_,
                             const optim::Options& opt, const Launch& launch) {
  const int64_t B = x0.size(0), N = x0.size(1);
  auto x = x0.to(at::kDouble, /*non_blocking=*/false, /*copy=*/true).contiguous();  // x0 in, solutions out
  auto mask = mask_.contiguous();
  const auto [lower, upper] = padding_bounds(x, mask);
  auto f = at::empty({B}, x.options());
  auto nit = at::empty({B}, x.options().dtype(at::kLong));
  auto status = at::empty({B}, x.options().dtype(at::kLong));
  auto work =
      at::empty({static_cast<int64_t>(cuda::solver_workspace_bytes(B, N, opt))}, x.options().dtype(at::kByte));
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream().stream();
  const cudaError_t err = launch(x.data_ptr<double>(), lower.data_ptr<double>(), upper.data_ptr<double>(),
                                 mask.data_ptr<bool>(), f.data_ptr<double>(), nit.data_ptr<int64_t>(),
                                 status.data_ptr<int64_t>(), work.data_ptr(), stream);
  TORCH_CHECK(err == cudaSuccess, op, ": CUDA kernel failed: ", cudaGetErrorString(err));
  return {x.to(x0.scalar_type()), f, nit, status};
}

SolverResult trilaterate_cuda(const at::Tensor& x0, const at::Tensor& mask, const at::Tensor& target_pair_,
                              const at::Tensor& target_points_, const at::Tensor& points_, int64_t m, double ftol,
                              double gtol, int64_t maxiter) {
  const char* op = "pdfsolve::trilaterate";
  check_trilateration_args(op, x0, mask, target_pair_, target_points_, points_);
  TORCH_CHECK(x0.is_cuda(), op, ": x0 must be a CUDA tensor, got ", x0.device());
  const optim::Options opt = reconstruction_options(op, m, ftol, gtol, maxiter);
  c10::cuda::CUDAGuard guard(x0.device());
  const cuda::TrilaterationArgs a{x0.size(0), x0.size(1), points_.size(0)};
  auto tp = target_pair_.to(at::kDouble).contiguous();
  auto ts = target_points_.to(at::kDouble).contiguous();
  auto pts = points_.to(at::kDouble).contiguous();
  return solve_on_device(op, x0, mask, opt,
                         [&](double* x, const double* lo, const double* hi, const bool* M, double* f, int64_t* nit,
                             int64_t* st, void* work, cudaStream_t stream) {
                           return cuda::trilaterate(x, lo, hi, M, tp.data_ptr<double>(), ts.data_ptr<double>(),
                                                    pts.data_ptr<double>(), f, nit, st, work, a, opt, stream);
                         });
}

SolverResult fit_affinity_cuda(const at::Tensor& x0, const at::Tensor& mask, const at::Tensor& target_,
                               const at::Tensor& sigma_, int64_t m, double ftol, double gtol, int64_t maxiter) {
  const char* op = "pdfsolve::fit_affinity";
  check_affinity_args(op, x0, mask, target_, sigma_);
  TORCH_CHECK(x0.is_cuda(), op, ": x0 must be a CUDA tensor, got ", x0.device());
  const optim::Options opt = reconstruction_options(op, m, ftol, gtol, maxiter);
  c10::cuda::CUDAGuard guard(x0.device());
  const cuda::AffinityArgs a{x0.size(0), x0.size(1)};
  auto target = target_.to(at::kDouble).contiguous();
  auto sigma = sigma_.to(at::kDouble).contiguous();
  return solve_on_device(op, x0, mask, opt,
                         [&](double* x, const double* lo, const double* hi, const bool* M, double* f, int64_t* nit,
                             int64_t* st, void* work, cudaStream_t stream) {
                           return cuda::fit_affinity(x, lo, hi, M, target.data_ptr<double>(),
                                                     sigma.data_ptr<double>(), f, nit, st, work, a, opt, stream);
                         });
}

}  // namespace
}  // namespace pdfsolve

TORCH_LIBRARY_IMPL(pdfsolve, CUDA, m) {
  m.impl("trilaterate", &pdfsolve::trilaterate_cuda);
  m.impl("fit_affinity", &pdfsolve::fit_affinity_cuda);
}
