// CUDA dispatch of pair_distances, point_distances, graph_laplacian and their backward passes: argument checks,
// allocation, then the raw launchers of csrc/cuda/geometry_kernels.cu on the current stream. Compiled only with a
// CUDA-enabled torch.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "common/op_checks.h"
#include "cuda/geometry_kernels.h"

namespace pdfsolve {
namespace {

void check_cuda_inputs(const char* op, const at::Tensor& pos, const at::Tensor& mask) {
  TORCH_CHECK(pos.is_cuda(), op, ": pos must be a CUDA tensor, got ", pos.device());
  check_masked_atoms(op, pos, mask);
}

void check_launch(const char* op, cudaError_t err) {
  TORCH_CHECK(err == cudaSuccess, op, ": CUDA kernel launch failed: ", cudaGetErrorString(err));
}

cuda::RowsArgs rows(const at::Tensor& pos, int64_t n_points = 0) {
  return cuda::RowsArgs{pos.size(0), pos.size(1), n_points};
}

at::Tensor pair_distances_cuda(const at::Tensor& pos_, const at::Tensor& mask_) {
  const char* op = "pdfsolve::pair_distances";
  check_cuda_inputs(op, pos_, mask_);
  c10::cuda::CUDAGuard guard(pos_.device());
  auto pos = pos_.contiguous();
  auto mask = mask_.contiguous();
  auto out = at::empty({pos.size(0), pos.size(1), pos.size(1)}, pos.options());
  auto stream = at::cuda::getCurrentCUDAStream().stream();
  AT_DISPATCH_FLOATING_TYPES(pos.scalar_type(), "pair_distances_cuda", [&] {
    check_launch(op, cuda::pair_distances_forward(pos.data_ptr<scalar_t>(), mask.data_ptr<bool>(),
                                                  out.data_ptr<scalar_t>(), rows(pos), stream));
  });
  return out;
}

at::Tensor pair_distances_backward_cuda(const at::Tensor& grad_, const at::Tensor& pos_, const at::Tensor& mask_) {
  const char* op = "pdfsolve::pair_distances_backward";
  check_cuda_inputs(op, pos_, mask_);
  check_like_pos(op, "grad", grad_, pos_, {pos_.size(0), pos_.size(1), pos_.size(1)});
  c10::cuda::CUDAGuard guard(pos_.device());
  auto grad = grad_.contiguous();
  auto pos = pos_.contiguous();
  auto mask = mask_.contiguous();
  auto gpos = at::empty(pos.sizes(), pos.options());
  auto stream = at::cuda::getCurrentCUDAStream().stream();
  AT_DISPATCH_FLOATING_TYPES(pos.scalar_type(), "pair_distances_backward_cuda", [&] {
    check_launch(op, cuda::pair_distances_backward(grad.data_ptr<scalar_t>(), pos.data_ptr<scalar_t>(),
                                                   mask.data_ptr<bool>(), gpos.data_ptr<scalar_t>(), rows(pos),
                                                   stream));
  });
  return gpos;
}

at::Tensor point_distances_cuda(const at::Tensor& pos_, const at::Tensor& mask_, const at::Tensor& points_) {
  const char* op = "pdfsolve::point_distances";
  check_cuda_inputs(op, pos_, mask_);
  check_points(op, points_, pos_);
  c10::cuda::CUDAGuard guard(pos_.device());
  auto pos = pos_.contiguous();
  auto mask = mask_.contiguous();
  auto points = points_.contiguous();
  auto out = at::empty({pos.size(0), pos.size(1), points.size(0)}, pos.options());
  auto stream = at::cuda::getCurrentCUDAStream().stream();
  AT_DISPATCH_FLOATING_TYPES(pos.scalar_type(), "point_distances_cuda", [&] {
    check_launch(op, cuda::point_distances_forward(pos.data_ptr<scalar_t>(), mask.data_ptr<bool>(),
                                                   points.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(),
                                                   rows(pos, points.size(0)), stream));
  });
  return out;
}

at::Tensor point_distances_backward_cuda(const at::Tensor& grad_, const at::Tensor& pos_, const at::Tensor& mask_,
                                         const at::Tensor& points_) {
  const char* op = "pdfsolve::point_distances_backward";
  check_cuda_inputs(op, pos_, mask_);
  check_points(op, points_, pos_);
  check_like_pos(op, "grad", grad_, pos_, {pos_.size(0), pos_.size(1), points_.size(0)});
  c10::cuda::CUDAGuard guard(pos_.device());
  auto grad = grad_.contiguous();
  auto pos = pos_.contiguous();
  auto mask = mask_.contiguous();
  auto points = points_.contiguous();
  auto gpos = at::empty(pos.sizes(), pos.options());
  auto stream = at::cuda::getCurrentCUDAStream().stream();
  AT_DISPATCH_FLOATING_TYPES(pos.scalar_type(), "point_distances_backward_cuda", [&] {
    check_launch(op, cuda::point_distances_backward(grad.data_ptr<scalar_t>(), pos.data_ptr<scalar_t>(),
                                                    mask.data_ptr<bool>(), points.data_ptr<scalar_t>(),
                                                    gpos.data_ptr<scalar_t>(), rows(pos, points.size(0)), stream));
  });
  return gpos;
}

at::Tensor graph_laplacian_cuda(const at::Tensor& pos_, const at::Tensor& mask_, const at::Tensor& sigma_,
                                int64_t form) {
  const char* op = "pdfsolve::graph_laplacian";
  check_cuda_inputs(op, pos_, mask_);
  check_sigma(op, sigma_, pos_);
  check_laplacian_form(op, form);
  c10::cuda::CUDAGuard guard(pos_.device());
  auto pos = pos_.contiguous();
  auto mask = mask_.contiguous();
  auto sigma = sigma_.contiguous();
  auto out = at::empty({pos.size(0), pos.size(1), pos.size(1)}, pos.options());
  auto dinv = at::empty({pos.size(0), pos.size(1)}, pos.options().dtype(at::kDouble));
  auto stream = at::cuda::getCurrentCUDAStream().stream();
  AT_DISPATCH_FLOATING_TYPES(pos.scalar_type(), "graph_laplacian_cuda", [&] {
    check_launch(op, cuda::laplacian_forward(pos.data_ptr<scalar_t>(), mask.data_ptr<bool>(),
                                             sigma.data_ptr<scalar_t>(), static_cast<int>(form),
                                             out.data_ptr<scalar_t>(), dinv.data_ptr<double>(), rows(pos), stream));
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> graph_laplacian_backward_cuda(const at::Tensor& grad_, const at::Tensor& pos_,
                                                                 const at::Tensor& mask_, const at::Tensor& sigma_,
                                                                 int64_t form) {
  const char* op = "pdfsolve::graph_laplacian_backward";
  check_cuda_inputs(op, pos_, mask_);
  check_sigma(op, sigma_, pos_);
  check_laplacian_form(op, form);
  check_like_pos(op, "grad", grad_, pos_, {pos_.size(0), pos_.size(1), pos_.size(1)});
  c10::cuda::CUDAGuard guard(pos_.device());
  auto grad = grad_.contiguous();
  auto pos = pos_.contiguous();
  auto mask = mask_.contiguous();
  auto sigma = sigma_.contiguous();
  auto gpos = at::empty(pos.sizes(), pos.options());
  auto scratch = at::empty({3, pos.size(0), pos.size(1)}, pos.options().dtype(at::kDouble));
  auto gsigma_rows = scratch[0], dinv = scratch[1], gdeg = scratch[2];
  auto stream = at::cuda::getCurrentCUDAStream().stream();
  AT_DISPATCH_FLOATING_TYPES(pos.scalar_type(), "graph_laplacian_backward_cuda", [&] {
    check_launch(op, cuda::laplacian_backward(grad.data_ptr<scalar_t>(), pos.data_ptr<scalar_t>(),
                                              mask.data_ptr<bool>(), sigma.data_ptr<scalar_t>(),
                                              static_cast<int>(form), gpos.data_ptr<scalar_t>(),
                                              gsigma_rows.data_ptr<double>(), dinv.data_ptr<double>(),
                                              gdeg.data_ptr<double>(), rows(pos), stream));
  });
  return {gpos, gsigma_rows.sum(1).to(pos.scalar_type())};
}

}  // namespace
}  // namespace pdfsolve

TORCH_LIBRARY_IMPL(pdfsolve, CUDA, m) {
  m.impl("pair_distances", &pdfsolve::pair_distances_cuda);
  m.impl("pair_distances_backward", &pdfsolve::pair_distances_backward_cuda);
  m.impl("point_distances", &pdfsolve::point_distances_cuda);
  m.impl("point_distances_backward", &pdfsolve::point_distances_backward_cuda);
  m.impl("graph_laplacian", &pdfsolve::graph_laplacian_cuda);
  m.impl("graph_laplacian_backward", &pdfsolve::graph_laplacian_backward_cuda);
}
