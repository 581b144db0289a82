// Moré–Thuente line search (MINPACK-2 dcsrch/dcstep, the search of L-BFGS-B and scipy), written as a small state
// machine for reverse communication: start() with the step to try, then after every function evaluation
// next(f, g) says whether the search has converged or which step to evaluate next. Plain data, host and device
// code (one search per CUDA thread in csrc/cuda/lbfgsb_kernels.cu). No torch headers.
#pragma once

#include <cmath>

#include "common/hd_math.h"

namespace pdfsolve {
namespace optim {

enum class SearchState { kEvaluate, kConverged, kWarning, kError };

class MoreThuente {
 public:
  //! ftol (sufficient decrease), gtol (curvature), xtol (relative interval width); L-BFGS-B uses 1e-3, 0.9, 0.1.
  PDFSOLVE_HD MoreThuente(double ftol = 1e-3, double gtol = 0.9, double xtol = 0.1)
      : ftol_(ftol), gtol_(gtol), xtol_(xtol) {}

  //! Starts a search from phi(0) = f0 with phi'(0) = g0 < 0; the first trial step is stp in [stpmin, stpmax].
  PDFSOLVE_HD SearchState start(double f0, double g0, double stp, double stpmin, double stpmax) {
    if (!(g0 < 0) || stp < stpmin || stp > stpmax || stpmin < 0 || stpmax < stpmin) return SearchState::kError;
    stp_ = stp;
    stpmin_ = stpmin;
    stpmax_ = stpmax;
    brackt_ = false;
    stage_ = 1;
    finit_ = f0;
    ginit_ = g0;
    gtest_ = ftol_ * ginit_;
    width_ = stpmax - stpmin;
    width1_ = width_ / 0.5;
    stx_ = 0;
    fx_ = finit_;
    gx_ = ginit_;
    sty_ = 0;
    fy_ = finit_;
    gy_ = ginit_;
    stmin_ = 0;
    stmax_ = stp + kXtrapu * stp;
    return SearchState::kEvaluate;
  }

  //! Takes phi(stp) = f and phi'(stp) = g of the last trial; on kEvaluate, step() is the next trial.
  PDFSOLVE_HD_FUNC SearchState next(double f, double g) {
    const double ftest = finit_ + stp_ * gtest_;
    if (stage_ == 1 && f <= ftest && g >= 0) stage_ = 2;
    if (brackt_ && (stp_ <= stmin_ || stp_ >= stmax_)) return SearchState::kWarning;  // rounding errors
    if (brackt_ && stmax_ - stmin_ <= xtol_ * stmax_) return SearchState::kWarning;   // interval too small
    if (stp_ == stpmax_ && f <= ftest && g <= gtest_) return SearchState::kWarning;    // at stpmax
    if (stp_ == stpmin_ && (f > ftest || g >= gtest_)) return SearchState::kWarning;   // at stpmin
    if (f <= ftest && fabs(g) <= gtol_ * (-ginit_)) return SearchState::kConverged;

    if (stage_ == 1 && f <= fx_ && f > ftest) {
      // modified function psi(stp) = phi(stp) - phi(0) - gtest stp while no step has sufficient decrease
      double fm = f - stp_ * gtest_, fxm = fx_ - stx_ * gtest_, fym = fy_ - sty_ * gtest_;
      double gm = g - gtest_, gxm = gx_ - gtest_, gym = gy_ - gtest_;
      step(stx_, fxm, gxm, sty_, fym, gym, stp_, fm, gm);
      fx_ = fxm + stx_ * gtest_;
      fy_ = fym + sty_ * gtest_;
      gx_ = gxm + gtest_;
      gy_ = gym + gtest_;
    } else {
      step(stx_, fx_, gx_, sty_, fy_, gy_, stp_, f, g);
    }
    if (brackt_) {
      if (fabs(sty_ - stx_) >= 0.66 * width1_) stp_ = stx_ + 0.5 * (sty_ - stx_);
      width1_ = width_;
      width_ = fabs(sty_ - stx_);
      stmin_ = hd_min(stx_, sty_);
      stmax_ = hd_max(stx_, sty_);
    } else {
      stmin_ = stp_ + kXtrapl * (stp_ - stx_);
      stmax_ = stp_ + kXtrapu * (stp_ - stx_);
    }
    stp_ = hd_min(hd_max(stp_, stpmin_), stpmax_);
    if ((brackt_ && (stp_ <= stmin_ || stp_ >= stmax_)) || (brackt_ && stmax_ - stmin_ <= xtol_ * stmax_)) {
      stp_ = stx_;  // no further progress possible: the best step so far
    }
    return SearchState::kEvaluate;
  }

  PDFSOLVE_HD double step() const { return stp_; }

 private:
  static constexpr double kXtrapl = 1.1, kXtrapu = 4.0;

