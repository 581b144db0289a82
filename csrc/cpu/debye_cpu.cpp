// CPU kernels of pdfsolve::debye_partials and pdfsolve::debye_partials_backward.
//
// Per pair, sin/cos(Q_k r) follow the angle-addition recurrence and the Gaussian exp(-a Q_k^2) a multiplicative
// recurrence over k. Both are resynchronised every kBlockK steps from per-pair block values that are themselves
// stepped with exactly computed block rotations/ratios (in double), so drift stays bounded by ~(nq/kBlockK + kBlockK)
// roundings. Pairs of the same species pair are processed L at a time in SIMD-friendly lanes; the inner recurrence
// runs in the op's dtype (float or double), everything per pair and all sums across pairs in double.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/debye_math.h"
#include "common/op_checks.h"
#include "cpu/pair_loop.h"

#if defined(__GNUC__)
#define PDFSOLVE_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define PDFSOLVE_ALWAYS_INLINE inline
#endif

namespace pdfsolve {
namespace cpu {
namespace {

#ifndef PDF_LF
#define PDF_LF 16
#endif
#ifndef PDF_LD
#define PDF_LD 8
#endif
constexpr int kBlockK = 32;       // recurrence steps between resynchronisations (2^5, see LaneState::init)
constexpr int kFlushBlocks = 32;  // lane blocks summed in V before folding into the double accumulator

template <typename V>
struct LaneCount;
template <>
struct LaneCount<float> {
  static constexpr int value = PDF_LF;
};
template <>
struct LaneCount<double> {
  static constexpr int value = PDF_LD;
};

//! One staged pair. r in Angstrom, A = (U_i + U_j)/2, c and dc the Jeong factor and its derivative.
struct PairRec {
  double r, A, c, dc, dx, dy, dz;
  int64_t i, j;
};

//! Recurrence state of L pairs; double block values, V inner values.
template <typename V, int L>
struct LaneState {
  alignas(64) double bs[L], bc[L];    // sin/cos(Q_{k0} r) at the current block start
  alignas(64) double SB[L], CB[L];    // sin/cos(kBlockK qstep r): exact block rotation
  alignas(64) double G[L], Rb[L], RRb[L];  // w exp(-a Q_{k0}^2); its block ratio and that ratio's ratio
  alignas(64) double rt[L], rrB[L];   // step ratio exp(-a(2 Q_{k0} h + h^2)) at block start; its block ratio
  alignas(64) V S1[L], C1[L], rr[L];  // sin/cos(h r), exp(-2 a h^2)

  void init(const PairRec* recs, int n, double q0, double h) {
    const double B = kBlockK;
    for (int l = 0; l < L; ++l) {
      double r = 1.0, w = 0.0, a = 0.0;
      if (l < n) {
        r = recs[l].r;
        w = 1.0 / r;
        a = recs[l].A * recs[l].c;
      }
      ::sincos(q0 * r, &bs[l], &bc[l]);
      double s1, c1;
      ::sincos(h * r, &s1, &c1);
      S1[l] = static_cast<V>(s1);
      C1[l] = static_cast<V>(c1);
      // Block rotation by kBlockK = 2^5 steps from five angle doublings: its error (~32 ulp of h r) is the same
      // order as the rounding of the argument kBlockK * h * r of a direct evaluation.
      for (int d = 0; d < 5; ++d) {
        const double s2 = 2.0 * s1 * c1;
        c1 = (c1 - s1) * (c1 + s1);
        s1 = s2;
      }
      SB[l] = s1;
      CB[l] = c1;
      if (a == 0.0) {
        G[l] = w;
        Rb[l] = RRb[l] = rt[l] = rrB[l] = 1.0;
        rr[l] = V(1);
      } else {
        G[l] = w * std::exp(-a * q0 * q0);
        Rb[l] = std::exp(-a * (2.0 * q0 * B * h + B * B * h * h));
        RRb[l] = std::exp(-2.0 * a * B * B * h * h);
        rt[l] = std::exp(-a * (2.0 * q0 * h + h * h));
        rrB[l] = std::exp(-2.0 * a * B * h * h);
        rr[l] = static_cast<V>(std::exp(-2.0 * a * h * h));
      }
    }
  }

