// CPU kernels of pdfsolve::acsf and pdfsolve::acsf_backward (Behler G2/G5 symmetry functions, common/acsf_math.h).
//
// Work is organised per central atom i: its neighbours (real, non-coincident, closer than rcut) are gathered once,
// sorted by species, into structure-of-arrays buffers with the angular weights w_e = exp(-eta_e r^2) f_c per
// unique angular eta. For each neighbour j and each species block of partners k > j, the loops over k are plain
// array loops (vectorised: the host exp of acsf_math.h has no library call), so a triple costs a dot product, the
// powers (1 + lambda cos)^zeta per unique (zeta, lambda) (repeated squaring for integer zeta) and one product
// per angular row. The backward reduces the upstream gradient per (i, j) to matrices H[zl][k] (per unique
// (zeta, lambda) and partner k), then per triple to three scalars (d/dcos, d/dr_ij, d/dr_ik) and vectors.
// Everything is computed and summed in double for both dtypes.
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
#include "common/acsf_math.h"
#include "common/op_checks.h"

namespace pdfsolve {
namespace cpu {
namespace {

using acsf::Tables;

//! Rows of the squaring table: integer zetas up to 2^kTabRows - 1 (acsf_math.h takes zeta <= 1024 as integer).
constexpr int kTabRows = 11;

// The hot loops are compiled twice, for AVX2 + FMA (Haswell and later) and for the baseline, chosen at load time.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define ACSF_CLONES __attribute__((target_clones("arch=haswell", "default")))
#else
#define ACSF_CLONES
#endif

//! Per-thread scratch of one central atom: neighbour arrays (capacity N) and per-(i, j) work arrays.
struct Scratch {
  int m = 0;                         // neighbours of the current centre
  std::vector<int64_t> idx;          // (N) atom index of each neighbour, sorted by species
  std::vector<int> sp, start;        // (N) species; (S + 1) first neighbour of each species
  std::vector<double> r, ux, uy, uz, fc, dfc;  // (N) distance, unit vector centre -> neighbour, cutoff
  std::vector<double> w, dw;         // (n_ue, N) angular weight and its r-derivative
  std::vector<double> c;             // (N) cos of the angle j-i-k
  std::vector<double> tab;           // (2, kTabRows, N) (1 + lambda cos)^(2^m) for lambda = +1, -1
  std::vector<double> pw, dpw;       // (n_uzl, N) base^zeta and d(base^zeta)/dcos
  std::vector<double> h0, h1, h2;    // (n_uzl, N) backward reductions of the upstream gradient
  std::vector<double> a, bj, bk;     // (N) dL/dcos, dL/dr_ij, dL/dr_ik of the triples (i; j, k)
  std::vector<double> gx, gy, gz;    // (N) gradient of the centre's features w.r.t. each neighbour
  std::vector<double> row, gj0, gj1;  // (F) output / upstream-gradient row; (n_a) per-j gradient weights
  std::vector<int64_t> tmp_idx;
  std::vector<int> tmp_sp, count;

