// Objectives of the reconstruction solvers, evaluated in C++ so that a whole L-BFGS-B run needs no Python
// (csrc/cpu/reconstruct_cpu.cpp); the per-pair maths is shared with the CUDA kernels (csrc/optim/pair_terms.h).
// No torch headers. Variables are the xyz of N atoms, flattened (3N).
#pragma once

#include <cmath>
#include <cstdint>

#include "common/host_device.h"
#include "common/vec3.h"
#include "optim/pair_terms.h"

namespace pdfsolve {
namespace optim {

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
    const double c = affinity_rate(sigma);
    double f = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (!mask[i]) continue;
      const double* xi = x + 3 * i;
      double* gi = g + 3 * i;
      for (int64_t j = i + 1; j < n; ++j) {
        if (!mask[j]) continue;
        double dx, dy, dz;
        const PairTerm t = affinity_pair_term(pair_diff<double>(xi, x + 3 * j, dx, dy, dz), target[i * n + j], c);
        f += t.f;
        add_pair_gradient(t.s, dx, dy, dz, gi, g + 3 * j);
      }
    }
    return f;
  }
};

}  // namespace optim
}  // namespace pdfsolve
