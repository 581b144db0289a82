// Difference vectors of xyz triples, shared by every kernel header (C++ and CUDA, no torch).
#pragma once

#include "common/host_device.h"

namespace pdfsolve {

//! Difference vector a - b of two xyz triples, computed in T (never through |a|^2 + |b|^2 - 2 a.b), and its
//! squared length.
template <typename T, typename P, typename Q = P>
PDFSOLVE_HD T pair_diff(const P* a, const Q* b, T& dx, T& dy, T& dz) {
  dx = static_cast<T>(a[0]) - static_cast<T>(b[0]);
  dy = static_cast<T>(a[1]) - static_cast<T>(b[1]);
  dz = static_cast<T>(a[2]) - static_cast<T>(b[2]);
  return dx * dx + dy * dy + dz * dz;
}

}  // namespace pdfsolve
