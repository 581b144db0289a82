// L-BFGS-B for one bound-constrained problem on the CPU, driven by reverse communication: the caller evaluates f
// and g at point() whenever needs_evaluation() and hands them to tell(). A thin owner of the workspace of the
// shared iteration logic (csrc/optim/lbfgsb_core.h, also run on the GPU by csrc/cuda/lbfgsb_kernels.cu). Many
// problems advance in parallel in csrc/cpu/lbfgsb_cpu.cpp. No torch headers.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "optim/lbfgsb_core.h"

namespace pdfsolve {
namespace optim {

class Lbfgsb {
 public:
  //! x0, lower, upper: n values each (infinite bounds allowed); x0 is projected onto the box.
  Lbfgsb(const double* x0, const double* lower, const double* upper, int64_t n, const Options& opt)
      : state_(n, opt),
        x_(x0, x0 + n),
        l_(lower, lower + n),
        u_(upper, upper + n),
        g_(n, 0.0),
        work_(lbfgsb_state_doubles(n, opt.m)) {
    core().start();
  }

  Status status() const { return state_.status; }
  bool needs_evaluation() const { return state_.status == Status::kRunning; }
  //! The point at which f and g are wanted next (the solution once finished).
  const std::vector<double>& point() const { return x_; }
  double f() const { return state_.f; }
  const std::vector<double>& gradient() const { return g_; }
  int64_t iterations() const { return state_.iter; }
  int64_t evaluations() const { return state_.nfev; }

  //! f and g (n values) at point().
  void tell(double f, const double* g) {
    std::copy(g, g + state_.n, g_.begin());
    core().tell(f);
  }

 private:
  //! The shared iteration logic on this problem's state, with this thread's scratch (used within one call only).
  LbfgsbCore core() {
    const int64_t n = state_.n, m = state_.opt.m;
    thread_local std::vector<double> scratch;
    thread_local std::vector<int64_t> scratch_idx;
    if (static_cast<int64_t>(scratch.size()) < lbfgsb_scratch_doubles(n, m))
      scratch.resize(lbfgsb_scratch_doubles(n, m));
    if (static_cast<int64_t>(scratch_idx.size()) < lbfgsb_scratch_indices(n))
      scratch_idx.resize(lbfgsb_scratch_indices(n));
    return LbfgsbCore(state_, LbfgsbArrays::bind(x_.data(), g_.data(), l_.data(), u_.data(), work_.data(),
                                                 scratch.data(), scratch_idx.data(), n, m));
  }

  LbfgsbState state_;
  std::vector<double> x_, l_, u_, g_;
  std::vector<double> work_;  // the persistent part of the workspace (lbfgsb_state_doubles)
};

//! Runs the solver to the end with an objective f = objective(x, g) evaluated in C++ (g: n values written).
template <typename Objective>
void run_to_end(Lbfgsb& solver, const Objective& objective) {
  std::vector<double> g(solver.point().size());
  while (solver.needs_evaluation()) {
    const double f = objective(solver.point().data(), g.data());
    solver.tell(f, g.data());
  }
}

}  // namespace optim
}  // namespace pdfsolve
