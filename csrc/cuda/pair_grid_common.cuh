// Device and launch helpers shared by the two gridding kernels (gridding_kernels.cu, fixed_grid_kernels.cu):
// pairs from a linear index, pair geometry, the per-block shared-memory copy of a cluster's grid, warp sums and
// the forward launch plan. No torch headers.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "common/host_device.h"

namespace pdfsolve {
namespace cuda {

//! Row-major index q of the pairs i < j of N atoms -> (i, j).
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

//! Distance r, difference x_i - x_j and species-pair slot of one pair, in T.
template <typename T>
struct PairGeom {
  T r, dx, dy, dz;
  int64_t slot;
};

//! Pair (i, j) of cluster b; false when it is skipped (padding, coincident, beyond rcut).
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

//! Where a block accumulates its part of cluster grid `out` (G values): a zeroed shared-memory copy when kShared,
//! else `out` itself (global atomics).
template <typename T, bool kShared>
__device__ __forceinline__ T* block_grid_begin(unsigned char* smem_raw, T* out, int64_t G) {
  if (!kShared) return out;
  T* grid = reinterpret_cast<T*>(smem_raw);
  for (int64_t k = threadIdx.x; k < G; k += blockDim.x) grid[k] = T(0);
  __syncthreads();
  return grid;
}

//! Writes a block's shared grid to `out`: plain stores when the block owns the cluster (chunks == 1), else
//! global atomicAdd of the non-zero entries.
template <typename T, bool kShared>
__device__ __forceinline__ void block_grid_end(const T* grid, T* out, int64_t G, int64_t chunks) {
  if (!kShared) return;
  __syncthreads();
  if (chunks == 1) {
    for (int64_t k = threadIdx.x; k < G; k += blockDim.x) out[k] = grid[k];
  } else {
    for (int64_t k = threadIdx.x; k < G; k += blockDim.x) {
      const T v = grid[k];
      if (v != T(0)) atomicAdd(out + k, v);
    }
  }
}

//! Sum of v over the 32 lanes of a warp, valid in lane 0.
template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
  return v;
}

//! Forward launch plan: blocks per cluster (chunks of its pair list) and the shared grid, if it fits.
struct GridLaunch {
  int64_t chunks = 1, blocks = 0;
  size_t smem = 0;
  bool shared = false;
};

//! Enough blocks to fill the device, but at least ~4 pairs per thread in each block; the grid (S*S*nbins
//! values of elem_size bytes) goes to shared memory when the device's opt-in limit allows.
inline cudaError_t plan_grid_forward(int64_t batch, int64_t natoms, int64_t n_species, int64_t nbins,
                                     size_t elem_size, int threads, GridLaunch& plan) {
  int dev = 0, sms = 0, smem_optin = 0;
  cudaError_t err = cudaGetDevice(&dev);
  if (err != cudaSuccess) return err;
  if ((err = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev)) != cudaSuccess) return err;
  if ((err = cudaDeviceGetAttribute(&smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev)) != cudaSuccess)
    return err;
  const int64_t P = natoms * (natoms - 1) / 2;
  int64_t chunks = (4 * int64_t(sms) + batch - 1) / batch;
  const int64_t max_chunks = (P + 4 * threads - 1) / (4 * threads);
  if (chunks > max_chunks) chunks = max_chunks;
  if (chunks < 1) chunks = 1;
  plan.chunks = chunks;
  plan.blocks = batch * chunks;
  plan.smem = size_t(n_species * n_species * nbins) * elem_size;
  plan.shared = plan.smem <= size_t(smem_optin);
  return cudaSuccess;
}

//! Lets `kernel` use `smem` bytes of dynamic shared memory (needed above 48 KiB).
template <typename Kernel>
cudaError_t allow_shared_memory(Kernel kernel, size_t smem) {
  if (smem <= 48 * 1024) return cudaSuccess;
  return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
}

//! Blocks of `threads` threads giving one warp to each of `rows` rows.
inline unsigned warp_row_blocks(int64_t rows, int threads) {
  const int64_t per_block = threads / 32;
  return unsigned((rows + per_block - 1) / per_block);
}

}  // namespace cuda
}  // namespace pdfsolve
