// CPU kernels of pdfsolve::acsf and pdfsolve::acsf_backward (Behler G2/G5 symmetry functions, common/acsf_math.h).
//
// Work is organised per central atom i: its neighbours (real, non-coincident, closer than rcut) are gathered once,
// sorted by species, into structure-of-arrays buffers with the angular weights w_e = exp(-eta_e r^2) f_c per
// unique angular eta. The neighbour pairs (j < k) of each species pair are then taken in chunks of up to kChunk
// pairs, whatever j: per chunk, plain array loops over the pairs (vectorised: the host exp of acsf_math.h has no
// library call) give the cosines, the products w_j w_k per unique eta and the powers (1 + lambda cos)^zeta per
// unique (zeta, lambda) (repeated squaring for integer zeta), and each angular row is one dot product over the
// chunk. (Looping over k per j instead left loops of N / 2 pairs on average: short and slow for small clusters.)
// The backward sums the upstream gradient row into three scalars per pair (d/dcos, d/dr_ij, d/dr_ik), again one
// array loop per row, then adds one force per pair to j and to k.
// Everything is computed and summed in double for both dtypes. The per-cluster pieces also serve AcsfCluster
// (cpu/acsf_cluster.h), which solvers call inside their own loops.
// Forward: parallel over (cluster, central atom), each writing its own output row. Backward: parallel over
// clusters, or, for batches smaller than the thread count, over the central atoms of one cluster with
// per-thread gradient buffers summed at the end (no atomics).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "common/acsf_checks.h"
#include "cpu/acsf_cluster.h"
#include "common/acsf_math.h"
#include "common/op_checks.h"

namespace pdfsolve {
namespace cpu {
namespace {

using acsf::Tables;

//! Rows of the squaring table: integer zetas up to 2^kTabRows - 1 (acsf_math.h takes zeta <= 1024 as integer).
constexpr int kTabRows = 11;

// The hot loops are compiled twice, for AVX2 + FMA and for the baseline, chosen at load time. The clone is named by
// ISA level (x86-64-v3, gcc >= 12), which the loader tests by CPU features; an "arch=haswell" clone is taken only
// on CPUs that gcc identifies as Haswell-class Intel (never on AMD), so those ran the SSE2 baseline.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && __GNUC__ >= 12
#define ACSF_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#elif defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define ACSF_CLONES __attribute__((target_clones("arch=haswell", "default")))
#else
#define ACSF_CLONES
#endif

//! Angle triples (i; j, k) are processed in chunks of this many neighbour pairs (j, k), whatever the cluster size.
constexpr int kChunk = 128;

//! Per-thread scratch of one central atom: neighbour arrays (capacity N) and per-chunk pair arrays (capacity
//! kChunk).
struct Scratch {
  int m = 0;                         // neighbours of the current centre
  std::vector<int64_t> idx;          // (N) atom index of each neighbour, sorted by species
  std::vector<int> sp, start;        // (N) species; (S + 1) first neighbour of each species
  std::vector<double> r, ux, uy, uz, fc, dfc;  // (N) distance, unit vector centre -> neighbour, cutoff
  std::vector<double> w, dw;         // (n_ue, N) angular weight and its r-derivative
  std::vector<double> gx, gy, gz;    // (N) gradient of the centre's features w.r.t. each neighbour
  std::vector<double> row;           // (F) output / upstream-gradient row
  std::vector<double> rg, reta, rrs;  // (n_r) packed upstream gradient, eta and Rs of the radial rows in use
  int np = 0;                        // pairs in the current chunk
  std::vector<int> pj, pk;           // (C) neighbours j < k of each pair
  std::vector<double> c;             // (C) cos of the angle j-i-k
  std::vector<double> ww, wdj, wdk;  // (n_ue, C) w_j w_k, dw_j w_k, w_j dw_k
  std::vector<double> tab;           // (2, kTabRows, C) (1 + lambda cos)^(2^m) for lambda = +1, -1
  std::vector<double> pw, dpw;       // (n_uzl, C) base^zeta and d(base^zeta)/dcos
  std::vector<double> a, bj, bk;     // (C) dL/dcos, dL/dr_ij, dL/dr_ik of the triples (i; j, k)
  std::vector<int64_t> tmp_idx;
  std::vector<int> tmp_sp, count;

