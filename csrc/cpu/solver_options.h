// L-BFGS-B options from op arguments, checked once for every torch entry point of the solvers (torch headers).
#pragma once

#include <c10/util/Exception.h>

#include "optim/lbfgsb.h"

namespace pdfsolve {

inline optim::Options solver_options(const char* op, int64_t m, double ftol, double gtol, int64_t maxiter,
                                     int64_t maxfun, int64_t maxls) {
  TORCH_CHECK(m >= 1, op, ": m must be >= 1, got ", m);
  TORCH_CHECK(maxiter >= 1 && maxfun >= 1 && maxls >= 1, op, ": maxiter, maxfun and maxls must be >= 1");
  TORCH_CHECK(ftol >= 0 && gtol >= 0, op, ": ftol and gtol must be >= 0");
  optim::Options opt;
  opt.m = m;
  opt.ftol = ftol;
  opt.gtol = gtol;
  opt.maxiter = maxiter;
  opt.maxfun = maxfun;
  opt.maxls = maxls;
  return opt;
}

}  // namespace pdfsolve
