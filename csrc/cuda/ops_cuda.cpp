// CUDA registrations of pdfsolve's ops: checks, allocation, and calls of the raw launchers (csrc/cuda/kernels.h)
// on the current stream. Only compiled when CMake finds a CUDA-enabled torch (PDFSOLVE_WITH_CUDA).
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "common/op_checks.h"
#include "cuda/kernels.h"

namespace pdfsolve {
namespace cuda {
namespace {

void check_cuda(const char* op, const at::Tensor& pos, const at::Tensor& species, int64_t S) {
  TORCH_CHECK(pos.is_cuda(), op, ": pos must be a CUDA tensor for the CUDA kernel");
  if (species.numel() > 0) {
    // One host sync: out-of-range species would make the kernels write out of bounds.
    TORCH_CHECK(species.max().item<int64_t>() < S, op, ": species values must be < n_species (", S,
                ") or negative for padding");
  }
}

void check_launch(const char* op, cudaError_t err) {
  TORCH_CHECK(err == cudaSuccess, op, ": CUDA kernel launch failed: ", cudaGetErrorString(err));
}

at::Tensor debye_partials_cuda(const at::Tensor& pos_, const at::Tensor& species_, const at::Tensor& uiso_,
                               int64_t n_species, double q0, double qstep, int64_t nq, double rcut, double delta1,
                               double delta2, double qbroad) {
  const char* op = "pdfsolve::debye_partials";
  check_atoms(op, pos_, species_, &uiso_, n_species);
  check_debye_params(op, nq, q0, qstep, rcut, delta1, delta2, qbroad);
  c10::cuda::CUDAGuard guard(pos_.device());
  check_cuda(op, pos_, species_, n_species);
  auto pos = pos_.contiguous();
  auto sp = species_.contiguous();
  auto uiso = uiso_.contiguous();
  auto out = at::zeros({pos.size(0), n_species * n_species, nq}, pos.options());
  const DebyeArgs args{pos.size(0), pos.size(1), n_species, nq, q0, qstep, rcut, delta1, delta2, qbroad};
  auto stream = at::cuda::getCurrentCUDAStream().stream();
  AT_DISPATCH_FLOATING_TYPES(pos.scalar_type(), "debye_partials_cuda", [&] {
    check_launch(op, debye_forward(pos.data_ptr<scalar_t>(), sp.data_ptr<int64_t>(), uiso.data_ptr<scalar_t>(),
                                   out.data_ptr<scalar_t>(), args, stream));
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> debye_partials_backward_cuda(const at::Tensor& grad_, const at::Tensor& pos_,
                                                                const at::Tensor& species_, const at::Tensor& uiso_,
                                                                int64_t n_species, double q0, double qstep,
                                                                int64_t nq, double rcut, double delta1,
                                                                double delta2, double qbroad) {
  const char* op = "pdfsolve::debye_partials_backward";
  check_atoms(op, pos_, species_, &uiso_, n_species);
  check_debye_params(op, nq, q0, qstep, rcut, delta1, delta2, qbroad);
  check_grad(op, grad_, pos_, n_species, nq, "nq");
  c10::cuda::CUDAGuard guard(pos_.device());
  check_cuda(op, pos_, species_, n_species);
  auto grad = grad_.contiguous();
  auto pos = pos_.contiguous();
  auto sp = species_.contiguous();
  auto uiso = uiso_.contiguous();
  auto gpos = at::zeros(pos.sizes(), pos.options());
  auto gu = at::zeros(uiso.sizes(), uiso.options());
  TORCH_CHECK(pos.size(1) <= 65535, op, ": the CUDA backward supports N <= 65535 atoms, got ", pos.size(1));
  const DebyeArgs args{pos.size(0), pos.size(1), n_species, nq, q0, qstep, rcut, delta1, delta2, qbroad};
  auto stream = at::cuda::getCurrentCUDAStream().stream();
  AT_DISPATCH_FLOATING_TYPES(pos.scalar_type(), "debye_partials_backward_cuda", [&] {
    check_launch(op, debye_backward(grad.data_ptr<scalar_t>(), pos.data_ptr<scalar_t>(), sp.data_ptr<int64_t>(),
                                    uiso.data_ptr<scalar_t>(), gpos.data_ptr<scalar_t>(), gu.data_ptr<scalar_t>(),
                                    args, stream));
  });
  return {gpos, gu};
}

at::Tensor pair_histogram_cuda(const at::Tensor& pos_, const at::Tensor& species_, int64_t n_species,
                               double bin_width, int64_t nbins) {
  const char* op = "pdfsolve::pair_histogram";
  check_atoms(op, pos_, species_, nullptr, n_species);
  check_hist_params(op, bin_width, nbins);
  c10::cuda::CUDAGuard guard(pos_.device());
  check_cuda(op, pos_, species_, n_species);
  auto pos = pos_.contiguous();
  auto sp = species_.contiguous();
  auto out = at::zeros({pos.size(0), n_species * n_species, nbins}, pos.options());
  const HistArgs args{pos.size(0), pos.size(1), n_species, nbins, bin_width};
  auto stream = at::cuda::getCurrentCUDAStream().stream();
  AT_DISPATCH_FLOATING_TYPES(pos.scalar_type(), "pair_histogram_cuda", [&] {
    check_launch(op, hist_forward(pos.data_ptr<scalar_t>(), sp.data_ptr<int64_t>(), out.data_ptr<scalar_t>(), args,
                                  stream));
  });
  return out;
}

at::Tensor pair_histogram_backward_cuda(const at::Tensor& grad_, const at::Tensor& pos_, const at::Tensor& species_,
                                        int64_t n_species, double bin_width, int64_t nbins) {
  const char* op = "pdfsolve::pair_histogram_backward";
  check_atoms(op, pos_, species_, nullptr, n_species);
  check_hist_params(op, bin_width, nbins);
  check_grad(op, grad_, pos_, n_species, nbins, "nbins");
  c10::cuda::CUDAGuard guard(pos_.device());
  check_cuda(op, pos_, species_, n_species);
  auto grad = grad_.contiguous();
  auto pos = pos_.contiguous();
  auto sp = species_.contiguous();
  auto gpos = at::zeros(pos.sizes(), pos.options());
  TORCH_CHECK(pos.size(1) <= 65535, op, ": the CUDA backward supports N <= 65535 atoms, got ", pos.size(1));
  const HistArgs args{pos.size(0), pos.size(1), n_species, nbins, bin_width};
  auto stream = at::cuda::getCurrentCUDAStream().stream();
  AT_DISPATCH_FLOATING_TYPES(pos.scalar_type(), "pair_histogram_backward_cuda", [&] {
    check_launch(op, hist_backward(grad.data_ptr<scalar_t>(), pos.data_ptr<scalar_t>(), sp.data_ptr<int64_t>(),
                                   gpos.data_ptr<scalar_t>(), args, stream));
  });
  return gpos;
}

}  // namespace
}  // namespace cuda
}  // namespace pdfsolve

TORCH_LIBRARY_IMPL(pdfsolve, CUDA, m) {
  m.impl("debye_partials", &pdfsolve::cuda::debye_partials_cuda);
  m.impl("debye_partials_backward", &pdfsolve::cuda::debye_partials_backward_cuda);
  m.impl("pair_histogram", &pdfsolve::cuda::pair_histogram_cuda);
  m.impl("pair_histogram_backward", &pdfsolve::cuda::pair_histogram_backward_cuda);
}