  Scratch(int64_t N, int64_t S, const Tables& t, int64_t F)
      : idx(N), sp(N), start(S + 1), r(N), ux(N), uy(N), uz(N), fc(N), dfc(N), w(t.n_ue * N), dw(t.n_ue * N),
        gx(N), gy(N), gz(N), row(F), rg(t.n_r), reta(t.n_r), rrs(t.n_r), pj(kChunk), pk(kChunk), c(kChunk),
        ww(t.n_ue * kChunk), wdj(t.n_ue * kChunk), wdk(t.n_ue * kChunk), tab(2 * kTabRows * kChunk),
        pw(t.n_uzl * kChunk), dpw(t.n_uzl * kChunk), a(kChunk), bj(kChunk), bk(kChunk), tmp_idx(N), tmp_sp(N),
        count(S + 1) {}
};

//! Gathers the neighbours of centre i (real atoms j != i with tol < r_ij < rcut), sorted by species (counting
//! sort), with their cutoffs and angular weights. Capacity N per array.
template <typename T>
void gather(const T* pos, const int64_t* species, int64_t N, int64_t i, int S, double rcut, const Tables& t,
            Scratch& s) {
  const double xi = pos[3 * i], yi = pos[3 * i + 1], zi = pos[3 * i + 2];
  std::fill(s.count.begin(), s.count.end(), 0);
  int m = 0;
  for (int64_t j = 0; j < N; ++j) {
    if (j == i || species[j] < 0) continue;
    const double dx = double(pos[3 * j]) - xi, dy = double(pos[3 * j + 1]) - yi, dz = double(pos[3 * j + 2]) - zi;
    const double d2 = dx * dx + dy * dy + dz * dz;
    if (!(d2 > kCoincidentTol2) || !(d2 < rcut * rcut)) continue;
    s.tmp_idx[m] = j;
    s.tmp_sp[m] = static_cast<int>(species[j]);
    ++s.count[species[j] + 1];
    ++m;
  }
  s.m = m;
  for (int x = 0; x < S; ++x) s.count[x + 1] += s.count[x];
  std::copy(s.count.begin(), s.count.end(), s.start.begin());
  for (int x = 0; x < m; ++x) {
    const int n = s.count[s.tmp_sp[x]]++;
    const int64_t j = s.tmp_idx[x];
    const double dx = double(pos[3 * j]) - xi, dy = double(pos[3 * j + 1]) - yi, dz = double(pos[3 * j + 2]) - zi;
    const double r = std::sqrt(dx * dx + dy * dy + dz * dz);
    s.idx[n] = j;
    s.sp[n] = s.tmp_sp[x];
    s.r[n] = r;
    s.ux[n] = dx / r;
    s.uy[n] = dy / r;
    s.uz[n] = dz / r;
    acsf::cutoff(r, rcut, s.fc[n], s.dfc[n]);
  }
  for (int e = 0; e < t.n_ue; ++e) {
    double* w = s.w.data() + e * N;
    double* dw = s.dw.data() + e * N;
    const double eta = t.ue[e];
#pragma omp simd
    for (int n = 0; n < m; ++n) acsf::angular_weight(s.r[n], eta, s.fc[n], s.dfc[n], w[n], dw[n]);
  }
}

//! The neighbour pairs (j, k) of one species block pair (sj <= sk; k > j within one block), chunk by chunk.
struct PairCursor {
  int j0, j1, k0, k1;  // neighbour ranges of the two blocks
  bool same;           // one block: only k > j
  int j, k;            // next pair

  PairCursor(const Scratch& s, int sj, int sk)
      : j0(s.start[sj]), j1(s.start[sj + 1]), k0(s.start[sk]), k1(s.start[sk + 1]), same(sj == sk), j(j0),
        k(sj == sk ? j0 + 1 : k0) {}

