// CUDA kernels of gaussian_pair_grid (see csrc/cuda/gridding_kernels.h and common/gridding_math.h).
//
// Forward: blocks per cluster x chunks of its linearised pair list; the threads of a block take one pair
// each, evaluate the Gaussian over its window (window_bins) and accumulate into a
// shared-memory copy of the cluster's grid (shared atomics) that is written out once per block (plain
// stores when one block owns the cluster, global atomicAdd when several share it). When the grid does not
// fit in shared memory the pairs add straight into global memory with atomicAdd.
// Backward: one warp per (cluster, atom i); the lanes take the partners j != i, sum the gradient of atom i
// and lane 0 writes it: no atomics (each pair is evaluated twice, once from each end).
#include <type_traits>

#include "common/gridding_math.h"
#include "cuda/gridding_kernels.h"
#include "cuda/pair_grid_common.cuh"

namespace pdfsolve {
namespace cuda {
namespace {

using gridding::GridParams;

constexpr int kFwdThreads = 128;
constexpr int kBwdThreads = 256;  // 8 warps, one atom row each

template <typename T>
GridParams<T> make_params(const GridArgs& a) {
  return gridding::make_grid_params<T>(a.bin_width, a.nbins, a.tau0, a.truncate, a.rcut, a.delta1, a.delta2,
                                       a.qbroad);
}

// Bins of one pair's window: float64 uses the multiplicative recurrence of gridding_math.h (double exp is
// costly); float32 evaluates one fast exp per bin, which keeps its error independent of the window length.
template <typename T, typename F>
__device__ __forceinline__ void window_bins(T r, T s2, T cstep, T norm, const GridParams<T>& p, int64_t lo,
                                            int64_t hi, F&& f) {
  if constexpr (std::is_same<T, float>::value) {
    const float inv2s2 = 0.5f / s2;
    for (int64_t m = lo; m <= hi; ++m) {
      const float x = float(m) * p.h - r;
      f(m, x, norm * expf(-x * x * inv2s2));
    }
  } else {
    gridding::for_each_bin(r, s2, cstep, norm, p.h, p.inv_h, lo, hi, f);
  }
}

template <typename T, bool kShared>
__global__ void __launch_bounds__(kFwdThreads)
    grid_forward_kernel(const T* __restrict__ pos, const int64_t* __restrict__ species, const T* __restrict__ uiso,
                        int64_t N, int64_t S, GridParams<T> p, int64_t chunks, T* __restrict__ out) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int64_t b = blockIdx.x / chunks;
  const int64_t c = blockIdx.x % chunks;
  const int64_t G = S * S * p.nbins;
  T* ob = out + b * G;
  T* grid = block_grid_begin<T, kShared>(smem_raw, ob, G);
  const int64_t P = N * (N - 1) / 2;
  gridding::WidthCache<T> wc;
  const int64_t p0 = P * c / chunks, p1 = P * (c + 1) / chunks;
  for (int64_t q = p0 + threadIdx.x; q < p1; q += blockDim.x) {
    int64_t i, j;
    pair_from_index(q, N, i, j);
    PairGeom<T> g;
    if (!load_pair(pos, species, N, S, p.rcut, b, i, j, g)) continue;
    const T usum = uiso[b * N + i] + uiso[b * N + j];
    const auto w = gridding::pair_width(g.r, usum, p, wc);
    int64_t lo, hi;
    if (!pair_window(g.r, p.truncate * w.s, p.h, p.inv_h, p.nbins, lo, hi)) continue;
    T* row = grid + g.slot * p.nbins;
    const T norm = T(kInvSqrt2Pi) / (w.s * g.r);
    window_bins(g.r, w.s2, wc.cstep, norm, p, lo, hi, [row](int64_t m, T, T v) { atomicAdd(row + m, v); });
  }
  block_grid_end<T, kShared>(grid, ob, G, chunks);
}

template <typename T>
__global__ void __launch_bounds__(kBwdThreads)
    grid_backward_kernel(const T* __restrict__ grad, const T* __restrict__ pos, const int64_t* __restrict__ species,
                         const T* __restrict__ uiso, int64_t B, int64_t N, int64_t S, GridParams<T> p,
                         T* __restrict__ grad_pos, T* __restrict__ grad_uiso) {
  const int64_t warp = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (warp >= B * N) return;  // whole warp leaves together
  const int64_t b = warp / N, i = warp % N;
  const int64_t si = species[b * N + i];
  if (si < 0 || si >= S) return;
  const T* gb = grad + b * S * S * p.nbins;
  T gx = 0, gy = 0, gz = 0, gu = 0;
  gridding::WidthCache<T> wc;
  for (int64_t j = lane; j < N; j += 32) {
    if (j == i) continue;
    PairGeom<T> g;
    if (!load_pair(pos, species, N, S, p.rcut, b, i, j, g)) continue;
    const T usum = uiso[b * N + i] + uiso[b * N + j];
    const auto w = gridding::pair_width(g.r, usum, p, wc);
    int64_t lo, hi;
    if (!pair_window(g.r, p.truncate * w.s, p.h, p.inv_h, p.nbins, lo, hi)) continue;
    const T* grow = gb + g.slot * p.nbins;
    const T norm = T(kInvSqrt2Pi) / (w.s * g.r);
    T S0 = 0, S1 = 0, S2 = 0;
    window_bins(g.r, w.s2, wc.cstep, norm, p, lo, hi, [&](int64_t m, T x, T v) {
      const T gg = grow[m] * v;
      S0 += gg;
      S1 += gg * x;
      S2 += gg * x * x;
    });
    T dLdr, dLdu;
    gridding::pair_grad(g.r, usum, w, S0, S1, S2, p, dLdr, dLdu);
    const T k = dLdr / g.r;
    gx += k * g.dx;
    gy += k * g.dy;
    gz += k * g.dz;
    gu += dLdu;
  }
  gx = warp_sum(gx);
  gy = warp_sum(gy);
  gz = warp_sum(gz);
  gu = warp_sum(gu);
  if (lane == 0) {
    grad_pos[(b * N + i) * 3] = gx;
    grad_pos[(b * N + i) * 3 + 1] = gy;
    grad_pos[(b * N + i) * 3 + 2] = gz;
    grad_uiso[b * N + i] = gu;
  }
}

template <typename T>
cudaError_t launch_forward(const T* pos, const int64_t* species, const T* uiso, const GridArgs& a, T* out,
                           cudaStream_t stream) {
  if (a.batch == 0 || a.natoms < 2 || a.nbins == 0) return cudaSuccess;
  GridLaunch plan;
  cudaError_t err = plan_grid_forward(a.batch, a.natoms, a.n_species, a.nbins, sizeof(T), kFwdThreads, plan);
  if (err != cudaSuccess) return err;
  const GridParams<T> p = make_params<T>(a);
  if (plan.shared) {
    if ((err = allow_shared_memory(grid_forward_kernel<T, true>, plan.smem)) != cudaSuccess) return err;
    grid_forward_kernel<T, true><<<unsigned(plan.blocks), kFwdThreads, plan.smem, stream>>>(
        pos, species, uiso, a.natoms, a.n_species, p, plan.chunks, out);
  } else {
    grid_forward_kernel<T, false><<<unsigned(plan.blocks), kFwdThreads, 0, stream>>>(
        pos, species, uiso, a.natoms, a.n_species, p, plan.chunks, out);
  }
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_backward(const T* grad, const T* pos, const int64_t* species, const T* uiso, const GridArgs& a,
                            T* grad_pos, T* grad_uiso, cudaStream_t stream) {
  if (a.batch == 0 || a.natoms < 2 || a.nbins == 0) return cudaSuccess;
  grid_backward_kernel<T><<<warp_row_blocks(a.batch * a.natoms, kBwdThreads), kBwdThreads, 0, stream>>>(
      grad, pos, species, uiso, a.batch, a.natoms, a.n_species, make_params<T>(a), grad_pos, grad_uiso);
  return cudaGetLastError();
}

}  // namespace

cudaError_t gaussian_pair_grid_forward(const float* pos, const int64_t* species, const float* uiso,
                                       const GridArgs& args, float* out, cudaStream_t stream) {
  return launch_forward(pos, species, uiso, args, out, stream);
}
cudaError_t gaussian_pair_grid_forward(const double* pos, const int64_t* species, const double* uiso,
                                       const GridArgs& args, double* out, cudaStream_t stream) {
  return launch_forward(pos, species, uiso, args, out, stream);
}
cudaError_t gaussian_pair_grid_backward(const float* grad, const float* pos, const int64_t* species,
                                        const float* uiso, const GridArgs& args, float* grad_pos,
                                        float* grad_uiso, cudaStream_t stream) {
  return launch_backward(grad, pos, species, uiso, args, grad_pos, grad_uiso, stream);
}
cudaError_t gaussian_pair_grid_backward(const double* grad, const double* pos, const int64_t* species,
                                        const double* uiso, const GridArgs& args, double* grad_pos,
                                        double* grad_uiso, cudaStream_t stream) {
  return launch_backward(grad, pos, species, uiso, args, grad_pos, grad_uiso, stream);
}

}  // namespace cuda
}  // namespace pdfsolve
