// Shared inline maths of the distance and graph-Laplacian ops, usable from C++ and CUDA (no torch headers).
// Definitions follow python/pdfsolve/ops/reference_geometry.py.
#pragma once

#include <cmath>

#include "common/host_device.h"
#include "common/vec3.h"

namespace pdfsolve {
namespace geometry {

//! The three outputs of graph_laplacian: Gaussian affinity W (W_ii = 1), L = D - W, I - D^-1/2 W D^-1/2.
enum LaplacianForm : int { kAffinity = 0, kLaplacian = 1, kNormalized = 2 };

//! Distance from its square; points at or below the coincidence tolerance are at distance 0.
template <typename T>
PDFSOLVE_HD T safe_distance(T d2) {
  return d2 > static_cast<T>(kCoincidentTol2) ? sqrt(d2) : T(0);
}

//! d(distance)/d(a - b) is (a - b) / d: the factor g / d for an upstream gradient g, zero for coincident points.
template <typename T>
PDFSOLVE_HD T distance_grad_scale(T g, T d2) {
  return d2 > static_cast<T>(kCoincidentTol2) ? g / sqrt(d2) : T(0);
}

//! 1 / sqrt(D) for a degree D, 0 for an isolated atom (D = 0).
template <typename T>
PDFSOLVE_HD T inv_sqrt_degree(T degree) {
  return degree > T(0) ? T(1) / sqrt(degree) : T(0);
}

//! Gradient of the loss with respect to one off-diagonal affinity entry W_ij (i != j), taken as independent of
//! W_ji: g_ij and g_ii are upstream gradients of the op's output; for the normalised form dinv = D^-1/2 and gdeg_i
//! the gradient with respect to the degree D_i (see normalized_degree_grad).
template <typename T>
PDFSOLVE_HD T affinity_entry_grad(int form, T g_ij, T g_ii, T dinv_i, T dinv_j, T gdeg_i) {
  if (form == kAffinity) return g_ij;
  if (form == kLaplacian) return g_ii - g_ij;  // L_ij = -W_ij, L_ii = sum_k W_ik
  return gdeg_i - g_ij * dinv_i * dinv_j;      // N_ij = -W_ij dinv_i dinv_j, D_i = sum_k W_ik
}

}  // namespace geometry
}  // namespace pdfsolve
