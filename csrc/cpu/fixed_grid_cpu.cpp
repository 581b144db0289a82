// CPU kernels of fixed_pair_grid and its backward (schemas in csrc/ops.cpp, definition in
// python/pdfsolve/ops/reference_fixed.py: gaussian_pair_grid with zero U_iso, one width tau0 for all pairs).
//
// Every pair has the same Gaussian, so its taps depend on the fractional offset t = frac(r / h) only: a
// per-call table of tap values and t-derivatives on R + 1 rows, cubic Hermite interpolation between two rows
// (common/fixed_grid_math.h states the error), and a fixed, padded number W of taps per pair added
// branch-free into the cluster's grid (rows padded by W bins on both sides, so no edge cases; the pads are
// dropped at the end). The window's edge is exact: the four outer taps are masked per pair with the
// reference's own test.
//
// Per atom row i: one vectorisable pass over j > i computes distance, validity, bin, table row, Hermite
// coefficients (already divided by r) and the edge mask code; then one short loop adds W taps per pair.
// Accumulation is in the input's dtype (float tables for float32, double for float64).
// Parallel over the batch (grain 1, each cluster owns its output slice); when the batch is small and the
// clusters large, parallel over atom rows of one cluster with thread-local grids merged after.
// The hot loops are compiled twice (AVX2+FMA and baseline x86-64), picked at run time.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "common/op_checks.h"
#include "common/fixed_grid_math.h"

// The baseline clone passes 32-byte vectors between always-inline helpers; they never cross a real call.
#pragma GCC diagnostic ignored "-Wpsabi"

#if defined(__GNUC__)
#define PDFS_FG_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define PDFS_FG_ALWAYS_INLINE inline
#endif

namespace pdfsolve {
namespace {

using fixed_grid::TapGeometry;

constexpr int32_t kInvalid = INT32_MIN;
// Atom rows at or above this size take the atom-parallel path when the batch is too small to fill the threads.
constexpr int64_t kAtomParallelMinAtoms = 64;

// ---- per-call tables ----------------------------------------------------------------------------------

// Tap table (rows R + 1, each [P(W) | D(W)], D = (1/R) dP/dt, normalisation 1/(sqrt(2 pi) tau0) included) and
// the 16 edge masks (W each) for the bits of the taps {0, 1, ntaps-2, ntaps-1}.
template <typename acc_t>
struct Tables {
  TapGeometry geo;
  int W = 0;
  std::vector<acc_t> tab, mask;
  std::array<int64_t, 4> edge{};

