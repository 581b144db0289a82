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

// Row-major index p of the pairs i < j of N atoms -> (i, j).
__device__ __forceinline__ void pair_from_index(int64_t p, int64_t N, int64_t& i, int64_t& j) {
  const double b = double(2 * N - 1);
  int64_t r = static_cast<int64_t>((b - sqrt(b * b - 8.0 * double(p))) * 0.5);
  if (r < 0) r = 0;
  if (r > N - 2) r = N - 2;
  auto off = [N](int64_t k) { return k * (2 * N - k - 1) / 2; };
  while (r > 0 && off(r) > p) --r;
  while (r < N - 2 && off(r + 1) <= p) ++r;
  i = r;
  j = p - off(r) + r + 1;
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

template <typename T>
struct PairGeom {
  T r, dx, dy, dz, usum;
  int64_t slot;
};

// Loads pair (i, j) of cluster b; false when it is skipped (padding, coincident, beyond rcut).
template <typename T>
__device__ __forceinline__ bool load_pair(const T* pos, const int64_t* species, const T* uiso, int64_t N,
                                          int64_t S, T rcut, int64_t b, int64_t i, int64_t j, PairGeom<T>& g) {
  const int64_t si = species[b * N + i], sj = species[b * N + j];
  if (si < 0 || sj < 0 || si >= S || sj >= S) return false;
  const T* pi = pos + (b * N + i) * 3;
  const T* pj = pos + (b * N + j) * 3;
  g.dx = pi[0] - pj[0];
  g.dy = pi[1] - pj[1];
  g.dz = pi[2] - pj[2];
  const T d2 = g.dx * g.dx + g.dy * g.dy + g.dz * g.dz;
  const T tol = T(kCoincidentTol);
  if (!(d2 > tol * tol)) return false;
  g.r = sqrt(d2);
  if (!(g.r <= rcut)) return false;
  g.usum = uiso[b * N + i] + uiso[b * N + j];
  g.slot = (si < sj ? si : sj) * S + (si < sj ? sj : si);
  return true;
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
  T* grid = ob;
  if (kShared) {
    grid = reinterpret_cast<T*>(smem_raw);
    for (int64_t k = threadIdx.x; k < G; k += blockDim.x) grid[k] = T(0);
    __syncthreads();
  }
  const int64_t P = N * (N - 1) / 2;
  gridding::WidthCache<T> wc;
  const int64_t p0 = P * c / chunks, p1 = P * (c + 1) / chunks;
  for (int64_t q = p0 + threadIdx.x; q < p1; q += blockDim.x) {
    int64_t i, j;
    pair_from_index(q, N, i, j);
    PairGeom<T> g;
    if (!load_pair(pos, species, uiso, N, S, p.rcut, b, i, j, g)) continue;
    const auto w = gridding::pair_width(g.r, g.usum, p, wc);
    int64_t lo, hi;
    if (!pair_window(g.r, p.truncate * w.s, p.h, p.inv_h, p.nbins, lo, hi)) continue;
    T* row = grid + g.slot * p.nbins;
    const T norm = T(kInvSqrt2Pi) / (w.s * g.r);
    window_bins(g.r, w.s2, wc.cstep, norm, p, lo, hi, [row](int64_t m, T, T v) { atomicAdd(row + m, v); });
  }
  if (kShared) {
    __syncthreads();
    if (chunks == 1) {
      for (int64_t k = threadIdx.x; k < G; k += blockDim.x) ob[k] = grid[k];
    } else {
      for (int64_t k = threadIdx.x; k < G; k += blockDim.x) {
        const T v = grid[k];
        if (v != T(0)) atomicAdd(ob + k, v);
      }
    }
  }
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
    if (!load_pair(pos, species, uiso, N, S, p.rcut, b, i, j, g)) continue;
    const auto w = gridding::pair_width(g.r, g.usum, p, wc);
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
    gridding::pair_grad(g.r, g.usum, w, S0, S1, S2, p, dLdr, dLdu);
    const T k = dLdr / g.r;
    gx += k * g.dx;
    gy += k * g.dy;
    gz += k * g.dz;
    gu += dLdu;
  }
  for (int off = 16; off > 0; off >>= 1) {
    gx += __shfl_down_sync(0xffffffffu, gx, off);
    gy += __shfl_down_sync(0xffffffffu, gy, off);
    gz += __shfl_down_sync(0xffffffffu, gz, off);
    gu += __shfl_down_sync(0xffffffffu, gu, off);
  }
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
  int dev = 0, sms = 0, smem_optin = 0;
  cudaError_t err = cudaGetDevice(&dev);
  if (err != cudaSuccess) return err;
  if ((err = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev)) != cudaSuccess) return err;
  if ((err = cudaDeviceGetAttribute(&smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev)) != cudaSuccess)
    return err;
  const int64_t P = a.natoms * (a.natoms - 1) / 2;
  // Enough blocks to fill the device, but at least ~4 pairs per thread in each block.
  int64_t chunks = (4 * int64_t(sms) + a.batch - 1) / a.batch;
  const int64_t max_chunks = (P + 4 * kFwdThreads - 1) / (4 * kFwdThreads);
  if (chunks > max_chunks) chunks = max_chunks;
  if (chunks < 1) chunks = 1;
  const int64_t blocks = a.batch * chunks;
  const size_t smem = size_t(a.n_species * a.n_species * a.nbins) * sizeof(T);
  const GridParams<T> p = make_params<T>(a);
  if (smem <= size_t(smem_optin)) {
    if (smem > 48 * 1024) {
      err = cudaFuncSetAttribute(grid_forward_kernel<T, true>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 int(smem));
      if (err != cudaSuccess) return err;
    }
    grid_forward_kernel<T, true><<<unsigned(blocks), kFwdThreads, smem, stream>>>(pos, species, uiso, a.natoms,
                                                                                  a.n_species, p, chunks, out);
  } else {
    grid_forward_kernel<T, false><<<unsigned(blocks), kFwdThreads, 0, stream>>>(pos, species, uiso, a.natoms,
                                                                               a.n_species, p, chunks, out);
  }
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_backward(const T* grad, const T* pos, const int64_t* species, const T* uiso, const GridArgs& a,
                            T* grad_pos, T* grad_uiso, cudaStream_t stream) {
  if (a.batch == 0 || a.natoms < 2 || a.nbins == 0) return cudaSuccess;
  const int64_t warps = a.batch * a.natoms;
  const int64_t per_block = kBwdThreads / 32;
  const int64_t blocks = (warps + per_block - 1) / per_block;
  grid_backward_kernel<T><<<unsigned(blocks), kBwdThreads, 0, stream>>>(
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