  Scratch(int64_t N, int64_t S, const Tables& t, int64_t F)
      : idx(N), sp(N), start(S + 1), r(N), ux(N), uy(N), uz(N), fc(N), dfc(N), w(t.n_ue * N), dw(t.n_ue * N),
        c(N), tab(2 * kTabRows * N), pw(t.n_uzl * N), dpw(t.n_uzl * N), h0(t.n_uzl * N), h1(t.n_uzl * N),
        h2(t.n_uzl * N), a(N), bj(N), bk(N), gx(N), gy(N), gz(N), row(F), gj0(t.n_a), gj1(t.n_a), tmp_idx(N),
        tmp_sp(N), count(S + 1) {}
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

//! cos of the angle j-i-k for partners k in [k0, k1) into s.c.
ACSF_CLONES void cosines(Scratch& s, int j, int k0, int k1) {
  const double x = s.ux[j], y = s.uy[j], z = s.uz[j];
#pragma omp simd
  for (int k = k0; k < k1; ++k) s.c[k] = x * s.ux[k] + y * s.uy[k] + z * s.uz[k];
}

//! out[k] = prod over the set bits m of n of tab[m][k] (= base^n for tab[m] = base^(2^m)), k in [k0, k1).
ACSF_CLONES void bit_product(int n, const double* tab, int64_t N, int k0, int k1, double* out) {
  bool first = true;
  for (int m = 0; n > 0; ++m, n >>= 1) {
    if (!(n & 1)) continue;
    const double* t = tab + m * N;
    if (first) {
      std::copy(t + k0, t + k1, out + k0);
      first = false;
      continue;
    }
#pragma omp simd
    for (int k = k0; k < k1; ++k) out[k] *= t[k];
  }
  if (first) std::fill(out + k0, out + k1, 1.0);
}

//! For every unique (zeta, lambda) z: pw[z][k] = (1 + lambda cos_k)^zeta and, when `grad`, dpw[z][k] = d pw / d cos,
//! k in [k0, k1). Integer zeta: products of the squarings base^(2^m) tabulated once per lambda (the default zetas
//! 1, 2, 4, 16, 64 are single table rows); other zeta: exp((zeta - 1) log base).
ACSF_CLONES void powers(const Tables& t, int64_t N, int k0, int k1, bool grad, Scratch& s) {
  for (int l = 0; l < 2; ++l) {
    const double lam = l == 0 ? 1.0 : -1.0;
    int top = 0;  // highest power of two needed for this lambda
    for (int z = 0; z < t.n_uzl; ++z)
      if (t.ulam[z] == lam) top = std::max(top, t.uzint[z]);
    if (top == 0) continue;
    double* tab = s.tab.data() + l * kTabRows * N;
#pragma omp simd
    for (int k = k0; k < k1; ++k) tab[k] = acsf::angular_base(s.c[k], lam);
    for (int m = 1; (1 << m) <= top; ++m) {
      const double* prev = tab + (m - 1) * N;
      double* cur = tab + m * N;
#pragma omp simd
      for (int k = k0; k < k1; ++k) cur[k] = prev[k] * prev[k];
    }
  }
  for (int z = 0; z < t.n_uzl; ++z) {
    const double lam = t.ulam[z], zeta = t.uzeta[z];
    const int nz = t.uzint[z];
    double* pw = s.pw.data() + z * N;
    double* dpw = s.dpw.data() + z * N;
    if (nz > 0) {
      const double* tab = s.tab.data() + (lam > 0 ? 0 : 1) * kTabRows * N;
      bit_product(nz, tab, N, k0, k1, pw);
      if (!grad) continue;
      bit_product(nz - 1, tab, N, k0, k1, dpw);
      const double zl = zeta * lam;
#pragma omp simd
      for (int k = k0; k < k1; ++k) dpw[k] *= zl;
      continue;
    }
    for (int k = k0; k < k1; ++k) {
      const double b = acsf::angular_base(s.c[k], lam);
      const double q = acsf::pow_m1(b, zeta, 0);
      pw[k] = q * b;
      dpw[k] = zeta * lam * q;
    }
  }
}

//! Features of centre i (one row of F doubles in s.row): radial block, then angular block.
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
  double* ang = s.row.data() + S * nr;
  for (int j = 0; j < m; ++j) {
    for (int tb = s.sp[j]; tb < S; ++tb) {  // partner species >= s_j, or the same block with k > j
      const int k0 = std::max(j + 1, s.start[tb]), k1 = s.start[tb + 1];
      if (k1 <= k0) continue;
      cosines(s, j, k0, k1);
      powers(t, N, k0, k1, false, s);
      double* out = ang + acsf::pair_slot(s.sp[j], tb, S) * t.n_a;
      for (int a = 0; a < t.n_a; ++a) {
        const double* pw = s.pw.data() + t.row_zl[a] * N;
        const double* w = s.w.data() + t.row_e[a] * N;
        double acc = 0.0;
#pragma omp simd reduction(+ : acc)
        for (int k = k0; k < k1; ++k) acc += pw[k] * w[k];
        out[a] += t.coef[a] * w[j] * acc;
      }
    }
  }
}

//! Gradient of sum_f g[f] G_f(i) with respect to the neighbours of centre i, into s.gx/gy/gz (per neighbour);
//! s.row holds g (the upstream gradient row of centre i, F doubles).
ACSF_CLONES void centre_backward(const Tables& t, int64_t N, int S, Scratch& s) {
  const int nr = t.n_r, m = s.m;
  std::fill(s.gx.begin(), s.gx.begin() + m, 0.0);
  std::fill(s.gy.begin(), s.gy.begin() + m, 0.0);
  std::fill(s.gz.begin(), s.gz.begin() + m, 0.0);
  const double* eta = t.radial;
  for (int n = 0; n < m; ++n) {
    const double* g = s.row.data() + s.sp[n] * nr;
    const double r = s.r[n], fc = s.fc[n], dfc = s.dfc[n];
    double dl = 0.0;
#pragma omp simd reduction(+ : dl)
    for (int q = 0; q < nr; ++q) {
      double v, dv;
      acsf::radial_term(r, eta[2 * q], eta[2 * q + 1], fc, dfc, v, dv);
      dl += g[q] * dv;
    }
    s.gx[n] += dl * s.ux[n];
    s.gy[n] += dl * s.uy[n];
    s.gz[n] += dl * s.uz[n];
  }
  const double* ang = s.row.data() + S * nr;
  for (int j = 0; j < m; ++j) {
    for (int tb = s.sp[j]; tb < S; ++tb) {
      const int k0 = std::max(j + 1, s.start[tb]), k1 = s.start[tb + 1];
      if (k1 <= k0) continue;
      const double* g = ang + acsf::pair_slot(s.sp[j], tb, S) * t.n_a;
      bool any = false;
      for (int a = 0; a < t.n_a; ++a) {
        const double ga = g[a] * t.coef[a];
        s.gj0[a] = ga * s.w[t.row_e[a] * N + j];
        s.gj1[a] = ga * s.dw[t.row_e[a] * N + j];
        any = any || ga != 0.0;
      }
      if (!any) continue;
      for (int z = 0; z < t.n_uzl; ++z) {
        std::fill(s.h0.begin() + z * N + k0, s.h0.begin() + z * N + k1, 0.0);
        std::fill(s.h1.begin() + z * N + k0, s.h1.begin() + z * N + k1, 0.0);
        std::fill(s.h2.begin() + z * N + k0, s.h2.begin() + z * N + k1, 0.0);
      }
      for (int a = 0; a < t.n_a; ++a) {
        const double g0 = s.gj0[a], g1 = s.gj1[a];
        if (g0 == 0.0 && g1 == 0.0) continue;
        const double* w = s.w.data() + t.row_e[a] * N;
        const double* dw = s.dw.data() + t.row_e[a] * N;
        double* h0 = s.h0.data() + t.row_zl[a] * N;
        double* h1 = s.h1.data() + t.row_zl[a] * N;
        double* h2 = s.h2.data() + t.row_zl[a] * N;
#pragma omp simd
        for (int k = k0; k < k1; ++k) {
          h0[k] += g0 * w[k];
          h1[k] += g1 * w[k];
          h2[k] += g0 * dw[k];
        }
      }
      cosines(s, j, k0, k1);
      powers(t, N, k0, k1, true, s);
      std::fill(s.a.begin() + k0, s.a.begin() + k1, 0.0);
      std::fill(s.bj.begin() + k0, s.bj.begin() + k1, 0.0);
      std::fill(s.bk.begin() + k0, s.bk.begin() + k1, 0.0);
      for (int z = 0; z < t.n_uzl; ++z) {
        const double* pw = s.pw.data() + z * N;
        const double* dpw = s.dpw.data() + z * N;
        const double* h0 = s.h0.data() + z * N;
        const double* h1 = s.h1.data() + z * N;
        const double* h2 = s.h2.data() + z * N;
#pragma omp simd
        for (int k = k0; k < k1; ++k) {
          s.a[k] += dpw[k] * h0[k];
          s.bj[k] += pw[k] * h1[k];
          s.bk[k] += pw[k] * h2[k];
        }
      }
      const double uj[3] = {s.ux[j], s.uy[j], s.uz[j]};
      const double rj = s.r[j];
      double fx = 0.0, fy = 0.0, fz = 0.0;
#pragma omp simd reduction(+ : fx, fy, fz)
      for (int k = k0; k < k1; ++k) {
        const double uk[3] = {s.ux[k], s.uy[k], s.uz[k]};
        double dj[3], dk[3];
        acsf::cos_grad(uj, uk, s.c[k], rj, dj);
        acsf::cos_grad(uk, uj, s.c[k], s.r[k], dk);
        fx += s.a[k] * dj[0] + s.bj[k] * uj[0];
        fy += s.a[k] * dj[1] + s.bj[k] * uj[1];
        fz += s.a[k] * dj[2] + s.bj[k] * uj[2];
        s.gx[k] += s.a[k] * dk[0] + s.bk[k] * uk[0];
        s.gy[k] += s.a[k] * dk[1] + s.bk[k] * uk[1];
        s.gz[k] += s.a[k] * dk[2] + s.bk[k] * uk[2];
      }
      s.gx[j] += fx;
      s.gy[j] += fy;
      s.gz[j] += fz;
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

template <typename T>
void forward_impl(const T* pos, const int64_t* species, T* out, const Problem& p) {
  const int64_t items = p.B * p.N;
  const int64_t grain = std::max<int64_t>(1, 32 / std::max<int64_t>(p.N, 1));
  at::parallel_for(0, items, grain, [&](int64_t x0, int64_t x1) {
    Scratch s(p.N, p.S, p.t, p.F);
    for (int64_t x = x0; x < x1; ++x) {
      const int64_t b = x / p.N, i = x % p.N;
      if (species[x] < 0) continue;  // padding rows stay zero
      gather(pos + b * p.N * 3, species + b * p.N, p.N, i, p.S, p.rcut, p.t, s);
      centre_forward(p.t, p.N, p.S, s);
      T* o = out + x * p.F;
      for (int64_t f = 0; f < p.F; ++f) o[f] = static_cast<T>(s.row[f]);
    }
  });
}

//! Gradient contributions of the centres [i0, i1) of cluster b, added to gpos (3 N doubles).
template <typename T>
void backward_centres(const T* grad, const T* pos, const int64_t* species, const Problem& p, int64_t b, int64_t i0,
                      int64_t i1, Scratch& s, double* gpos) {
  const T* P = pos + b * p.N * 3;
  const int64_t* SP = species + b * p.N;
  for (int64_t i = i0; i < i1; ++i) {
    if (SP[i] < 0) continue;
    gather(P, SP, p.N, i, p.S, p.rcut, p.t, s);
    const T* g = grad + (b * p.N + i) * p.F;
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
}  // namespace cpu
}  // namespace pdfsolve

TORCH_LIBRARY_IMPL(pdfsolve, CPU, m) {
  m.impl("acsf", &pdfsolve::cpu::acsf_cpu);
  m.impl("acsf_backward", &pdfsolve::cpu::acsf_backward_cpu);
}
