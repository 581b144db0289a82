// Raw-pointer launchers of pdfsolve's CUDA kernels (no torch headers: compiled by nvcc alone).
// All arrays are contiguous; outputs must be zero-filled by the caller (the kernels add into them).
// Shapes: pos (B, N, 3), species (B, N) int64 (-1 = padding), uiso (B, N), out (B, S*S, nq | nbins),
// grad like out, grad_pos like pos, grad_uiso like uiso. Each launcher returns cudaGetLastError().
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace pdfsolve {
namespace cuda {

struct DebyeArgs {
  int64_t B, N, S, nq;
  double q0, qstep, rcut, delta1, delta2, qbroad;
};

struct HistArgs {
  int64_t B, N, S, nbins;
  double bin_width;
};

cudaError_t debye_forward(const float* pos, const int64_t* species, const float* uiso, float* out,
                          const DebyeArgs& args, cudaStream_t stream);
cudaError_t debye_forward(const double* pos, const int64_t* species, const double* uiso, double* out,
                          const DebyeArgs& args, cudaStream_t stream);

cudaError_t debye_backward(const float* grad, const float* pos, const int64_t* species, const float* uiso,
                           float* grad_pos, float* grad_uiso, const DebyeArgs& args, cudaStream_t stream);
cudaError_t debye_backward(const double* grad, const double* pos, const int64_t* species, const double* uiso,
                           double* grad_pos, double* grad_uiso, const DebyeArgs& args, cudaStream_t stream);

cudaError_t hist_forward(const float* pos, const int64_t* species, float* out, const HistArgs& args,
                         cudaStream_t stream);
cudaError_t hist_forward(const double* pos, const int64_t* species, double* out, const HistArgs& args,
                         cudaStream_t stream);

cudaError_t hist_backward(const float* grad, const float* pos, const int64_t* species, float* grad_pos,
                          const HistArgs& args, cudaStream_t stream);
cudaError_t hist_backward(const double* grad, const double* pos, const int64_t* species, double* grad_pos,
                          const HistArgs& args, cudaStream_t stream);

}  // namespace cuda
}  // namespace pdfsolve
