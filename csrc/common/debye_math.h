// Shared inline maths of pdfsolve's Debye and histogram ops, usable from C++ and CUDA.
// No torch headers here: the CUDA kernels (csrc/cuda/*.cu) include this file and compile without torch.
//
// Definitions follow python/pdfsolve/ops/reference.py:
//   term_k(r) = w(r) exp(-A c(r) Q_k^2) sin(Q_k r),  w = 1/r,  A = (U_i + U_j)/2,  Q_k = q0 + k qstep,
//   c(r) = max(0, 1 - delta1/r - delta2/r^2 + (qbroad r)^2)  (Jeong width factor).
#pragma once

#include <cmath>
#include <cstdint>

#include "common/host_device.h"
#include "common/vec3.h"


namespace pdfsolve {


//! Jeong width factor c(r) and its derivative dc/dr; both zero where the factor is clamped at 0.
template <typename T>
PDFSOLVE_HD void jeong_factor(T r, T delta1, T delta2, T qbroad, T& c, T& dc) {
  const T ir = T(1) / r;
  const T qr = qbroad * r;
  const T cc = T(1) - delta1 * ir - delta2 * ir * ir + qr * qr;
  if (cc > T(0)) {
    c = cc;
    dc = delta1 * ir * ir + T(2) * delta2 * ir * ir * ir + T(2) * qbroad * qbroad * r;
  } else {
    c = T(0);
    dc = T(0);
  }
}

//! Index of the unordered species pair {s, t} in the flattened (S*S) axis: min*S + max.
PDFSOLVE_HD int species_pair_index(int64_t s, int64_t t, int n_species) {
  return s <= t ? static_cast<int>(s * n_species + t) : static_cast<int>(t * n_species + s);
}

//! Linear two-bin splatting: x = r / bin_width, lo = floor(x), frac = x - lo.
//! Returns false when the pair is dropped (x >= nbins - 1, as in the reference).
template <typename T>
PDFSOLVE_HD bool hist_splat(T r, T bin_width, int64_t nbins, int64_t& lo, T& frac) {
  const T x = r / bin_width;
  if (!(x < static_cast<T>(nbins - 1))) return false;
  const T f = floor(x);
  lo = static_cast<int64_t>(f);
  frac = x - f;
  return true;
}

//! Debye term of one pair at one Q, evaluated directly: w exp(-a Q^2) sin(Q r), a = A c(r).
template <typename T>
PDFSOLVE_HD T debye_term(T q, T r, T w, T a) {
  return w * exp(-a * q * q) * sin(q * r);
}

//! Per-pair sums of the backward pass, given
//!   t0 = sum_k G_k w e_k sin(Q_k r),  t1 = sum_k G_k Q_k w e_k cos(Q_k r),  t2 = sum_k G_k Q_k^2 w e_k sin(Q_k r)
//! (e_k = exp(-A c Q_k^2)): dE/dr = -w t0 + t1 - A c'(r) t2 and dE/dU_i = dE/dU_j = -c t2 / 2.
template <typename T>
PDFSOLVE_HD void debye_pair_grad(T w, T A, T c, T dc, T t0, T t1, T t2, T& dEdr, T& dEdu) {
  dEdr = -w * t0 + t1 - A * dc * t2;
  dEdu = T(-0.5) * c * t2;
}

}  // namespace pdfsolve