  PDFSOLVE_ALWAYS_INLINE void advance_block() {
    for (int l = 0; l < L; ++l) {
      const double ns = bs[l] * CB[l] + bc[l] * SB[l];
      bc[l] = bc[l] * CB[l] - bs[l] * SB[l];
      bs[l] = ns;
      G[l] *= Rb[l];
      Rb[l] *= RRb[l];
      rt[l] *= rrB[l];
    }
  }
};


// 32-byte GCC/Clang vector types: native ymm registers in the AVX2 clones, pairs of xmm registers otherwise.
typedef float vec8f __attribute__((vector_size(32)));
typedef double vec4d __attribute__((vector_size(32)));
template <typename V>
struct VecOf;
template <>
struct VecOf<float> {
  using type = vec8f;
  static constexpr int W = 8;
};
template <>
struct VecOf<double> {
  using type = vec4d;
  static constexpr int W = 4;
};

template <typename vec, typename V>
PDFSOLVE_ALWAYS_INLINE vec vload(const V* p) {
  vec v;
  std::memcpy(&v, p, sizeof(vec));
  return v;
}
template <typename vec, typename V>
PDFSOLVE_ALWAYS_INLINE void vstore(V* p, const vec& v) {
  std::memcpy(p, &v, sizeof(vec));
}
template <typename vec, typename V>
PDFSOLVE_ALWAYS_INLINE vec vcast(const double* p) {
  constexpr int W = sizeof(vec) / sizeof(V);
  vec v;
  for (int w = 0; w < W; ++w) v[w] = static_cast<V>(p[w]);
  return v;
}

//! Forward inner loop: out[k*L + l] += w e_k sin(Q_k r) for kc steps.
template <typename V, int L>
PDFSOLVE_ALWAYS_INLINE void fwd_inner(V* __restrict out, int kc, const LaneState<V, L>& st) {
  using vec = typename VecOf<V>::type;
  constexpr int W = VecOf<V>::W, NV = L / W;
  vec s[NV], c[NV], g[NV], t[NV], S1[NV], C1[NV], rr[NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    s[v] = vcast<vec, V>(st.bs + v * W);
    c[v] = vcast<vec, V>(st.bc + v * W);
    g[v] = vcast<vec, V>(st.G + v * W);
    t[v] = vcast<vec, V>(st.rt + v * W);
    S1[v] = vload<vec>(st.S1 + v * W);
    C1[v] = vload<vec>(st.C1 + v * W);
    rr[v] = vload<vec>(st.rr + v * W);
  }
  for (int k = 0; k < kc; ++k) {
    V* o = out + static_cast<int64_t>(k) * L;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      vstore(o + v * W, vload<vec>(o + v * W) + g[v] * s[v]);
      const vec sn = s[v] * C1[v] + c[v] * S1[v];
      c[v] = c[v] * C1[v] - s[v] * S1[v];
      s[v] = sn;
      g[v] *= t[v];
      t[v] *= rr[v];
    }
  }
}

//! Backward inner loop: per lane t0 += G w e s, t1 += G Q w e c, t2 += G Q^2 w e s over kc steps.
template <typename V, int L>
PDFSOLVE_ALWAYS_INLINE void bwd_inner(const V* __restrict gk, const V* __restrict gq, const V* __restrict gq2,
                                      int kc, const LaneState<V, L>& st, double* T0, double* T1, double* T2) {
  using vec = typename VecOf<V>::type;
  constexpr int W = VecOf<V>::W, NV = L / W;
  vec s[NV], c[NV], g[NV], t[NV], S1[NV], C1[NV], rr[NV], t0[NV], t1[NV], t2[NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    s[v] = vcast<vec, V>(st.bs + v * W);
    c[v] = vcast<vec, V>(st.bc + v * W);
    g[v] = vcast<vec, V>(st.G + v * W);
    t[v] = vcast<vec, V>(st.rt + v * W);
    S1[v] = vload<vec>(st.S1 + v * W);
    C1[v] = vload<vec>(st.C1 + v * W);
    rr[v] = vload<vec>(st.rr + v * W);
    t0[v] = t1[v] = t2[v] = vec{};
  }
  for (int k = 0; k < kc; ++k) {
    const V G = gk[k], GQ = gq[k], GQ2 = gq2[k];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const vec es = g[v] * s[v];
      const vec ec = g[v] * c[v];
      t0[v] += es * G;
      t1[v] += ec * GQ;
      t2[v] += es * GQ2;
      const vec sn = s[v] * C1[v] + c[v] * S1[v];
      c[v] = c[v] * C1[v] - s[v] * S1[v];
      s[v] = sn;
      g[v] *= t[v];
      t[v] *= rr[v];
    }
  }
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v)
    for (int w = 0; w < W; ++w) {
      T0[v * W + w] += t0[v][w];
      T1[v * W + w] += t1[v][w];
      T2[v * W + w] += t2[v][w];
    }
}

