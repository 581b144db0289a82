// Inline maths of the fixed_pair_grid op (one Gaussian width tau0 for every pair), shared by the CPU
// kernel (csrc/cpu/fixed_grid_cpu.cpp) and the CUDA kernels (csrc/cuda/fixed_grid_kernels.cu). No torch
// headers: it must compile under nvcc alone.
//
// A pair at distance r adds f_m = g(r_m - r) / r, g(x) = exp(-x^2 / (2 tau0^2)) / (sqrt(2 pi) tau0),
// r_m = m h, to the bins m in [0, nbins) with |r_m - r| <= truncate * tau0 (python/pdfsolve/ops/reference.py,
// gaussian_pair_grid with zero U_iso).
//
// Tap layout (CPU table path). With u = r / h, fl = floor(u), t = u - fl in [0, 1) and
// K0 = floor(truncate tau0 / h (+ a hair)), a pair touches the bins lo + k, lo = fl - K0, k in [0, 2 K0 + 2);
// tap k sits at x = (k - K0 - t) h. Taps 2 .. 2 K0 - 1 are inside the window by about one bin; only the
// two outermost taps on each side (k = 0, 1, 2K0, 2K0+1) can cross its edge, and those four are masked per
// pair by comparing t with the exact thresholds of |k - K0 - t| <= truncate tau0 / h. This equals the
// reference's test |m h - r| <= truncate tau0 except where both sides agree to a few ulps; there one edge
// tap (exp(-truncate^2 / 2) of the pair's peak, 2.7e-7 at truncate 5.5) may be in one and not the other.
// The shape of the taps as a function of t comes from a table of R + 1 rows (t_j = j / R): values P and
// scaled derivatives D = (1/R) dP/dt, and cubic Hermite interpolation between rows j and j+1. Its error is at
// most 3 / (384 (R sigma)^4) of the pair's peak g(0)/r (sigma = tau0 / h), its derivative's about
// 0.15 / (R sigma)^3 of max |g'|; R sigma >= 64 gives <= 5e-10 and ~1.5e-7 (see table_rows()).
#pragma once

#include <cmath>
#include <cstdint>

#include "common/host_device.h"
#include "common/pair_window.h"


namespace pdfsolve {
namespace fixed_grid {

// Table rows per unit of t times sigma (R sigma >= kRowsPerSigma), and the row count's bounds.
constexpr int kRowsPerSigma = 64;
constexpr int kMinRows = 16;
constexpr int kMaxRows = 8192;

// Geometry of the taps for one call.
struct TapGeometry {
  double h, inv_h, tau0, half;  // half = truncate * tau0: the window's half-width (Angstrom)
  int64_t k0;                   // K0 above
  int64_t ntaps;                // 2 K0 + 2 taps that can be inside
  int rows;                     // R
};

inline TapGeometry make_tap_geometry(double bin_width, double tau0, double truncate) {
  TapGeometry g;
  g.h = bin_width;
  g.inv_h = 1.0 / bin_width;
  g.tau0 = tau0;
  g.half = truncate * tau0;
  const double th = g.half / bin_width;
  // A hair above th so a window edge that lands on a bin (th integer up to rounding) is covered; the four
  // outer taps are then masked exactly anyway.
  g.k0 = static_cast<int64_t>(std::floor(th * (1.0 + 1e-12) + 1e-12));
  g.ntaps = 2 * g.k0 + 2;
  const double sigma = tau0 / bin_width;
  int r = kMinRows;
  while (r < kMaxRows && double(r) * sigma < double(kRowsPerSigma)) r *= 2;
  g.rows = r;
  return g;
}

// Value of the unnormalised tap shape exp(-z^2 / (2 sigma^2)) at z = k - K0 - t (bins), and its t-derivative.
inline void tap_shape(double z, double inv_sigma2, double& p, double& dpdt) {
  p = std::exp(-0.5 * z * z * inv_sigma2);
  dpdt = p * z * inv_sigma2;  // dz/dt = -1
}

// Cubic Hermite basis at s in [0, 1] and its s-derivative (T a scalar or a GCC vector type: integer literals).
template <typename T>
PDFSOLVE_HD void hermite(T s, T& h00, T& h10, T& h01, T& h11) {
  const T s2 = s * s, s3 = s2 * s;
  h00 = 2 * s3 - 3 * s2 + 1;
  h10 = s3 - 2 * s2 + s;
  h01 = 3 * s2 - 2 * s3;
  h11 = s3 - s2;
}
template <typename T>
PDFSOLVE_HD void hermite_ds(T s, T& d00, T& d10, T& d01, T& d11) {
  const T s2 = s * s;
  d00 = 6 * s2 - 6 * s;
  d10 = 3 * s2 - 4 * s + 1;
  d01 = -d00;
  d11 = 3 * s2 - 2 * s;
}

// dL/dr of one pair from S0 = sum_m grad_m g(x_m) and S1 = sum_m grad_m g(x_m) x_m (x_m = r_m - r):
// d/dr [g(x)/r] = g(x) x / (tau0^2 r) - g(x) / r^2.
template <typename T>
PDFSOLVE_HD T pair_dLdr(T r, T inv_tau2, T S0, T S1) {
  return S1 * inv_tau2 / r - S0 / (r * r);
}

}  // namespace fixed_grid
}  // namespace pdfsolve
