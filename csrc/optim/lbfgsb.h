// L-BFGS-B (Byrd, Lu, Nocedal & Zhu 1995; Morales & Nocedal 2011 "version 3.0", the algorithm of scipy's
// L-BFGS-B) for one bound-constrained problem, driven by reverse communication: the caller evaluates f and g at
// point() whenever state() is kEvaluate and hands them to tell(). Many problems advance in parallel in
// csrc/cpu/lbfgsb_cpu.cpp. No torch headers.
//
// Per iteration: the generalized Cauchy point along the projected steepest descent path on the compact
// limited-memory model B = theta I - W M W^T (W = [Y, theta S]), then direct primal subspace minimisation over the
// variables free at the Cauchy point (Sherman–Morrison–Woodbury), projection onto the box (falling back to the
// truncated step when the projected direction is not a descent direction), and a Moré–Thuente line search.
// The middle matrix M (2m x 2m) is formed and inverted densely: m is small.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

#include "optim/line_search.h"

namespace pdfsolve {
namespace optim {

enum class Status : int64_t {
  kRunning = 0,
  kConvergedGradient = 1,  // projected-gradient inf-norm <= gtol
  kConvergedDecrease = 2,  // relative decrease of f <= ftol
  kMaxIterations = 3,
  kMaxEvaluations = 4,
  kLineSearchFailed = 5,   // no acceptable step even from steepest descent
  kNonFinite = 6,          // f or g was NaN or inf
};

struct Options {
  int64_t m = 10;
  double ftol = 2.2204460492503131e-09;  // scipy's default (factr 1e7)
  double gtol = 1e-5;
  int64_t maxiter = 15000, maxfun = 15000, maxls = 20;
};

class Lbfgsb {
 public:
  //! x0, lower, upper: n values each (infinite bounds allowed); x0 is projected onto the box.
  Lbfgsb(const double* x0, const double* lower, const double* upper, int64_t n, const Options& opt)
      : n_(n), opt_(opt), x_(x0, x0 + n), l_(lower, lower + n), u_(upper, upper + n), g_(n, 0.0) {
    for (int64_t i = 0; i < n_; ++i) {
      if (has_lower(i)) x_[i] = std::max(x_[i], l_[i]);
      if (has_upper(i)) x_[i] = std::min(x_[i], u_[i]);
      constrained_ = constrained_ || has_lower(i) || has_upper(i);
      boxed_ = boxed_ && has_lower(i) && has_upper(i);
    }
  }

  Status status() const { return status_; }
  bool needs_evaluation() const { return status_ == Status::kRunning; }
  //! The point at which f and g are wanted next (the solution once finished).
  const std::vector<double>& point() const { return x_; }
  double f() const { return f_; }
  const std::vector<double>& gradient() const { return g_; }
  int64_t iterations() const { return iter_; }
  int64_t evaluations() const { return nfev_; }

  //! f and g (n values) at point().
  void tell(double f, const double* g) {
    ++nfev_;
    f_ = f;
    std::copy(g, g + n_, g_.begin());
    bool finite = std::isfinite(f);
    for (int64_t i = 0; i < n_ && finite; ++i) finite = std::isfinite(g_[i]);
    if (phase_ == Phase::kInitial) {
      if (!finite) return finish(Status::kNonFinite);
      if (projected_gradient_norm() <= opt_.gtol) return finish(Status::kConvergedGradient);
      return begin_iteration();
    }
    if (!finite) return line_search_failed();  // the trial left the region where f is defined
    double gd = 0;
    for (int64_t i = 0; i < n_; ++i) gd += g_[i] * d_[i];
    const SearchState st = search_.next(f_, gd);
    if (st == SearchState::kConverged || st == SearchState::kWarning) return accept_step(gd);
    if (st == SearchState::kError || ifun_ >= opt_.maxls) return line_search_failed();
    if (nfev_ >= opt_.maxfun) return restore_and_finish(Status::kMaxEvaluations);
    stp_ = search_.step();
    set_trial_point();
    ++ifun_;
  }