//! Whole k range of one lane block (forward / backward), compiled twice: AVX2+FMA and baseline.
template <typename V, int L>
PDFSOLVE_ALWAYS_INLINE void fwd_block_body(LaneState<V, L>& st, V* la, int64_t nq) {
  for (int64_t k0 = 0; k0 < nq; k0 += kBlockK) {
    const int kc = static_cast<int>(std::min<int64_t>(kBlockK, nq - k0));
    fwd_inner<V, L>(la + k0 * L, kc, st);
    st.advance_block();
  }
}
template <typename V, int L>
PDFSOLVE_ALWAYS_INLINE void bwd_block_body(LaneState<V, L>& st, const V* G, const V* GQ, const V* GQ2, int64_t nq,
                                           double* T0, double* T1, double* T2) {
  for (int64_t k0 = 0; k0 < nq; k0 += kBlockK) {
    const int kc = static_cast<int>(std::min<int64_t>(kBlockK, nq - k0));
    bwd_inner<V, L>(G + k0, GQ + k0, GQ2 + k0, kc, st, T0, T1, T2);
    st.advance_block();
  }
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define PDFSOLVE_X86_CLONES 1
template <typename V, int L>
__attribute__((target("avx2,fma"))) void fwd_block_avx2(LaneState<V, L>& st, V* la, int64_t nq) {
  fwd_block_body<V, L>(st, la, nq);
}
template <typename V, int L>
__attribute__((target("avx2,fma"))) void bwd_block_avx2(LaneState<V, L>& st, const V* G, const V* GQ,
                                                         const V* GQ2, int64_t nq, double* T0, double* T1,
                                                         double* T2) {
  bwd_block_body<V, L>(st, G, GQ, GQ2, nq, T0, T1, T2);
}
inline bool cpu_has_avx2() {
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
}
#endif

template <typename V, int L>
void fwd_block(LaneState<V, L>& st, V* la, int64_t nq) {
#ifdef PDFSOLVE_X86_CLONES
  if (cpu_has_avx2()) return fwd_block_avx2<V, L>(st, la, nq);
#endif
  fwd_block_body<V, L>(st, la, nq);
}
template <typename V, int L>
void bwd_block(LaneState<V, L>& st, const V* G, const V* GQ, const V* GQ2, int64_t nq, double* T0, double* T1,
               double* T2) {
#ifdef PDFSOLVE_X86_CLONES
  if (cpu_has_avx2()) return bwd_block_avx2<V, L>(st, G, GQ, GQ2, nq, T0, T1, T2);
#endif
  bwd_block_body<V, L>(st, G, GQ, GQ2, nq, T0, T1, T2);
}

//! Per-thread workspace: pairs staged per species pair, processed L at a time.
template <typename V>
struct DebyeEngine {
  static constexpr int L = LaneCount<V>::value;
  int64_t nq, SS;
  double q0, h;
  std::vector<PairRec> stage;  // SS * L
  std::vector<int> nstage;     // SS

  // forward
  std::vector<V> lacc;       // SS * nq * L lane accumulators
  std::vector<int> nblk;     // blocks summed into lacc since its last flush, per species pair
  std::vector<double> acc;   // SS * nq

  // backward
  std::vector<V> gk, gq, gq2;  // SS * nq: G_k, G_k Q_k, G_k Q_k^2 of the current cluster
  std::vector<char> gnz;       // species pair has a nonzero upstream gradient
  double* gpos = nullptr;      // N * 3 (double)
  double* gu = nullptr;        // N

  DebyeEngine(int64_t nq_, int64_t SS_, double q0_, double h_)
      : nq(nq_), SS(SS_), q0(q0_), h(h_), stage(SS_ * L), nstage(SS_, 0) {}

  void init_forward() {
    lacc.assign(SS * nq * L, V(0));
    nblk.assign(SS, 0);
    acc.assign(SS * nq, 0.0);
  }

  void flush_lanes(int64_t p) {
    V* la = lacc.data() + p * nq * L;
    double* a = acc.data() + p * nq;
    for (int64_t k = 0; k < nq; ++k) {
      double sum = 0.0;
      for (int l = 0; l < L; ++l) {
        sum += la[k * L + l];
        la[k * L + l] = V(0);
      }
      a[k] += sum;
    }
    nblk[p] = 0;
  }

  void run_forward_block(int64_t p, int n) {
    LaneState<V, L> st;
    st.init(stage.data() + p * L, n, q0, h);
    fwd_block<V, L>(st, lacc.data() + p * nq * L, nq);
    if (++nblk[p] >= kFlushBlocks) flush_lanes(p);
  }

  void add_forward(int64_t p, double r, double a) {
    PairRec& rec = stage[p * L + nstage[p]];
    rec.r = r;
    rec.A = a;
    rec.c = 1.0;
    if (++nstage[p] == L) {
      run_forward_block(p, L);
      nstage[p] = 0;
    }
  }

  //! Processes partial lane blocks and folds everything into acc.
  void finish_forward() {
    for (int64_t p = 0; p < SS; ++p) {
      if (nstage[p] > 0) run_forward_block(p, nstage[p]);
      nstage[p] = 0;
      if (nblk[p] > 0) flush_lanes(p);
    }
  }

  //! Loads the upstream gradient of one cluster (grad: SS x nq) for the backward pass.
  template <typename T>
  void load_grad(const T* grad) {
    gk.resize(SS * nq);
    gq.resize(SS * nq);
    gq2.resize(SS * nq);
    gnz.assign(SS, 0);
    for (int64_t p = 0; p < SS; ++p) {
      for (int64_t k = 0; k < nq; ++k) {
        const double G = static_cast<double>(grad[p * nq + k]);
        const double Q = q0 + static_cast<double>(k) * h;
        gk[p * nq + k] = static_cast<V>(G);
        gq[p * nq + k] = static_cast<V>(G * Q);
        gq2[p * nq + k] = static_cast<V>(G * Q * Q);
        if (G != 0.0) gnz[p] = 1;
      }
    }
  }

  void run_backward_block(int64_t p, int n) {
    const PairRec* recs = stage.data() + p * L;
    LaneState<V, L> st;
    st.init(recs, n, q0, h);
    alignas(64) double T0[L] = {}, T1[L] = {}, T2[L] = {};
    const V* G = gk.data() + p * nq;
    const V* GQ = gq.data() + p * nq;
    const V* GQ2 = gq2.data() + p * nq;
    bwd_block<V, L>(st, G, GQ, GQ2, nq, T0, T1, T2);
    for (int l = 0; l < n; ++l) {
      const PairRec& q = recs[l];
      const double w = 1.0 / q.r;
      double dEdr, dEdu;
      debye_pair_grad<double>(w, q.A, q.c, q.dc, T0[l], T1[l], T2[l], dEdr, dEdu);
      const double f = dEdr * w;
      gpos[3 * q.i + 0] += f * q.dx;
      gpos[3 * q.i + 1] += f * q.dy;
      gpos[3 * q.i + 2] += f * q.dz;
      gpos[3 * q.j + 0] -= f * q.dx;
      gpos[3 * q.j + 1] -= f * q.dy;
      gpos[3 * q.j + 2] -= f * q.dz;
      gu[q.i] += dEdu;
      gu[q.j] += dEdu;
    }
  }

  void add_backward(int64_t p, const PairRec& rec) {
    if (!gnz[p]) return;
    stage[p * L + nstage[p]] = rec;
    if (++nstage[p] == L) {
      run_backward_block(p, L);
      nstage[p] = 0;
    }
  }

  void finish_backward() {
    for (int64_t p = 0; p < SS; ++p) {
      if (nstage[p] > 0) run_backward_block(p, nstage[p]);
      nstage[p] = 0;
    }
  }
};

struct DebyeParams {
  int64_t S, nq;
  double q0, qstep, rcut, d1, d2, qb;
};

//! Forward over folded units [u0, u1) of one cluster into eng.acc (which must be initialised).
template <typename T, typename V>
void forward_units(DebyeEngine<V>& eng, const T* pos, const int64_t* sp, const T* uiso, int64_t n,
                   const DebyeParams& prm, int64_t u0, int64_t u1) {
  for_each_pair(pos, sp, n, static_cast<int>(prm.S), u0, u1,
                [&](int64_t i, int64_t j, double r, double, double, double, int p) {
                  if (!(r <= prm.rcut)) return;
                  double c, dc;
                  jeong_factor<double>(r, prm.d1, prm.d2, prm.qb, c, dc);
                  const double A = 0.5 * (static_cast<double>(uiso[i]) + static_cast<double>(uiso[j]));
                  eng.add_forward(p, r, A * c);
                });
  eng.finish_forward();
}

template <typename T, typename V>
void backward_units(DebyeEngine<V>& eng, const T* pos, const int64_t* sp, const T* uiso, int64_t n,
                    const DebyeParams& prm, int64_t u0, int64_t u1) {
  for_each_pair(pos, sp, n, static_cast<int>(prm.S), u0, u1,
                [&](int64_t i, int64_t j, double r, double dx, double dy, double dz, int p) {
                  if (!(r <= prm.rcut)) return;
                  PairRec rec;
                  rec.r = r;
                  jeong_factor<double>(r, prm.d1, prm.d2, prm.qb, rec.c, rec.dc);
                  rec.A = 0.5 * (static_cast<double>(uiso[i]) + static_cast<double>(uiso[j]));
                  rec.dx = dx;
                  rec.dy = dy;
                  rec.dz = dz;
                  rec.i = i;
                  rec.j = j;
                  eng.add_backward(p, rec);
                });
  eng.finish_backward();
}

template <typename T>
using VType = T;  // inner recurrence type: the op's dtype

template <typename T>
void debye_forward_impl(const at::Tensor& pos, const at::Tensor& sp, const at::Tensor& uiso, at::Tensor& out,
                        const DebyeParams& prm) {
  using V = VType<T>;
  const int64_t B = pos.size(0), N = pos.size(1), SS = prm.S * prm.S, nq = prm.nq;
  const T* P = pos.data_ptr<T>();
  const int64_t* SP = sp.data_ptr<int64_t>();
  const T* U = uiso.data_ptr<T>();
  T* O = out.data_ptr<T>();
  const int64_t nunits = n_fold_units(N);
  auto store = [&](int64_t b, const std::vector<double>& acc) {
    T* o = O + b * SS * nq;
    for (int64_t k = 0; k < SS * nq; ++k) o[k] = static_cast<T>(acc[k]);
  };
  if (!use_atom_parallel(B, N, nq)) {
    at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
      DebyeEngine<V> eng(nq, SS, prm.q0, prm.qstep);
      for (int64_t b = b0; b < b1; ++b) {
        eng.init_forward();
        forward_units<T, V>(eng, P + b * N * 3, SP + b * N, U + b * N, N, prm, 0, nunits);
        store(b, eng.acc);
      }
    });
    return;
  }
  const int64_t nt = at::get_num_threads();
  std::vector<std::vector<double>> part(nt);
  for (int64_t b = 0; b < B; ++b) {
    for (auto& v : part) v.assign(SS * nq, 0.0);
    at::parallel_for(0, nunits, atom_grain(N, nq), [&](int64_t u0, int64_t u1) {
      DebyeEngine<V> eng(nq, SS, prm.q0, prm.qstep);
      eng.init_forward();
      forward_units<T, V>(eng, P + b * N * 3, SP + b * N, U + b * N, N, prm, u0, u1);
      auto& dst = part[at::get_thread_num()];
      for (int64_t k = 0; k < SS * nq; ++k) dst[k] += eng.acc[k];
    });
    for (int64_t t = 1; t < nt; ++t)
      for (int64_t k = 0; k < SS * nq; ++k) part[0][k] += part[t][k];
    store(b, part[0]);
  }
}

