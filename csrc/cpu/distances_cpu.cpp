// CPU kernels of pair_distances, point_distances and their backward (schemas in csrc/ops.cpp, definitions in
// python/pdfsolve/ops/reference_geometry.py). Differences are taken in double, never through |x|^2 + |y|^2 - 2 x.y.
// Every op runs in gather form, parallel over rows (cluster, atom): a row owns its output and its gradient.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "common/geometry_math.h"
#include "common/op_checks.h"
#include "cpu/pair_loop.h"

namespace pdfsolve {
namespace cpu {
namespace {

template <typename T>
void store_xyz(T* out, double x, double y, double z) {
  out[0] = static_cast<T>(x);
  out[1] = static_cast<T>(y);
  out[2] = static_cast<T>(z);
}

template <typename T>
void pair_distances_impl(const T* pos, const bool* mask, T* out, int64_t B, int64_t N) {
  parallel_rows(B, N, N, [&](int64_t b, int64_t i) {
    const T* P = pos + b * N * 3;
    const bool* M = mask + b * N;
    T* O = out + (b * N + i) * N;
    for (int64_t j = 0; j < N; ++j) {
      double dx, dy, dz;
      const bool valid = M[i] && M[j] && j != i;
      O[j] = valid ? static_cast<T>(geometry::safe_distance(pair_diff<double>(P + 3 * i, P + 3 * j, dx, dy, dz))) : T(0);
    }
  });
}

// grad_x_i = sum_j (g_ij + g_ji) (x_i - x_j) / d_ij.
template <typename T>
void pair_distances_backward_impl(const T* grad, const T* pos, const bool* mask, T* gpos, int64_t B, int64_t N) {
  parallel_rows(B, N, N, [&](int64_t b, int64_t i) {
    const T* P = pos + b * N * 3;
    const bool* M = mask + b * N;
    const T* G = grad + b * N * N;
    double gx = 0, gy = 0, gz = 0;
    if (M[i]) {
      for (int64_t j = 0; j < N; ++j) {
        if (!M[j] || j == i) continue;
        double dx, dy, dz;
        const double d2 = pair_diff<double>(P + 3 * i, P + 3 * j, dx, dy, dz);
        const double g = static_cast<double>(G[i * N + j]) + static_cast<double>(G[j * N + i]);
        const double s = geometry::distance_grad_scale(g, d2);
        gx += s * dx;
        gy += s * dy;
        gz += s * dz;
      }
    }
    store_xyz(gpos + (b * N + i) * 3, gx, gy, gz);
  });
}

template <typename T>
void point_distances_impl(const T* pos, const bool* mask, const T* points, T* out, int64_t B, int64_t N,
                          int64_t Pn) {
  parallel_rows(B, N, Pn, [&](int64_t b, int64_t i) {
    const T* xi = pos + (b * N + i) * 3;
    T* O = out + (b * N + i) * Pn;
    const bool real = mask[b * N + i];
    for (int64_t p = 0; p < Pn; ++p) {
      double dx, dy, dz;
      O[p] = real ? static_cast<T>(geometry::safe_distance(pair_diff<double>(xi, points + 3 * p, dx, dy, dz))) : T(0);
    }
  });
}

// grad_x_i = sum_p g_ip (x_i - s_p) / d_ip.
template <typename T>
void point_distances_backward_impl(const T* grad, const T* pos, const bool* mask, const T* points, T* gpos,
                                   int64_t B, int64_t N, int64_t Pn) {
  parallel_rows(B, N, Pn, [&](int64_t b, int64_t i) {
    const T* xi = pos + (b * N + i) * 3;
    const T* G = grad + (b * N + i) * Pn;
    double gx = 0, gy = 0, gz = 0;
    if (mask[b * N + i]) {
      for (int64_t p = 0; p < Pn; ++p) {
        double dx, dy, dz;
        const double d2 = pair_diff<double>(xi, points + 3 * p, dx, dy, dz);
        const double s = geometry::distance_grad_scale(static_cast<double>(G[p]), d2);
        gx += s * dx;
        gy += s * dy;
        gz += s * dz;
      }
    }
    store_xyz(gpos + (b * N + i) * 3, gx, gy, gz);
  });
}

at::Tensor pair_distances_cpu(const at::Tensor& pos_, const at::Tensor& mask_) {
  check_masked_atoms("pdfsolve::pair_distances", pos_, mask_);
  auto pos = pos_.contiguous();
  auto mask = mask_.contiguous();
  const int64_t B = pos.size(0), N = pos.size(1);
  auto out = at::empty({B, N, N}, pos.options());
  AT_DISPATCH_FLOATING_TYPES(pos.scalar_type(), "pair_distances_cpu", [&] {
    pair_distances_impl(pos.data_ptr<scalar_t>(), mask.data_ptr<bool>(), out.data_ptr<scalar_t>(), B, N);
  });
  return out;
}

at::Tensor pair_distances_backward_cpu(const at::Tensor& grad_, const at::Tensor& pos_, const at::Tensor& mask_) {
  const char* op = "pdfsolve::pair_distances_backward";
  check_masked_atoms(op, pos_, mask_);
  check_like_pos(op, "grad", grad_, pos_, {pos_.size(0), pos_.size(1), pos_.size(1)});
  auto grad = grad_.contiguous();
  auto pos = pos_.contiguous();
  auto mask = mask_.contiguous();
  auto gpos = at::empty(pos.sizes(), pos.options());
  AT_DISPATCH_FLOATING_TYPES(pos.scalar_type(), "pair_distances_backward_cpu", [&] {
    pair_distances_backward_impl(grad.data_ptr<scalar_t>(), pos.data_ptr<scalar_t>(), mask.data_ptr<bool>(),
                                 gpos.data_ptr<scalar_t>(), pos.size(0), pos.size(1));
  });
  return gpos;
}

at::Tensor point_distances_cpu(const at::Tensor& pos_, const at::Tensor& mask_, const at::Tensor& points_) {
  const char* op = "pdfsolve::point_distances";
  check_masked_atoms(op, pos_, mask_);
  check_points(op, points_, pos_);
  auto pos = pos_.contiguous();
  auto mask = mask_.contiguous();
  auto points = points_.contiguous();
  const int64_t B = pos.size(0), N = pos.size(1), Pn = points.size(0);
  auto out = at::empty({B, N, Pn}, pos.options());
  AT_DISPATCH_FLOATING_TYPES(pos.scalar_type(), "point_distances_cpu", [&] {
    point_distances_impl(pos.data_ptr<scalar_t>(), mask.data_ptr<bool>(), points.data_ptr<scalar_t>(),
                         out.data_ptr<scalar_t>(), B, N, Pn);
  });
  return out;
}

at::Tensor point_distances_backward_cpu(const at::Tensor& grad_, const at::Tensor& pos_, const at::Tensor& mask_,
                                        const at::Tensor& points_) {
  const char* op = "pdfsolve::point_distances_backward";
  check_masked_atoms(op, pos_, mask_);
  check_points(op, points_, pos_);
  check_like_pos(op, "grad", grad_, pos_, {pos_.size(0), pos_.size(1), points_.size(0)});
  auto grad = grad_.contiguous();
  auto pos = pos_.contiguous();
  auto mask = mask_.contiguous();
  auto points = points_.contiguous();
  auto gpos = at::empty(pos.sizes(), pos.options());
  AT_DISPATCH_FLOATING_TYPES(pos.scalar_type(), "point_distances_backward_cpu", [&] {
    point_distances_backward_impl(grad.data_ptr<scalar_t>(), pos.data_ptr<scalar_t>(), mask.data_ptr<bool>(),
                                  points.data_ptr<scalar_t>(), gpos.data_ptr<scalar_t>(), pos.size(0), pos.size(1),
                                  points.size(0));
  });
  return gpos;
}

}  // namespace
}  // namespace cpu
}  // namespace pdfsolve

TORCH_LIBRARY_IMPL(pdfsolve, CPU, m) {
  m.impl("pair_distances", &pdfsolve::cpu::pair_distances_cpu);
  m.impl("pair_distances_backward", &pdfsolve::cpu::pair_distances_backward_cpu);
  m.impl("point_distances", &pdfsolve::cpu::point_distances_cpu);
  m.impl("point_distances_backward", &pdfsolve::cpu::point_distances_backward_cpu);
}
