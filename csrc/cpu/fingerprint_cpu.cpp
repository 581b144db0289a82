// CPU kernels of fingerprint inversion (schemas in csrc/ops.cpp): pdfsolve::fingerprint_loss evaluates the
// objective of csrc/optim/fingerprint_objective.h and its gradient; pdfsolve::invert_fingerprint runs a whole
// L-BFGS-B minimisation (csrc/optim/lbfgsb.h) of it per problem (a problem is one start of one structure), one
// problem at a time per task of at::parallel_for (grain 1), each thread with its own ACSF evaluator
// (cpu/acsf_cluster.h): no Python and no synchronisation inside a run. Padding atoms (species < 0) are fixed.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "common/acsf_checks.h"
#include "cpu/acsf_cluster.h"
#include "cpu/solver_options.h"
#include "cpu/whole_runs.h"
#include "optim/fingerprint_objective.h"

namespace pdfsolve {
namespace cpu {
namespace {

//! Checked inputs of both ops, float64 and contiguous.
struct Inputs {
  acsf::HostTables tables;
  at::Tensor species, target, weight;  // (M, N) int64; (M, P) float64 each
  std::vector<int64_t> pooling;
  int64_t M = 0, N = 0, P = 0;  // problems, atom slots, pooled entries
  int n_species = 1;
  double rcut = 0, min_distance = 0, penalty = 0;
  bool bounds = false;
};

Inputs check_inputs(const char* op, const at::Tensor& x, const at::Tensor& species, int64_t n_species,
                    const at::Tensor& target, const at::Tensor& weight, const at::Tensor& radial,
                    const at::Tensor& angular, double rcut, at::IntArrayRef pooling, double min_distance,
                    double penalty, bool bounds) {
  TORCH_CHECK(x.device().is_cpu(), op, ": x must be a CPU tensor for the CPU kernel");
  Inputs in;
  in.tables = check_acsf_inputs(op, x, species, n_species, radial, angular, rcut);
  in.species = species.contiguous();
  in.pooling = pooling.vec();
  in.M = x.size(0);
  in.N = x.size(1);
  in.n_species = static_cast<int>(n_species);
  in.rcut = rcut;
  in.min_distance = min_distance;
  in.penalty = penalty;
  in.bounds = bounds;
  TORCH_CHECK(!in.pooling.empty(), op, ": pooling must name at least one pooling");
  for (int64_t p : in.pooling)
    TORCH_CHECK(p == optim::kPoolMax || p == optim::kPoolMin || p == optim::kPoolMean, op,
                ": pooling codes must be 0 (max), 1 (min) or 2 (mean), got ", p);
  in.P = static_cast<int64_t>(in.pooling.size()) * acsf::n_features(n_species, in.tables.n_r, in.tables.n_a);
  for (const auto& [name, t] : {std::pair<const char*, const at::Tensor&>{"target", target}, {"weight", weight}}) {
    TORCH_CHECK(t.device().is_cpu(), op, ": ", name, " must be a CPU tensor");
    TORCH_CHECK(t.is_floating_point(), op, ": ", name, " must be floating point, got ", t.scalar_type());
    TORCH_CHECK(t.dim() == 2 && t.size(0) == in.M && t.size(1) == in.P, op, ": ", name, " must have shape (", in.M,
                ", ", in.P, ") (problems, len(pooling) x features), got ", t.sizes());
  }
  in.target = target.to(at::kDouble).contiguous();
  in.weight = weight.to(at::kDouble).contiguous();
  TORCH_CHECK(at::isfinite(in.target).all().item<bool>(), op, ": target must be finite");
  TORCH_CHECK(at::isfinite(in.weight).all().item<bool>() && (in.weight >= 0).all().item<bool>(), op,
              ": weight must be finite and >= 0");
  TORCH_CHECK(std::isfinite(min_distance) && min_distance >= 0, op, ": min_distance must be finite and >= 0, got ",
              min_distance);
  TORCH_CHECK(std::isfinite(penalty) && penalty >= 0, op, ": penalty must be finite and >= 0, got ", penalty);
  return in;
}

//! Runs body(objective, m) for the problems m of [0, M), the objective of problem m over its 3N variables; each
//! thread builds one ACSF evaluator. A single problem runs on the calling thread: an OpenMP region for one task
//! only adds the wake-up of idle threads (milliseconds on a loaded machine, per call of a Python-driven loop).
template <typename Body>
void for_each_problem(const Inputs& in, const Body& body) {
  const acsf::Tables t = in.tables.view();
  const int64_t *SP = in.species.data_ptr<int64_t>(), *POOL = in.pooling.data();
  const double *T = in.target.data_ptr<double>(), *W = in.weight.data_ptr<double>();
  const int64_t n_pool = static_cast<int64_t>(in.pooling.size());
  const auto run = [&](int64_t m0, int64_t m1) {
    AcsfCluster features(in.N, in.n_species, in.rcut, t);
    for (int64_t m = m0; m < m1; ++m) {
      const optim::FingerprintObjective<AcsfCluster> objective(features, in.N, SP + m * in.N, POOL, n_pool,
                                                               T + m * in.P, W + m * in.P, in.min_distance,
                                                               in.penalty, in.bounds);
      body(objective, m);
    }
  };
  if (in.M <= 1) return run(0, in.M);
  at::parallel_for(0, in.M, 1, run);
}

std::tuple<at::Tensor, at::Tensor> fingerprint_loss_cpu(const at::Tensor& x_, const at::Tensor& species,
                                                        int64_t n_species, const at::Tensor& target,
                                                        const at::Tensor& weight, const at::Tensor& radial,
                                                        const at::Tensor& angular, double rcut,
                                                        at::IntArrayRef pooling, double min_distance, double penalty,
                                                        bool bounds) {
  const char* op = "pdfsolve::fingerprint_loss";
  const Inputs in = check_inputs(op, x_, species, n_species, target, weight, radial, angular, rcut, pooling,
                                 min_distance, penalty, bounds);
  const auto x = x_.to(at::kDouble).contiguous();
  auto f = at::empty({in.M}, x.options());
  auto g = at::empty_like(x);
  const double* X = x.data_ptr<double>();
  double *F = f.data_ptr<double>(), *G = g.data_ptr<double>();
  for_each_problem(in, [&](const auto& objective, int64_t b) {
    F[b] = objective(X + b * in.N * 3, G + b * in.N * 3);
  });
  return {f, g.to(x_.scalar_type())};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> invert_fingerprint_cpu(
    const at::Tensor& x0_, const at::Tensor& species, int64_t n_species, const at::Tensor& target,
    const at::Tensor& weight, const at::Tensor& radial, const at::Tensor& angular, double rcut,
    at::IntArrayRef pooling, double min_distance, double penalty, bool bounds, int64_t m, double ftol, double gtol,
    int64_t maxiter) {
  const char* op = "pdfsolve::invert_fingerprint";
  const Inputs in = check_inputs(op, x0_, species, n_species, target, weight, radial, angular, rcut, pooling,
                                 min_distance, penalty, bounds);
  TORCH_CHECK(at::isfinite(x0_).all().item<bool>(), op, ": x0 must be finite");
  const WholeRuns runs(x0_, reconstruction_options(op, m, ftol, gtol, maxiter));
  const int64_t* SP = in.species.data_ptr<int64_t>();
  for_each_problem(in, [&](const auto& objective, int64_t b) {
    runs.solve(b, [&](int64_t i) { return SP[b * in.N + i] >= 0; }, objective);  // padding stays put
  });
  return runs.result();
}

}  // namespace
}  // namespace cpu
}  // namespace pdfsolve

TORCH_LIBRARY_IMPL(pdfsolve, CPU, m) {
  m.impl("fingerprint_loss", &pdfsolve::cpu::fingerprint_loss_cpu);
  m.impl("invert_fingerprint", &pdfsolve::cpu::invert_fingerprint_cpu);
}
