// Scalar helpers for code compiled both as C++ and as CUDA device code, where std::min, std::max, std::swap and
// std::isfinite are not available (no torch).
#pragma once

#include <cmath>

#include "common/host_device.h"

namespace pdfsolve {

//! Machine epsilon of double (std::numeric_limits<double>::epsilon()).
constexpr double kDoubleEps = 2.220446049250313080847e-16;
//! Largest finite double.
constexpr double kDoubleMax = 1.7976931348623157e308;

//! std::max(a, b): a unless a < b.
PDFSOLVE_HD double hd_max(double a, double b) { return a < b ? b : a; }
//! std::min(a, b): a unless b < a.
PDFSOLVE_HD double hd_min(double a, double b) { return b < a ? b : a; }
//! Neither NaN nor +-inf.
PDFSOLVE_HD bool hd_isfinite(double v) { return fabs(v) <= kDoubleMax; }

template <typename T>
PDFSOLVE_HD void hd_swap(T& a, T& b) {
  T t = a;
  a = b;
  b = t;
}

}  // namespace pdfsolve
