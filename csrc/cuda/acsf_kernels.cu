// CUDA kernels of pdfsolve::acsf (forward) and acsf_backward (see csrc/cuda/acsf_kernels.h, common/acsf_math.h).
//
// Forward: one block per (cluster, central atom i). The block stages i's neighbour geometry (distance, unit
// vector, cutoff, species; species -1 for non-neighbours) in shared memory, then each thread owns output
// features: a radial feature sums over the neighbours, an angular feature over the neighbour pairs j < k of its
// species pair. Every feature is summed in a register by one thread and written once: no atomics.
// Backward: one block per (cluster, atom m) gathers the whole gradient of atom m: its radial pairs (both
// directions), the triples it is the centre of, and the triples (i; m, k) it is a neighbour in; the threads
// split the (x, y) atom pairs, sum in double registers, reduce in shared memory and thread 0 writes once:
// no atomics, deterministic, and each triple is evaluated once per atom it moves (three times in all).
#include <cuda_runtime.h>

#include "common/acsf_math.h"
#include "cuda/acsf_kernels.h"
#include "cuda/cuda_common.cuh"

namespace pdfsolve {
namespace cuda {
namespace {

constexpr int kFwdThreads = 128;
constexpr int kBwdThreads = 256;

using acsf::Tables;

//! Geometry of neighbour j of centre i: distance, unit vector i -> j, cutoff and its derivative.
struct Nb {
  double r, u[3], fc, dfc;
};

//! Whether j is a neighbour of i (both real, j != i, tol < r_ij < rcut), with its geometry.
template <typename T>
__device__ __forceinline__ bool neighbour(const T* P, const int64_t* SP, int64_t i, int64_t j, double rcut, Nb& n) {
  if (i == j || SP[i] < 0 || SP[j] < 0) return false;
  const double dx = double(P[3 * j]) - double(P[3 * i]);
  const double dy = double(P[3 * j + 1]) - double(P[3 * i + 1]);
  const double dz = double(P[3 * j + 2]) - double(P[3 * i + 2]);
  const double d2 = dx * dx + dy * dy + dz * dz;
  if (!(d2 > kCoincidentTol2) || !(d2 < rcut * rcut)) return false;
  n.r = sqrt(d2);
  n.u[0] = dx / n.r;
  n.u[1] = dy / n.r;
  n.u[2] = dz / n.r;
  acsf::cutoff(n.r, rcut, n.fc, n.dfc);
  return true;
}

//! (s, t), s <= t, of the species-pair slot p (inverse of acsf::pair_slot).
__device__ __forceinline__ void slot_species(int p, int S, int& s, int& t) {
  s = 0;
  while (p >= S - s) {
    p -= S - s;
    ++s;
  }
  t = s + p;
}

template <typename T>
__global__ void acsf_forward_kernel(const T* __restrict__ pos, const int64_t* __restrict__ species, Tables tb,
                                    AcsfArgs a, T* __restrict__ out) {
  extern __shared__ __align__(16) unsigned char smem[];
  const int64_t N = a.N, b = blockIdx.x, i = blockIdx.y;
  double* r = reinterpret_cast<double*>(smem);
  double* ux = r + N;
  double* uy = ux + N;
  double* uz = uy + N;
  double* fc = uz + N;
  int* sp = reinterpret_cast<int*>(fc + N);
  const T* P = pos + b * N * 3;
  const int64_t* SP = species + b * N;
  if (SP[i] < 0) return;  // padding row stays zero (uniform over the block)
  for (int64_t j = threadIdx.x; j < N; j += blockDim.x) {
    Nb n;
    const bool ok = neighbour(P, SP, i, j, a.rcut, n);
    sp[j] = ok ? static_cast<int>(SP[j]) : -1;
    r[j] = ok ? n.r : 0.0;
    ux[j] = ok ? n.u[0] : 0.0;
    uy[j] = ok ? n.u[1] : 0.0;
    uz[j] = ok ? n.u[2] : 0.0;
    fc[j] = ok ? n.fc : 0.0;
  }
  __syncthreads();
  const int S = static_cast<int>(a.S);
  const int64_t n_rad = a.S * tb.n_r;
  T* o = out + (b * N + i) * a.F;
  for (int64_t f = threadIdx.x; f < a.F; f += blockDim.x) {
    double acc = 0.0;
    if (f < n_rad) {
      const int s = static_cast<int>(f / tb.n_r), q = static_cast<int>(f % tb.n_r);
      const double eta = tb.radial[2 * q], rs = tb.radial[2 * q + 1];
      for (int64_t j = 0; j < N; ++j) {
        if (sp[j] != s) continue;
        double v, dv;
        acsf::radial_term(r[j], eta, rs, fc[j], 0.0, v, dv);
        acc += v;
      }
    } else {
      const int p = static_cast<int>((f - n_rad) / tb.n_a), ar = static_cast<int>((f - n_rad) % tb.n_a);
      int s, t;
      slot_species(p, S, s, t);
      const double eta = tb.ue[tb.row_e[ar]];
      const int z = tb.row_zl[ar];
      const double lam = tb.ulam[z], zeta = tb.uzeta[z];
      const int nz = tb.uzint[z];
      for (int64_t j = 0; j < N; ++j) {
        const int sj = sp[j];
        if (sj != s && sj != t) continue;
        const int want = sj == s ? t : s;
        const double wj = acsf::gauss_exp(-eta * r[j] * r[j]) * fc[j];
        for (int64_t k = j + 1; k < N; ++k) {
          if (sp[k] != want) continue;
          const double c = ux[j] * ux[k] + uy[j] * uy[k] + uz[j] * uz[k];
          const double base = acsf::angular_base(c, lam);
          const double pw = acsf::pow_m1(base, zeta, nz) * base;
          acc += pw * wj * acsf::gauss_exp(-eta * r[k] * r[k]) * fc[k];
        }
      }
      acc *= tb.coef[ar];
    }
    o[f] = static_cast<T>(acc);
  }
}

//! Gradient contribution to atom m of the triple (centre c; j, k) given its geometry; `role` 0: m is the centre,
//! 1: m is j. Adds to f.
template <typename T>
__device__ __forceinline__ void triple_grad(const T* G, const int64_t* SP, const Tables& tb, const AcsfArgs& a,
                                            int64_t c, int64_t j, int64_t k, const Nb& nj, const Nb& nk, int role,
                                            double* f) {
  const int S = static_cast<int>(a.S);
  const int p = acsf::pair_slot(static_cast<int>(SP[j]), static_cast<int>(SP[k]), S);
  const T* g = G + c * a.F + a.S * tb.n_r + static_cast<int64_t>(p) * tb.n_a;
  const double cs = nj.u[0] * nk.u[0] + nj.u[1] * nk.u[1] + nj.u[2] * nk.u[2];
  double A, Bj, Bk;
  acsf::triple_scalars(tb, g, cs, nj.r, nj.fc, nj.dfc, nk.r, nk.fc, nk.dfc, A, Bj, Bk);
  double dj[3], dk[3];
  acsf::cos_grad(nj.u, nk.u, cs, nj.r, dj);
  acsf::cos_grad(nk.u, nj.u, cs, nk.r, dk);
  for (int x = 0; x < 3; ++x) {
    const double gj = A * dj[x] + Bj * nj.u[x];
    f[x] += role == 1 ? gj : -(gj + A * dk[x] + Bk * nk.u[x]);  // the centre moves against both neighbours
  }
}

template <typename T>
__global__ void acsf_backward_kernel(const T* __restrict__ grad, const T* __restrict__ pos,
                                     const int64_t* __restrict__ species, Tables tb, AcsfArgs a,
                                     T* __restrict__ grad_pos) {
  __shared__ double red[kBwdThreads];
  const int64_t N = a.N, b = blockIdx.x, m = blockIdx.y;
  const T* P = pos + b * N * 3;
  const int64_t* SP = species + b * N;
  const T* G = grad + b * N * a.F;
  double f[3] = {0.0, 0.0, 0.0};
  if (SP[m] >= 0) {
    for (int64_t xy = threadIdx.x; xy < N * N; xy += blockDim.x) {
      const int64_t x = xy / N, y = xy % N;
      if (y == m || x == y) continue;
      Nb nmy, nxm, nxy, nmx;
      if (x == m) {  // radial pair (m, y), both directions
        if (!neighbour(P, SP, m, y, a.rcut, nmy)) continue;
        const T* gm = G + m * a.F + SP[y] * tb.n_r;
        const T* gy = G + y * a.F + SP[m] * tb.n_r;
        double dl = 0.0;
        for (int q = 0; q < tb.n_r; ++q) {
          double v, dv;
          acsf::radial_term(nmy.r, tb.radial[2 * q], tb.radial[2 * q + 1], nmy.fc, nmy.dfc, v, dv);
          dl += (double(gm[q]) + double(gy[q])) * dv;
        }
        for (int d = 0; d < 3; ++d) f[d] -= dl * nmy.u[d];
        continue;
      }
      // m as a neighbour of centre x, partner y
      if (neighbour(P, SP, x, m, a.rcut, nxm) && neighbour(P, SP, x, y, a.rcut, nxy))
        triple_grad(G, SP, tb, a, x, m, y, nxm, nxy, 1, f);
      // m as the centre of the pair x < y
      if (x < y && neighbour(P, SP, m, x, a.rcut, nmx) && neighbour(P, SP, m, y, a.rcut, nmy))
        triple_grad(G, SP, tb, a, m, x, y, nmx, nmy, 0, f);
    }
  }
  for (int d = 0; d < 3; ++d) {
    const double v = block_sum(f[d], red);
    if (threadIdx.x == 0) grad_pos[(b * N + m) * 3 + d] = static_cast<T>(v);
  }
}

template <typename T>
cudaError_t launch_forward(const T* pos, const int64_t* species, const Tables& t, const AcsfArgs& a, T* out,
                           cudaStream_t stream) {
  if (a.B == 0 || a.N == 0 || a.F == 0) return cudaSuccess;
  const size_t smem = acsf_shared_bytes(a.N, t);
  if (smem > 48 * 1024) {
    const cudaError_t err =
        cudaFuncSetAttribute(acsf_forward_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
    if (err != cudaSuccess) return err;
  }
  const dim3 grid(static_cast<unsigned>(a.B), static_cast<unsigned>(a.N));
  acsf_forward_kernel<T><<<grid, kFwdThreads, smem, stream>>>(pos, species, t, a, out);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_backward(const T* grad, const T* pos, const int64_t* species, const Tables& t, const AcsfArgs& a,
                            T* grad_pos, cudaStream_t stream) {
  if (a.B == 0 || a.N == 0) return cudaSuccess;
  const dim3 grid(static_cast<unsigned>(a.B), static_cast<unsigned>(a.N));
  acsf_backward_kernel<T><<<grid, kBwdThreads, 0, stream>>>(grad, pos, species, t, a, grad_pos);
  return cudaGetLastError();
}

}  // namespace

size_t acsf_shared_bytes(int64_t N, const acsf::Tables&) {
  return static_cast<size_t>(N) * (5 * sizeof(double) + sizeof(int));
}

cudaError_t acsf_forward(const float* pos, const int64_t* species, const acsf::Tables& t, const AcsfArgs& args,
                         float* out, cudaStream_t stream) {
  return launch_forward<float>(pos, species, t, args, out, stream);
}
cudaError_t acsf_forward(const double* pos, const int64_t* species, const acsf::Tables& t, const AcsfArgs& args,
                         double* out, cudaStream_t stream) {
  return launch_forward<double>(pos, species, t, args, out, stream);
}
cudaError_t acsf_backward(const float* grad, const float* pos, const int64_t* species, const acsf::Tables& t,
                          const AcsfArgs& args, float* grad_pos, cudaStream_t stream) {
  return launch_backward<float>(grad, pos, species, t, args, grad_pos, stream);
}
cudaError_t acsf_backward(const double* grad, const double* pos, const int64_t* species, const acsf::Tables& t,
                          const AcsfArgs& args, double* grad_pos, cudaStream_t stream) {
  return launch_backward<double>(grad, pos, species, t, args, grad_pos, stream);
}

}  // namespace cuda
}  // namespace pdfsolve
