// Raw-pointer launcher of whole L-BFGS-B runs on the GPU (csrc/cuda/lbfgsb_kernels.cu), here for trilateration
// (no torch headers: compiled by nvcc alone). Arrays are contiguous float64 unless said otherwise.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "optim/lbfgsb_core.h"

namespace pdfsolve {
namespace cuda {

struct TrilaterationArgs {
  int64_t B, N;  // clusters, atoms per cluster (with padding)
  int64_t P;     // fixed points
};

//! Bytes of device workspace that trilaterate needs (solver state, scratch and gradients of all B problems).
size_t trilaterate_workspace_bytes(const TrilaterationArgs& a, const optim::Options& opt);

//! One L-BFGS-B run per cluster minimising optim::TrilaterationObjective over its 3N coordinates.
//! x (B, N, 3): x0 on entry, the solutions on return; lower, upper (B, 3N): bounds (-inf / inf for none, equal
//! for the fixed coordinates of padding atoms); mask (B, N) bool; target_pair (B, N, N) (only i < j is read),
//! target_points (B, N, P), points (P, 3); outputs f (B,), iterations (B,) int64, status (B,) int64 (optim::Status
//! codes); workspace: trilaterate_workspace_bytes bytes, 256-byte aligned. Synchronises the stream every few
//! rounds to test whether every run has finished; returns the first CUDA error.
cudaError_t trilaterate(double* x, const double* lower, const double* upper, const bool* mask,
                        const double* target_pair, const double* target_points, const double* points, double* f,
                        int64_t* iterations, int64_t* status, void* workspace, const TrilaterationArgs& a,
                        const optim::Options& opt, cudaStream_t stream);

}  // namespace cuda
}  // namespace pdfsolve
