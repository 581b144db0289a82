// CPU kernels of graph_laplacian and graph_laplacian_backward (schemas in csrc/ops.cpp, definition in
// python/pdfsolve/ops/reference_geometry.py::graph_laplacian). Computed in double in gather form: passes over rows
// (cluster, atom), each row owning its outputs, so there are no atomics; the normalised form first needs the
// degrees (and, in the backward, the degree gradients) of all rows.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include <vector>

#include "common/geometry_math.h"
#include "common/op_checks.h"
#include "cpu/pair_loop.h"

namespace pdfsolve {
namespace cpu {
namespace {

using namespace geometry;

// One padded batch: positions (B, N, 3), mask (B, N), per-cluster sigma.
template <typename T>
struct Batch {
  const T* pos;
  const bool* mask;
  std::vector<double> sigma, inv2s2;  // per cluster: sigma (Angstrom) and 1 / (2 sigma^2)
  int64_t B, N;

  Batch(const at::Tensor& p, const at::Tensor& m, const at::Tensor& sigma_)
      : pos(p.data_ptr<T>()), mask(m.data_ptr<bool>()), B(p.size(0)), N(p.size(1)) {
    auto s = sigma_.to(at::kDouble).contiguous();
    sigma.assign(s.data_ptr<double>(), s.data_ptr<double>() + B);
    inv2s2.resize(B);
    for (int64_t b = 0; b < B; ++b) inv2s2[b] = 0.5 / (sigma[b] * sigma[b]);
  }
  bool real(int64_t b, int64_t i) const { return mask[b * N + i]; }

  // Calls f(j, W_ij, d_ij^2, dx, dy, dz) (difference x_i - x_j) for every real j != i of cluster b.
  template <typename F>
  void for_neighbours(int64_t b, int64_t i, F&& f) const {
    const T* P = pos + b * N * 3;
    const bool* M = mask + b * N;
    for (int64_t j = 0; j < N; ++j) {
      if (!M[j] || j == i) continue;
      double dx, dy, dz;
      const double d2 = pair_diff<double>(P + 3 * i, P + 3 * j, dx, dy, dz);
      f(j, std::exp(-d2 * inv2s2[b]), d2, dx, dy, dz);
    }
  }