  //! Fills s.pj / s.pk with up to kChunk pairs; false when none are left.
  bool next(Scratch& s) {
    s.np = 0;
    while (j < j1 && s.np < kChunk) {
      if (k >= k1) {
        ++j;
        k = same ? j + 1 : k0;
        continue;
      }
      const int n = std::min(k1 - k, kChunk - s.np);
      for (int x = 0; x < n; ++x) {
        s.pj[s.np + x] = j;
        s.pk[s.np + x] = k + x;
      }
      s.np += n;
      k += n;
    }
    return s.np > 0;
  }
};

//! Geometry of the chunk's pairs: cosines and, per unique angular eta, w_j w_k (and, for the backward, dw_j w_k
//! and w_j dw_k).
ACSF_CLONES void pair_geometry(const Tables& t, int64_t N, bool grad, Scratch& s) {
  const int np = s.np;
  const int* pj = s.pj.data();
  const int* pk = s.pk.data();
  for (int p = 0; p < np; ++p) {
    const int j = pj[p], k = pk[p];
    s.c[p] = s.ux[j] * s.ux[k] + s.uy[j] * s.uy[k] + s.uz[j] * s.uz[k];
  }
  for (int e = 0; e < t.n_ue; ++e) {
    const double* w = s.w.data() + e * N;
    const double* dw = s.dw.data() + e * N;
    double* ww = s.ww.data() + e * kChunk;
    for (int p = 0; p < np; ++p) ww[p] = w[pj[p]] * w[pk[p]];
    if (!grad) continue;
    double* wdj = s.wdj.data() + e * kChunk;
    double* wdk = s.wdk.data() + e * kChunk;
    for (int p = 0; p < np; ++p) {
      wdj[p] = dw[pj[p]] * w[pk[p]];
      wdk[p] = w[pj[p]] * dw[pk[p]];
    }
  }
}

//! out[p] = prod over the set bits m of n of tab[m][p] (= base^n for tab[m] = base^(2^m)), p in [0, np).
ACSF_CLONES void bit_product(int n, const double* tab, int np, double* out) {
  bool first = true;
  for (int m = 0; n > 0; ++m, n >>= 1) {
    if (!(n & 1)) continue;
    const double* t = tab + m * kChunk;
    if (first) {
      std::copy(t, t + np, out);
      first = false;
      continue;
    }
#pragma omp simd
    for (int p = 0; p < np; ++p) out[p] *= t[p];
  }
  if (first) std::fill(out, out + np, 1.0);
}

//! For every unique (zeta, lambda) z: pw[z][p] = (1 + lambda cos_p)^zeta and, when `grad`, dpw[z][p] = d pw / d cos
//! for the chunk's pairs. Integer zeta: products of the squarings base^(2^m) tabulated once per lambda (the default
//! zetas 1, 2, 4, 16, 64 are single table rows); other zeta: exp((zeta - 1) log base).
ACSF_CLONES void powers(const Tables& t, bool grad, Scratch& s) {
  const int np = s.np;
  for (int l = 0; l < 2; ++l) {
    const double lam = l == 0 ? 1.0 : -1.0;
    int top = 0;  // highest power of two needed for this lambda
    for (int z = 0; z < t.n_uzl; ++z)
      if (t.ulam[z] == lam) top = std::max(top, t.uzint[z]);
    if (top == 0) continue;
    double* tab = s.tab.data() + l * kTabRows * kChunk;
#pragma omp simd
    for (int p = 0; p < np; ++p) tab[p] = acsf::angular_base(s.c[p], lam);
    for (int m = 1; (1 << m) <= top; ++m) {
      const double* prev = tab + (m - 1) * kChunk;
      double* cur = tab + m * kChunk;
#pragma omp simd
      for (int p = 0; p < np; ++p) cur[p] = prev[p] * prev[p];
    }
  }
  for (int z = 0; z < t.n_uzl; ++z) {
    const double lam = t.ulam[z], zeta = t.uzeta[z];
    const int nz = t.uzint[z];
    double* pw = s.pw.data() + z * kChunk;
    double* dpw = s.dpw.data() + z * kChunk;
    if (nz > 0) {
      const double* tab = s.tab.data() + (lam > 0 ? 0 : 1) * kTabRows * kChunk;
      bit_product(nz, tab, np, pw);
      if (!grad) continue;
      bit_product(nz - 1, tab, np, dpw);
      const double zl = zeta * lam;
#pragma omp simd
      for (int p = 0; p < np; ++p) dpw[p] *= zl;
      continue;
    }
    for (int p = 0; p < np; ++p) {
      const double b = acsf::angular_base(s.c[p], lam);
      const double q = acsf::pow_m1(b, zeta, 0);
      pw[p] = q * b;
      dpw[p] = zeta * lam * q;
    }
  }
}

//! sum_p x[p] y[p], p in [0, n), in eight interleaved partial sums: gcc vectorises these, not the reduction of an
//! "omp simd reduction" loop here (it stayed one scalar chain of fused multiply-adds, 4 cycles a pair).
inline double dot(const double* x, const double* y, int n) {
  double acc[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
  int p = 0;
  for (; p + 8 <= n; p += 8)
    for (int l = 0; l < 8; ++l) acc[l] += x[p + l] * y[p + l];
  for (; p < n; ++p) acc[0] += x[p] * y[p];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

//! Features of centre i (one row of F doubles in s.row): radial block, then angular block. Per angular row a and
//! chunk: one dot product over the pairs of pw[z_a] and (w_j w_k)[e_a].
ACSF_CLONES void centre_forward(const Tables& t, int64_t N, int S, Scratch& s) {
  std::fill(s.row.begin(), s.row.end(), 0.0);
  const int nr = t.n_r, m = s.m;
  const double* eta = t.radial;
  for (int n = 0; n < m; ++n) {
    double* acc = s.row.data() + s.sp[n] * nr;
    const double r = s.r[n], fc = s.fc[n], dfc = s.dfc[n];
#pragma omp simd
    for (int q = 0; q < nr; ++q) {
      double v, dv;
      acsf::radial_term(r, eta[2 * q], eta[2 * q + 1], fc, dfc, v, dv);
      acc[q] += v;
    }
  }
  if (t.n_a == 0) return;
  for (int sj = 0; sj < S; ++sj) {
    for (int sk = sj; sk < S; ++sk) {
      double* out = s.row.data() + S * nr + acsf::pair_slot(sj, sk, S) * t.n_a;
      PairCursor cursor(s, sj, sk);
      while (cursor.next(s)) {
        pair_geometry(t, N, false, s);
        powers(t, false, s);
        const int np = s.np;
        for (int a = 0; a < t.n_a; ++a) {
          out[a] += t.coef[a] * dot(s.pw.data() + t.row_zl[a] * kChunk, s.ww.data() + t.row_e[a] * kChunk, np);
        }
      }
    }
  }
}

//! Gradient of sum_f g[f] G_f(i) with respect to the neighbours of centre i, into s.gx/gy/gz (per neighbour);
//! s.row holds g (the upstream gradient row of centre i, F doubles). Per chunk: the three scalars dL/dcos,
//! dL/dr_ij and dL/dr_ik of every pair summed over the angular rows, then one force per pair on j and on k.
ACSF_CLONES void centre_backward(const Tables& t, int64_t N, int S, Scratch& s) {
  const int nr = t.n_r, m = s.m;
  std::fill(s.gx.begin(), s.gx.begin() + m, 0.0);
  std::fill(s.gy.begin(), s.gy.begin() + m, 0.0);
  std::fill(s.gz.begin(), s.gz.begin() + m, 0.0);
  for (int sp = 0; sp < S; ++sp) {  // radial rows with a nonzero upstream gradient, packed per neighbour species
    const double* g = s.row.data() + sp * nr;
    int nq = 0;
    for (int q = 0; q < nr; ++q) {
      if (g[q] == 0.0) continue;
      s.rg[nq] = g[q];
      s.reta[nq] = t.radial[2 * q];
      s.rrs[nq] = t.radial[2 * q + 1];
      ++nq;
    }
    if (nq == 0) continue;
    const double *rg = s.rg.data(), *reta = s.reta.data(), *rrs = s.rrs.data();
    for (int n = s.start[sp]; n < s.start[sp + 1]; ++n) {
      const double r = s.r[n], fc = s.fc[n], dfc = s.dfc[n];
      double dl = 0.0;
#pragma omp simd reduction(+ : dl)
      for (int q = 0; q < nq; ++q) {
        double v, dv;
        acsf::radial_term(r, reta[q], rrs[q], fc, dfc, v, dv);
        dl += rg[q] * dv;
      }
      s.gx[n] += dl * s.ux[n];
      s.gy[n] += dl * s.uy[n];
      s.gz[n] += dl * s.uz[n];
    }
  }
  for (int sj = 0; sj < S; ++sj) {
    for (int sk = sj; sk < S; ++sk) {
      const double* g = s.row.data() + S * nr + acsf::pair_slot(sj, sk, S) * t.n_a;
      if (std::all_of(g, g + t.n_a, [](double v) { return v == 0.0; })) continue;
      PairCursor cursor(s, sj, sk);
      while (cursor.next(s)) {
        pair_geometry(t, N, true, s);
        powers(t, true, s);
        const int np = s.np;
        double* A = s.a.data();
        double* Bj = s.bj.data();
        double* Bk = s.bk.data();
        std::fill(A, A + np, 0.0);
        std::fill(Bj, Bj + np, 0.0);
        std::fill(Bk, Bk + np, 0.0);
        for (int a = 0; a < t.n_a; ++a) {
          const double ga = g[a] * t.coef[a];
          if (ga == 0.0) continue;
          const double* pw = s.pw.data() + t.row_zl[a] * kChunk;
          const double* dpw = s.dpw.data() + t.row_zl[a] * kChunk;
          const double* ww = s.ww.data() + t.row_e[a] * kChunk;
          const double* wdj = s.wdj.data() + t.row_e[a] * kChunk;
          const double* wdk = s.wdk.data() + t.row_e[a] * kChunk;
#pragma omp simd
          for (int p = 0; p < np; ++p) {
            A[p] += ga * dpw[p] * ww[p];
            Bj[p] += ga * pw[p] * wdj[p];
            Bk[p] += ga * pw[p] * wdk[p];
          }
        }
        for (int p = 0; p < np; ++p) {
          const int j = s.pj[p], k = s.pk[p];
          const double uj[3] = {s.ux[j], s.uy[j], s.uz[j]};
          const double uk[3] = {s.ux[k], s.uy[k], s.uz[k]};
          double dj[3], dk[3];
          acsf::cos_grad(uj, uk, s.c[p], s.r[j], dj);
          acsf::cos_grad(uk, uj, s.c[p], s.r[k], dk);
          s.gx[j] += A[p] * dj[0] + Bj[p] * uj[0];
          s.gy[j] += A[p] * dj[1] + Bj[p] * uj[1];
          s.gz[j] += A[p] * dj[2] + Bj[p] * uj[2];
          s.gx[k] += A[p] * dk[0] + Bk[p] * uk[0];
          s.gy[k] += A[p] * dk[1] + Bk[p] * uk[1];
          s.gz[k] += A[p] * dk[2] + Bk[p] * uk[2];
        }
      }
    }
  }
}

//! Adds the gradient of centre i's features (s.gx/gy/gz per neighbour; the centre gets minus their sum,
//! translation invariance) to gpos (3 N doubles of one cluster).
void scatter_grad(const Scratch& s, int64_t i, double* gpos) {
  double sx = 0.0, sy = 0.0, sz = 0.0;
  for (int n = 0; n < s.m; ++n) {
    double* g = gpos + 3 * s.idx[n];
    g[0] += s.gx[n];
    g[1] += s.gy[n];
    g[2] += s.gz[n];
    sx += s.gx[n];
    sy += s.gy[n];
    sz += s.gz[n];
  }
  gpos[3 * i] -= sx;
  gpos[3 * i + 1] -= sy;
  gpos[3 * i + 2] -= sz;
}

struct Problem {
  int64_t B, N;
  int S;
  int64_t F;
  double rcut;
  Tables t;
};

//! Feature rows of the centres [i0, i1) of one cluster (pos (N, 3), species (N)) into out (N, F); padding rows
//! are left as they are.
template <typename T>
void forward_centres(const T* pos, const int64_t* species, const Problem& p, int64_t i0, int64_t i1, Scratch& s,
                     T* out) {
  for (int64_t i = i0; i < i1; ++i) {
    if (species[i] < 0) continue;
    gather(pos, species, p.N, i, p.S, p.rcut, p.t, s);
    centre_forward(p.t, p.N, p.S, s);
    T* o = out + i * p.F;
    for (int64_t f = 0; f < p.F; ++f) o[f] = static_cast<T>(s.row[f]);
  }
}

template <typename T>
void forward_impl(const T* pos, const int64_t* species, T* out, const Problem& p) {
  const int64_t items = p.B * p.N;
  const int64_t grain = std::max<int64_t>(1, 32 / std::max<int64_t>(p.N, 1));
  at::parallel_for(0, items, grain, [&](int64_t x0, int64_t x1) {
    Scratch s(p.N, p.S, p.t, p.F);
    for (int64_t x = x0; x < x1; ++x) {
      const int64_t b = x / p.N, i = x % p.N;
      forward_centres(pos + b * p.N * 3, species + b * p.N, p, i, i + 1, s, out + b * p.N * p.F);
    }
  });
}

//! Gradient contributions of the centres [i0, i1) of cluster b, added to gpos (3 N doubles). A centre whose
//! upstream row is all zero is skipped.
template <typename T>
void backward_centres(const T* grad, const T* pos, const int64_t* species, const Problem& p, int64_t b, int64_t i0,
                      int64_t i1, Scratch& s, double* gpos) {
  const T* P = pos + b * p.N * 3;
  const int64_t* SP = species + b * p.N;
  for (int64_t i = i0; i < i1; ++i) {
    if (SP[i] < 0) continue;
    const T* g = grad + (b * p.N + i) * p.F;
    if (std::all_of(g, g + p.F, [](T v) { return v == T(0); })) continue;
    gather(P, SP, p.N, i, p.S, p.rcut, p.t, s);
    for (int64_t f = 0; f < p.F; ++f) s.row[f] = static_cast<double>(g[f]);
    centre_backward(p.t, p.N, p.S, s);
    scatter_grad(s, i, gpos);
  }
}

template <typename T>
void backward_impl(const T* grad, const T* pos, const int64_t* species, T* gpos, const Problem& p) {
  const int64_t nt = at::get_num_threads();
  const int64_t n3 = 3 * p.N;
  if (nt <= 1 || p.B >= nt || at::in_parallel_region()) {
    at::parallel_for(0, p.B, 1, [&](int64_t b0, int64_t b1) {
      Scratch s(p.N, p.S, p.t, p.F);
      std::vector<double> acc(n3);
      for (int64_t b = b0; b < b1; ++b) {
        std::fill(acc.begin(), acc.end(), 0.0);
        backward_centres(grad, pos, species, p, b, 0, p.N, s, acc.data());
        for (int64_t k = 0; k < n3; ++k) gpos[b * n3 + k] = static_cast<T>(acc[k]);
      }
    });
    return;
  }
  std::vector<std::vector<double>> part(nt, std::vector<double>(n3));
  for (int64_t b = 0; b < p.B; ++b) {
    for (auto& v : part) std::fill(v.begin(), v.end(), 0.0);
    at::parallel_for(0, p.N, 1, [&](int64_t i0, int64_t i1) {
      Scratch s(p.N, p.S, p.t, p.F);
      backward_centres(grad, pos, species, p, b, i0, i1, s, part[at::get_thread_num()].data());
    });
    for (int64_t k = 0; k < n3; ++k) {
      double sum = 0.0;
      for (int64_t x = 0; x < nt; ++x) sum += part[x][k];
      gpos[b * n3 + k] = static_cast<T>(sum);
    }
  }
}

//! Checks of the atom and parameter arguments; returns the validated host tables.
acsf::HostTables prepare(const char* op, const at::Tensor& pos, const at::Tensor& species, int64_t n_species,
                         const at::Tensor& radial, const at::Tensor& angular, double rcut) {
  TORCH_CHECK(pos.device().is_cpu(), op, ": pos must be a CPU tensor for the CPU kernel");
  return check_acsf_inputs(op, pos, species, n_species, radial, angular, rcut);
}

at::Tensor acsf_cpu(const at::Tensor& pos_, const at::Tensor& species_, int64_t n_species, const at::Tensor& radial,
                    const at::Tensor& angular, double rcut) {
  const char* op = "pdfsolve::acsf";
  const auto h = prepare(op, pos_, species_, n_species, radial, angular, rcut);
  const int64_t F = acsf::n_features(n_species, h.n_r, h.n_a);
  auto out = at::zeros({pos_.size(0), pos_.size(1), F}, pos_.options());
  if (out.numel() == 0) return out;
  const auto pos = pos_.contiguous();
  const auto sp = species_.contiguous();
  const Problem p{pos.size(0), pos.size(1), static_cast<int>(n_species), F, rcut, h.view()};
  AT_DISPATCH_FLOATING_TYPES(pos.scalar_type(), "acsf_cpu", [&] {
    forward_impl<scalar_t>(pos.data_ptr<scalar_t>(), sp.data_ptr<int64_t>(), out.data_ptr<scalar_t>(), p);
  });
  return out;
}

at::Tensor acsf_backward_cpu(const at::Tensor& grad_, const at::Tensor& pos_, const at::Tensor& species_,
                             int64_t n_species, const at::Tensor& radial, const at::Tensor& angular, double rcut) {
  const char* op = "pdfsolve::acsf_backward";
  const auto h = prepare(op, pos_, species_, n_species, radial, angular, rcut);
  const int64_t F = acsf::n_features(n_species, h.n_r, h.n_a);
  check_like_pos(op, "grad", grad_, pos_, {pos_.size(0), pos_.size(1), F});
  auto gpos = at::zeros(pos_.sizes(), pos_.options());
  if (gpos.numel() == 0 || F == 0) return gpos;
  const auto grad = grad_.contiguous();
  const auto pos = pos_.contiguous();
  const auto sp = species_.contiguous();
  const Problem p{pos.size(0), pos.size(1), static_cast<int>(n_species), F, rcut, h.view()};
  AT_DISPATCH_FLOATING_TYPES(pos.scalar_type(), "acsf_backward_cpu", [&] {
    backward_impl<scalar_t>(grad.data_ptr<scalar_t>(), pos.data_ptr<scalar_t>(), sp.data_ptr<int64_t>(),
                            gpos.data_ptr<scalar_t>(), p);
  });
  return gpos;
}

}  // namespace

struct AcsfCluster::Impl {
  Problem p;
  Scratch s;
};

AcsfCluster::AcsfCluster(int64_t n_atoms, int n_species, double rcut, const acsf::Tables& t)
    : impl_(new Impl{Problem{1, n_atoms, n_species, acsf::n_features(n_species, t.n_r, t.n_a), rcut, t},
                     Scratch(n_atoms, n_species, t, acsf::n_features(n_species, t.n_r, t.n_a))}) {}

AcsfCluster::~AcsfCluster() = default;

int64_t AcsfCluster::n_features() const { return impl_->p.F; }

void AcsfCluster::forward(const double* pos, const int64_t* species, double* out) {
  const Problem& p = impl_->p;
  std::fill(out, out + p.N * p.F, 0.0);
  forward_centres(pos, species, p, 0, p.N, impl_->s, out);
}

void AcsfCluster::backward(const double* grad, const double* pos, const int64_t* species, double* gpos) {
  const Problem& p = impl_->p;
  std::fill(gpos, gpos + 3 * p.N, 0.0);
  backward_centres(grad, pos, species, p, 0, 0, p.N, impl_->s, gpos);
}

}  // namespace cpu
}  // namespace pdfsolve

TORCH_LIBRARY_IMPL(pdfsolve, CPU, m) {
  m.impl("acsf", &pdfsolve::cpu::acsf_cpu);
  m.impl("acsf_backward", &pdfsolve::cpu::acsf_backward_cpu);
}
