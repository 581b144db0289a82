// Objective of fingerprint inversion (Fung et al. 2022, StructRepGen: coordinates from a pooled ACSF vector),
// evaluated in C++ so that a whole L-BFGS-B run needs no Python (csrc/cpu/fingerprint_cpu.cpp). No torch headers.
//
// Variables: the xyz of N atom slots, flattened (3N), in Angstrom. With G_f(i; x) the F symmetry functions of atom
// i and pool_p one of max / min / mean over the real atoms (species >= 0), the pooled vector is
// v[p F + f] = pool_p G_f(i; x) for the P = n_pool F entries, and
//   f(x) = sum_e w_e (v_e - t_e)^2 + mu sum_{i<j real} max(0, d_min - r_ij)^2
// for target t and weights w (P each). The gradient goes through the pooling (max / min: the first atom attaining
// the extremum carries the whole entry; mean: every real atom 1 / count) into one ACSF backward per evaluation.
// A cluster without real atoms pools to zeros, as pdfsolve.geometry.pooled_acsf.
//
// The "bounds" form adds, for max (min) entries, w_e max(0, G_f(i) - t_e)^2 (max(0, t_e - G_f(i))^2) for every other
// real atom i: every atom is held below the target maximum (above the minimum), not only the one that attains it.
// It has the same zeros, but near a solution of a symmetric cluster, where many atoms tie for an extremum, the
// plain form is a max of smooth functions whose kinks stall L-BFGS-B about 1e-3 Angstrom short; the bounds form
// is smooth there (python/pdfsolve/reconstruct/fingerprint.py polishes with it).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "common/vec3.h"

namespace pdfsolve {
namespace optim {

//! Pooling codes of the op argument `pooling` (python/pdfsolve/reconstruct/fingerprint.py maps the names).
enum Pooling : int64_t { kPoolMax = 0, kPoolMin = 1, kPoolMean = 2 };

//! Features: a per-cluster ACSF evaluator with n_features(), forward(x, species, out (N, F)) and
//! backward(grad (N, F), x, species, gpos (N, 3)) (cpu::AcsfCluster). One objective per thread.
template <typename Features>
class FingerprintObjective {
 public:
  FingerprintObjective(Features& features, int64_t n_atoms, const int64_t* species, const int64_t* pooling,
                       int64_t n_pool, const double* target, const double* weight, double min_distance,
                       double penalty, bool bounds)
      : feat_(features), n_(n_atoms), nf_(features.n_features()), species_(species), pooling_(pooling),
        n_pool_(n_pool), target_(target), weight_(weight), dmin_(min_distance), mu_(penalty), bounds_(bounds),
        g_(n_atoms * nf_), up_(n_atoms * nf_) {}

  //! f at x (3N values) and its gradient into g (3N values).
  double operator()(const double* x, double* g) const {
    feat_.forward(x, species_, g_.data());
    std::fill(up_.begin(), up_.end(), 0.0);
    int64_t count = 0;
    for (int64_t i = 0; i < n_; ++i) count += species_[i] >= 0;
    double f = 0.0;
    for (int64_t p = 0; p < n_pool_; ++p) {
      for (int64_t k = 0; k < nf_; ++k) {
        const int64_t e = p * nf_ + k;
        int64_t arg = -1;
        const double v = pooled(pooling_[p], k, count, arg);
        const double r = v - target_[e];
        f += weight_[e] * r * r;
        const double dv = 2.0 * weight_[e] * r;  // df / dv_e
        if (count == 0 || dv == 0.0) continue;
        if (pooling_[p] == kPoolMean) {
          for (int64_t i = 0; i < n_; ++i)
            if (species_[i] >= 0) up_[i * nf_ + k] += dv / count;
          continue;
        }
        up_[arg * nf_ + k] += dv;
        if (bounds_) f += add_bounds(pooling_[p] == kPoolMax ? 1.0 : -1.0, k, arg, target_[e], weight_[e]);
      }
    }
    feat_.backward(up_.data(), x, species_, g);
    return f + add_penalty(x, g);
  }

 private:
  //! Entry k of pooling `mode` over the real atoms of g_ (0 without any); arg: the extremal atom of max / min.
  double pooled(int64_t mode, int64_t k, int64_t count, int64_t& arg) const {
    if (count == 0) return 0.0;
    double acc = mode == kPoolMax ? -INFINITY : (mode == kPoolMin ? INFINITY : 0.0);
    for (int64_t i = 0; i < n_; ++i) {
      if (species_[i] < 0) continue;
      const double v = g_[i * nf_ + k];
      if (mode == kPoolMean) {
        acc += v;
      } else if (mode == kPoolMax ? v > acc : v < acc) {
        acc = v;
        arg = i;
      }
    }
    return mode == kPoolMean ? acc / count : acc;
  }

  //! Bounds terms of entry (feature k, target t, weight w) for the atoms other than arg: w max(0, sign (G - t))^2
  //! (sign +1 for a maximum, -1 for a minimum), gradient into up_.
  double add_bounds(double sign, int64_t k, int64_t arg, double t, double w) const {
    double f = 0.0;
    for (int64_t i = 0; i < n_; ++i) {
      if (species_[i] < 0 || i == arg) continue;
      const double d = sign * (g_[i * nf_ + k] - t);
      if (d <= 0.0) continue;
      f += w * d * d;
      up_[i * nf_ + k] += 2.0 * w * d * sign;
    }
    return f;
  }

  //! mu sum_{i<j} max(0, d_min - r_ij)^2 over real atoms, its gradient added to g (coincident atoms: no gradient).
  double add_penalty(const double* x, double* g) const {
    if (mu_ == 0.0 || dmin_ <= 0.0) return 0.0;
    double f = 0.0;
    for (int64_t i = 0; i < n_; ++i) {
      if (species_[i] < 0) continue;
      for (int64_t j = i + 1; j < n_; ++j) {
        if (species_[j] < 0) continue;
        double dx, dy, dz;
        const double d2 = pair_diff<double>(x + 3 * i, x + 3 * j, dx, dy, dz);
        if (d2 >= dmin_ * dmin_) continue;
        const double d = std::sqrt(d2), h = dmin_ - d;
        f += mu_ * h * h;
        if (!(d2 > kCoincidentTol2)) continue;
        const double s = -2.0 * mu_ * h / d;  // d/d(x_i) of mu h^2 is s (x_i - x_j)
        g[3 * i] += s * dx;
        g[3 * i + 1] += s * dy;
        g[3 * i + 2] += s * dz;
        g[3 * j] -= s * dx;
        g[3 * j + 1] -= s * dy;
        g[3 * j + 2] -= s * dz;
      }
    }
    return f;
  }

  Features& feat_;
  int64_t n_, nf_;
  const int64_t* species_;
  const int64_t* pooling_;
  int64_t n_pool_;
  const double* target_;
  const double* weight_;
  double dmin_, mu_;
  bool bounds_;
  mutable std::vector<double> g_, up_;  // (N, F) features and upstream gradient of the current point
};

}  // namespace optim
}  // namespace pdfsolve
