// CUDA kernels of pair_distances, point_distances and graph_laplacian with their backward passes.
//
// All kernels are in gather form: one block per row (cluster b, atom i), threads over the partners j (or the
// points p), block-wide sums in shared memory, one write per output element: no atomics. Differences and
// sums are in double for both dtypes, as on the CPU (csrc/cpu/distances_cpu.cpp, laplacian_cpu.cpp).
#include <cuda_runtime.h>

#include "common/geometry_math.h"
#include "cuda/cuda_common.cuh"
#include "cuda/geometry_kernels.h"

namespace pdfsolve {
namespace cuda {
namespace {

using namespace geometry;

constexpr int kThreads = 128;  // a power of two (block_sum)

struct Row {
  int64_t b, i;
  __device__ Row(int64_t N) : b(blockIdx.x / N), i(blockIdx.x % N) {}
};

template <typename T>
__global__ void pair_distances_kernel(const T* __restrict__ pos, const bool* __restrict__ mask, T* __restrict__ out,
                                      RowsArgs a) {
  const Row r(a.N);
  const T* P = pos + r.b * a.N * 3;
  const bool* M = mask + r.b * a.N;
  T* O = out + blockIdx.x * a.N;
  for (int64_t j = threadIdx.x; j < a.N; j += blockDim.x) {
    double dx, dy, dz;
    const bool valid = M[r.i] && M[j] && j != r.i;
    O[j] = valid ? static_cast<T>(safe_distance(pair_diff<double>(P + 3 * r.i, P + 3 * j, dx, dy, dz))) : T(0);
  }
}

//! Writes the block-wide sums of (gx, gy, gz) to out[0..2] (every thread of the block must call it).
template <typename T>
__device__ void write_row_gradient(double gx, double gy, double gz, T* out, double* red) {
  gx = block_sum(gx, red);
  gy = block_sum(gy, red);
  gz = block_sum(gz, red);
  if (threadIdx.x == 0) {
    out[0] = static_cast<T>(gx);
    out[1] = static_cast<T>(gy);
    out[2] = static_cast<T>(gz);
  }
}

template <typename T>
__global__ void pair_distances_backward_kernel(const T* __restrict__ grad, const T* __restrict__ pos,
                                               const bool* __restrict__ mask, T* __restrict__ gpos, RowsArgs a) {
  __shared__ double red[kThreads];
  const Row r(a.N);
  const int64_t N = a.N;
  const T* P = pos + r.b * N * 3;
  const bool* M = mask + r.b * N;
  const T* G = grad + r.b * N * N;
  double gx = 0, gy = 0, gz = 0;
  if (M[r.i]) {
    for (int64_t j = threadIdx.x; j < N; j += blockDim.x) {
      if (!M[j] || j == r.i) continue;
      double dx, dy, dz;
      const double d2 = pair_diff<double>(P + 3 * r.i, P + 3 * j, dx, dy, dz);
      const double s = distance_grad_scale(static_cast<double>(G[r.i * N + j]) + static_cast<double>(G[j * N + r.i]), d2);
      gx += s * dx;
      gy += s * dy;
      gz += s * dz;
    }
  }
  write_row_gradient(gx, gy, gz, gpos + blockIdx.x * 3, red);
}

template <typename T>
__global__ void point_distances_kernel(const T* __restrict__ pos, const bool* __restrict__ mask,
                                       const T* __restrict__ points, T* __restrict__ out, RowsArgs a) {
  const T* xi = pos + blockIdx.x * 3;
  const bool real = mask[blockIdx.x];
  T* O = out + blockIdx.x * a.P;
  for (int64_t p = threadIdx.x; p < a.P; p += blockDim.x) {
    double dx, dy, dz;
    O[p] = real ? static_cast<T>(safe_distance(pair_diff<double>(xi, points + 3 * p, dx, dy, dz))) : T(0);
  }
}

template <typename T>
__global__ void point_distances_backward_kernel(const T* __restrict__ grad, const T* __restrict__ pos,
                                                const bool* __restrict__ mask, const T* __restrict__ points,
                                                T* __restrict__ gpos, RowsArgs a) {
  __shared__ double red[kThreads];
  const T* xi = pos + blockIdx.x * 3;
  const T* G = grad + blockIdx.x * a.P;
  double gx = 0, gy = 0, gz = 0;
  if (mask[blockIdx.x]) {
    for (int64_t p = threadIdx.x; p < a.P; p += blockDim.x) {
      double dx, dy, dz;
      const double s = distance_grad_scale(static_cast<double>(G[p]), pair_diff<double>(xi, points + 3 * p, dx, dy, dz));
      gx += s * dx;
      gy += s * dy;
      gz += s * dz;
    }
  }
  write_row_gradient(gx, gy, gz, gpos + blockIdx.x * 3, red);
}

//! W_ij and d_ij^2 (difference x_i - x_j in dx, dy, dz) of one pair of cluster b.
template <typename T>
__device__ __forceinline__ double affinity(const T* P, int64_t i, int64_t j, double inv2s2, double& d2, double& dx,
                                           double& dy, double& dz) {
  d2 = pair_diff<double>(P + 3 * i, P + 3 * j, dx, dy, dz);
  return exp(-d2 * inv2s2);
}

template <typename T>
__device__ __forceinline__ double inv2s2_of(const T* sigma, int64_t b) {
  const double s = static_cast<double>(sigma[b]);
  return 0.5 / (s * s);
}

template <typename T>
__global__ void inv_sqrt_degree_kernel(const T* __restrict__ pos, const bool* __restrict__ mask,
                                       const T* __restrict__ sigma, double* __restrict__ dinv, RowsArgs a) {
  __shared__ double red[kThreads];
  const Row r(a.N);
  const T* P = pos + r.b * a.N * 3;
  const bool* M = mask + r.b * a.N;
  const double k = inv2s2_of(sigma, r.b);
  double deg = 0;
  if (M[r.i]) {
    for (int64_t j = threadIdx.x; j < a.N; j += blockDim.x) {
      if (!M[j] || j == r.i) continue;
      double d2, dx, dy, dz;
      deg += affinity(P, r.i, j, k, d2, dx, dy, dz);
    }
  }
  deg = block_sum(deg, red);
  if (threadIdx.x == 0) dinv[blockIdx.x] = M[r.i] ? inv_sqrt_degree(deg) : 0.0;
}

template <typename T>
__global__ void laplacian_kernel(const T* __restrict__ pos, const bool* __restrict__ mask, const T* __restrict__ sigma,
                                 int form, const double* __restrict__ dinv, T* __restrict__ out, RowsArgs a) {
  __shared__ double red[kThreads];
  const Row r(a.N);
  const int64_t N = a.N;
  const T* P = pos + r.b * N * 3;
  const bool* M = mask + r.b * N;
  const double* di = dinv + r.b * N;
  const double k = inv2s2_of(sigma, r.b);
  T* O = out + blockIdx.x * N;
  const bool real = M[r.i];
  double deg = 0;
  for (int64_t j = threadIdx.x; j < N; j += blockDim.x) {
    double v = 0;
    if (real && M[j] && j != r.i) {
      double d2, dx, dy, dz;
      const double w = affinity(P, r.i, j, k, d2, dx, dy, dz);
      deg += w;
      v = form == kAffinity ? w : form == kLaplacian ? -w : -w * di[r.i] * di[j];
    }
    if (j != r.i) O[j] = static_cast<T>(v);
  }
  deg = block_sum(deg, red);
  if (threadIdx.x == 0) {
    const double diag = form == kAffinity ? 1.0 : form == kLaplacian ? deg : (deg > 0 ? 1.0 : 0.0);
    O[r.i] = static_cast<T>(real ? diag : 0.0);
  }
}

//! gdeg_i = dLoss/dD_i = 1/2 dinv_i^3 sum_k (g_ik + g_ki) W_ik dinv_k (normalised form).
template <typename T>
__global__ void degree_grad_kernel(const T* __restrict__ grad, const T* __restrict__ pos, const bool* __restrict__ mask,
                                   const T* __restrict__ sigma, const double* __restrict__ dinv,
                                   double* __restrict__ gdeg, RowsArgs a) {
  __shared__ double red[kThreads];
  const Row r(a.N);
  const int64_t N = a.N;
  const T* P = pos + r.b * N * 3;
  const bool* M = mask + r.b * N;
  const T* G = grad + r.b * N * N;
  const double* di = dinv + r.b * N;
  const double k = inv2s2_of(sigma, r.b);
  double s = 0;
  if (M[r.i]) {
    for (int64_t j = threadIdx.x; j < N; j += blockDim.x) {
      if (!M[j] || j == r.i) continue;
      double d2, dx, dy, dz;
      const double w = affinity(P, r.i, j, k, d2, dx, dy, dz);
      s += (static_cast<double>(G[r.i * N + j]) + static_cast<double>(G[j * N + r.i])) * w * di[j];
    }
  }
  s = block_sum(s, red);
  if (threadIdx.x == 0) gdeg[blockIdx.x] = 0.5 * di[r.i] * di[r.i] * di[r.i] * s;
}

template <typename T>
__global__ void laplacian_backward_kernel(const T* __restrict__ grad, const T* __restrict__ pos,
                                          const bool* __restrict__ mask, const T* __restrict__ sigma, int form,
                                          const double* __restrict__ dinv, const double* __restrict__ gdeg,
                                          T* __restrict__ gpos, double* __restrict__ gsigma_rows, RowsArgs a) {
  __shared__ double red[kThreads];
  const Row r(a.N);
  const int64_t N = a.N, i = r.i;
  const T* P = pos + r.b * N * 3;
  const bool* M = mask + r.b * N;
  const T* G = grad + r.b * N * N;
  const double* di = dinv + r.b * N;
  const double* gd = gdeg + r.b * N;
  const double k = inv2s2_of(sigma, r.b);
  const bool normalized = form == kNormalized;
  double gx = 0, gy = 0, gz = 0, gs = 0;
  if (M[i]) {
    const double gii = static_cast<double>(G[i * N + i]);
    for (int64_t j = threadIdx.x; j < N; j += blockDim.x) {
      if (!M[j] || j == i) continue;
      double d2, dx, dy, dz;
      const double w = affinity(P, i, j, k, d2, dx, dy, dz);
      const double ai = normalized ? di[i] : 0.0, aj = normalized ? di[j] : 0.0;
      const double gw =
          affinity_entry_grad(form, static_cast<double>(G[i * N + j]), gii, ai, aj, normalized ? gd[i] : 0.0) +
          affinity_entry_grad(form, static_cast<double>(G[j * N + i]), static_cast<double>(G[j * N + j]), aj, ai,
                              normalized ? gd[j] : 0.0);
      const double t = gw * w;
      gx -= t * dx;
      gy -= t * dy;
      gz -= t * dz;
      gs += t * d2;
    }
  }
  const double inv_s2 = 2.0 * k;
  write_row_gradient(gx * inv_s2, gy * inv_s2, gz * inv_s2, gpos + blockIdx.x * 3, red);
  gs = block_sum(gs, red);
  if (threadIdx.x == 0) {
    const double s = static_cast<double>(sigma[r.b]);
    gsigma_rows[blockIdx.x] = 0.5 * gs / (s * s * s);  // each pair is seen from both of its rows
  }
}

//! Launches kernel(args..., a) with one block per row (cluster, atom); nothing to do for an empty batch.
template <typename... KArgs, typename... Args>
cudaError_t launch_rows(void (*kernel)(KArgs...), const RowsArgs& a, cudaStream_t stream, Args... args) {
  if (a.B * a.N == 0) return cudaSuccess;
  kernel<<<static_cast<unsigned>(a.B * a.N), kThreads, 0, stream>>>(args..., a);
  return cudaGetLastError();
}

}  // namespace

template <typename T>
cudaError_t pair_distances_forward(const T* pos, const bool* mask, T* out, const RowsArgs& a, cudaStream_t stream) {
  return launch_rows(pair_distances_kernel<T>, a, stream, pos, mask, out);
}

template <typename T>
cudaError_t pair_distances_backward(const T* grad, const T* pos, const bool* mask, T* grad_pos, const RowsArgs& a,
                                    cudaStream_t stream) {
  return launch_rows(pair_distances_backward_kernel<T>, a, stream, grad, pos, mask, grad_pos);
}

template <typename T>
cudaError_t point_distances_forward(const T* pos, const bool* mask, const T* points, T* out, const RowsArgs& a,
                                    cudaStream_t stream) {
  return launch_rows(point_distances_kernel<T>, a, stream, pos, mask, points, out);
}

template <typename T>
cudaError_t point_distances_backward(const T* grad, const T* pos, const bool* mask, const T* points, T* grad_pos,
                                     const RowsArgs& a, cudaStream_t stream) {
  return launch_rows(point_distances_backward_kernel<T>, a, stream, grad, pos, mask, points, grad_pos);
}

template <typename T>
cudaError_t laplacian_forward(const T* pos, const bool* mask, const T* sigma, int form, T* out, double* dinv,
                              const RowsArgs& a, cudaStream_t stream) {
  if (form == kNormalized) {
    const cudaError_t err = launch_rows(inv_sqrt_degree_kernel<T>, a, stream, pos, mask, sigma, dinv);
    if (err != cudaSuccess) return err;
  }
  return launch_rows(laplacian_kernel<T>, a, stream, pos, mask, sigma, form, static_cast<const double*>(dinv), out);
}

template <typename T>
cudaError_t laplacian_backward(const T* grad, const T* pos, const bool* mask, const T* sigma, int form, T* grad_pos,
                               double* grad_sigma_rows, double* dinv, double* gdeg, const RowsArgs& a,
                               cudaStream_t stream) {
  if (form == kNormalized) {
    cudaError_t err = launch_rows(inv_sqrt_degree_kernel<T>, a, stream, pos, mask, sigma, dinv);
    if (err == cudaSuccess)
      err = launch_rows(degree_grad_kernel<T>, a, stream, grad, pos, mask, sigma, static_cast<const double*>(dinv),
                        gdeg);
    if (err != cudaSuccess) return err;
  }
  return launch_rows(laplacian_backward_kernel<T>, a, stream, grad, pos, mask, sigma, form,
                     static_cast<const double*>(dinv), static_cast<const double*>(gdeg), grad_pos, grad_sigma_rows);
}

#define PDFSOLVE_INSTANTIATE(T)                                                                                     \
  template cudaError_t pair_distances_forward<T>(const T*, const bool*, T*, const RowsArgs&, cudaStream_t);        \
  template cudaError_t pair_distances_backward<T>(const T*, const T*, const bool*, T*, const RowsArgs&,            \
                                                  cudaStream_t);                                                    \
  template cudaError_t point_distances_forward<T>(const T*, const bool*, const T*, T*, const RowsArgs&,            \
                                                  cudaStream_t);                                                    \
  template cudaError_t point_distances_backward<T>(const T*, const T*, const bool*, const T*, T*, const RowsArgs&, \
                                                   cudaStream_t);                                                   \
  template cudaError_t laplacian_forward<T>(const T*, const bool*, const T*, int, T*, double*, const RowsArgs&,    \
                                            cudaStream_t);                                                          \
  template cudaError_t laplacian_backward<T>(const T*, const T*, const bool*, const T*, int, T*, double*, double*, \
                                             double*, const RowsArgs&, cudaStream_t);
PDFSOLVE_INSTANTIATE(float)
PDFSOLVE_INSTANTIATE(double)
#undef PDFSOLVE_INSTANTIATE

}  // namespace cuda
}  // namespace pdfsolve
