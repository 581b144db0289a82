// Raw CUDA launchers of pdfsolve::acsf and acsf_backward (no torch headers; the torch glue is in
// csrc/cuda/acsf_cuda.cpp). All arrays are contiguous device arrays:
//   pos (B, N, 3), species (B, N) int64 (-1 = padding), out / grad (B, N, F), grad_pos (B, N, 3);
//   the parameter tables (common/acsf_math.h Tables) point to device copies of HostTables::dbl / ints.
// `out` must be zero-filled by the caller (padding rows are not written); grad_pos is fully written.
// Each launcher returns the launch error.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "common/acsf_math.h"

namespace pdfsolve {
namespace cuda {

struct AcsfArgs {
  int64_t B, N, S, F;
  double rcut;
};

//! Dynamic shared memory (bytes) the kernels need for N atoms; the glue checks it against the device limit.
size_t acsf_shared_bytes(int64_t N, const acsf::Tables& t);

cudaError_t acsf_forward(const float* pos, const int64_t* species, const acsf::Tables& t, const AcsfArgs& args,
                         float* out, cudaStream_t stream);
cudaError_t acsf_forward(const double* pos, const int64_t* species, const acsf::Tables& t, const AcsfArgs& args,
                         double* out, cudaStream_t stream);

cudaError_t acsf_backward(const float* grad, const float* pos, const int64_t* species, const acsf::Tables& t,
                          const AcsfArgs& args, float* grad_pos, cudaStream_t stream);
cudaError_t acsf_backward(const double* grad, const double* pos, const int64_t* species, const acsf::Tables& t,
                          const AcsfArgs& args, double* grad_pos, cudaStream_t stream);

}  // namespace cuda
}  // namespace pdfsolve
