// CUDA kernels of pdfsolve::debye_partials (forward) and debye_partials_backward.
//
// Forward: grid (B, splits); a block takes the folded rows u, N-2-u (u = blockIdx.y, += splits) of its cluster,
// stages the pairs of one row in shared memory (a tile of blockDim.x pairs), and each thread owns Q points
// k = tid, tid + blockDim.x, ... so it accumulates them without atomics: in a shared (S*S, nq) double buffer when it
// fits, written once per block at the end (a plain store when splits == 1), else straight to global memory with
// atomicAdd once per (tile, species, k).
// Backward: grid (B, N); block (b, i) sums the gradient of atom i over all partners j != i (every pair is evaluated
// from both ends), reduces it in shared memory and writes it once: no global atomics.
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
__global__ void debye_forward_kernel(const T* __restrict__ pos, const int64_t* __restrict__ species,
                                     const T* __restrict__ uiso, T* __restrict__ out, DebyeArgs a, int splits,
                                     int use_smem) {
  extern __shared__ __align__(16) unsigned char smem[];
  const int64_t N = a.N, S = a.S, SS = S * S, nq = a.nq;
  const int b = blockIdx.x;
  const int tid = threadIdx.x, nt = blockDim.x;
  double* acc = reinterpret_cast<double*>(smem);
  const size_t acc_elems = use_smem ? static_cast<size_t>(SS * nq) : 0;
  T* tr = reinterpret_cast<T*>(smem + acc_elems * sizeof(double));
  T* ta = tr + nt;
  int* tt = reinterpret_cast<int*>(ta + nt);
  for (size_t idx = tid; idx < acc_elems; idx += nt) acc[idx] = 0.0;
  __syncthreads();

  const T* P = pos + static_cast<int64_t>(b) * N * 3;
  const int64_t* SP = species + static_cast<int64_t>(b) * N;
  const T* U = uiso + static_cast<int64_t>(b) * N;
  T* O = out + static_cast<int64_t>(b) * SS * nq;
  const int64_t rows = N - 1, units = N / 2;

  for (int64_t u = blockIdx.y; u < units; u += splits) {
    for (int half = 0; half < 2; ++half) {
      const int64_t i = half == 0 ? u : rows - 1 - u;
      if (half == 1 && i <= u) break;
      const int64_t si = SP[i];
      if (si < 0) continue;
      for (int64_t j0 = i + 1; j0 < N; j0 += nt) {
        const int64_t j = j0 + tid;
        T r = T(1), av = T(0);
        int cls = -1;
        if (j < N && SP[j] >= 0) {
          double dx, dy, dz;
          const double d2 = pair_diff<double>(P + 3 * i, P + 3 * j, dx, dy, dz);
          const double rd = sqrt(d2);
          if (d2 > kCoincidentTol2 && rd <= a.rcut) {
            double c, dc;
            jeong_factor<double>(rd, a.delta1, a.delta2, a.qbroad, c, dc);
            r = static_cast<T>(rd);
            av = static_cast<T>(0.5 * (static_cast<double>(U[i]) + static_cast<double>(U[j])) * c);
            cls = static_cast<int>(SP[j]);
          }
        }
        tr[tid] = r;
        ta[tid] = av;
        tt[tid] = cls;
        __syncthreads();
        const int cnt = static_cast<int>(N - j0 < nt ? N - j0 : nt);
        for (int64_t k = tid; k < nq; k += nt) {
          const double q = a.q0 + static_cast<double>(k) * a.qstep;
          for (int t = 0; t < S; ++t) {
            double run = 0.0;
            bool any = false;
            for (int m = 0; m < cnt; ++m) {
              if (tt[m] != t) continue;
              T s, c;
              phase_sincos(q, tr[m], s, c);
              run += static_cast<double>(gauss(ta[m], q) * s / tr[m]);
              any = true;
            }
            if (any) {
              const int64_t p = species_pair_index(si, t, static_cast<int>(S));
              if (use_smem)
                acc[p * nq + k] += run;
              else
                atomicAdd(O + p * nq + k, static_cast<T>(run));
            }
          }
        }
        __syncthreads();
      }
    }
  }
  if (use_smem) {
    __syncthreads();
    for (size_t idx = tid; idx < acc_elems; idx += nt) {
      const double v = acc[idx];
      if (splits == 1)
        O[idx] = static_cast<T>(v);
      else if (v != 0.0)
        atomicAdd(O + idx, static_cast<T>(v));
    }
  }
}

