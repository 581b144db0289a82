// Inline maths of the ACSF op (Behler G2 radial and G5 angular symmetry functions), shared by the CPU kernel
// (csrc/cpu/acsf_cpu.cpp) and the CUDA kernels (csrc/cuda/acsf_kernels.cu). No torch headers.
//
// Definitions (python/pdfsolve/ops/reference_acsf.py is the oracle); distances in Angstrom, eta in 1/Angstrom^2:
//   f_c(r)          = 0.5 (cos(pi r / rcut) + 1) for r < rcut, else 0
//   G2 term (row q) = exp(-eta_q (r - Rs_q)^2) f_c(r)
//   G5 term (row a) = 2^(1-zeta_a) (1 + lambda_a cos)^zeta_a  w_a(r_ij) w_a(r_ik),   w_a(r) = exp(-eta_a r^2) f_c(r)
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "common/host_device.h"

namespace pdfsolve {
namespace acsf {

constexpr double kPi = 3.14159265358979323846;

//! Parameter tables of one call, built once on the host (python/pdfsolve/ops/_acsf.py documents the input rows).
//! Angular rows are grouped by their unique eta (row_e) and unique (zeta, lambda) (row_zl) so that a kernel can
//! compute exp(-eta r^2) once per unique eta and (1 + lambda cos)^zeta once per unique (zeta, lambda).
//! `order` lists the angular rows sorted by row_e (a kernel walking rows in this order recomputes the Gaussian
//! only when the eta changes). On CUDA all pointers are device pointers.
struct Tables {
  int n_r, n_a, n_ue, n_uzl;
  const double* radial;  // (n_r, 2): eta, Rs
  const double* ue;      // (n_ue) unique angular eta
  const double* uzeta;   // (n_uzl) zeta of each unique (zeta, lambda)
  const double* ulam;    // (n_uzl) lambda (+1 or -1)
  const int* uzint;      // (n_uzl) zeta as an integer when it is one (> 0), else 0
  const int* row_e;      // (n_a) index into ue
  const int* row_zl;     // (n_a) index into uzeta / ulam
  const double* coef;    // (n_a) 2^(1 - zeta_a)
  const int* order;      // (n_a) angular rows sorted by row_e
};

//! exp(x), vectorisable in host C++ (no library call: Cody-Waite reduction x = k ln2 + f, |f| <= ln2/2, and a
//! degree-13 Taylor polynomial, about 1 ulp); exp() under nvcc. Returns 0 below x = -708 (where exp(x) is
//! under 1e-307); x must not be NaN and is clamped at 709.
PDFSOLVE_HD double gauss_exp(double x) {
#if defined(__CUDACC__)
  return x < -708.0 ? 0.0 : exp(x);
#else
  const double xc = x < -708.0 ? -708.0 : (x > 709.0 ? 709.0 : x);
  constexpr double kRound = 6755399441055744.0;  // 1.5 * 2^52: adding it rounds to an integer
  const double kd = xc * 1.4426950408889634 + kRound;
  const double k = kd - kRound;
  const double f = (xc - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10;
  double p = 1.0 / 6227020800.0;  // 1/13!
  p = p * f + 1.0 / 479001600.0;
  p = p * f + 1.0 / 39916800.0;
  p = p * f + 1.0 / 3628800.0;
  p = p * f + 1.0 / 362880.0;
  p = p * f + 1.0 / 40320.0;
  p = p * f + 1.0 / 5040.0;
  p = p * f + 1.0 / 720.0;
  p = p * f + 1.0 / 120.0;
  p = p * f + 1.0 / 24.0;
  p = p * f + 1.0 / 6.0;
  p = p * f + 0.5;
  p = p * f + 1.0;
  p = p * f + 1.0;
  const int64_t k_int = __builtin_bit_cast(int64_t, kd) - __builtin_bit_cast(int64_t, kRound);
  const double scale = __builtin_bit_cast(double, (k_int + 1023) << 52);  // 2^k
  return x < -708.0 ? 0.0 : p * scale;
#endif
}

//! Cosine cutoff f_c(r) and its derivative df_c/dr (1/Angstrom) for 0 <= r < rcut.
PDFSOLVE_HD void cutoff(double r, double rcut, double& fc, double& dfc) {
  const double a = kPi / rcut;
  fc = 0.5 * (cos(a * r) + 1.0);
  dfc = -0.5 * a * sin(a * r);
}

//! G2 term v = exp(-eta (r - Rs)^2) f_c and its derivative dv/dr.
PDFSOLVE_HD void radial_term(double r, double eta, double rs, double fc, double dfc, double& v, double& dv) {
  const double x = r - rs;
  const double e = gauss_exp(-eta * x * x);
  v = e * fc;
  dv = e * (dfc - 2.0 * eta * x * fc);
}

//! Angular radial factor w = exp(-eta r^2) f_c and its derivative dw/dr.
PDFSOLVE_HD void angular_weight(double r, double eta, double fc, double dfc, double& w, double& dw) {
  const double e = gauss_exp(-eta * r * r);
  w = e * fc;
  dw = e * (dfc - 2.0 * eta * r * fc);
}

//! b^n for an integer n >= 0 by repeated squaring.
PDFSOLVE_HD double int_pow(double b, int n) {
  double p = 1.0;
  while (n > 0) {
    if (n & 1) p *= b;
    b *= b;
    n >>= 1;
  }
  return p;
}

//! b^(zeta - 1) for b = 1 + lambda cos in [0, 2] and zeta >= 1: repeated squaring when zeta is an integer
//! (nz > 0), exp((zeta - 1) log b) otherwise (0 at b = 0). Then b^zeta = q b and d(b^zeta)/db = zeta q.
PDFSOLVE_HD double pow_m1(double b, double zeta, int nz) {
  if (nz > 0) return int_pow(b, nz - 1);
  return b > 0.0 ? exp((zeta - 1.0) * log(b)) : 0.0;
}

//! 1 + lambda cos with cos clamped to [-1, 1] (rounding can push a dot product of unit vectors past 1).
PDFSOLVE_HD double angular_base(double c, double lambda) {
  const double cc = c > 1.0 ? 1.0 : (c < -1.0 ? -1.0 : c);
  return 1.0 + lambda * cc;
}

//! Gradient of cos = u_j . u_k with respect to the position of atom j (1/Angstrom):
//! (u_k - cos u_j) / r_j. Swap the roles for atom k; the centre gets minus the sum of both.
PDFSOLVE_HD void cos_grad(const double* uj, const double* uk, double c, double rj, double* out) {
  const double ir = 1.0 / rj;
  out[0] = (uk[0] - c * uj[0]) * ir;
  out[1] = (uk[1] - c * uj[1]) * ir;
  out[2] = (uk[2] - c * uj[2]) * ir;
}

//! Index of the unordered species pair {s, t} in the row-major upper triangle of S x S (s <= t).
PDFSOLVE_HD int pair_slot(int s, int t, int S) {
  if (s > t) {
    const int x = s;
    s = t;
    t = x;
  }
  return s * S - s * (s - 1) / 2 + (t - s);
}

//! Number of features per atom: S n_r radial + S (S + 1) / 2 n_a angular.
PDFSOLVE_HD int64_t n_features(int64_t S, int64_t n_r, int64_t n_a) { return S * n_r + S * (S + 1) / 2 * n_a; }

//! Scalar derivatives of one triple's contribution L = sum_a g_a G5_a(i; j, k) (g: the upstream gradient row of
//! the centre's species pair, n_a entries): dL/dcos (A), dL/dr_ij (Bj) and dL/dr_ik (Bk). Walks the rows in
//! t.order so the Gaussian exp(-eta (r_ij^2 + r_ik^2)) is evaluated once per unique eta.
template <typename G>
PDFSOLVE_HD void triple_scalars(const Tables& t, const G* g, double c, double rj, double fcj, double dfcj,
                                double rk, double fck, double dfck, double& A, double& Bj, double& Bk) {
  A = Bj = Bk = 0.0;
  const double r2 = rj * rj + rk * rk;
  int cur_e = -1;
  double ex = 0.0, eta = 0.0;
  for (int m = 0; m < t.n_a; ++m) {
    const int a = t.order[m];
    const double ga = static_cast<double>(g[a]);
    if (ga == 0.0) continue;
    const int e = t.row_e[a];
    if (e != cur_e) {
      cur_e = e;
      eta = t.ue[e];
      ex = gauss_exp(-eta * r2);
    }
    const int z = t.row_zl[a];
    const double lam = t.ulam[z], zeta = t.uzeta[z];
    const double b = angular_base(c, lam);
    const double q = pow_m1(b, zeta, t.uzint[z]);
    const double s = ga * t.coef[a] * ex;  // g 2^(1-zeta) exp(-eta (rj^2 + rk^2))
    const double pw = q * b;
    A += s * zeta * q * lam * fcj * fck;
    Bj += s * pw * (dfcj - 2.0 * eta * rj * fcj) * fck;
    Bk += s * pw * fcj * (dfck - 2.0 * eta * rk * fck);
  }
}

//! Host copy of the parameter tables: built and validated from the rows radial (n_r, 2) = (eta, Rs) and
//! angular (n_a, 3) = (eta, zeta, lambda), packed into one double and one int array (copied as such to a
//! device) and viewed as a Tables over those arrays.
struct HostTables {
  std::string error;  // empty when every parameter is valid
  int n_r = 0, n_a = 0, n_ue = 0, n_uzl = 0;
  std::vector<double> dbl;  // radial (2 n_r) | ue (n_ue) | uzeta (n_uzl) | ulam (n_uzl) | coef (n_a)
  std::vector<int> ints;    // uzint (n_uzl) | row_e (n_a) | row_zl (n_a) | order (n_a)

  //! Pointers into packed copies `d` (of dbl) and `i` (of ints), on the host or a device.
  Tables view(const double* d, const int* i) const {
    Tables t{n_r, n_a, n_ue, n_uzl, d, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};
    t.ue = d + 2 * n_r;
    t.uzeta = t.ue + n_ue;
    t.ulam = t.uzeta + n_uzl;
    t.coef = t.ulam + n_uzl;
    t.uzint = i;
    t.row_e = i + n_uzl;
    t.row_zl = t.row_e + n_a;
    t.order = t.row_zl + n_a;
    return t;
  }
  Tables view() const { return view(dbl.data(), ints.data()); }
};

//! Index of value v in list (appended when new).
inline int unique_index(std::vector<double>& list, double v) {
  const auto it = std::find(list.begin(), list.end(), v);
  if (it != list.end()) return static_cast<int>(it - list.begin());
  list.push_back(v);
  return static_cast<int>(list.size()) - 1;
}

//! Validates the rows (eta >= 0, Rs finite; zeta >= 1, lambda = +-1; rcut > 0; all finite) and groups the
//! angular rows by unique eta and unique (zeta, lambda). On invalid input only `error` is set.
inline HostTables build_tables(const double* radial, int64_t n_r, const double* angular, int64_t n_a, double rcut) {
  HostTables h;
  if (!(std::isfinite(rcut) && rcut > 0.0)) {
    h.error = "rcut must be finite and > 0, got " + std::to_string(rcut);
    return h;
  }
  if (n_r > (1 << 20) || n_a > (1 << 20)) {
    h.error = "at most 2**20 radial and angular rows are supported";
    return h;
  }
  for (int64_t q = 0; q < n_r; ++q) {
    const double eta = radial[2 * q], rs = radial[2 * q + 1];
    if (!(std::isfinite(eta) && eta >= 0.0 && std::isfinite(rs))) {
      h.error = "radial row " + std::to_string(q) + " needs a finite eta >= 0 and a finite Rs, got (" +
                std::to_string(eta) + ", " + std::to_string(rs) + ")";
      return h;
    }
  }
  std::vector<double> ue, zl_key;  // zl_key: zeta * lambda identifies (zeta, lambda) since zeta >= 1
  std::vector<int> row_e(n_a), row_zl(n_a);
  std::vector<double> coef(n_a);
  for (int64_t a = 0; a < n_a; ++a) {
    const double eta = angular[3 * a], zeta = angular[3 * a + 1], lam = angular[3 * a + 2];
    if (!(std::isfinite(eta) && eta >= 0.0 && std::isfinite(zeta) && zeta >= 1.0 && (lam == 1.0 || lam == -1.0))) {
      h.error = "angular row " + std::to_string(a) + " needs a finite eta >= 0, a finite zeta >= 1 and lambda = +1 " +
                "or -1, got (" + std::to_string(eta) + ", " + std::to_string(zeta) + ", " + std::to_string(lam) + ")";
      return h;
    }
    row_e[a] = unique_index(ue, eta);
    row_zl[a] = unique_index(zl_key, zeta * lam);
    coef[a] = std::exp2(1.0 - zeta);
  }
  h.n_r = static_cast<int>(n_r);
  h.n_a = static_cast<int>(n_a);
  h.n_ue = static_cast<int>(ue.size());
  h.n_uzl = static_cast<int>(zl_key.size());
  h.dbl.assign(radial, radial + 2 * n_r);
  h.dbl.insert(h.dbl.end(), ue.begin(), ue.end());
  for (double k : zl_key) h.dbl.push_back(std::fabs(k));
  for (double k : zl_key) h.dbl.push_back(k > 0.0 ? 1.0 : -1.0);
  h.dbl.insert(h.dbl.end(), coef.begin(), coef.end());
  for (double k : zl_key) {
    const double z = std::fabs(k);
    h.ints.push_back(z == std::floor(z) && z <= 1024.0 ? static_cast<int>(z) : 0);
  }
  h.ints.insert(h.ints.end(), row_e.begin(), row_e.end());
  h.ints.insert(h.ints.end(), row_zl.begin(), row_zl.end());
  std::vector<int> order(n_a);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return row_e[x] < row_e[y]; });
  h.ints.insert(h.ints.end(), order.begin(), order.end());
  return h;
}

}  // namespace acsf
}  // namespace pdfsolve
