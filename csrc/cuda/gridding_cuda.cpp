// CUDA dispatch of gaussian_pair_grid and its backward: argument checks, then the raw launchers of
// csrc/cuda/gridding_kernels.cu on the current stream. Compiled only with a CUDA-enabled torch.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <cmath>

#include "common/op_checks.h"
#include "cuda/gridding_kernels.h"

namespace pdfsolve {
namespace {

void check_inputs(const char* op, const at::Tensor& pos, const at::Tensor& species, const at::Tensor& uiso,
                  int64_t n_species, double bin_width, int64_t nbins, double tau0, double truncate) {
  TORCH_CHECK(pos.is_cuda(), op, ": pos must be a CUDA tensor, got ", pos.device());
  check_atoms(op, pos, species, &uiso, n_species);
  check_grid_params(op, bin_width, nbins, tau0, truncate);
}

cuda::GridArgs make_args(const at::Tensor& pos, int64_t n_species, double bin_width, int64_t nbins, double tau0,
                         double truncate, double rcut, double delta1, double delta2, double qbroad) {
  cuda::GridArgs a;
  a.batch = pos.size(0);
  a.natoms = pos.size(1);
  a.n_species = n_species;
  a.nbins = nbins;
  a.bin_width = bin_width;
  a.tau0 = tau0;
  a.truncate = truncate;
  a.rcut = rcut;
  a.delta1 = delta1;
  a.delta2 = delta2;
  a.qbroad = qbroad;
  return a;
}

at::Tensor gaussian_pair_grid_cuda(const at::Tensor& pos_in, const at::Tensor& species_in, const at::Tensor& uiso_in,
                                   int64_t n_species, double bin_width, int64_t nbins, double tau0, double truncate,
                                   double rcut, double delta1, double delta2, double qbroad) {
  check_inputs("gaussian_pair_grid", pos_in, species_in, uiso_in, n_species, bin_width, nbins, tau0, truncate);
  const c10::cuda::CUDAGuard guard(pos_in.device());
  auto out = at::zeros({pos_in.size(0), n_species * n_species, nbins}, pos_in.options());
  if (pos_in.size(0) == 0 || pos_in.size(1) < 2 || nbins == 0) return out;
  const auto pos = pos_in.contiguous();
  const auto species = species_in.contiguous();
  const auto uiso = uiso_in.contiguous();
  const auto args = make_args(pos, n_species, bin_width, nbins, tau0, truncate, rcut, delta1, delta2, qbroad);
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  if (pos.scalar_type() == at::kDouble) {
    C10_CUDA_CHECK(cuda::gaussian_pair_grid_forward(pos.data_ptr<double>(), species.data_ptr<int64_t>(),
                                                    uiso.data_ptr<double>(), args, out.data_ptr<double>(), stream));
  } else {
    C10_CUDA_CHECK(cuda::gaussian_pair_grid_forward(pos.data_ptr<float>(), species.data_ptr<int64_t>(),
                                                    uiso.data_ptr<float>(), args, out.data_ptr<float>(), stream));
  }
  return out;
}

std::tuple<at::Tensor, at::Tensor> gaussian_pair_grid_backward_cuda(
    const at::Tensor& grad_in, const at::Tensor& pos_in, const at::Tensor& species_in, const at::Tensor& uiso_in,
    int64_t n_species, double bin_width, int64_t nbins, double tau0, double truncate, double rcut, double delta1,
    double delta2, double qbroad) {
  const char* op = "gaussian_pair_grid_backward";
  check_inputs(op, pos_in, species_in, uiso_in, n_species, bin_width, nbins, tau0, truncate);
  const int64_t B = pos_in.size(0), SS = n_species * n_species;
  TORCH_CHECK(grad_in.dim() == 3 && grad_in.size(0) == B && grad_in.size(1) == SS && grad_in.size(2) == nbins, op,
              ": grad must have shape (B, n_species**2, nbins) = (", B, ", ", SS, ", ", nbins, "), got ",
              grad_in.sizes());
  TORCH_CHECK(grad_in.scalar_type() == pos_in.scalar_type(), op, ": grad must have the dtype of pos (",
              pos_in.scalar_type(), "), got ", grad_in.scalar_type());
  TORCH_CHECK(grad_in.device() == pos_in.device(), op, ": grad must be on the device of pos, got ",
              grad_in.device());
  const c10::cuda::CUDAGuard guard(pos_in.device());
  auto gpos = at::zeros(pos_in.sizes(), pos_in.options());
  auto gu = at::zeros(uiso_in.sizes(), pos_in.options());
  if (B == 0 || pos_in.size(1) < 2 || nbins == 0) return {gpos, gu};
  const auto grad = grad_in.contiguous();
  const auto pos = pos_in.contiguous();
  const auto species = species_in.contiguous();
  const auto uiso = uiso_in.contiguous();
  const auto args = make_args(pos, n_species, bin_width, nbins, tau0, truncate, rcut, delta1, delta2, qbroad);
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  if (pos.scalar_type() == at::kDouble) {
    C10_CUDA_CHECK(cuda::gaussian_pair_grid_backward(grad.data_ptr<double>(), pos.data_ptr<double>(),
                                                     species.data_ptr<int64_t>(), uiso.data_ptr<double>(), args,
                                                     gpos.data_ptr<double>(), gu.data_ptr<double>(), stream));
  } else {
    C10_CUDA_CHECK(cuda::gaussian_pair_grid_backward(grad.data_ptr<float>(), pos.data_ptr<float>(),
                                                     species.data_ptr<int64_t>(), uiso.data_ptr<float>(), args,
                                                     gpos.data_ptr<float>(), gu.data_ptr<float>(), stream));
  }
  return {gpos, gu};
}

}  // namespace

TORCH_LIBRARY_IMPL(pdfsolve, CUDA, m) {
  m.impl("gaussian_pair_grid", &gaussian_pair_grid_cuda);
  m.impl("gaussian_pair_grid_backward", &gaussian_pair_grid_backward_cuda);
}

}  // namespace pdfsolve