template <typename T>
void debye_backward_impl(const at::Tensor& grad, const at::Tensor& pos, const at::Tensor& sp,
                         const at::Tensor& uiso, at::Tensor& gpos, at::Tensor& gu, const DebyeParams& prm) {
  // The backward's three weighted sums lose more to a float recurrence than the forward does (the U_iso gradient
  // came within 1e-5 of its max), so it runs the recurrence in double for both dtypes.
  using V = double;
  const int64_t B = pos.size(0), N = pos.size(1), SS = prm.S * prm.S, nq = prm.nq;
  const T* Gr = grad.data_ptr<T>();
  const T* P = pos.data_ptr<T>();
  const int64_t* SP = sp.data_ptr<int64_t>();
  const T* U = uiso.data_ptr<T>();
  T* GP = gpos.data_ptr<T>();
  T* GU = gu.data_ptr<T>();
  const int64_t nunits = n_fold_units(N);
  auto store = [&](int64_t b, const std::vector<double>& buf) {
    for (int64_t k = 0; k < 3 * N; ++k) GP[b * N * 3 + k] = static_cast<T>(buf[k]);
    for (int64_t k = 0; k < N; ++k) GU[b * N + k] = static_cast<T>(buf[3 * N + k]);
  };
  if (!use_atom_parallel(B, N, nq)) {
    at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
      DebyeEngine<V> eng(nq, SS, prm.q0, prm.qstep);
      std::vector<double> buf(4 * N);
      for (int64_t b = b0; b < b1; ++b) {
        std::fill(buf.begin(), buf.end(), 0.0);
        eng.gpos = buf.data();
        eng.gu = buf.data() + 3 * N;
        eng.load_grad(Gr + b * SS * nq);
        backward_units<T, V>(eng, P + b * N * 3, SP + b * N, U + b * N, N, prm, 0, nunits);
        store(b, buf);
      }
    });
    return;
  }
  const int64_t nt = at::get_num_threads();
  std::vector<std::vector<double>> part(nt);
  for (int64_t b = 0; b < B; ++b) {
    for (auto& v : part) v.assign(4 * N, 0.0);
    at::parallel_for(0, nunits, atom_grain(N, nq), [&](int64_t u0, int64_t u1) {
      DebyeEngine<V> eng(nq, SS, prm.q0, prm.qstep);
      auto& dst = part[at::get_thread_num()];
      eng.gpos = dst.data();
      eng.gu = dst.data() + 3 * N;
      eng.load_grad(Gr + b * SS * nq);
      backward_units<T, V>(eng, P + b * N * 3, SP + b * N, U + b * N, N, prm, u0, u1);
    });
    for (int64_t t = 1; t < nt; ++t)
      for (int64_t k = 0; k < 4 * N; ++k) part[0][k] += part[t][k];
    store(b, part[0]);
  }
}

