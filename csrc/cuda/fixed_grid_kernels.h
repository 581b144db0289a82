// Raw CUDA launchers of fixed_pair_grid and its backward (no torch headers; the torch glue is in
// csrc/cuda/fixed_grid_cuda.cpp). All tensors are contiguous device arrays:
//   pos (B, N, 3), species (B, N) int64 (< 0 or >= n_species: no atom), out / grad (B, n_species^2, nbins),
//   grad_pos (B, N, 3).
// `out` must be zero-filled by the caller (grad_pos is written in full). Each returns the launch error.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace pdfsolve {
namespace cuda {

struct FixedGridArgs {
  int64_t batch, natoms, n_species, nbins;
  double bin_width, tau0, truncate, rcut;
};

cudaError_t fixed_pair_grid_forward(const float* pos, const int64_t* species, const FixedGridArgs& args, float* out,
                                    cudaStream_t stream);
cudaError_t fixed_pair_grid_forward(const double* pos, const int64_t* species, const FixedGridArgs& args,
                                    double* out, cudaStream_t stream);

cudaError_t fixed_pair_grid_backward(const float* grad, const float* pos, const int64_t* species,
                                     const FixedGridArgs& args, float* grad_pos, cudaStream_t stream);
cudaError_t fixed_pair_grid_backward(const double* grad, const double* pos, const int64_t* species,
                                     const FixedGridArgs& args, double* grad_pos, cudaStream_t stream);

}  // namespace cuda
}  // namespace pdfsolve
