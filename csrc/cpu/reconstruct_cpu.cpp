// CPU kernels of the reconstruction solvers (schemas in csrc/ops.cpp): each problem of the batch runs a whole
// L-BFGS-B minimisation (csrc/optim/lbfgsb.h) with its objective in C++ (csrc/optim/objectives.h), one problem per
// task of at::parallel_for: no Python and no synchronisation inside the loop. Padding atoms are fixed variables.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "common/op_checks.h"
#include "cpu/solver_options.h"
#include "optim/lbfgsb.h"
#include "optim/objectives.h"

namespace pdfsolve {
namespace cpu {
namespace {

//! Bounds of the 3N variables of one cluster: free for real atoms, fixed at x0 for padding.
void atom_bounds(const double* x0, const bool* mask, int64_t n, std::vector<double>& lo, std::vector<double>& hi) {
  const double inf = std::numeric_limits<double>::infinity();
  lo.resize(3 * n);
  hi.resize(3 * n);
  for (int64_t k = 0; k < 3 * n; ++k) {
    lo[k] = mask[k / 3] ? -inf : x0[k];
    hi[k] = mask[k / 3] ? inf : x0[k];
  }
}

using SolverResult = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

//! Runs one L-BFGS-B minimisation per cluster of x0 (B, N, 3) (padding atoms fixed) with the objective
//! make_objective(b) (a callable f(x, g) over the 3N variables of cluster b); returns (x, f, iterations, status).
template <typename MakeObjective>
SolverResult solve_each(const at::Tensor& x0_, const at::Tensor& mask, const optim::Options& opt,
                        const MakeObjective& make_objective) {
  const int64_t B = x0_.size(0), N = x0_.size(1);
  auto x0 = x0_.to(at::kDouble).contiguous();
  auto x = at::empty_like(x0);
  auto f = at::empty({B}, x0.options());
  auto nit = at::empty({B}, x0.options().dtype(at::kLong));
  auto status = at::empty({B}, x0.options().dtype(at::kLong));
  const double* X0 = x0.data_ptr<double>();
  const bool* M = mask.data_ptr<bool>();
  double *X = x.data_ptr<double>(), *F = f.data_ptr<double>();
  int64_t *NIT = nit.data_ptr<int64_t>(), *ST = status.data_ptr<int64_t>();
  at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
    std::vector<double> lo, hi;
    for (int64_t b = b0; b < b1; ++b) {
      atom_bounds(X0 + b * N * 3, M + b * N, N, lo, hi);
      optim::Lbfgsb solver(X0 + b * N * 3, lo.data(), hi.data(), 3 * N, opt);
      optim::run_to_end(solver, make_objective(b));
      std::copy(solver.point().begin(), solver.point().end(), X + b * N * 3);
      F[b] = solver.f();
      NIT[b] = solver.iterations();
      ST[b] = static_cast<int64_t>(solver.status());
    }
  });
  return {x.to(x0_.scalar_type()), f, nit, status};
}

SolverResult trilaterate_cpu(const at::Tensor& x0, const at::Tensor& mask_, const at::Tensor& target_pair_,
                             const at::Tensor& target_points_, const at::Tensor& points_, int64_t m, double ftol,
                             double gtol, int64_t maxiter) {
  const char* op = "pdfsolve::trilaterate";
  check_trilateration_args(op, x0, mask_, target_pair_, target_points_, points_);
  const int64_t N = x0.size(1), P = points_.size(0);
  const optim::Options opt = reconstruction_options(op, m, ftol, gtol, maxiter);
  auto mask = mask_.contiguous();
  auto tp = target_pair_.to(at::kDouble).contiguous();
  auto ts = target_points_.to(at::kDouble).contiguous();
  auto pts = points_.to(at::kDouble).contiguous();
  const double *TP = tp.data_ptr<double>(), *TS = ts.data_ptr<double>(), *S = pts.data_ptr<double>();
  const bool* M = mask.data_ptr<bool>();
  return solve_each(x0, mask, opt, [&](int64_t b) {
    return optim::TrilaterationObjective{TP + b * N * N, TS + b * N * P, S, M + b * N, N, P};
  });
}

SolverResult fit_affinity_cpu(const at::Tensor& x0, const at::Tensor& mask_, const at::Tensor& target_,
                              const at::Tensor& sigma_, int64_t m, double ftol, double gtol, int64_t maxiter) {
  const char* op = "pdfsolve::fit_affinity";
  check_affinity_args(op, x0, mask_, target_, sigma_);
  const int64_t N = x0.size(1);
  const optim::Options opt = reconstruction_options(op, m, ftol, gtol, maxiter);
  auto mask = mask_.contiguous();
  auto target = target_.to(at::kDouble).contiguous();
  auto sigma = sigma_.to(at::kDouble).contiguous();
  const double *T = target.data_ptr<double>(), *SG = sigma.data_ptr<double>();
  const bool* M = mask.data_ptr<bool>();
  return solve_each(x0, mask, opt, [&](int64_t b) {
    return optim::AffinityObjective{T + b * N * N, M + b * N, N, SG[b]};
  });
}

}  // namespace
}  // namespace cpu
}  // namespace pdfsolve

TORCH_LIBRARY_IMPL(pdfsolve, CPU, m) {
  m.impl("trilaterate", &pdfsolve::cpu::trilaterate_cpu);
  m.impl("fit_affinity", &pdfsolve::cpu::fit_affinity_cpu);
}