  Tables(const TapGeometry& g, int W_) : geo(g), W(W_) {
    const int R = g.rows;
    const double sigma = g.tau0 / g.h, inv_s2 = 1.0 / (sigma * sigma);
    const double norm = kInvSqrt2Pi / g.tau0;
    tab.assign(size_t(R + 1) * 2 * W, acc_t(0));
    for (int j = 0; j <= R; ++j) {
      const double t = double(j) / R;
      for (int64_t k = 0; k < g.ntaps; ++k) {
        double p, dp;
        fixed_grid::tap_shape(double(k - g.k0) - t, inv_s2, p, dp);
        tab[size_t(j) * 2 * W + k] = acc_t(norm * p);
        tab[size_t(j) * 2 * W + W + k] = acc_t(norm * dp / R);
      }
    }
    edge = {0, std::min<int64_t>(1, g.ntaps - 1), std::max<int64_t>(g.ntaps - 2, 0), g.ntaps - 1};
    mask.assign(size_t(16) * W, acc_t(0));
    for (int code = 0; code < 16; ++code) {
      for (int64_t k = 0; k < g.ntaps; ++k) {
        bool in = true;
        for (int e = 0; e < 4; ++e)
          if (edge[e] == k && !((code >> e) & 1)) in = false;
        mask[size_t(code) * W + k] = in ? acc_t(1) : acc_t(0);
      }
    }
  }
};

// ---- inputs -------------------------------------------------------------------------------------------

void check_inputs(const char* op, const at::Tensor& pos, const at::Tensor& species, int64_t n_species,
                  double bin_width, int64_t nbins, double tau0, double truncate) {
  check_atoms(op, pos, species, nullptr, n_species);
  check_grid_params(op, bin_width, nbins, tau0, truncate);
  TORCH_CHECK(truncate * tau0 / bin_width < 1e6, op, ": truncate * tau0 / bin_width must be < 1e6 (window in bins)");
}

// Real atoms of one cluster (padding dropped), float64 structure of arrays.
struct Cluster {
  std::vector<double> x, y, z;
  std::vector<int32_t> s;
  std::vector<int64_t> idx;  // index in the padded cluster
  int64_t n = 0;
  explicit Cluster(int64_t N) : x(N + 4), y(N + 4), z(N + 4), s(N + 4), idx(N + 4) {}  // zero-padded
};

template <typename scalar_t>
void gather_atoms(const char* op, const scalar_t* pos, const int64_t* species, int64_t N, int64_t S, Cluster& c) {
  int64_t n = 0;
  for (int64_t i = 0; i < N; ++i) {
    const int64_t s = species[i];
    if (s < 0) continue;
    c.x[n] = double(pos[3 * i]);
    c.y[n] = double(pos[3 * i + 1]);
    c.z[n] = double(pos[3 * i + 2]);
    c.s[n] = int32_t(s);
    c.idx[n] = i;
    ++n;
  }
  c.n = n;
}

// ---- per-row pair pass ---------------------------------------------------------------------------------

// Lanes of the per-row pass (GCC vector extensions: AVX in the AVX2 clone, SSE2 pairs in the baseline one).
constexpr int64_t kLanes = 4;
typedef double v4d __attribute__((vector_size(32)));
typedef int64_t v4l __attribute__((vector_size(32)));
typedef int32_t v4i __attribute__((vector_size(16)));
typedef float v4f __attribute__((vector_size(16)));
template <typename T>
struct Vec4;
template <>
struct Vec4<double> {
  using type = v4d;
};
template <>
struct Vec4<float> {
  using type = v4f;
};

template <typename V, typename T>
PDFS_FG_ALWAYS_INLINE V vload(const T* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}
template <typename V, typename T>
PDFS_FG_ALWAYS_INLINE void vstore(T* p, const V& v) {
  std::memcpy(p, &v, sizeof(V));
}

// Per-thread scratch of one atom row (entries j > i, padded by a vector's lanes).
template <typename acc_t>
struct RowScratch {
  std::vector<double> r, ir, u, sfrac;
  std::vector<int32_t> lo, row, code;
  std::vector<acc_t> c0, c1, c2, c3;  // Hermite coefficients / r (forward)
  std::vector<double> dl;             // dL/dr (backward)
  explicit RowScratch(int64_t N)
      : r(N + kLanes), ir(N + kLanes), u(N + kLanes), sfrac(N + kLanes), lo(N + kLanes), row(N + kLanes), code(N + kLanes),
        c0(N + kLanes), c1(N + kLanes), c2(N + kLanes), c3(N + kLanes), dl(N + kLanes) {}
};

struct PassParams {
  double h, inv_h, half, rcut;
  double umax;  // a pair is kept while r / h < umax = nbins + K0 (its first tap lo = floor(r/h) - K0 < nbins)
  double rows_d;
  int32_t k0;
  double thr[4];  // edge taps {0, 1, ntaps-2, ntaps-1} are inside iff t <= thr[0], t <= thr[1], t >= thr[2], t >= thr[3]
};

PassParams make_pass_params(const TapGeometry& g, int64_t nbins, double rcut, const std::array<int64_t, 4>& e) {
  PassParams q;
  q.h = g.h;
  q.inv_h = g.inv_h;
  q.half = g.half;
  q.rcut = rcut;
  q.umax = double(nbins + g.k0);
  q.rows_d = double(g.rows);
  q.k0 = int32_t(g.k0);
  // Tap e at z = e - K0 - t (bins) is inside iff |z| <= th = truncate tau0 / h: for e <= K0, t <= th - K0 + e;
  // for e > K0, t >= e - K0 - th. (Equal to the reference's |m h - r| <= truncate tau0 except where the two
  // sides agree to rounding: then one edge tap, exp(-truncate^2/2) of the pair's peak, may differ.)
  const double th = g.half / g.h;
  for (int k = 0; k < 4; ++k) {
    const double ek = double(e[k]), k0 = double(g.k0);
    q.thr[k] = (k < 2) ? th - k0 + ek : ek - k0 - th;
  }
  return q;
}

// 1 / sqrt(x) to full double precision: single-precision estimate (SSE rsqrtps, 12 bits) and three Newton
// steps (x must be a normal float, which the caller guarantees). Much cheaper than sqrt + divide.
PDFS_FG_ALWAYS_INLINE v4d rsqrt4(const v4d& x) {
#if defined(__SSE__)
  const v4f xf = __builtin_convertvector(x, v4f);
  v4f yf;
  const __m128 e = _mm_rsqrt_ps(reinterpret_cast<const __m128&>(xf));
  std::memcpy(&yf, &e, sizeof(yf));
  v4d y = __builtin_convertvector(yf, v4d);
  const v4d hx = 0.5 * x;
  y = y * (1.5 - hx * y * y);
  y = y * (1.5 - hx * y * y);
  y = y * (1.5 - hx * y * y);
  return y;
#else
  v4d y;
  for (int k = 0; k < 4; ++k) y[k] = 1.0 / std::sqrt(x[k]);
  return y;
#endif
}

// Everything the pairs (i, j > i) need, 4 partners at a time, branch-free: distance, validity (lo = kInvalid
// when the pair is dropped), first bin lo, table row, Hermite fraction and coefficients / r, edge-mask code.
// Written with vector extensions because gcc (without -fno-trapping-math / -fno-math-errno) will not
// vectorise the selects and sqrt. Two loops with short dependency chains (one long loop is latency-bound).
// Entries up to the next multiple of 4 past n are computed too (the atom arrays are padded), never read.
template <typename acc_t>
PDFS_FG_ALWAYS_INLINE void row_pass(const Cluster& c, int64_t i, const PassParams& q, RowScratch<acc_t>& w) {
  using va = typename Vec4<acc_t>::type;
  const double xi = c.x[i], yi = c.y[i], zi = c.z[i];
  const int64_t j0 = i + 1, j1 = j0 + (c.n - j0 + kLanes - 1) / kLanes * kLanes;
  const double tol2 = kCoincidentTol * kCoincidentTol;
  const v4d one = {1, 1, 1, 1}, mone = {-1, -1, -1, -1};
  const v4i invalid = {kInvalid, kInvalid, kInvalid, kInvalid};
  const double* __restrict__ xs = c.x.data();
  const double* __restrict__ ys = c.y.data();
  const double* __restrict__ zs = c.z.data();
  double* __restrict__ rr = w.r.data();
  double* __restrict__ irr = w.ir.data();
  double* __restrict__ uu = w.u.data();
  // Distances: r, 1/r and u = r/h (u = -1: pair dropped).
  for (int64_t j = j0; j < j1; j += kLanes) {
    const v4d dx = xi - vload<v4d>(xs + j);
    const v4d dy = yi - vload<v4d>(ys + j);
    const v4d dz = zi - vload<v4d>(zs + j);
    const v4d d2r = dx * dx + dy * dy + dz * dz;
    // Not coincident and within float range (r < 1.8e19 A; farther pairs fail u < umax anyway; NaN fails).
    const v4l fin = (d2r > tol2) & (d2r < 1e37);
    const v4d d2 = fin ? d2r : one;
    const v4d ir0 = rsqrt4(d2);
    const v4d r0 = d2 * ir0;
    const v4d u0 = r0 * q.inv_h;
    const v4l ok = fin & (r0 <= q.rcut) & (u0 < q.umax);  // within rcut, first tap below nbins
    vstore(rr + j, ok ? r0 : one);
    vstore(irr + j, ok ? ir0 : one);
    vstore(uu + j, ok ? u0 : mone);
  }
  // Bins, table rows, Hermite coefficients / r, edge code. Tap e is inside the window iff
  // |e - K0 - t| <= truncate tau0 / h: t <= thr[e] for the two left taps, t >= thr[e] for the right ones.
  for (int64_t j = j0; j < j1; j += kLanes) {
    const v4d u0 = vload<v4d>(uu + j), ir = vload<v4d>(irr + j);
    const v4l ok = u0 >= 0.0;
    const v4d u = ok ? u0 : one;  // in [0, 2^31): truncation is floor
    const v4i ui = __builtin_convertvector(u, v4i);
    const v4d t = u - __builtin_convertvector(ui, v4d);  // exact, in [0, 1)
    const v4d tr = t * q.rows_d;                           // exact (R a power of two), in [0, R)
    const v4i ji = __builtin_convertvector(tr, v4i);
    const v4d s = tr - __builtin_convertvector(ji, v4d);
    v4d h00, h10, h01, h11;
    fixed_grid::hermite(s, h00, h10, h01, h11);
    const v4l code = ((t <= q.thr[0]) & 1) | ((t <= q.thr[1]) & 2) | ((t >= q.thr[2]) & 4) | ((t >= q.thr[3]) & 8);
    vstore(w.sfrac.data() + j, s);
    vstore(w.lo.data() + j, __builtin_convertvector(ok, v4i) ? ui - q.k0 : invalid);
    vstore(w.row.data() + j, ji);
    vstore(w.code.data() + j, __builtin_convertvector(code, v4i));
    vstore(w.c0.data() + j, __builtin_convertvector(h00 * ir, va));
    vstore(w.c1.data() + j, __builtin_convertvector(h10 * ir, va));
    vstore(w.c2.data() + j, __builtin_convertvector(h01 * ir, va));
    vstore(w.c3.data() + j, __builtin_convertvector(h11 * ir, va));
  }
}

// Slot of a species pair in the (S*S) grid: min * S + max.
inline int64_t slot_of(int64_t a, int64_t b, int64_t S) { return std::min(a, b) * S + std::max(a, b); }

// A contiguous range of rows [a, b), or the folded rows k and n-1-k for k in [a, b) (atom-parallel path:
// every task then has about n pairs). Walked with explicit loops below (no lambdas: a lambda would not inherit
// the AVX2 target of the clone that calls it).
struct RowRange {
  int64_t a, b, n;
  bool folded;
};

#define PDFS_FG_FOR_ROWS(rr, i, stmt)                 \
  do {                                                \
    if (!(rr).folded) {                               \
      for (int64_t i = (rr).a; i < (rr).b; ++i) stmt; \
    } else {                                          \
      for (int64_t k_ = (rr).a; k_ < (rr).b; ++k_) {  \
        {                                             \
          const int64_t i = k_;                       \
          stmt;                                       \
        }                                             \
        if ((rr).n - 1 - k_ != k_) {                  \
          const int64_t i = (rr).n - 1 - k_;          \
          stmt;                                       \
        }                                             \
      }                                               \
    }                                                 \
  } while (0)

// ---- forward ------------------------------------------------------------------------------------------

// All pairs (i, j > i) of the rows given by `rows` into the padded grid (S*S rows of stride nbins + 2W).
template <typename acc_t, int WT>
PDFS_FG_ALWAYS_INLINE void grid_row(const Cluster& c, int64_t S, const Tables<acc_t>& tb, const PassParams& q,
                                    int64_t stride, acc_t* grid, RowScratch<acc_t>& w, acc_t** rowp, int64_t i) {
  const int W = WT > 0 ? WT : tb.W;
  const acc_t* __restrict__ tab = tb.tab.data();
  const acc_t* __restrict__ mask = tb.mask.data();
  {
    row_pass(c, i, q, w);
    const int64_t si = c.s[i];
    for (int64_t s = 0; s < S; ++s) rowp[s] = grid + slot_of(si, s, S) * stride + W;
    // Local restrict pointers: otherwise every grid store forces reloads of the scratch vectors' pointers.
    const int32_t* __restrict__ plo = w.lo.data();
    const int32_t* __restrict__ prow = w.row.data();
    const int32_t* __restrict__ pcode = w.code.data();
    const int32_t* __restrict__ psp = c.s.data();
    const acc_t* __restrict__ pc0 = w.c0.data();
    const acc_t* __restrict__ pc1 = w.c1.data();
    const acc_t* __restrict__ pc2 = w.c2.data();
    const acc_t* __restrict__ pc3 = w.c3.data();
    acc_t* const* __restrict__ prp = rowp;
    const int64_t n = c.n;
    for (int64_t j = i + 1; j < n; ++j) {
      const int32_t lo = plo[j];
      if (lo == kInvalid) continue;
      acc_t* __restrict__ dst = prp[psp[j]] + lo;
      const acc_t* __restrict__ t0 = tab + int64_t(prow[j]) * 2 * W;
      const acc_t* __restrict__ m = mask + int64_t(pcode[j]) * W;
      const acc_t a0 = pc0[j], a1 = pc1[j], a2 = pc2[j], a3 = pc3[j];
#pragma omp simd
      for (int k = 0; k < W; ++k) {
        dst[k] += (a0 * t0[k] + a1 * t0[W + k] + a2 * t0[2 * W + k] + a3 * t0[3 * W + k]) * m[k];
      }
    }
  }
}

template <typename acc_t, int WT>
PDFS_FG_ALWAYS_INLINE void grid_rows_body(const Cluster& c, int64_t S, const Tables<acc_t>& tb, const PassParams& q,
                                          int64_t stride, acc_t* grid, RowScratch<acc_t>& w, const RowRange& rr) {
  std::vector<acc_t*> rowp(static_cast<size_t>(S));
  PDFS_FG_FOR_ROWS(rr, i, (grid_row<acc_t, WT>(c, S, tb, q, stride, grid, w, rowp.data(), i)));
}

// ---- backward -----------------------------------------------------------------------------------------

// Gradient sums of the pairs (i, j > i) of the rows in `rows` into gpos (n, 3), float64. `gbuf` is the
// incoming gradient of the cluster in the padded layout (zero pads).
template <typename acc_t, int WT>
PDFS_FG_ALWAYS_INLINE void grad_row(const Cluster& c, int64_t S, const Tables<acc_t>& tb, const PassParams& q,
                                    int64_t stride, const acc_t* gbuf, double* gpos, RowScratch<acc_t>& w,
                                    const acc_t** rowp, int64_t i) {
  const int W = WT > 0 ? WT : tb.W;
  const acc_t* __restrict__ tab = tb.tab.data();
  const acc_t* __restrict__ mask = tb.mask.data();
  const double R = q.rows_d, inv_h = q.inv_h;
  {
    row_pass(c, i, q, w);
    const int64_t si = c.s[i];
    for (int64_t s = 0; s < S; ++s) rowp[s] = gbuf + slot_of(si, s, S) * stride + W;
    // Local restrict pointers: otherwise every grid store forces reloads of the scratch vectors' pointers.
    const int32_t* __restrict__ plo = w.lo.data();
    const int32_t* __restrict__ prow = w.row.data();
    const int32_t* __restrict__ pcode = w.code.data();
    const int32_t* __restrict__ psp = c.s.data();
    const double* __restrict__ psf = w.sfrac.data();
    const double* __restrict__ pr = w.r.data();
    double* __restrict__ pdl = w.dl.data();
    const int64_t n = c.n;
    for (int64_t j = i + 1; j < n; ++j) {
      const int32_t lo = plo[j];
      if (lo == kInvalid) {
        pdl[j] = 0.0;
        continue;
      }
      const acc_t* __restrict__ g = rowp[psp[j]] + lo;
      const acc_t* __restrict__ t0 = tab + int64_t(prow[j]) * 2 * W;
      const acc_t* __restrict__ m = mask + int64_t(pcode[j]) * W;
      acc_t q0 = 0, q1 = 0, q2 = 0, q3 = 0;
#pragma omp simd reduction(+ : q0, q1, q2, q3)
      for (int k = 0; k < W; ++k) {
        const acc_t gm = g[k] * m[k];
        q0 += gm * t0[k];
        q1 += gm * t0[W + k];
        q2 += gm * t0[2 * W + k];
        q3 += gm * t0[3 * W + k];
      }
      const double s = psf[j], r = pr[j];
      double h00, h10, h01, h11, d00, d10, d01, d11;
      fixed_grid::hermite(s, h00, h10, h01, h11);
      fixed_grid::hermite_ds(s, d00, d10, d01, d11);
      const double V = h00 * q0 + h10 * q1 + h01 * q2 + h11 * q3;             // sum grad * P(t)
      const double dV = R * (d00 * q0 + d10 * q1 + d01 * q2 + d11 * q3);      // sum grad * dP/dt
      // f = P(t)/r with t = r/h - floor: df/dr = (dP/dt)/(h r) - P/r^2.
      pdl[j] = (dV * inv_h - V / r) / r;
    }
    // To positions: atom i's sum and the partners' shares (pair (i, j) owns both, no other writer here).
    const double xi = c.x[i], yi = c.y[i], zi = c.z[i];
    const double* __restrict__ xs = c.x.data();
    const double* __restrict__ ys = c.y.data();
    const double* __restrict__ zs = c.z.data();
    const double* __restrict__ dl = w.dl.data();
    const double* __restrict__ rr = w.r.data();
    double gxi = 0, gyi = 0, gzi = 0;
    for (int64_t j = i + 1; j < n; ++j) {
      const double k = dl[j] / rr[j];
      const double dx = xi - xs[j], dy = yi - ys[j], dz = zi - zs[j];
      gxi += k * dx;
      gyi += k * dy;
      gzi += k * dz;
      gpos[3 * j] -= k * dx;
      gpos[3 * j + 1] -= k * dy;
      gpos[3 * j + 2] -= k * dz;
    }
    gpos[3 * i] += gxi;
    gpos[3 * i + 1] += gyi;
    gpos[3 * i + 2] += gzi;
  }
}

template <typename acc_t, int WT>
PDFS_FG_ALWAYS_INLINE void grad_rows_body(const Cluster& c, int64_t S, const Tables<acc_t>& tb, const PassParams& q,
                                          int64_t stride, const acc_t* gbuf, double* gpos, RowScratch<acc_t>& w,
                                          const RowRange& rr) {
  std::vector<const acc_t*> rowp(static_cast<size_t>(S));
  PDFS_FG_FOR_ROWS(rr, i, (grad_row<acc_t, WT>(c, S, tb, q, stride, gbuf, gpos, w, rowp.data(), i)));
}

// ---- ISA clones and width dispatch ---------------------------------------------------------------------

template <typename acc_t, int WT>
void grid_rows_base(const Cluster& c, int64_t S, const Tables<acc_t>& tb, const PassParams& q, int64_t stride,
                    acc_t* grid, RowScratch<acc_t>& w, const RowRange& rr) {
  grid_rows_body<acc_t, WT>(c, S, tb, q, stride, grid, w, rr);
}
template <typename acc_t, int WT>
void grad_rows_base(const Cluster& c, int64_t S, const Tables<acc_t>& tb, const PassParams& q, int64_t stride,
                    const acc_t* gbuf, double* gpos, RowScratch<acc_t>& w, const RowRange& rr) {
  grad_rows_body<acc_t, WT>(c, S, tb, q, stride, gbuf, gpos, w, rr);
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define PDFS_FG_X86_CLONES 1
template <typename acc_t, int WT>
__attribute__((target("avx2,fma"))) void grid_rows_avx2(const Cluster& c, int64_t S, const Tables<acc_t>& tb,
                                                        const PassParams& q, int64_t stride, acc_t* grid,
                                                        RowScratch<acc_t>& w, const RowRange& rr) {
  grid_rows_body<acc_t, WT>(c, S, tb, q, stride, grid, w, rr);
}
template <typename acc_t, int WT>
__attribute__((target("avx2,fma"))) void grad_rows_avx2(const Cluster& c, int64_t S, const Tables<acc_t>& tb,
                                                        const PassParams& q, int64_t stride, const acc_t* gbuf,
                                                        double* gpos, RowScratch<acc_t>& w, const RowRange& rr) {
  grad_rows_body<acc_t, WT>(c, S, tb, q, stride, gbuf, gpos, w, rr);
}
inline bool cpu_has_avx2() {
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
}
#endif

template <typename acc_t>
using GridFn = void (*)(const Cluster&, int64_t, const Tables<acc_t>&, const PassParams&, int64_t, acc_t*,
                        RowScratch<acc_t>&, const RowRange&);
template <typename acc_t>
using GradFn = void (*)(const Cluster&, int64_t, const Tables<acc_t>&, const PassParams&, int64_t, const acc_t*,
                        double*, RowScratch<acc_t>&, const RowRange&);

template <typename acc_t, int WT>
void pick(GridFn<acc_t>& f, GradFn<acc_t>& g) {
#ifdef PDFS_FG_X86_CLONES
  if (cpu_has_avx2()) {
    f = &grid_rows_avx2<acc_t, WT>;
    g = &grad_rows_avx2<acc_t, WT>;
    return;
  }
#endif
  f = &grid_rows_base<acc_t, WT>;
  g = &grad_rows_base<acc_t, WT>;
}

// Padded tap count W (a multiple of the vector width where it is compiled in) and the kernels for it.
template <typename acc_t>
int choose_width(int64_t ntaps, GridFn<acc_t>& f, GradFn<acc_t>& g) {
  constexpr bool dbl = sizeof(acc_t) == 8;
  if (dbl) {
    if (ntaps <= 4) return pick<acc_t, 4>(f, g), 4;
    if (ntaps <= 8) return pick<acc_t, 8>(f, g), 8;
    if (ntaps <= 12) return pick<acc_t, 12>(f, g), 12;
  } else if (ntaps <= 8) {
    return pick<acc_t, 8>(f, g), 8;
  }
  if (ntaps <= 16) return pick<acc_t, 16>(f, g), 16;
  if (ntaps <= 24) return pick<acc_t, 24>(f, g), 24;
  if (ntaps <= 32) return pick<acc_t, 32>(f, g), 32;
  pick<acc_t, 0>(f, g);  // run-time width
  return int((ntaps + 7) / 8 * 8);
}

bool use_atom_parallel(int64_t B, int64_t N) {
  const int64_t nt = at::get_num_threads();
  return nt > 1 && B < 2 * nt && N >= kAtomParallelMinAtoms;
}

// Everything one call needs, built once.
template <typename acc_t>
struct Plan {
  GridFn<acc_t> grid_fn = nullptr;
  GradFn<acc_t> grad_fn = nullptr;
  Tables<acc_t> tb;
  PassParams q;
  int64_t stride, G_pad;
  Plan(int64_t S, int64_t nbins, double bin_width, double tau0, double truncate, double rcut)
      : tb(build(bin_width, tau0, truncate)) {
    q = make_pass_params(tb.geo, nbins, rcut, tb.edge);
    stride = nbins + 2 * int64_t(tb.W);
    G_pad = S * S * stride;
  }
  Tables<acc_t> build(double bin_width, double tau0, double truncate) {
    const TapGeometry geo = fixed_grid::make_tap_geometry(bin_width, tau0, truncate);
    const int W = choose_width<acc_t>(geo.ntaps, grid_fn, grad_fn);
    return Tables<acc_t>(geo, W);
  }
};

// ---- ops ----------------------------------------------------------------------------------------------

at::Tensor fixed_pair_grid_cpu(const at::Tensor& pos_in, const at::Tensor& species_in, int64_t n_species,
                               double bin_width, int64_t nbins, double tau0, double truncate, double rcut) {
  const char* op = "fixed_pair_grid";
  check_inputs(op, pos_in, species_in, n_species, bin_width, nbins, tau0, truncate);
  const int64_t B = pos_in.size(0), N = pos_in.size(1), S = n_species, SS = S * S;
  auto out = at::zeros({B, SS, nbins}, pos_in.options());
  check_species_values(op, species_in, S);
  if (B == 0 || N < 2 || nbins == 0) return out;
  TORCH_CHECK(nbins < (int64_t(1) << 30), op, ": nbins must be < 2^30, got ", nbins);
  const auto pos = pos_in.contiguous();
  const auto species = species_in.contiguous();
  const int64_t G = SS * nbins;

  AT_DISPATCH_FLOATING_TYPES(pos.scalar_type(), "fixed_pair_grid_cpu", [&] {
    using acc_t = scalar_t;
    const Plan<acc_t> plan(S, nbins, bin_width, tau0, truncate, rcut);
    const int64_t stride = plan.stride, Gp = plan.G_pad, W = plan.tb.W;
    const scalar_t* pp = pos.data_ptr<scalar_t>();
    const int64_t* sp = species.data_ptr<int64_t>();
    scalar_t* op_ = out.data_ptr<scalar_t>();
    auto write_out = [&](int64_t b, const acc_t* buf) {
      scalar_t* ob = op_ + b * G;
      for (int64_t sl = 0; sl < SS; ++sl)
        std::copy(buf + sl * stride + W, buf + sl * stride + W + nbins, ob + sl * nbins);
    };

    if (!use_atom_parallel(B, N)) {
      at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
        Cluster atoms(N);
        RowScratch<acc_t> scratch(N);
        std::vector<acc_t> buf(static_cast<size_t>(Gp));
        for (int64_t b = b0; b < b1; ++b) {
          gather_atoms(op, pp + b * N * 3, sp + b * N, N, S, atoms);
          const int64_t n = atoms.n;
          if (n < 2) continue;
          std::fill(buf.begin(), buf.end(), acc_t(0));
          plan.grid_fn(atoms, S, plan.tb, plan.q, stride, buf.data(), scratch, RowRange{0, n - 1, n, false});
          write_out(b, buf.data());
        }
      });
    } else {
      const int64_t nt = at::get_num_threads();
      std::vector<acc_t> bufs(static_cast<size_t>(nt * Gp));
      std::vector<acc_t> sum(static_cast<size_t>(Gp));
      Cluster atoms(N);
      for (int64_t b = 0; b < B; ++b) {
        gather_atoms(op, pp + b * N * 3, sp + b * N, N, S, atoms);
        const int64_t n = atoms.n;
        if (n < 2) continue;
        std::fill(bufs.begin(), bufs.end(), acc_t(0));
        const int64_t ntask = n / 2;  // task k: rows k and n-1-k (row n-1 has no pairs)
        std::vector<char> used(static_cast<size_t>(nt), 0);
        at::parallel_for(0, ntask, 1, [&](int64_t k0, int64_t k1) {
          const int64_t tid = at::get_thread_num();
          used[tid] = 1;
          RowScratch<acc_t> scratch(N);
          plan.grid_fn(atoms, S, plan.tb, plan.q, stride, bufs.data() + tid * Gp, scratch,
                       RowRange{k0, k1, n, true});
        });
        if (n % 2 == 1) {  // the middle row (n-1)/2 of an odd count
          used[0] = 1;
          const int64_t mid = (n - 1) / 2;
          RowScratch<acc_t> scratch(N);
          plan.grid_fn(atoms, S, plan.tb, plan.q, stride, bufs.data(), scratch, RowRange{mid, mid + 1, n, false});
        }
        at::parallel_for(0, Gp, 4096, [&](int64_t k0, int64_t k1) {
          for (int64_t k = k0; k < k1; ++k) {
            acc_t acc = 0;
            for (int64_t t = 0; t < nt; ++t)
              if (used[t]) acc += bufs[t * Gp + k];
            sum[k] = acc;
          }
        });
        write_out(b, sum.data());
      }
    }
  });
  return out;
}

at::Tensor fixed_pair_grid_backward_cpu(const at::Tensor& grad_in, const at::Tensor& pos_in,
                                        const at::Tensor& species_in, int64_t n_species, double bin_width,
                                        int64_t nbins, double tau0, double truncate, double rcut) {
  const char* op = "fixed_pair_grid_backward";
  check_inputs(op, pos_in, species_in, n_species, bin_width, nbins, tau0, truncate);
  const int64_t B = pos_in.size(0), N = pos_in.size(1), S = n_species, SS = S * S;
  check_grad(op, grad_in, pos_in, n_species, nbins, "nbins");
  check_species_values(op, species_in, S);
  auto gpos_out = at::zeros({B, N, 3}, pos_in.options());
  if (B == 0 || N < 2 || nbins == 0) return gpos_out;
  TORCH_CHECK(nbins < (int64_t(1) << 30), op, ": nbins must be < 2^30, got ", nbins);
  const auto grad = grad_in.contiguous();
  const auto pos = pos_in.contiguous();
  const auto species = species_in.contiguous();
  const int64_t G = SS * nbins;

  AT_DISPATCH_FLOATING_TYPES(pos.scalar_type(), "fixed_pair_grid_backward_cpu", [&] {
    using acc_t = scalar_t;
    const Plan<acc_t> plan(S, nbins, bin_width, tau0, truncate, rcut);
    const int64_t stride = plan.stride, Gp = plan.G_pad, W = plan.tb.W;
    const scalar_t* gp = grad.data_ptr<scalar_t>();
    const scalar_t* pp = pos.data_ptr<scalar_t>();
    const int64_t* sp = species.data_ptr<int64_t>();
    scalar_t* gpo = gpos_out.data_ptr<scalar_t>();

    // The cluster's incoming gradient in the padded layout (pads stay zero).
    auto load_grad = [&](int64_t b, acc_t* gbuf) {
      const scalar_t* gb = gp + b * G;
      for (int64_t sl = 0; sl < SS; ++sl)
        std::copy(gb + sl * nbins, gb + (sl + 1) * nbins, gbuf + sl * stride + W);
    };
    auto write_back = [&](int64_t b, const Cluster& atoms, const double* gpos) {
      for (int64_t a = 0; a < atoms.n; ++a) {
        const int64_t i = atoms.idx[a];
        for (int d = 0; d < 3; ++d) gpo[(b * N + i) * 3 + d] = static_cast<scalar_t>(gpos[3 * a + d]);
      }
    };

    if (!use_atom_parallel(B, N)) {
      at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
        Cluster atoms(N);
        RowScratch<acc_t> scratch(N);
        std::vector<acc_t> gbuf(static_cast<size_t>(Gp), acc_t(0));
        std::vector<double> gpos(3 * N);
        for (int64_t b = b0; b < b1; ++b) {
          gather_atoms(op, pp + b * N * 3, sp + b * N, N, S, atoms);
          const int64_t n = atoms.n;
          if (n < 2) continue;
          load_grad(b, gbuf.data());
          std::fill(gpos.begin(), gpos.begin() + 3 * n, 0.0);
          plan.grad_fn(atoms, S, plan.tb, plan.q, stride, gbuf.data(), gpos.data(), scratch,
                       RowRange{0, n - 1, n, false});
          write_back(b, atoms, gpos.data());
        }
      });
    } else {
      const int64_t nt = at::get_num_threads();
      std::vector<double> gpos(static_cast<size_t>(nt * 3 * N)), gsum(static_cast<size_t>(3 * N));
      std::vector<acc_t> gbuf(static_cast<size_t>(Gp), acc_t(0));
      Cluster atoms(N);
      for (int64_t b = 0; b < B; ++b) {
        gather_atoms(op, pp + b * N * 3, sp + b * N, N, S, atoms);
        const int64_t n = atoms.n;
        if (n < 2) continue;
        load_grad(b, gbuf.data());
        std::fill(gpos.begin(), gpos.end(), 0.0);
        const int64_t ntask = n / 2;
        at::parallel_for(0, ntask, 1, [&](int64_t k0, int64_t k1) {
          const int64_t tid = at::get_thread_num();
          RowScratch<acc_t> scratch(N);
          plan.grad_fn(atoms, S, plan.tb, plan.q, stride, gbuf.data(), gpos.data() + tid * 3 * N, scratch,
                       RowRange{k0, k1, n, true});
        });
        if (n % 2 == 1) {
          const int64_t mid = (n - 1) / 2;
          RowScratch<acc_t> scratch(N);
          plan.grad_fn(atoms, S, plan.tb, plan.q, stride, gbuf.data(), gpos.data(), scratch,
                       RowRange{mid, mid + 1, n, false});
        }
        for (int64_t a = 0; a < 3 * n; ++a) {
          double acc = 0;
          for (int64_t t = 0; t < nt; ++t) acc += gpos[t * 3 * N + a];
          gsum[a] = acc;
        }
        write_back(b, atoms, gsum.data());
      }
    }
  });
  return gpos_out;
}

}  // namespace

TORCH_LIBRARY_IMPL(pdfsolve, CPU, m) {
  m.impl("fixed_pair_grid", &fixed_pair_grid_cpu);
  m.impl("fixed_pair_grid_backward", &fixed_pair_grid_backward_cpu);
}

}  // namespace pdfsolve