at::Tensor debye_partials_cpu(const at::Tensor& pos_, const at::Tensor& species_, const at::Tensor& uiso_,
                              int64_t n_species, double q0, double qstep, int64_t nq, double rcut, double delta1,
                              double delta2, double qbroad) {
  const char* op = "pdfsolve::debye_partials";
  check_atoms(op, pos_, species_, &uiso_, n_species);
  check_debye_params(op, nq, q0, qstep, rcut, delta1, delta2, qbroad);
  TORCH_CHECK(pos_.device().is_cpu(), op, ": pos must be a CPU tensor for the CPU kernel");
  auto pos = pos_.contiguous();
  auto sp = species_.contiguous();
  auto uiso = uiso_.contiguous();
  auto out = at::zeros({pos.size(0), n_species * n_species, nq}, pos.options());
  check_species_values(op, sp, n_species);
  if (pos.size(0) == 0 || pos.size(1) < 2 || nq == 0) return out;
  const DebyeParams prm{n_species, nq, q0, qstep, rcut, delta1, delta2, qbroad};
  AT_DISPATCH_FLOATING_TYPES(pos.scalar_type(), "debye_partials_cpu",
                             [&] { debye_forward_impl<scalar_t>(pos, sp, uiso, out, prm); });
  return out;
}