 private:
  enum class Phase { kInitial, kLineSearch };

  bool has_lower(int64_t i) const { return std::isfinite(l_[i]); }
  bool has_upper(int64_t i) const { return std::isfinite(u_[i]); }

  void finish(Status s) { status_ = s; }

  //! Back to the last accepted iterate x_k (its f and g) after a trial step.
  void restore() {
    x_ = x_old_;
    g_ = g_old_;
    f_ = f_old_;
  }

  void restore_and_finish(Status s) {
    restore();
    finish(s);
  }

  double projected_gradient_norm() const {
    double norm = 0;
    for (int64_t i = 0; i < n_; ++i) {
      double gi = g_[i];
      if (gi < 0) {
        if (has_upper(i)) gi = std::max(x_[i] - u_[i], gi);
      } else {
        if (has_lower(i)) gi = std::min(x_[i] - l_[i], gi);
      }
      norm = std::max(norm, std::fabs(gi));
    }
    return norm;
  }

  // ---- limited memory ------------------------------------------------------------------------------------------
  int64_t col() const { return static_cast<int64_t>(s_.size()); }
  //! Row i of W = [Y, theta S] (2 col values).
  void w_row(int64_t i, double* w) const {
    const int64_t c = col();
    for (int64_t k = 0; k < c; ++k) {
      w[k] = y_[k][i];
      w[c + k] = theta_ * s_[k][i];
    }
  }

  void reset_memory() {
    s_.clear();
    y_.clear();
    theta_ = 1.0;
    mid_.clear();
  }

  //! Cached inner product of memory pairs a and b (oldest first): v[a * m + b].
  double cached(const std::vector<double>& v, int64_t a, int64_t b) const { return v[a * opt_.m + b]; }

  //! Adds the pair (s, y) (oldest dropped beyond m), updates the cached products s.y, s.s, y.y (2 col new dot
  //! products each, the rest shifted) and forms M = [[-D, L^T], [L, theta S^T S]]^-1.
  bool update_memory(const std::vector<double>& s, const std::vector<double>& y, double sy, double yy) {
    const int64_t m = opt_.m;
    if (sy_.empty()) {
      sy_.assign(m * m, 0.0);
      ss_.assign(m * m, 0.0);
      yy_.assign(m * m, 0.0);
    }
    if (col() == m) {
      s_.erase(s_.begin());
      y_.erase(y_.begin());
      for (std::vector<double>* v : {&sy_, &ss_, &yy_})
        for (int64_t a = 0; a + 1 < m; ++a)
          for (int64_t b = 0; b + 1 < m; ++b) (*v)[a * m + b] = (*v)[(a + 1) * m + b + 1];
    }
    s_.push_back(s);
    y_.push_back(y);
    const int64_t k = col() - 1;
    for (int64_t a = 0; a <= k; ++a) {
      sy_[a * m + k] = dot(s_[a], y_[k]);
      sy_[k * m + a] = dot(s_[k], y_[a]);
      ss_[a * m + k] = ss_[k * m + a] = dot(s_[a], s_[k]);
      yy_[a * m + k] = yy_[k * m + a] = dot(y_[a], y_[k]);
    }
    theta_ = yy / sy;
    return form_middle();
  }

  bool form_middle() {
    const int64_t c = col(), k2 = 2 * c;
    std::vector<double> K(k2 * k2, 0.0);
    for (int64_t a = 0; a < c; ++a) {
      for (int64_t b = 0; b < c; ++b) {
        const double sy = cached(sy_, a, b);
        if (a == b) K[a * k2 + b] = -sy;                          // -D
        if (a > b) {                                              // L (strictly lower part of S^T Y)
          K[(c + a) * k2 + b] = sy;
          K[b * k2 + c + a] = sy;                                 // L^T
        }
        K[(c + a) * k2 + c + b] = theta_ * cached(ss_, a, b);  // theta S^T S
      }
    }
    mid_ = K;
    return invert(mid_, k2);
  }

