// Raw-pointer launchers of the CUDA kernels of pair_distances, point_distances and graph_laplacian (no torch
// headers: compiled by nvcc alone). Arrays are contiguous: pos (B, N, 3), mask (B, N) bool, points (P, 3),
// sigma (B,), outputs (B, N, N) or (B, N, P), grad like the output, grad_pos like pos. The launchers write every
// output element (no zero-fill needed) and return cudaGetLastError().
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace pdfsolve {
namespace cuda {

struct RowsArgs {
  int64_t B, N;
  int64_t P;  // number of fixed points (point_distances only)
};

template <typename T>
cudaError_t pair_distances_forward(const T* pos, const bool* mask, T* out, const RowsArgs& a, cudaStream_t stream);
template <typename T>
cudaError_t pair_distances_backward(const T* grad, const T* pos, const bool* mask, T* grad_pos, const RowsArgs& a,
                                    cudaStream_t stream);
template <typename T>
cudaError_t point_distances_forward(const T* pos, const bool* mask, const T* points, T* out, const RowsArgs& a,
                                    cudaStream_t stream);
template <typename T>
cudaError_t point_distances_backward(const T* grad, const T* pos, const bool* mask, const T* points, T* grad_pos,
                                     const RowsArgs& a, cudaStream_t stream);

//! dinv: (B, N) double scratch (D_i^-1/2), used by form 2.
template <typename T>
cudaError_t laplacian_forward(const T* pos, const bool* mask, const T* sigma, int form, T* out, double* dinv,
                              const RowsArgs& a, cudaStream_t stream);
//! grad_sigma_rows: (B, N) double, the per-row parts of dLoss/dsigma_b (the caller sums over rows);
//! dinv, gdeg: (B, N) double scratch, used by form 2.
template <typename T>
cudaError_t laplacian_backward(const T* grad, const T* pos, const bool* mask, const T* sigma, int form, T* grad_pos,
                               double* grad_sigma_rows, double* dinv, double* gdeg, const RowsArgs& a,
                               cudaStream_t stream);

}  // namespace cuda
}  // namespace pdfsolve
