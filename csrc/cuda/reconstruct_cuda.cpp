// CUDA dispatch of the reconstruction solver trilaterate (schema in csrc/ops.cpp, CPU kernel in
// csrc/cpu/reconstruct_cpu.cpp): the CPU op's argument checks and options (csrc/cpu/solver_options.h), the bounds
// (padding atoms fixed), allocation, then the raw launcher of csrc/cuda/lbfgsb_kernels.cu on the current stream,
// which synchronises it every few rounds. Compiled only with a CUDA-enabled torch.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <limits>
#include <tuple>

#include "cpu/solver_options.h"
#include "cuda/lbfgsb_kernels.h"

namespace pdfsolve {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> trilaterate_cuda(
    const at::Tensor& x0_, const at::Tensor& mask_, const at::Tensor& target_pair_, const at::Tensor& target_points_,
    const at::Tensor& points_, int64_t m, double ftol, double gtol, int64_t maxiter) {
  const char* op = "pdfsolve::trilaterate";
  check_trilateration_args(op, x0_, mask_, target_pair_, target_points_, points_);
  TORCH_CHECK(x0_.is_cuda(), op, ": x0 must be a CUDA tensor, got ", x0_.device());
  const optim::Options opt = reconstruction_options(op, m, ftol, gtol, maxiter);
  c10::cuda::CUDAGuard guard(x0_.device());
  const cuda::TrilaterationArgs a{x0_.size(0), x0_.size(1), points_.size(0)};
  // x0 in, solutions out (B, N, 3)
  auto x = x0_.to(at::kDouble, /*non_blocking=*/false, /*copy=*/true).contiguous();
  auto mask = mask_.contiguous();
  auto tp = target_pair_.to(at::kDouble).contiguous();
  auto ts = target_points_.to(at::kDouble).contiguous();
  auto pts = points_.to(at::kDouble).contiguous();
  // bounds (B, 3N): free coordinates of real atoms, padding fixed at x0
  const auto flat = x.view({a.B, 3 * a.N});
  const auto real = mask.unsqueeze(-1).expand({a.B, a.N, 3}).reshape({a.B, 3 * a.N});
  const double inf = std::numeric_limits<double>::infinity();
  auto lower = at::where(real, -inf, flat).contiguous();
  auto upper = at::where(real, inf, flat).contiguous();
  auto f = at::empty({a.B}, x.options());
  auto nit = at::empty({a.B}, x.options().dtype(at::kLong));
  auto status = at::empty({a.B}, x.options().dtype(at::kLong));
  auto work = at::empty({static_cast<int64_t>(cuda::trilaterate_workspace_bytes(a, opt))},
                        x.options().dtype(at::kByte));
  const cudaError_t err = cuda::trilaterate(
      x.data_ptr<double>(), lower.data_ptr<double>(), upper.data_ptr<double>(), mask.data_ptr<bool>(),
      tp.data_ptr<double>(), ts.data_ptr<double>(), pts.data_ptr<double>(), f.data_ptr<double>(),
      nit.data_ptr<int64_t>(), status.data_ptr<int64_t>(), work.data_ptr(), a, opt,
      at::cuda::getCurrentCUDAStream().stream());
  TORCH_CHECK(err == cudaSuccess, op, ": CUDA kernel failed: ", cudaGetErrorString(err));
  return {x.to(x0_.scalar_type()), f, nit, status};
}

}  // namespace
}  // namespace pdfsolve

TORCH_LIBRARY_IMPL(pdfsolve, CUDA, m) { m.impl("trilaterate", &pdfsolve::trilaterate_cuda); }
