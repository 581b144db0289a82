// Inline maths of the gaussian_pair_grid op, shared by the CPU kernel (csrc/cpu/gridding_cpu.cpp) and
// the CUDA kernels (csrc/cuda/gridding_kernels.cu). No torch headers: it must compile under nvcc alone.
//
// A pair at distance r with Gaussian width s adds
//   f_m = exp(-(r_m - r)^2 / (2 s^2)) / (sqrt(2 pi) s r),   r_m = m h,
// to the bins m with |r_m - r| <= truncate * s (clipped to [0, nbins)), where
//   s^2 = tau0^2 + (u_i + u_j) c(r),   c(r) = max(0, 1 - d1/r - d2/r^2 + (qb r)^2).
#pragma once

#include <cmath>
#include <cstdint>

#include "common/host_device.h"
#include "common/pair_window.h"


namespace pdfsolve {
namespace gridding {

// The multiplicative recurrence re-anchors on an exact exp() every this many bins.
constexpr int kResyncEvery = 32;

template <typename T>
struct GridParams {
  T h;          // bin width (Angstrom)
  int64_t nbins;
  T tau0sq;     // tau0^2
  T truncate;   // window half-width in units of s
  T rcut;
  T d1, d2, qb; // Jeong peak-width parameters
  T inv_h;      // 1 / h
  bool jeong;   // any of d1, d2, qb nonzero (else c(r) = 1 exactly)
};

template <typename T>
PDFSOLVE_HD GridParams<T> make_grid_params(double bin_width, int64_t nbins, double tau0, double truncate, double rcut,
                                       double delta1, double delta2, double qbroad) {
  GridParams<T> p;
  p.h = T(bin_width);
  p.nbins = nbins;
  p.tau0sq = T(tau0 * tau0);
  p.truncate = T(truncate);
  p.rcut = T(rcut);
  p.d1 = T(delta1);
  p.d2 = T(delta2);
  p.qb = T(qbroad);
  p.inv_h = T(1.0 / bin_width);
  p.jeong = delta1 != 0.0 || delta2 != 0.0 || qbroad != 0.0;
  return p;
}

// Unclamped Jeong factor 1 - d1/r - d2/r^2 + (qb r)^2, in the reference's order of operations.
template <typename T>
PDFSOLVE_HD T jeong_raw(T r, T d1, T d2, T qb) {
  const T qr = qb * r;
  return T(1) - d1 / r - d2 / (r * r) + qr * qr;
}

// dc/dr of the unclamped factor.
template <typename T>
PDFSOLVE_HD T jeong_draw(T r, T d1, T d2, T qb) {
  return d1 / (r * r) + T(2) * d2 / (r * r * r) + T(2) * qb * qb * r;
}

// Bin nearest to r, clamped to [lo, hi]: the recurrence starts there and runs both ways.
template <typename T>
PDFSOLVE_HD int64_t window_center(T r, T inv_h, int64_t lo, int64_t hi) {
  using std::floor;
  T c = floor(r * inv_h + T(0.5));
  if (c < T(lo)) return lo;
  if (c > T(hi)) return hi;
  return static_cast<int64_t>(c);
}

// Quantities that depend on the width alone, cached across pairs (uniform U_iso without Jeong terms gives
// one width for every pair): s = sqrt(s2) and the step factor cstep = exp(-h^2 / (2 s^2)).
template <typename T>
struct WidthCache {
  T s2 = T(-1), s = T(0), cstep = T(0);
  PDFSOLVE_HD void update(T new_s2, T h) {
    using std::exp;
    using std::sqrt;
    if (new_s2 == s2) return;
    s2 = new_s2;
    s = sqrt(new_s2);
    cstep = exp(-T(0.5) * h * h / new_s2);
  }
};

// Per-pair quantities: distance r (> tol, <= rcut), its width and Jeong factor.
template <typename T>
struct PairWidth {
  T s2, s, c, craw;
};

// Width of a pair; s and the recurrence's step factor come from (and update) `cache`.
template <typename T>
PDFSOLVE_HD PairWidth<T> pair_width(T r, T usum, const GridParams<T>& p, WidthCache<T>& cache) {
  PairWidth<T> w;
  w.craw = p.jeong ? jeong_raw(r, p.d1, p.d2, p.qb) : T(1);
  w.c = w.craw > T(0) ? w.craw : T(0);
  w.s2 = p.tau0sq + usum * w.c;
  cache.update(w.s2, p.h);
  w.s = cache.s;
  return w;
}

// Visit every bin m in [lo, hi] with f(m, x_m, g_m), g_m = norm * exp(-x_m^2 / (2 s^2)), x_m = m h - r.
// Fast path: g_{m+1} = g_m a_m, a_{m+1} = a_m b (b = exp(-h^2/s^2) = cstep^2), up and down from the center
// bin m0 at once (two independent multiply chains); the first ratios are a_up = E cstep and
// a_down = cstep / E with E = exp(-x_m0 h / s^2): two exp() per pair. Windows longer than kResyncEvery
// bins on a side re-anchor on an exact exp() every kResyncEvery bins; extreme widths (h/s > 10) take one
// exp() per bin.
template <typename T, typename F>
PDFSOLVE_HD void for_each_bin(T r, T s2, T cstep, T norm, T h, T inv_h, int64_t lo, int64_t hi, F&& f) {
  using std::exp;
  const T inv2s2 = T(0.5) / s2;
  const int64_t m0 = window_center(r, inv_h, lo, hi);
  const T x0 = T(m0) * h - r;
  const T g0 = norm * exp(-x0 * x0 * inv2s2);
  f(m0, x0, g0);
  if (lo == hi) return;
  const T hh = h * h;
  const int64_t nup = hi - m0, ndn = m0 - lo;
  if (hh * inv2s2 > T(50)) {  // very narrow Gaussians (a handful of bins at most): direct evaluation
    for (int64_t m = lo; m <= hi; ++m) {
      if (m == m0) continue;
      const T x = T(m) * h - r;
      f(m, x, norm * exp(-x * x * inv2s2));
    }
    return;
  }
  const T b = cstep * cstep;
  if (nup <= kResyncEvery && ndn <= kResyncEvery && x0 * x0 <= hh) {
    const T E = exp(-T(2) * x0 * h * inv2s2);
    T gu = g0, gd = g0, au = E * cstep, ad = cstep / E;
    const int64_t nboth = nup < ndn ? nup : ndn;
    int64_t k = 1;
    for (; k <= nboth; ++k) {
      gu *= au;
      au *= b;
      gd *= ad;
      ad *= b;
      f(m0 + k, T(m0 + k) * h - r, gu);
      f(m0 - k, T(m0 - k) * h - r, gd);
    }
    for (int64_t kk = k; kk <= nup; ++kk) {
      gu *= au;
      au *= b;
      f(m0 + kk, T(m0 + kk) * h - r, gu);
    }
    for (int64_t kk = k; kk <= ndn; ++kk) {
      gd *= ad;
      ad *= b;
      f(m0 - kk, T(m0 - kk) * h - r, gd);
    }
    return;
  }
  // Long windows: each side on its own, re-anchored every kResyncEvery bins.
  // Upwards: a_m = g_{m+1}/g_m = exp(-(2 x_m h + h^2) / (2 s^2)).
  {
    int64_t m = m0;
    T g = g0;
    T a = exp(-(T(2) * x0 * h + hh) * inv2s2);
    while (m < hi) {
      const int64_t stop = (hi - m > kResyncEvery) ? m + kResyncEvery : hi;
      while (m < stop) {
        g *= a;
        a *= b;
        ++m;
        f(m, T(m) * h - r, g);
      }
      if (m < hi) {
        const T x = T(m) * h - r;
        g = norm * exp(-x * x * inv2s2);
        a = exp(-(T(2) * x * h + hh) * inv2s2);
      }
    }
  }
  // Downwards: a_m = g_{m-1}/g_m = exp((2 x_m h - h^2) / (2 s^2)).
  {
    int64_t m = m0;
    T g = g0;
    T a = exp((T(2) * x0 * h - hh) * inv2s2);
    while (m > lo) {
      const int64_t stop = (m - lo > kResyncEvery) ? m - kResyncEvery : lo;
      while (m > stop) {
        g *= a;
        a *= b;
        --m;
        f(m, T(m) * h - r, g);
      }
      if (m > lo) {
        const T x = T(m) * h - r;
        g = norm * exp(-x * x * inv2s2);
        a = exp((T(2) * x * h - hh) * inv2s2);
      }
    }
  }
}

// Gradient of one pair from the window sums S0 = sum grad_m f_m, S1 = sum grad_m f_m x_m,
// S2 = sum grad_m f_m x_m^2 (x_m = r_m - r): dL/dr (r's effect on s included) and dL/d(u_i+u_j).
template <typename T>
PDFSOLVE_HD void pair_grad(T r, T usum, const PairWidth<T>& w, T S0, T S1, T S2, const GridParams<T>& p,
                       T& dLdr, T& dLdu) {
  const T inv_s2 = T(1) / w.s2;
  // df/ds = f (x^2/s^3 - 1/s);  df/dr|_s = f (x/s^2 - 1/r).
  const T dLds = (S2 * inv_s2 - S0) / w.s;
  const T half_over_s = T(0.5) / w.s;  // ds/d(s^2)
  dLdr = S1 * inv_s2 - S0 / r;
  if (w.craw > T(0)) dLdr += dLds * half_over_s * usum * jeong_draw(r, p.d1, p.d2, p.qb);
  dLdu = dLds * half_over_s * w.c;
}

}  // namespace gridding
}  // namespace pdfsolve