  //! A A^T = sum over the free rows i of w_i w_i^T (2 col x 2 col). With few fixed rows it is W^T W from the
  //! cached products ([[Y^T Y, theta Y^T S], [theta S^T Y, theta^2 S^T S]]) minus the fixed rows' terms, else the
  //! direct sum over the free rows (no cancellation when most rows are fixed).
  std::vector<double> free_gram(const std::vector<int64_t>& fr) const {
    const int64_t c = col(), k2 = 2 * c, nf = static_cast<int64_t>(fr.size());
    std::vector<double> G(k2 * k2, 0.0), w(k2);
    auto add_rows = [&](bool free_rows, double sign) {
      for (int64_t i = 0; i < n_; ++i) {
        if ((free_[i] != 0) != free_rows) continue;
        w_row(i, w.data());
        for (int64_t a = 0; a < k2; ++a)
          for (int64_t b = 0; b < k2; ++b) G[a * k2 + b] += sign * w[a] * w[b];
      }
    };
    if (2 * (n_ - nf) >= n_) {
      add_rows(true, 1.0);
      return G;
    }
    for (int64_t a = 0; a < c; ++a) {
      for (int64_t b = 0; b < c; ++b) {
        G[a * k2 + b] = cached(yy_, a, b);
        G[a * k2 + c + b] = theta_ * cached(sy_, b, a);  // y_a . s_b
        G[(c + a) * k2 + b] = theta_ * cached(sy_, a, b);
        G[(c + a) * k2 + c + b] = theta_ * theta_ * cached(ss_, a, b);
      }
    }
    add_rows(false, -1.0);
    return G;
  }

  static double dot(const std::vector<double>& a, const std::vector<double>& b) {
    return std::inner_product(a.begin(), a.end(), b.begin(), 0.0);
  }

  //! In-place inverse of a k x k matrix by Gauss–Jordan elimination with partial pivoting; false if singular.
  static bool invert(std::vector<double>& A, int64_t k) {
    std::vector<double> inv(k * k, 0.0);
    for (int64_t i = 0; i < k; ++i) inv[i * k + i] = 1.0;
    for (int64_t c = 0; c < k; ++c) {
      int64_t piv = c;
      for (int64_t r = c + 1; r < k; ++r)
        if (std::fabs(A[r * k + c]) > std::fabs(A[piv * k + c])) piv = r;
      if (!(std::fabs(A[piv * k + c]) > 0)) return false;
      if (piv != c)
        for (int64_t j = 0; j < k; ++j) {
          std::swap(A[c * k + j], A[piv * k + j]);
          std::swap(inv[c * k + j], inv[piv * k + j]);
        }
      const double p = 1.0 / A[c * k + c];
      for (int64_t j = 0; j < k; ++j) {
        A[c * k + j] *= p;
        inv[c * k + j] *= p;
      }
      for (int64_t r = 0; r < k; ++r) {
        if (r == c) continue;
        const double f = A[r * k + c];
        if (f == 0) continue;
        for (int64_t j = 0; j < k; ++j) {
          A[r * k + j] -= f * A[c * k + j];
          inv[r * k + j] -= f * inv[c * k + j];
        }
      }
    }
    A.swap(inv);
    return true;
  }

  //! out = M v (2 col values).
  void mid_times(const double* v, double* out) const {
    const int64_t k2 = 2 * col();
    for (int64_t a = 0; a < k2; ++a) {
      double s = 0;
      for (int64_t b = 0; b < k2; ++b) s += mid_[a * k2 + b] * v[b];
      out[a] = s;
    }
  }

  static double dotk(const double* a, const double* b, int64_t k) {
    double s = 0;
    for (int64_t i = 0; i < k; ++i) s += a[i] * b[i];
    return s;
  }

