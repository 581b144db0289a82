// CUDA dispatch of fixed_pair_grid and its backward: argument checks, then the raw launchers of
// csrc/cuda/fixed_grid_kernels.cu on the current stream. Compiled only with a CUDA-enabled torch.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <cmath>

#include "common/op_checks.h"
#include "cuda/fixed_grid_kernels.h"

namespace pdfsolve {
namespace {

void check_inputs(const char* op, const at::Tensor& pos, const at::Tensor& species, int64_t n_species,
                  double bin_width, int64_t nbins, double tau0, double truncate) {
  TORCH_CHECK(pos.is_cuda(), op, ": pos must be a CUDA tensor, got ", pos.device());
  check_atoms(op, pos, species, nullptr, n_species);
  check_grid_params(op, bin_width, nbins, tau0, truncate);
}

cuda::FixedGridArgs make_args(const at::Tensor& pos, int64_t n_species, double bin_width, int64_t nbins, double tau0,
                              double truncate, double rcut) {
  cuda::FixedGridArgs a;
  a.batch = pos.size(0);
  a.natoms = pos.size(1);
  a.n_species = n_species;
  a.nbins = nbins;
  a.bin_width = bin_width;
  a.tau0 = tau0;
  a.truncate = truncate;
  a.rcut = rcut;
  return a;
}

at::Tensor fixed_pair_grid_cuda(const at::Tensor& pos_in, const at::Tensor& species_in, int64_t n_species,
                                double bin_width, int64_t nbins, double tau0, double truncate, double rcut) {
  check_inputs("fixed_pair_grid", pos_in, species_in, n_species, bin_width, nbins, tau0, truncate);
  const c10::cuda::CUDAGuard guard(pos_in.device());
  auto out = at::zeros({pos_in.size(0), n_species * n_species, nbins}, pos_in.options());
  if (pos_in.size(0) == 0 || pos_in.size(1) < 2 || nbins == 0) return out;
  const auto pos = pos_in.contiguous();
  const auto species = species_in.contiguous();
  const auto args = make_args(pos, n_species, bin_width, nbins, tau0, truncate, rcut);
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  if (pos.scalar_type() == at::kDouble) {
    C10_CUDA_CHECK(cuda::fixed_pair_grid_forward(pos.data_ptr<double>(), species.data_ptr<int64_t>(), args,
                                                 out.data_ptr<double>(), stream));
  } else {
    C10_CUDA_CHECK(cuda::fixed_pair_grid_forward(pos.data_ptr<float>(), species.data_ptr<int64_t>(), args,
                                                 out.data_ptr<float>(), stream));
  }
  return out;
}

at::Tensor fixed_pair_grid_backward_cuda(const at::Tensor& grad_in, const at::Tensor& pos_in,
                                         const at::Tensor& species_in, int64_t n_species, double bin_width,
                                         int64_t nbins, double tau0, double truncate, double rcut) {
  const char* op = "fixed_pair_grid_backward";
  check_inputs(op, pos_in, species_in, n_species, bin_width, nbins, tau0, truncate);
  const int64_t B = pos_in.size(0), SS = n_species * n_species;
  TORCH_CHECK(grad_in.dim() == 3 && grad_in.size(0) == B && grad_in.size(1) == SS && grad_in.size(2) == nbins, op,
              ": grad must have shape (B, n_species**2, nbins) = (", B, ", ", SS, ", ", nbins, "), got ",
              grad_in.sizes());
  TORCH_CHECK(grad_in.scalar_type() == pos_in.scalar_type(), op, ": grad must have the dtype of pos (",
              pos_in.scalar_type(), "), got ", grad_in.scalar_type());
  TORCH_CHECK(grad_in.device() == pos_in.device(), op, ": grad must be on the device of pos");
  const c10::cuda::CUDAGuard guard(pos_in.device());
  auto gpos = at::zeros(pos_in.sizes(), pos_in.options());
  if (B == 0 || pos_in.size(1) < 2 || nbins == 0) return gpos;
  const auto grad = grad_in.contiguous();
  const auto pos = pos_in.contiguous();
  const auto species = species_in.contiguous();
  const auto args = make_args(pos, n_species, bin_width, nbins, tau0, truncate, rcut);
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  if (pos.scalar_type() == at::kDouble) {
    C10_CUDA_CHECK(cuda::fixed_pair_grid_backward(grad.data_ptr<double>(), pos.data_ptr<double>(),
                                                  species.data_ptr<int64_t>(), args, gpos.data_ptr<double>(),
                                                  stream));
  } else {
    C10_CUDA_CHECK(cuda::fixed_pair_grid_backward(grad.data_ptr<float>(), pos.data_ptr<float>(),
                                                  species.data_ptr<int64_t>(), args, gpos.data_ptr<float>(),
                                                  stream));
  }
  return gpos;
}

}  // namespace

TORCH_LIBRARY_IMPL(pdfsolve, CUDA, m) {
  m.impl("fixed_pair_grid", &fixed_pair_grid_cuda);
  m.impl("fixed_pair_grid_backward", &fixed_pair_grid_backward_cuda);
}

}  // namespace pdfsolve
