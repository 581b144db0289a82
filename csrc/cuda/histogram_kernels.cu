// CUDA kernels of pdfsolve::pair_histogram (forward) and pair_histogram_backward.
//
// Forward: grid (B, splits); a block takes the folded rows u, N-2-u (u = blockIdx.y, += splits), threads over the
// partners j of a row; the splatted weights go to a shared (S*S, nbins) histogram when it fits (shared atomics,
// one global write per block) and otherwise straight to global memory with atomicAdd.
// Backward: grid (B, N); block (b, i) sums atom i's gradient over all partners, one write, no global atomics.
#include <cuda_runtime.h>

#include "common/debye_math.h"
#include "cuda/cuda_common.cuh"
#include "cuda/kernels.h"

namespace pdfsolve {
namespace cuda {
namespace {

constexpr int kFwdThreads = 256;
constexpr int kBwdThreads = 128;
constexpr size_t kSmemLimit = 48 * 1024;

template <typename T>
__global__ void hist_forward_kernel(const T* __restrict__ pos, const int64_t* __restrict__ species,
                                    T* __restrict__ out, HistArgs a, int splits, int use_smem) {
  extern __shared__ __align__(16) unsigned char smem[];
  T* hist = reinterpret_cast<T*>(smem);
  const int64_t N = a.N, S = a.S, M = S * S * a.nbins;
  const int64_t b = blockIdx.x;
  const int tid = threadIdx.x, nt = blockDim.x;
  if (use_smem)
    for (int64_t idx = tid; idx < M; idx += nt) hist[idx] = T(0);
  __syncthreads();
  const T* P = pos + b * N * 3;
  const int64_t* SP = species + b * N;
  T* O = out + b * M;
  T* dst = use_smem ? hist : O;
  const int64_t rows = N - 1, units = N / 2;
  for (int64_t u = blockIdx.y; u < units; u += splits) {
    for (int half = 0; half < 2; ++half) {
      const int64_t i = half == 0 ? u : rows - 1 - u;
      if (half == 1 && i <= u) break;
      const int64_t si = SP[i];
      if (si < 0) continue;
      for (int64_t j = i + 1 + tid; j < N; j += nt) {
        const int64_t sj = SP[j];
        if (sj < 0) continue;
        double dx, dy, dz;
        const double d2 = pair_diff<double>(P + 3 * i, P + 3 * j, dx, dy, dz);
        if (!(d2 > kCoincidentTol2)) continue;
        int64_t lo;
        double f;
        if (!hist_splat<double>(sqrt(d2), a.bin_width, a.nbins, lo, f)) continue;
        T* h = dst + species_pair_index(si, sj, static_cast<int>(S)) * a.nbins + lo;
        atomicAdd(h, static_cast<T>(1.0 - f));
        atomicAdd(h + 1, static_cast<T>(f));
      }
    }
  }
  if (use_smem) {
    __syncthreads();
    for (int64_t idx = tid; idx < M; idx += nt) {
      const T v = hist[idx];
      if (splits == 1)
        O[idx] = v;
      else if (v != T(0))
        atomicAdd(O + idx, v);
    }
  }
}

template <typename T>
__global__ void hist_backward_kernel(const T* __restrict__ grad, const T* __restrict__ pos,
                                     const int64_t* __restrict__ species, T* __restrict__ gpos, HistArgs a) {
  __shared__ double red[kBwdThreads];
  const int64_t N = a.N, S = a.S, nb = a.nbins;
  const int64_t b = blockIdx.x, i = blockIdx.y;
  const T* P = pos + b * N * 3;
  const int64_t* SP = species + b * N;
  const T* G = grad + b * S * S * nb;
  const int64_t si = SP[i];
  if (si < 0) return;
  const double ibw = 1.0 / a.bin_width;
  double fx = 0.0, fy = 0.0, fz = 0.0;
  for (int64_t j = threadIdx.x; j < N; j += blockDim.x) {
    if (j == i || SP[j] < 0) continue;
    double dx, dy, dz;
    const double d2 = pair_diff<double>(P + 3 * i, P + 3 * j, dx, dy, dz);
    if (!(d2 > kCoincidentTol2)) continue;
    const double r = sqrt(d2);
    int64_t lo;
    double f;
    if (!hist_splat<double>(r, a.bin_width, nb, lo, f)) continue;
    const T* g = G + species_pair_index(si, SP[j], static_cast<int>(S)) * nb + lo;
    const double s = (static_cast<double>(g[1]) - static_cast<double>(g[0])) * ibw / r;
    fx += s * dx;
    fy += s * dy;
    fz += s * dz;
  }
  fx = block_sum(fx, red);
  fy = block_sum(fy, red);
  fz = block_sum(fz, red);
  if (threadIdx.x == 0) {
    gpos[(b * N + i) * 3 + 0] = static_cast<T>(fx);
    gpos[(b * N + i) * 3 + 1] = static_cast<T>(fy);
    gpos[(b * N + i) * 3 + 2] = static_cast<T>(fz);
  }
}

template <typename T>
cudaError_t launch_forward(const T* pos, const int64_t* species, T* out, const HistArgs& a, cudaStream_t stream) {
  if (a.B == 0 || a.N < 2 || a.nbins < 2) return cudaSuccess;
  const size_t hist = static_cast<size_t>(a.S * a.S * a.nbins) * sizeof(T);
  const int use_smem = hist <= kSmemLimit ? 1 : 0;
  const int splits = splits_for(a.B, a.N / 2);
  dim3 grid(static_cast<unsigned>(a.B), static_cast<unsigned>(splits));
  hist_forward_kernel<T><<<grid, kFwdThreads, use_smem ? hist : 0, stream>>>(pos, species, out, a, splits, use_smem);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_backward(const T* grad, const T* pos, const int64_t* species, T* gpos, const HistArgs& a,
                            cudaStream_t stream) {
  if (a.B == 0 || a.N < 2 || a.nbins < 2) return cudaSuccess;
  dim3 grid(static_cast<unsigned>(a.B), static_cast<unsigned>(a.N));
  hist_backward_kernel<T><<<grid, kBwdThreads, 0, stream>>>(grad, pos, species, gpos, a);
  return cudaGetLastError();
}

}  // namespace

cudaError_t hist_forward(const float* pos, const int64_t* species, float* out, const HistArgs& args,
                         cudaStream_t stream) {
  return launch_forward<float>(pos, species, out, args, stream);
}
cudaError_t hist_forward(const double* pos, const int64_t* species, double* out, const HistArgs& args,
                         cudaStream_t stream) {
  return launch_forward<double>(pos, species, out, args, stream);
}
cudaError_t hist_backward(const float* grad, const float* pos, const int64_t* species, float* grad_pos,
                          const HistArgs& args, cudaStream_t stream) {
  return launch_backward<float>(grad, pos, species, grad_pos, args, stream);
}
cudaError_t hist_backward(const double* grad, const double* pos, const int64_t* species, double* grad_pos,
                          const HistArgs& args, cudaStream_t stream) {
  return launch_backward<double>(grad, pos, species, grad_pos, args, stream);
}

}  // namespace cuda
}  // namespace pdfsolve
