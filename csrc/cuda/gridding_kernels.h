// Raw CUDA launchers of gaussian_pair_grid and its backward (no torch headers; the torch glue is in
// csrc/cuda/gridding_cuda.cpp). All tensors are contiguous device arrays:
//   pos (B, N, 3), species (B, N) int64 (< 0 or >= n_species: no atom), uiso (B, N),
//   out / grad (B, n_species^2, nbins), grad_pos (B, N, 3), grad_uiso (B, N).
// `out`, `grad_pos` and `grad_uiso` must be zero-filled by the caller. Each returns the launch error.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace pdfsolve {
namespace cuda {

struct GridArgs {
  int64_t batch, natoms, n_species, nbins;
  double bin_width, tau0, truncate, rcut, delta1, delta2, qbroad;
};

cudaError_t gaussian_pair_grid_forward(const float* pos, const int64_t* species, const float* uiso,
                                       const GridArgs& args, float* out, cudaStream_t stream);
cudaError_t gaussian_pair_grid_forward(const double* pos, const int64_t* species, const double* uiso,
                                       const GridArgs& args, double* out, cudaStream_t stream);

cudaError_t gaussian_pair_grid_backward(const float* grad, const float* pos, const int64_t* species,
                                        const float* uiso, const GridArgs& args, float* grad_pos,
                                        float* grad_uiso, cudaStream_t stream);
cudaError_t gaussian_pair_grid_backward(const double* grad, const double* pos, const int64_t* species,
                                        const double* uiso, const GridArgs& args, double* grad_pos,
                                        double* grad_uiso, cudaStream_t stream);

}  // namespace cuda
}  // namespace pdfsolve