template <typename T>
__global__ void debye_backward_kernel(const T* __restrict__ grad, const T* __restrict__ pos,
                                      const int64_t* __restrict__ species, const T* __restrict__ uiso,
                                      T* __restrict__ gpos, T* __restrict__ gu, DebyeArgs a) {
  __shared__ double red[kBwdThreads];
  const int64_t N = a.N, S = a.S, SS = S * S, nq = a.nq;
  const int64_t b = blockIdx.x, i = blockIdx.y;
  const T* P = pos + b * N * 3;
  const int64_t* SP = species + b * N;
  const T* U = uiso + b * N;
  const T* G = grad + b * SS * nq;
  const int64_t si = SP[i];
  if (si < 0) return;  // whole block: outputs stay zero
  double fx = 0.0, fy = 0.0, fz = 0.0, fu = 0.0;
  for (int64_t j = threadIdx.x; j < N; j += blockDim.x) {
    if (j == i || SP[j] < 0) continue;
    double dx, dy, dz;
    const double d2 = pair_diff<double>(P + 3 * i, P + 3 * j, dx, dy, dz);
    if (!(d2 > kCoincidentTol2)) continue;
    const double rd = sqrt(d2);
    if (!(rd <= a.rcut)) continue;
    double c, dc;
    jeong_factor<double>(rd, a.delta1, a.delta2, a.qbroad, c, dc);
    const double A = 0.5 * (static_cast<double>(U[i]) + static_cast<double>(U[j]));
    const T r = static_cast<T>(rd), av = static_cast<T>(A * c);
    const T* Gp = G + species_pair_index(si, SP[j], static_cast<int>(S)) * nq;
    double t0 = 0.0, t1 = 0.0, t2 = 0.0;
    for (int64_t k = 0; k < nq; ++k) {
      const T gk = Gp[k];
      if (gk == T(0)) continue;
      const double q = a.q0 + static_cast<double>(k) * a.qstep;
      T s, co;
      phase_sincos(q, r, s, co);
      const double e = static_cast<double>(gauss(av, q)) * static_cast<double>(gk);
      t0 += e * static_cast<double>(s);
      t1 += e * q * static_cast<double>(co);
      t2 += e * q * q * static_cast<double>(s);
    }
    const double w = 1.0 / rd;
    double dEdr, dEdu;
    debye_pair_grad<double>(w, A, c, dc, w * t0, w * t1, w * t2, dEdr, dEdu);
    const double f = dEdr * w;
    fx += f * dx;
    fy += f * dy;
    fz += f * dz;
    fu += dEdu;
  }
  fx = block_sum(fx, red);
  fy = block_sum(fy, red);
  fz = block_sum(fz, red);
  fu = block_sum(fu, red);
  if (threadIdx.x == 0) {
    gpos[(b * N + i) * 3 + 0] = static_cast<T>(fx);
    gpos[(b * N + i) * 3 + 1] = static_cast<T>(fy);
    gpos[(b * N + i) * 3 + 2] = static_cast<T>(fz);
    gu[b * N + i] = static_cast<T>(fu);
  }
}

template <typename T>
cudaError_t launch_forward(const T* pos, const int64_t* species, const T* uiso, T* out, const DebyeArgs& a,
                           cudaStream_t stream) {
  if (a.B == 0 || a.N < 2 || a.nq == 0) return cudaSuccess;
  const int nt = kFwdThreads;
  const size_t tile = static_cast<size_t>(nt) * (2 * sizeof(T) + sizeof(int));
  const size_t acc = static_cast<size_t>(a.S * a.S * a.nq) * sizeof(double);
  const int use_smem = acc + tile <= kSmemLimit ? 1 : 0;
  const size_t smem = tile + (use_smem ? acc : 0);
  const int splits = splits_for(a.B, a.N / 2);
  dim3 grid(static_cast<unsigned>(a.B), static_cast<unsigned>(splits));
  debye_forward_kernel<T><<<grid, nt, smem, stream>>>(pos, species, uiso, out, a, splits, use_smem);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_backward(const T* grad, const T* pos, const int64_t* species, const T* uiso, T* gpos, T* gu,
                            const DebyeArgs& a, cudaStream_t stream) {
  if (a.B == 0 || a.N < 2 || a.nq == 0) return cudaSuccess;
  dim3 grid(static_cast<unsigned>(a.B), static_cast<unsigned>(a.N));
  debye_backward_kernel<T><<<grid, kBwdThreads, 0, stream>>>(grad, pos, species, uiso, gpos, gu, a);
  return cudaGetLastError();
}

}  // namespace

cudaError_t debye_forward(const float* pos, const int64_t* species, const float* uiso, float* out,
                          const DebyeArgs& args, cudaStream_t stream) {
  return launch_forward<float>(pos, species, uiso, out, args, stream);
}
cudaError_t debye_forward(const double* pos, const int64_t* species, const double* uiso, double* out,
                          const DebyeArgs& args, cudaStream_t stream) {
  return launch_forward<double>(pos, species, uiso, out, args, stream);
}
cudaError_t debye_backward(const float* grad, const float* pos, const int64_t* species, const float* uiso,
                           float* grad_pos, float* grad_uiso, const DebyeArgs& args, cudaStream_t stream) {
  return launch_backward<float>(grad, pos, species, uiso, grad_pos, grad_uiso, args, stream);
}
cudaError_t debye_backward(const double* grad, const double* pos, const int64_t* species, const double* uiso,
                           double* grad_pos, double* grad_uiso, const DebyeArgs& args, cudaStream_t stream) {
  return launch_backward<double>(grad, pos, species, uiso, grad_pos, grad_uiso, args, stream);
}

}  // namespace cuda
}  // namespace pdfsolve