std::tuple<at::Tensor, at::Tensor> debye_partials_backward_cpu(const at::Tensor& grad_, const at::Tensor& pos_,
                                                               const at::Tensor& species_, const at::Tensor& uiso_,
                                                               int64_t n_species, double q0, double qstep,
                                                               int64_t nq, double rcut, double delta1,
                                                               double delta2, double qbroad) {
  const char* op = "pdfsolve::debye_partials_backward";
  check_atoms(op, pos_, species_, &uiso_, n_species);
  check_debye_params(op, nq, q0, qstep, rcut, delta1, delta2, qbroad);
  check_grad(op, grad_, pos_, n_species, nq, "nq");
  TORCH_CHECK(pos_.device().is_cpu(), op, ": pos must be a CPU tensor for the CPU kernel");
  auto grad = grad_.contiguous();
  auto pos = pos_.contiguous();
  auto sp = species_.contiguous();
  auto uiso = uiso_.contiguous();
  auto gpos = at::zeros(pos.sizes(), pos.options());
  auto gu = at::zeros(uiso.sizes(), uiso.options());
  check_species_values(op, sp, n_species);
  if (pos.size(0) == 0 || pos.size(1) < 2 || nq == 0) return {gpos, gu};
  const DebyeParams prm{n_species, nq, q0, qstep, rcut, delta1, delta2, qbroad};
  AT_DISPATCH_FLOATING_TYPES(pos.scalar_type(), "debye_partials_backward_cpu",
                             [&] { debye_backward_impl<scalar_t>(grad, pos, sp, uiso, gpos, gu, prm); });
  return {gpos, gu};
}

}  // namespace
}  // namespace cpu
}  // namespace pdfsolve

TORCH_LIBRARY_IMPL(pdfsolve, CPU, m) {
  m.impl("debye_partials", &pdfsolve::cpu::debye_partials_cpu);
  m.impl("debye_partials_backward", &pdfsolve::cpu::debye_partials_backward_cpu);
}