  // ---- one iteration -------------------------------------------------------------------------------------------
  //! Generalized Cauchy point into z_ with the free set (free_[i]) and c = W^T (z - x) / ... (c_).
  void cauchy_point() {
    const int64_t c = col(), k2 = 2 * c;
    z_ = x_;
    free_.assign(n_, 1);
    c_.assign(k2, 0.0);
    if (!constrained_ && c > 0) return;  // unconstrained with memory: the subspace step works on all variables
    std::vector<double> d(n_, 0.0), t(n_, std::numeric_limits<double>::infinity()), p(k2, 0.0), w(k2);
    std::vector<int64_t> order;
    int64_t moving_unbounded = 0;  // variables moving along d without a breakpoint
    double f1 = 0;
    for (int64_t i = 0; i < n_; ++i) {
      const double neg = -g_[i];
      if (has_lower(i) && has_upper(i) && l_[i] == u_[i]) {  // fixed variable
        free_[i] = 0;
        continue;
      }
      const bool at_lower = has_lower(i) && x_[i] - l_[i] <= 0, at_upper = has_upper(i) && u_[i] - x_[i] <= 0;
      if ((at_lower && neg <= 0) || (at_upper && neg >= 0)) {
        free_[i] = 0;  // at a bound, pushed outwards: stays there
        continue;
      }
      if (neg == 0) continue;
      d[i] = neg;
      f1 -= neg * neg;
      if (c > 0) {
        w_row(i, w.data());
        for (int64_t k = 0; k < k2; ++k) p[k] += w[k] * neg;
      }
      if (neg < 0 && has_lower(i)) {
        t[i] = (x_[i] - l_[i]) / -neg;
        order.push_back(i);
      } else if (neg > 0 && has_upper(i)) {
        t[i] = (u_[i] - x_[i]) / neg;
        order.push_back(i);
      } else {
        ++moving_unbounded;
      }
    }
    if (f1 == 0) return;  // projected gradient is zero
    std::vector<double> Mp(k2), Mc(k2), Mw(k2);
    mid_times(p.data(), Mp.data());
    const double f2_org = -theta_ * f1 - dotk(p.data(), Mp.data(), k2);
    double f2 = f2_org;
    double dtm = -f1 / f2, tsum = 0;
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return t[a] < t[b]; });
    size_t next = 0;
    for (; next < order.size(); ++next) {
      const int64_t b = order[next];
      const double dt = t[b] - tsum;
      if (dtm < dt) break;
      // the variable reaches its bound: fix it and move to the next segment
      const double gb = g_[b];
      const double zb = (d[b] > 0 ? u_[b] : l_[b]) - x_[b];
      z_[b] = d[b] > 0 ? u_[b] : l_[b];
      free_[b] = 0;
      d[b] = 0;
      tsum = t[b];
      for (int64_t k = 0; k < k2; ++k) c_[k] += dt * p[k];
      f1 += dt * f2 + gb * gb + theta_ * gb * zb;
      f2 -= theta_ * gb * gb;
      if (c > 0) {
        w_row(b, w.data());
        mid_times(c_.data(), Mc.data());
        mid_times(w.data(), Mw.data());
        f1 -= gb * dotk(w.data(), Mc.data(), k2);
        f2 -= 2.0 * gb * dotk(w.data(), Mp.data(), k2) + gb * gb * dotk(w.data(), Mw.data(), k2);
        for (int64_t k = 0; k < k2; ++k) p[k] += gb * w[k];
        mid_times(p.data(), Mp.data());
      }
      f2 = std::max(std::numeric_limits<double>::epsilon() * f2_org, f2);
      dtm = -f1 / f2;
    }
    if (next == order.size() && moving_unbounded == 0) dtm = 0;  // every moving variable reached its bound
    dtm = std::max(dtm, 0.0);
    tsum += dtm;
    for (int64_t i = 0; i < n_; ++i)
      if (d[i] != 0) z_[i] = x_[i] + tsum * d[i];
    for (int64_t k = 0; k < k2; ++k) c_[k] += dtm * p[k];
  }

