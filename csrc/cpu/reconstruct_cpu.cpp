// CPU kernels of the reconstruction solvers (schemas in csrc/ops.cpp): each problem of the batch runs a whole
// L-BFGS-B minimisation (csrc/optim/lbfgsb.h) with its objective in C++ (csrc/optim/objectives.h), one problem per
// task of at::parallel_for: no Python and no synchronisation inside the loop. Padding atoms are fixed variables.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "common/op_checks.h"
#include "cpu/solver_options.h"
#include "cpu/whole_runs.h"
#include "optim/objectives.h"

namespace pdfsolve {
namespace cpu {
namespace {

//! Runs one L-BFGS-B minimisation per cluster of x0 (B, N, 3) (padding atoms fixed) with the objective
//! make_objective(b) (a callable f(x, g) over the 3N variables of cluster b); returns (x, f, iterations, status).
template <typename MakeObjective>
SolverResult solve_each(const at::Tensor& x0, const at::Tensor& mask, const optim::Options& opt,
                        const MakeObjective& make_objective) {
  const WholeRuns runs(x0, opt);
  const int64_t N = x0.size(1);
  const bool* M = mask.data_ptr<bool>();
  at::parallel_for(0, x0.size(0), 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) runs.solve(b, [&](int64_t i) { return M[b * N + i]; }, make_objective(b));
  });
  return runs.result();
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
