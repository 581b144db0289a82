// Whole L-BFGS-B runs over atom positions, one per problem, for the CPU solver ops (reconstruct_cpu.cpp,
// fingerprint_cpu.cpp): padding atoms become fixed variables, each run goes to its end with the objective in C++,
// and its result lands in the op's outputs (x, f, iterations, status). torch headers.
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <limits>
#include <tuple>
#include <vector>

#include "optim/lbfgsb.h"

namespace pdfsolve {
namespace cpu {

using SolverResult = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

//! Outputs of B runs from starts x0 (B, N, 3): x (B, N, 3) float64, f (B,) float64, iterations and status (B,)
//! int64. solve() may be called for different problems from different threads.
class WholeRuns {
 public:
  WholeRuns(const at::Tensor& x0, const optim::Options& opt)
      : x0_(x0.to(at::kDouble).contiguous()), opt_(opt), n3_(3 * x0.size(1)), dtype_(x0.scalar_type()) {
    const int64_t B = x0.size(0);
    x_ = at::empty_like(x0_);
    f_ = at::empty({B}, x0_.options());
    nit_ = at::empty({B}, x0_.options().dtype(at::kLong));
    status_ = at::empty({B}, x0_.options().dtype(at::kLong));
  }

  //! Minimises objective(x, g) -> f over problem b's 3N variables from its start; atoms i with real(i) false stay.
  template <typename Objective, typename Real>
  void solve(int64_t b, const Real& real, const Objective& objective) const {
    const double* start = x0_.data_ptr<double>() + b * n3_;
    const double inf = std::numeric_limits<double>::infinity();
    std::vector<double> lo(n3_), hi(n3_);
    for (int64_t k = 0; k < n3_; ++k) {
      const bool free = real(k / 3);
      lo[k] = free ? -inf : start[k];
      hi[k] = free ? inf : start[k];
    }
    optim::Lbfgsb solver(start, lo.data(), hi.data(), n3_, opt_);
    optim::run_to_end(solver, objective);
    std::copy(solver.point().begin(), solver.point().end(), x_.data_ptr<double>() + b * n3_);
    f_.data_ptr<double>()[b] = solver.f();
    nit_.data_ptr<int64_t>()[b] = solver.iterations();
    status_.data_ptr<int64_t>()[b] = static_cast<int64_t>(solver.status());
  }

  //! (x in the start's dtype, f, iterations, status).
  SolverResult result() const { return {x_.to(dtype_), f_, nit_, status_}; }

 private:
  at::Tensor x0_, x_, f_, nit_, status_;
  optim::Options opt_;
  int64_t n3_;
  at::ScalarType dtype_;
};

}  // namespace cpu
}  // namespace pdfsolve