  //! Direct primal subspace minimisation from the Cauchy point z_ over the free variables; z_ becomes x-bar.
  void subspace_minimisation() {
    const int64_t c = col(), k2 = 2 * c;
    if (c == 0) return;
    std::vector<int64_t> fr;
    for (int64_t i = 0; i < n_; ++i)
      if (free_[i]) fr.push_back(i);
    if (fr.empty()) return;
    const int64_t nf = static_cast<int64_t>(fr.size());
    // reduced gradient r = g + theta (z - x) - W M c on the free variables
    std::vector<double> Mc(k2), w(k2), r(nf), Ar(k2, 0.0);
    mid_times(c_.data(), Mc.data());
    for (int64_t a = 0; a < nf; ++a) {
      const int64_t i = fr[a];
      w_row(i, w.data());
      r[a] = g_[i] + theta_ * (z_[i] - x_[i]) - dotk(w.data(), Mc.data(), k2);
      for (int64_t k = 0; k < k2; ++k) Ar[k] += w[k] * r[a];
    }
    const std::vector<double> AAt = free_gram(fr);
    // v = (I - M A A^T / theta)^-1 M A r, du = -r / theta - A^T v / theta^2
    std::vector<double> v(k2), N(k2 * k2);
    mid_times(Ar.data(), v.data());
    for (int64_t a = 0; a < k2; ++a) {
      for (int64_t b = 0; b < k2; ++b) {
        double s = 0;
        for (int64_t k = 0; k < k2; ++k) s += mid_[a * k2 + k] * AAt[k * k2 + b];
        N[a * k2 + b] = (a == b ? 1.0 : 0.0) - s / theta_;
      }
    }
    if (!invert(N, k2)) return;  // keep the Cauchy point
    std::vector<double> Nv(k2, 0.0);
    for (int64_t a = 0; a < k2; ++a) Nv[a] = dotk(&N[a * k2], v.data(), k2);
    std::vector<double> du(nf);
    for (int64_t a = 0; a < nf; ++a) {
      w_row(fr[a], w.data());
      du[a] = -r[a] / theta_ - dotk(w.data(), Nv.data(), k2) / (theta_ * theta_);
    }
    // projection onto the box; kept when it is a descent direction from x
    std::vector<double> proj = z_;
    for (int64_t a = 0; a < nf; ++a) {
      const int64_t i = fr[a];
      double xi = z_[i] + du[a];
      if (has_lower(i)) xi = std::max(xi, l_[i]);
      if (has_upper(i)) xi = std::min(xi, u_[i]);
      proj[i] = xi;
    }
    double dd = 0;
    for (int64_t i = 0; i < n_; ++i) dd += (proj[i] - x_[i]) * g_[i];
    if (dd <= 0) {
      z_.swap(proj);
      return;
    }
    // otherwise the longest step along du from z that stays feasible
    double alpha = 1.0;
    int64_t ibd = -1;
    for (int64_t a = 0; a < nf; ++a) {
      const int64_t i = fr[a];
      const double dk = du[a];
      double lim = alpha;
      if (dk < 0 && has_lower(i)) {
        const double room = l_[i] - z_[i];
        lim = room >= 0 ? 0.0 : (dk * alpha < room ? room / dk : alpha);
      } else if (dk > 0 && has_upper(i)) {
        const double room = u_[i] - z_[i];
        lim = room <= 0 ? 0.0 : (dk * alpha > room ? room / dk : alpha);
      }
      if (lim < alpha) {
        alpha = lim;
        ibd = a;
      }
    }
    for (int64_t a = 0; a < nf; ++a) {
      const int64_t i = fr[a];
      if (a == ibd && alpha < 1.0)
        z_[i] = du[a] > 0 ? u_[i] : l_[i];
      else
        z_[i] += alpha * du[a];
    }
  }

