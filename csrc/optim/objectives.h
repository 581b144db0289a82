// Objectives of the reconstruction solvers, evaluated in C++ so that a whole L-BFGS-B run needs no Python
// (csrc/cpu/reconstruct_cpu.cpp). No torch headers. Variables are the xyz of N atoms, flattened (3N).
#pragma once

#include <cmath>
#include <cstdint>

#include "common/host_device.h"
#include "common/vec3.h"

namespace pdfsolve {
namespace optim {

//! Adds s (a - b) to the gradient ga of point a and -s (a - b) to gb of point b (nullptr: b is fixed).
inline void add_pair_gradient(double s, double dx, double dy, double dz, double* ga, double* gb) {
  ga[0] += s * dx;
  ga[1] += s * dy;
  ga[2] += s * dz;
  if (gb) {
    gb[0] -= s * dx;
    gb[1] -= s * dy;
    gb[2] -= s * dz;
  }
}

//! Trilateration: f(x) = sum_{i<j} (|x_i - x_j| - D_ij)^2 + sum_{i,p} (|x_i - s_p| - E_ip)^2 over real atoms i, j
//! (mask) and fixed points s_p, for target distances D (N, N) and E (N, P). Coincident points add their squared
//! target and no gradient.
struct TrilaterationObjective {
  const double* target_pair;  // (N, N)
  const double* target_sat;   // (N, P)
  const double* sat;          // (P, 3)
  const bool* mask;           // (N,)
  int64_t n, p;

  double operator()(const double* x, double* g) const {
    for (int64_t k = 0; k < 3 * n; ++k) g[k] = 0;
    double f = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (!mask[i]) continue;
      const double* xi = x + 3 * i;
      double* gi = g + 3 * i;
      for (int64_t j = i + 1; j < n; ++j) {
        if (!mask[j]) continue;
        double dx, dy, dz;
        const double d2 = pair_diff<double>(xi, x + 3 * j, dx, dy, dz);
        add_term(d2, target_pair[i * n + j], dx, dy, dz, f, gi, g + 3 * j);
      }
      for (int64_t q = 0; q < p; ++q) {
        double dx, dy, dz;
        const double d2 = pair_diff<double>(xi, sat + 3 * q, dx, dy, dz);
        add_term(d2, target_sat[i * p + q], dx, dy, dz, f, gi, nullptr);
      }
    }
    return f;
  }

 private:
  //! (d - target)^2 with d = |a - b|, and its gradient 2 (d - target) (a - b) / d added to ga (and -that to gb).
  static void add_term(double d2, double target, double dx, double dy, double dz, double& f, double* ga,
                       double* gb) {
    const double d = d2 > kCoincidentTol2 ? std::sqrt(d2) : 0.0;
    const double r = d - target;
    f += r * r;
    if (d == 0) return;
    add_pair_gradient(2.0 * r / d, dx, dy, dz, ga, gb);
  }
};

//! Affinity fit (Laplacian route): f(x) = sum_{i<j} (exp(-|x_i - x_j|^2 / (2 sigma^2)) - W_ij)^2 over real atoms
//! i, j (mask), for a target affinity W (N, N) and sigma in the units of x.
struct AffinityObjective {
  const double* target;  // (N, N), only i < j is read
  const bool* mask;      // (N,)
  int64_t n;
  double sigma;

  double operator()(const double* x, double* g) const {
    for (int64_t k = 0; k < 3 * n; ++k) g[k] = 0;
    const double c = 1.0 / (2.0 * sigma * sigma);
    double f = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (!mask[i]) continue;
      const double* xi = x + 3 * i;
      double* gi = g + 3 * i;
      for (int64_t j = i + 1; j < n; ++j) {
        if (!mask[j]) continue;
        double dx, dy, dz;
        const double w = std::exp(-c * pair_diff<double>(xi, x + 3 * j, dx, dy, dz));
        const double r = w - target[i * n + j];
        f += r * r;
        add_pair_gradient(-4.0 * c * r * w, dx, dy, dz, gi, g + 3 * j);  // d(r^2)/dx_i = 2 r w (-2 c) (x_i - x_j)
      }
    }
    return f;
  }
};

}  // namespace optim
}  // namespace pdfsolve
