// Raw-pointer launchers of whole L-BFGS-B runs on the GPU (csrc/cuda/lbfgsb_kernels.cu) for the reconstruction
// solvers, trilateration and affinity fit (no torch headers: compiled by nvcc alone). Arrays are contiguous float64
// unless said otherwise.
//
// Common to both: B clusters of N atoms (with padding), one run per cluster over its 3N coordinates. x (B, N, 3):
// x0 on entry, the solutions on return; lower, upper (B, 3N): bounds (-inf / inf for none, equal for the fixed
// coordinates of padding atoms); mask (B, N) bool; outputs f (B,), iterations (B,) int64, status (B,) int64
// (optim::Status codes); workspace: solver_workspace_bytes(B, N, opt) bytes, 256-byte aligned. The launchers
// synchronise the stream every few rounds to test whether every run has finished and return the first CUDA error.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "optim/lbfgsb_core.h"

namespace pdfsolve {
namespace cuda {

//! Bytes of device workspace of whole runs of B clusters of N atoms (solver state, scratch and gradients).
size_t solver_workspace_bytes(int64_t B, int64_t N, const optim::Options& opt);

struct TrilaterationArgs {
  int64_t B, N;  // clusters, atoms per cluster (with padding)
  int64_t P;     // fixed points
};

//! Minimises optim::TrilaterationObjective per cluster: target_pair (B, N, N) (only i < j is read), target_points
//! (B, N, P), points (P, 3).
cudaError_t trilaterate(double* x, const double* lower, const double* upper, const bool* mask,
                        const double* target_pair, const double* target_points, const double* points, double* f,
                        int64_t* iterations, int64_t* status, void* workspace, const TrilaterationArgs& a,
                        const optim::Options& opt, cudaStream_t stream);

struct AffinityArgs {
  int64_t B, N;  // clusters, atoms per cluster (with padding)
};

//! Minimises optim::AffinityObjective per cluster: target (B, N, N) (only i < j is read), sigma (B,) (> 0).
cudaError_t fit_affinity(double* x, const double* lower, const double* upper, const bool* mask, const double* target,
                         const double* sigma, double* f, int64_t* iterations, int64_t* status, void* workspace,
                         const AffinityArgs& a, const optim::Options& opt, cudaStream_t stream);

}  // namespace cuda
}  // namespace pdfsolve
