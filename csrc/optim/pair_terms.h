// Per-pair maths of the reconstruction objectives, shared by their C++ form (csrc/optim/objectives.h) and their
// CUDA kernels (csrc/cuda/lbfgsb_kernels.cu): host and device code, no torch headers.
#pragma once

#include <cmath>

#include "common/host_device.h"

namespace pdfsolve {
namespace optim {

//! Adds s (a - b) to the gradient ga of point a and -s (a - b) to gb of point b (nullptr: b is fixed or not
//! accumulated here). (dx, dy, dz) = a - b.
PDFSOLVE_HD void add_pair_gradient(double s, double dx, double dy, double dz, double* ga, double* gb) {
  ga[0] += s * dx;
  ga[1] += s * dy;
  ga[2] += s * dz;
  if (gb) {
    gb[0] -= s * dx;
    gb[1] -= s * dy;
    gb[2] -= s * dz;
  }
}

//! c = 1 / (2 sigma^2) of the Gaussian affinity exp(-c d^2).
PDFSOLVE_HD double affinity_rate(double sigma) { return 1.0 / (2.0 * sigma * sigma); }

//! One term of a pair objective: its value and the scale s of its gradient s (a - b) with respect to point a
//! (-s (a - b) with respect to b).
struct PairTerm {
  double f, s;
};

//! The affinity fit's term (w - target)^2 of a pair at squared distance d2, w = exp(-c d2):
//! d/d a = 2 (w - target) w (-2 c) (a - b).
PDFSOLVE_HD PairTerm affinity_pair_term(double d2, double target, double c) {
  const double w = exp(-c * d2);
  const double r = w - target;
  return {r * r, -4.0 * c * r * w};
}

}  // namespace optim
}  // namespace pdfsolve