  // dinv[b*N + i] = D_i^-1/2 (0 for isolated atoms and padding).
  std::vector<double> inv_sqrt_degrees() const {
    std::vector<double> dinv(B * N, 0.0);
    parallel_rows(B, N, N, [&](int64_t b, int64_t i) {
      if (!real(b, i)) return;
      double deg = 0;
      for_neighbours(b, i, [&](int64_t, double w, double, double, double, double) { deg += w; });
      dinv[b * N + i] = inv_sqrt_degree(deg);
    });
    return dinv;
  }
};

template <typename T>
void laplacian_forward_impl(const Batch<T>& X, int form, T* out) {
  const int64_t N = X.N;
  const std::vector<double> dinv = form == kNormalized ? X.inv_sqrt_degrees() : std::vector<double>();
  parallel_rows(X.B, N, N, [&](int64_t b, int64_t i) {
    T* O = out + (b * N + i) * N;
    std::fill(O, O + N, T(0));
    if (!X.real(b, i)) return;
    const double* di = form == kNormalized ? dinv.data() + b * N : nullptr;
    double deg = 0;
    X.for_neighbours(b, i, [&](int64_t j, double w, double, double, double, double) {
      deg += w;
      O[j] = static_cast<T>(form == kAffinity ? w : form == kLaplacian ? -w : -w * di[i] * di[j]);
    });
    O[i] = static_cast<T>(form == kAffinity ? 1.0 : form == kLaplacian ? deg : (deg > 0 ? 1.0 : 0.0));
  });
}

template <typename T>
void laplacian_backward_impl(const Batch<T>& X, int form, const T* grad, T* gpos, double* gsigma_rows) {
  const int64_t N = X.N;
  std::vector<double> dinv, gdeg;
  if (form == kNormalized) {
    dinv = X.inv_sqrt_degrees();
    // gdeg_i = dLoss/dD_i = 1/2 dinv_i^3 sum_k (g_ik + g_ki) W_ik dinv_k.
    gdeg.assign(X.B * N, 0.0);
    parallel_rows(X.B, N, N, [&](int64_t b, int64_t i) {
      if (!X.real(b, i)) return;
      const T* G = grad + b * N * N;
      const double* di = dinv.data() + b * N;
      double s = 0;
      X.for_neighbours(b, i, [&](int64_t k, double w, double, double, double, double) {
        s += (static_cast<double>(G[i * N + k]) + static_cast<double>(G[k * N + i])) * w * di[k];
      });
      gdeg[b * N + i] = 0.5 * di[i] * di[i] * di[i] * s;
    });
  }
  parallel_rows(X.B, N, N, [&](int64_t b, int64_t i) {
    const T* G = grad + b * N * N;
    const double* di = form == kNormalized ? dinv.data() + b * N : nullptr;
    const double* gd = form == kNormalized ? gdeg.data() + b * N : nullptr;
    double gx = 0, gy = 0, gz = 0, gs = 0;
    if (X.real(b, i)) {
      const double gii = static_cast<double>(G[i * N + i]);
      X.for_neighbours(b, i, [&](int64_t j, double w, double d2, double dx, double dy, double dz) {
        const double gij = static_cast<double>(G[i * N + j]), gji = static_cast<double>(G[j * N + i]);
        const double gjj = static_cast<double>(G[j * N + j]);
        const double a = di ? di[i] : 0.0, c = di ? di[j] : 0.0;
        const double gw = affinity_entry_grad(form, gij, gii, a, c, gd ? gd[i] : 0.0) +
                          affinity_entry_grad(form, gji, gjj, c, a, gd ? gd[j] : 0.0);
        const double t = gw * w;  // dW_ij/dx_i = -W_ij (x_i - x_j) / sigma^2, dW_ij/dsigma = W_ij d^2 / sigma^3
        gx -= t * dx;
        gy -= t * dy;
        gz -= t * dz;
        gs += t * d2;
      });
    }
    const double inv_s2 = 2.0 * X.inv2s2[b];
    T* out = gpos + (b * N + i) * 3;
    out[0] = static_cast<T>(gx * inv_s2);
    out[1] = static_cast<T>(gy * inv_s2);
    out[2] = static_cast<T>(gz * inv_s2);
    const double s = X.sigma[b];
    gsigma_rows[b * N + i] = 0.5 * gs / (s * s * s);  // each pair is seen from both rows
  });
}

void check_inputs(const char* op, const at::Tensor& pos, const at::Tensor& mask, const at::Tensor& sigma,
                  int64_t form) {
  check_masked_atoms(op, pos, mask);
  check_sigma(op, sigma, pos);
  check_laplacian_form(op, form);
}

at::Tensor graph_laplacian_cpu(const at::Tensor& pos_, const at::Tensor& mask_, const at::Tensor& sigma,
                               int64_t form) {
  check_inputs("pdfsolve::graph_laplacian", pos_, mask_, sigma, form);
  auto pos = pos_.contiguous();
  auto mask = mask_.contiguous();
  auto out = at::empty({pos.size(0), pos.size(1), pos.size(1)}, pos.options());
  AT_DISPATCH_FLOATING_TYPES(pos.scalar_type(), "graph_laplacian_cpu", [&] {
    laplacian_forward_impl(Batch<scalar_t>(pos, mask, sigma), static_cast<int>(form), out.data_ptr<scalar_t>());
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> graph_laplacian_backward_cpu(const at::Tensor& grad_, const at::Tensor& pos_,
                                                                const at::Tensor& mask_, const at::Tensor& sigma,
                                                                int64_t form) {
  const char* op = "pdfsolve::graph_laplacian_backward";
  check_inputs(op, pos_, mask_, sigma, form);
  check_like_pos(op, "grad", grad_, pos_, {pos_.size(0), pos_.size(1), pos_.size(1)});
  auto grad = grad_.contiguous();
  auto pos = pos_.contiguous();
  auto mask = mask_.contiguous();
  auto gpos = at::empty(pos.sizes(), pos.options());
  auto gsigma_rows = at::empty({pos.size(0), pos.size(1)}, pos.options().dtype(at::kDouble));
  AT_DISPATCH_FLOATING_TYPES(pos.scalar_type(), "graph_laplacian_backward_cpu", [&] {
    laplacian_backward_impl(Batch<scalar_t>(pos, mask, sigma), static_cast<int>(form), grad.data_ptr<scalar_t>(),
                            gpos.data_ptr<scalar_t>(), gsigma_rows.data_ptr<double>());
  });
  return {gpos, gsigma_rows.sum(1).to(pos.scalar_type())};
}

}  // namespace
}  // namespace cpu
}  // namespace pdfsolve

TORCH_LIBRARY_IMPL(pdfsolve, CPU, m) {
  m.impl("graph_laplacian", &pdfsolve::cpu::graph_laplacian_cpu);
  m.impl("graph_laplacian_backward", &pdfsolve::cpu::graph_laplacian_backward_cpu);
}
