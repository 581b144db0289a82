// CUDA kernels of fixed_pair_grid (see csrc/cuda/fixed_grid_kernels.h and common/fixed_grid_math.h).
//
// Forward: blocks per cluster x chunks of its linearised pair list; each thread takes pairs, finds the window
// with the reference's test (pair_window) and evaluates one exp per bin (exact, no table), adding
// into a shared-memory copy of the cluster's grid (shared atomics) written out once per block (plain stores
// when one block owns the cluster, global atomicAdd when several share it). Grids too big for shared memory
// take global atomics directly.
// Backward: one warp per (cluster, atom i); the lanes take the partners j != i and sum atom i's gradient;
// lane 0 writes it: no atomics (each pair is evaluated from both ends).
#include "common/fixed_grid_math.h"
#include "cuda/fixed_grid_kernels.h"
#include "cuda/pair_grid_common.cuh"

namespace pdfsolve {
namespace cuda {
namespace {

constexpr int kFwdThreads = 128;
constexpr int kBwdThreads = 256;  // 8 warps, one atom row each

template <typename T>
struct Params {
  T h, inv_h, half, rcut, inv2s2, norm, inv_tau2;
  int64_t nbins;
};

template <typename T>
Params<T> make_params(const FixedGridArgs& a) {
  Params<T> p;
  p.h = T(a.bin_width);
  p.inv_h = T(1.0 / a.bin_width);
  p.half = T(a.truncate * a.tau0);
  p.rcut = T(a.rcut);
  p.inv2s2 = T(0.5 / (a.tau0 * a.tau0));
  p.norm = T(kInvSqrt2Pi / a.tau0);
  p.inv_tau2 = T(1.0 / (a.tau0 * a.tau0));
  p.nbins = a.nbins;
  return p;
}

__device__ __forceinline__ float gexp(float x) { return __expf(x); }
__device__ __forceinline__ double gexp(double x) { return exp(x); }

template <typename T, bool kShared>
__global__ void __launch_bounds__(kFwdThreads)
    fixed_forward_kernel(const T* __restrict__ pos, const int64_t* __restrict__ species, int64_t N, int64_t S,
                         Params<T> p, int64_t chunks, T* __restrict__ out) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int64_t b = blockIdx.x / chunks;
  const int64_t c = blockIdx.x % chunks;
  const int64_t G = S * S * p.nbins;
  T* ob = out + b * G;
  T* grid = block_grid_begin<T, kShared>(smem_raw, ob, G);
  const int64_t P = N * (N - 1) / 2;
  const int64_t q0 = P * c / chunks, q1 = P * (c + 1) / chunks;
  for (int64_t q = q0 + threadIdx.x; q < q1; q += blockDim.x) {
    int64_t i, j;
    pair_from_index(q, N, i, j);
    PairGeom<T> g;
    if (!load_pair(pos, species, N, S, p.rcut, b, i, j, g)) continue;
    int64_t lo, hi;
    if (!pair_window(g.r, p.half, p.h, p.inv_h, p.nbins, lo, hi)) continue;
    T* row = grid + g.slot * p.nbins;
    const T w = p.norm / g.r;
    for (int64_t m = lo; m <= hi; ++m) {
      const T x = T(m) * p.h - g.r;
      atomicAdd(row + m, w * gexp(-x * x * p.inv2s2));
    }
  }
  block_grid_end<T, kShared>(grid, ob, G, chunks);
}

template <typename T>
__global__ void __launch_bounds__(kBwdThreads)
    fixed_backward_kernel(const T* __restrict__ grad, const T* __restrict__ pos, const int64_t* __restrict__ species,
                          int64_t B, int64_t N, int64_t S, Params<T> p, T* __restrict__ grad_pos) {
  const int64_t warp = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (warp >= B * N) return;  // whole warp leaves together
  const int64_t b = warp / N, i = warp % N;
  const T* gb = grad + b * S * S * p.nbins;
  T gx = 0, gy = 0, gz = 0;
  const int64_t si = species[b * N + i];
  if (si >= 0 && si < S) {
    for (int64_t j = lane; j < N; j += 32) {
      if (j == i) continue;
      PairGeom<T> g;
      if (!load_pair(pos, species, N, S, p.rcut, b, i, j, g)) continue;
      int64_t lo, hi;
      if (!pair_window(g.r, p.half, p.h, p.inv_h, p.nbins, lo, hi)) continue;
      const T* grow = gb + g.slot * p.nbins;
      T S0 = 0, S1 = 0;
      for (int64_t m = lo; m <= hi; ++m) {
        const T x = T(m) * p.h - g.r;
        const T v = grow[m] * p.norm * gexp(-x * x * p.inv2s2);
        S0 += v;
        S1 += v * x;
      }
      const T k = fixed_grid::pair_dLdr(g.r, p.inv_tau2, S0, S1) / g.r;
      gx += k * g.dx;
      gy += k * g.dy;
      gz += k * g.dz;
    }
  }
  gx = warp_sum(gx);
  gy = warp_sum(gy);
  gz = warp_sum(gz);
  if (lane == 0) {
    grad_pos[(b * N + i) * 3] = gx;
    grad_pos[(b * N + i) * 3 + 1] = gy;
    grad_pos[(b * N + i) * 3 + 2] = gz;
  }
}

template <typename T>
cudaError_t launch_forward(const T* pos, const int64_t* species, const FixedGridArgs& a, T* out,
                           cudaStream_t stream) {
  if (a.batch == 0 || a.natoms < 2 || a.nbins == 0) return cudaSuccess;
  GridLaunch plan;
  cudaError_t err = plan_grid_forward(a.batch, a.natoms, a.n_species, a.nbins, sizeof(T), kFwdThreads, plan);
  if (err != cudaSuccess) return err;
  const Params<T> p = make_params<T>(a);
  if (plan.shared) {
    if ((err = allow_shared_memory(fixed_forward_kernel<T, true>, plan.smem)) != cudaSuccess) return err;
    fixed_forward_kernel<T, true><<<unsigned(plan.blocks), kFwdThreads, plan.smem, stream>>>(
        pos, species, a.natoms, a.n_species, p, plan.chunks, out);
  } else {
    fixed_forward_kernel<T, false><<<unsigned(plan.blocks), kFwdThreads, 0, stream>>>(
        pos, species, a.natoms, a.n_species, p, plan.chunks, out);
  }
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_backward(const T* grad, const T* pos, const int64_t* species, const FixedGridArgs& a,
                            T* grad_pos, cudaStream_t stream) {
  if (a.batch == 0 || a.natoms == 0) return cudaSuccess;
  fixed_backward_kernel<T><<<warp_row_blocks(a.batch * a.natoms, kBwdThreads), kBwdThreads, 0, stream>>>(grad, pos, species, a.batch, a.natoms,
                                                                         a.n_species, make_params<T>(a), grad_pos);
  return cudaGetLastError();
}

}  // namespace

cudaError_t fixed_pair_grid_forward(const float* pos, const int64_t* species, const FixedGridArgs& args, float* out,
                                    cudaStream_t stream) {
  return launch_forward(pos, species, args, out, stream);
}
cudaError_t fixed_pair_grid_forward(const double* pos, const int64_t* species, const FixedGridArgs& args,
                                    double* out, cudaStream_t stream) {
  return launch_forward(pos, species, args, out, stream);
}
cudaError_t fixed_pair_grid_backward(const float* grad, const float* pos, const int64_t* species,
                                     const FixedGridArgs& args, float* grad_pos, cudaStream_t stream) {
  return launch_backward(grad, pos, species, args, grad_pos, stream);
}
cudaError_t fixed_pair_grid_backward(const double* grad, const double* pos, const int64_t* species,
                                     const FixedGridArgs& args, double* grad_pos, cudaStream_t stream) {
  return launch_backward(grad, pos, species, args, grad_pos, stream);
}

}  // namespace cuda
}  // namespace pdfsolve
