// CUDA dispatch of pdfsolve::acsf and acsf_backward: argument checks, the parameter tables built on the host
// (common/acsf_math.h) and copied to the device, then the raw launchers of csrc/cuda/acsf_kernels.cu on the
// current stream. Compiled only with a CUDA-enabled torch.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "common/acsf_checks.h"
#include "common/acsf_math.h"
#include "common/op_checks.h"
#include "cuda/acsf_kernels.h"

namespace pdfsolve {
namespace {

//! Validated host tables and their device copies (kept alive for the launch).
struct DeviceTables {
  acsf::HostTables host;
  at::Tensor dbl, ints;
  acsf::Tables view() const { return host.view(dbl.data_ptr<double>(), ints.data_ptr<int>()); }
};

DeviceTables prepare(const char* op, const at::Tensor& pos, const at::Tensor& species, int64_t n_species,
                     const at::Tensor& radial, const at::Tensor& angular, double rcut) {
  TORCH_CHECK(pos.is_cuda(), op, ": pos must be a CUDA tensor, got ", pos.device());
  DeviceTables d;
  d.host = check_acsf_inputs(op, pos, species, n_species, radial, angular, rcut);
  TORCH_CHECK(pos.size(1) <= 65535, op, ": the CUDA kernels support N <= 65535 atoms, got ", pos.size(1));
  const auto dev = at::TensorOptions().device(pos.device());
  d.dbl = at::tensor(d.host.dbl, dev.dtype(at::kDouble));
  d.ints = at::tensor(d.host.ints, dev.dtype(at::kInt));
  int smem_optin = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, pos.get_device()));
  TORCH_CHECK(cuda::acsf_shared_bytes(pos.size(1), d.view()) <= static_cast<size_t>(smem_optin), op,
              ": too many atoms per cluster for the CUDA kernel's shared memory, got N = ", pos.size(1));
  return d;
}

at::Tensor acsf_cuda(const at::Tensor& pos_in, const at::Tensor& species_in, int64_t n_species,
                     const at::Tensor& radial, const at::Tensor& angular, double rcut) {
  const char* op = "pdfsolve::acsf";
  const c10::cuda::CUDAGuard guard(pos_in.device());
  const auto d = prepare(op, pos_in, species_in, n_species, radial, angular, rcut);
  const int64_t F = acsf::n_features(n_species, d.host.n_r, d.host.n_a);
  auto out = at::zeros({pos_in.size(0), pos_in.size(1), F}, pos_in.options());
  if (out.numel() == 0) return out;
  const auto pos = pos_in.contiguous();
  const auto species = species_in.contiguous();
  const cuda::AcsfArgs args{pos.size(0), pos.size(1), n_species, F, rcut};
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(pos.scalar_type(), "acsf_cuda", [&] {
    C10_CUDA_CHECK(cuda::acsf_forward(pos.data_ptr<scalar_t>(), species.data_ptr<int64_t>(), d.view(), args,
                                      out.data_ptr<scalar_t>(), stream));
  });
  return out;
}

at::Tensor acsf_backward_cuda(const at::Tensor& grad_in, const at::Tensor& pos_in, const at::Tensor& species_in,
                              int64_t n_species, const at::Tensor& radial, const at::Tensor& angular, double rcut) {
  const char* op = "pdfsolve::acsf_backward";
  const c10::cuda::CUDAGuard guard(pos_in.device());
  const auto d = prepare(op, pos_in, species_in, n_species, radial, angular, rcut);
  const int64_t F = acsf::n_features(n_species, d.host.n_r, d.host.n_a);
  check_like_pos(op, "grad", grad_in, pos_in, {pos_in.size(0), pos_in.size(1), F});
  auto gpos = at::zeros(pos_in.sizes(), pos_in.options());
  if (gpos.numel() == 0 || F == 0) return gpos;
  const auto grad = grad_in.contiguous();
  const auto pos = pos_in.contiguous();
  const auto species = species_in.contiguous();
  const cuda::AcsfArgs args{pos.size(0), pos.size(1), n_species, F, rcut};
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(pos.scalar_type(), "acsf_backward_cuda", [&] {
    C10_CUDA_CHECK(cuda::acsf_backward(grad.data_ptr<scalar_t>(), pos.data_ptr<scalar_t>(),
                                       species.data_ptr<int64_t>(), d.view(), args, gpos.data_ptr<scalar_t>(),
                                       stream));
  });
  return gpos;
}

}  // namespace

TORCH_LIBRARY_IMPL(pdfsolve, CUDA, m) {
  m.impl("acsf", &acsf_cuda);
  m.impl("acsf_backward", &acsf_backward_cuda);
}

}  // namespace pdfsolve
