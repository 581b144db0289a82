// Device helpers shared by pdfsolve's CUDA kernels.
#pragma once

#include <cuda_runtime.h>

#include "common/debye_math.h"

namespace pdfsolve {
namespace cuda {

constexpr double kTwoPiInv = 0.15915494309189533576888376337251;

//! sin and cos of the angle q r. The float version reduces the phase to [-pi, pi] in double first, so its
//! accuracy does not depend on |q r| (and survives --use_fast_math, which maps sincosf to __sincosf).
__device__ __forceinline__ void phase_sincos(double q, float r, float& s, float& c) {
  const double turns = q * static_cast<double>(r) * kTwoPiInv;
  const float f = static_cast<float>(turns - rint(turns));
  sincospif(2.0f * f, &s, &c);
}
__device__ __forceinline__ void phase_sincos(double q, double r, double& s, double& c) { sincos(q * r, &s, &c); }

__device__ __forceinline__ float gauss(float a, double q) { return expf(-a * static_cast<float>(q * q)); }
__device__ __forceinline__ double gauss(double a, double q) { return exp(-a * q * q); }

//! Block-wide sum of v into out[slot] (blockDim.x a power of two <= 1024, red has blockDim.x entries).
__device__ __forceinline__ double block_sum(double v, double* red) {
  red[threadIdx.x] = v;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) red[threadIdx.x] += red[threadIdx.x + s];
    __syncthreads();
  }
  const double r = red[0];
  __syncthreads();
  return r;
}

//! Number of blocks per cluster so that the grid has at least ~4 blocks per SM.
inline int splits_for(int64_t batch, int64_t units) {
  int dev = 0, sms = 80;
  if (cudaGetDevice(&dev) == cudaSuccess) cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
  int64_t want = (4LL * sms + batch - 1) / (batch > 0 ? batch : 1);
  if (want > units) want = units;
  if (want > 65535) want = 65535;
  return static_cast<int>(want < 1 ? 1 : want);
}

}  // namespace cuda
}  // namespace pdfsolve