  void begin_iteration() {
    cauchy_point();
    subspace_minimisation();
    d_.resize(n_);
    double dnorm2 = 0, gd = 0;
    for (int64_t i = 0; i < n_; ++i) {
      d_[i] = z_[i] - x_[i];
      dnorm2 += d_[i] * d_[i];
      gd += g_[i] * d_[i];
    }
    x_old_ = x_;
    g_old_ = g_;
    f_old_ = f_;
    gd_old_ = gd;
    if (!(gd < 0)) return line_search_failed(false);
    const double dnorm = std::sqrt(dnorm2);
    double stpmx = 1e10;
    if (constrained_) {
      if (iter_ == 0) {
        stpmx = 1.0;
      } else {
        for (int64_t i = 0; i < n_; ++i) {
          const double a1 = d_[i];
          if (a1 < 0 && has_lower(i)) {
            const double a2 = l_[i] - x_[i];
            if (a2 >= 0)
              stpmx = 0;
            else if (a1 * stpmx < a2)
              stpmx = a2 / a1;
          } else if (a1 > 0 && has_upper(i)) {
            const double a2 = u_[i] - x_[i];
            if (a2 <= 0)
              stpmx = 0;
            else if (a1 * stpmx > a2)
              stpmx = a2 / a1;
          }
        }
      }
    }
    stp_ = (iter_ == 0 && !boxed_) ? std::min(1.0 / dnorm, stpmx) : std::min(1.0, stpmx);
    phase_ = Phase::kLineSearch;
    if (search_.start(f_, gd, stp_, 0.0, stpmx) == SearchState::kError) return line_search_failed(false);
    ifun_ = 1;
    set_trial_point();
  }

  void set_trial_point() {
    if (stp_ == 1.0) {
      x_ = z_;
    } else {
      for (int64_t i = 0; i < n_; ++i) x_[i] = x_old_[i] + stp_ * d_[i];
    }
  }

  //! No acceptable step: restart from steepest descent (drop the memory), or give up if that was it already.
  void line_search_failed(bool after_trial = true) {
    if (after_trial) restore();
    if (col() == 0) return finish(Status::kLineSearchFailed);
    reset_memory();
    begin_iteration();
  }

  void accept_step(double gd) {
    ++iter_;
    if (projected_gradient_norm() <= opt_.gtol) return finish(Status::kConvergedGradient);
    const double scale = std::max({std::fabs(f_old_), std::fabs(f_), 1.0});
    if (f_old_ - f_ <= opt_.ftol * scale) return finish(Status::kConvergedDecrease);
    if (iter_ >= opt_.maxiter) return finish(Status::kMaxIterations);
    if (nfev_ >= opt_.maxfun) return finish(Status::kMaxEvaluations);
    // curvature pair s = x - x_old = stp d, y = g - g_old
    const double dr = (gd - gd_old_) * stp_, ddum = -gd_old_ * stp_;
    if (dr > std::numeric_limits<double>::epsilon() * ddum) {
      std::vector<double> s(n_), y(n_);
      double yy = 0;
      for (int64_t i = 0; i < n_; ++i) {
        s[i] = x_[i] - x_old_[i];
        y[i] = g_[i] - g_old_[i];
        yy += y[i] * y[i];
      }
      if (!update_memory(s, y, dr, yy)) reset_memory();
    }
    begin_iteration();
  }

  int64_t n_;
  Options opt_;
  std::vector<double> x_, l_, u_, g_;
  double f_ = 0;
  bool constrained_ = false, boxed_ = true;
  Status status_ = Status::kRunning;
  Phase phase_ = Phase::kInitial;
  int64_t iter_ = 0, nfev_ = 0, ifun_ = 0;
  // memory: pairs oldest first, theta, M
  std::vector<std::vector<double>> s_, y_;
  std::vector<double> sy_, ss_, yy_;  // cached s_a.y_b, s_a.s_b, y_a.y_b (m x m, see cached())
  double theta_ = 1.0;
  std::vector<double> mid_;
  // iteration work: Cauchy point / x-bar, free set, c = W^T (path), direction, saved x_k, g_k, f_k
  std::vector<double> z_, c_, d_, x_old_, g_old_;
  std::vector<char> free_;
  double f_old_ = 0, gd_old_ = 0, stp_ = 0;
  MoreThuente search_;
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