  //! dcstep: a safeguarded cubic/quadratic step within [stmin, stmax] and the update of the interval of
  //! uncertainty [stx, sty].
  PDFSOLVE_HD_FUNC void step(double& stx, double& fx, double& dx, double& sty, double& fy, double& dy, double& stp,
                             double fp, double dp) {
    const double sgnd = dp * (dx / fabs(dx));
    double stpf;
    if (fp > fx) {  // higher function value: the minimum is bracketed
      const double theta = 3 * (fx - fp) / (stp - stx) + dx + dp;
      const double s = hd_max(hd_max(fabs(theta), fabs(dx)), fabs(dp));
      double gamma = s * sqrt((theta / s) * (theta / s) - (dx / s) * (dp / s));
      if (stp < stx) gamma = -gamma;
      const double p = (gamma - dx) + theta, q = ((gamma - dx) + gamma) + dp;
      const double stpc = stx + p / q * (stp - stx);
      const double stpq = stx + ((dx / ((fx - fp) / (stp - stx) + dx)) / 2) * (stp - stx);
      stpf = fabs(stpc - stx) < fabs(stpq - stx) ? stpc : stpc + (stpq - stpc) / 2;
      brackt_ = true;
    } else if (sgnd < 0) {  // derivatives of opposite sign: bracketed
      const double theta = 3 * (fx - fp) / (stp - stx) + dx + dp;
      const double s = hd_max(hd_max(fabs(theta), fabs(dx)), fabs(dp));
      double gamma = s * sqrt((theta / s) * (theta / s) - (dx / s) * (dp / s));
      if (stp > stx) gamma = -gamma;
      const double p = (gamma - dp) + theta, q = ((gamma - dp) + gamma) + dx;
      const double stpc = stp + p / q * (stx - stp);
      const double stpq = stp + (dp / (dp - dx)) * (stx - stp);
      stpf = fabs(stpc - stp) > fabs(stpq - stp) ? stpc : stpq;
      brackt_ = true;
    } else if (fabs(dp) < fabs(dx)) {  // same sign, derivative magnitude decreases
      const double theta = 3 * (fx - fp) / (stp - stx) + dx + dp;
      const double s = hd_max(hd_max(fabs(theta), fabs(dx)), fabs(dp));
      double gamma = s * sqrt(hd_max(0.0, (theta / s) * (theta / s) - (dx / s) * (dp / s)));
      if (stp > stx) gamma = -gamma;
      const double p = (gamma - dp) + theta, q = (gamma + (dx - dp)) + gamma;
      const double r = p / q;
      double stpc;
      if (r < 0 && gamma != 0)
        stpc = stp + r * (stx - stp);
      else
        stpc = stp > stx ? stmax_ : stmin_;
      const double stpq = stp + (dp / (dp - dx)) * (stx - stp);
      if (brackt_) {
        stpf = fabs(stpc - stp) < fabs(stpq - stp) ? stpc : stpq;
        stpf = stp > stx ? hd_min(stp + 0.66 * (sty - stp), stpf) : hd_max(stp + 0.66 * (sty - stp), stpf);
      } else {
        stpf = fabs(stpc - stp) > fabs(stpq - stp) ? stpc : stpq;
        stpf = hd_max(stmin_, hd_min(stmax_, stpf));
      }
    } else {  // same sign, derivative magnitude does not decrease
      if (brackt_) {
        const double theta = 3 * (fp - fy) / (sty - stp) + dy + dp;
        const double s = hd_max(hd_max(fabs(theta), fabs(dy)), fabs(dp));
        double gamma = s * sqrt((theta / s) * (theta / s) - (dy / s) * (dp / s));
        if (stp > sty) gamma = -gamma;
        const double p = (gamma - dp) + theta, q = ((gamma - dp) + gamma) + dy;
        stpf = stp + p / q * (sty - stp);
      } else {
        stpf = stp > stx ? stmax_ : stmin_;
      }
    }
    if (fp > fx) {
      sty = stp;
      fy = fp;
      dy = dp;
    } else {
      if (sgnd < 0) {
        sty = stx;
        fy = fx;
        dy = dx;
      }
      stx = stp;
      fx = fp;
      dx = dp;
    }
    stp = stpf;
  }

  double ftol_, gtol_, xtol_;
  double stp_ = 0, stpmin_ = 0, stpmax_ = 0;
  bool brackt_ = false;
  int stage_ = 1;
  double finit_ = 0, ginit_ = 0, gtest_ = 0, width_ = 0, width1_ = 0;
  double stx_ = 0, fx_ = 0, gx_ = 0, sty_ = 0, fy_ = 0, gy_ = 0, stmin_ = 0, stmax_ = 0;
};

}  // namespace optim
}  // namespace pdfsolve
