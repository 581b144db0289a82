// The window of grid bins a Gaussian-spread pair touches, shared by the gridding ops (C++ and CUDA, no torch).
#pragma once

#include <cmath>
#include <cstdint>

#include "common/host_device.h"

namespace pdfsolve {

//! Window [lo, hi] of bins m in [0, nbins) with |m h - r| <= half, decided with the reference's arithmetic
//! (x = m*h - r, |x| <= truncate*s). Returns false when it is empty (or r, half are not finite).
template <typename T>
PDFSOLVE_HD bool pair_window(T r, T half, T h, T inv_h, int64_t nbins, int64_t& lo, int64_t& hi) {
  using std::ceil;
  using std::fabs;
  using std::floor;
  T lo_f = ceil((r - half) * inv_h);
  T hi_f = floor((r + half) * inv_h);
  if (lo_f < T(0)) lo_f = T(0);
  if (hi_f > T(nbins - 1)) hi_f = T(nbins - 1);
  if (!(lo_f <= hi_f)) return false;  // also false for NaN
  lo = static_cast<int64_t>(lo_f);
  hi = static_cast<int64_t>(hi_f);
  // The product above may be off by one bin at the edges: settle them on the exact test.
  while (lo > 0 && fabs(T(lo - 1) * h - r) <= half) --lo;
  while (lo <= hi && !(fabs(T(lo) * h - r) <= half)) ++lo;
  while (hi < nbins - 1 && fabs(T(hi + 1) * h - r) <= half) ++hi;
  while (hi >= lo && !(fabs(T(hi) * h - r) <= half)) --hi;
  return lo <= hi;
}

}  // namespace pdfsolve
