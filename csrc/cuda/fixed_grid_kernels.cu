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

// Row-major index q of the pairs i < j of N atoms -> (i, j).
__device__ __forceinline__ void pair_from_index(int64_t q, int64_t N, int64_t& i, int64_t& j) {
  const double b = double(2 * N - 1);
  int64_t r = static_cast<int64_t>((b - sqrt(b * b - 8.0 * double(q))) * 0.5);
  if (r < 0) r = 0;
  if (r > N - 2) r = N - 2;
  auto off = [N](int64_t k) { return k * (2 * N - k - 1) / 2; };
  while (r > 0 && off(r) > q) --r;
  while (r < N - 2 && off(r + 1) <= q) ++r;
  i = r;
  j = q - off(r) + r + 1;
}

template <typename T>
struct PairGeom {
  T r, dx, dy, dz;
  int64_t slot;
};

// Pair (i, j) of cluster b; false when skipped (padding, coincident, beyond rcut). Distances in T.
template <typename T>
__device__ __forceinline__ bool load_pair(const T* pos, const int64_t* species, int64_t N, int64_t S, T rcut,
                                          int64_t b, int64_t i, int64_t j, PairGeom<T>& g) {
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
  g.slot = (si < sj ? si : sj) * S + (si < sj ? sj : si);
  return true;
}

template <typename T, bool kShared>
__global__ void __launch_bounds__(kFwdThreads)
    fixed_forward_kernel(const T* __restrict__ pos, const int64_t* __restrict__ species, int64_t N, int64_t S,
                         Params<T> p, int64_t chunks, T* __restrict__ out) {
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
  for (int off = 16; off > 0; off >>= 1) {
    gx += __shfl_down_sync(0xffffffffu, gx, off);
    gy += __shfl_down_sync(0xffffffffu, gy, off);
    gz += __shfl_down_sync(0xffffffffu, gz, off);
  }
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
  int dev = 0, sms = 0, smem_optin = 0;
  cudaError_t err = cudaGetDevice(&dev);
  if (err != cudaSuccess) return err;
  if ((err = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev)) != cudaSuccess) return err;
  if ((err = cudaDeviceGetAttribute(&smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev)) != cudaSuccess)
    return err;
  const int64_t P = a.natoms * (a.natoms - 1) / 2;
  int64_t chunks = (4 * int64_t(sms) + a.batch - 1) / a.batch;
  const int64_t max_chunks = (P + 4 * kFwdThreads - 1) / (4 * kFwdThreads);
  if (chunks > max_chunks) chunks = max_chunks;
  if (chunks < 1) chunks = 1;
  const int64_t blocks = a.batch * chunks;
  const size_t smem = size_t(a.n_species * a.n_species * a.nbins) * sizeof(T);
  const Params<T> p = make_params<T>(a);
  if (smem <= size_t(smem_optin)) {
    if (smem > 48 * 1024) {
      err = cudaFuncSetAttribute(fixed_forward_kernel<T, true>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 int(smem));
      if (err != cudaSuccess) return err;
    }
    fixed_forward_kernel<T, true><<<unsigned(blocks), kFwdThreads, smem, stream>>>(pos, species, a.natoms,
                                                                                   a.n_species, p, chunks, out);
  } else {
    fixed_forward_kernel<T, false><<<unsigned(blocks), kFwdThreads, 0, stream>>>(pos, species, a.natoms,
                                                                                a.n_species, p, chunks, out);
  }
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_backward(const T* grad, const T* pos, const int64_t* species, const FixedGridArgs& a,
                            T* grad_pos, cudaStream_t stream) {
  if (a.batch == 0 || a.natoms == 0) return cudaSuccess;
  const int64_t warps = a.batch * a.natoms;
  const int64_t per_block = kBwdThreads / 32;
  const int64_t blocks = (warps + per_block - 1) / per_block;
  fixed_backward_kernel<T><<<unsigned(blocks), kBwdThreads, 0, stream>>>(grad, pos, species, a.batch, a.natoms,
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
