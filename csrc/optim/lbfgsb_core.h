// L-BFGS-B (Byrd, Lu, Nocedal & Zhu 1995; Morales & Nocedal 2011 "version 3.0", the algorithm of scipy's
// L-BFGS-B) for one bound-constrained problem, driven by reverse communication: whenever the status is kRunning the
// caller evaluates f and g at x and hands them over with tell(). The one implementation of the iteration logic for
// both backends: host and device code on raw pointers into a caller-provided workspace of fixed size, no
// allocation, no recursion, no std containers. csrc/optim/lbfgsb.h wraps it for C++ callers (CPU), and
// csrc/cuda/lbfgsb_kernels.cu runs one problem per CUDA thread. No torch headers.
//
// Per iteration: the generalized Cauchy point along the projected steepest descent path on the compact
// limited-memory model B = theta I - W M W^T (W = [Y, theta S]), then direct primal subspace minimisation over the
// variables free at the Cauchy point (Sherman–Morrison–Woodbury), projection onto the box (falling back to the
// truncated step when the projected direction is not a descent direction), and a Moré–Thuente line search.
// The middle matrix M (2m x 2m) is formed and inverted densely: m is small.
#pragma once

#include <cmath>
#include <cstdint>

#include "common/hd_math.h"
#include "common/host_device.h"
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

//! Workspace of one problem with n variables and memory m, in three parts. The state (doubles) persists from
//! start() to the end of the run; the scratch (doubles and int64) is used only inside one call of start() or
//! tell(), so consecutive calls for different problems may share it.
PDFSOLVE_HD int64_t lbfgsb_state_doubles(int64_t n, int64_t m) { return 4 * n + 2 * m * n + 7 * m * m; }
PDFSOLVE_HD int64_t lbfgsb_scratch_doubles(int64_t n, int64_t m) { return 4 * n + 12 * m * m + 18 * m; }
PDFSOLVE_HD int64_t lbfgsb_scratch_indices(int64_t n) { return 2 * n; }

//! Pointers of one problem: the caller's arrays and the parts of its workspace.
struct LbfgsbArrays {
  double* x;             // (n,) the point where f and g are wanted; the solution once finished
  double* g;             // (n,) the gradient at x, written by the caller before tell()
  const double* lower;   // (n,) bounds, -inf / inf where there is none
  const double* upper;   // (n,)
  // state
  double *x_old, *g_old;  // (n,) the last accepted iterate x_k and its gradient
  double *z;              // (n,) the Cauchy point, then x-bar (the end of the search direction)
  double *d;              // (n,) search direction x-bar - x_k
  double *S, *Y;          // (m, n) ring buffer of the last pairs s = x_k+1 - x_k, y = g_k+1 - g_k
  double *sy, *ss, *yy;   // (m, m) cached products s_a.y_b, s_a.s_b, y_a.y_b over pairs a, b (oldest first)
  double *mid;            // (2 col, 2 col) the middle matrix M
  // scratch
  double *path, *breakpoint;    // (n,) the Cauchy path's direction and each variable's breakpoint on it
  double *r, *du;               // (n,) reduced gradient and subspace step (free variables only)
  double *gram, *K, *Kinv;      // (2m, 2m) Gram matrix of the free rows of W, a matrix to invert, its inverse
  double *c, *p, *Mp, *Mc, *Mw, *w, *Ar, *v, *Nv;  // (2m,) small vectors of the Cauchy and subspace steps
  int64_t *heap;                // (n,) breakpoint heap
  int64_t *is_free;             // (n,) 1 where the variable is free at the Cauchy point

  //! Carves the workspace: state (lbfgsb_state_doubles), scratch (lbfgsb_scratch_doubles) and scratch_idx
  //! (lbfgsb_scratch_indices).
  PDFSOLVE_HD static LbfgsbArrays bind(double* x, double* g, const double* lower, const double* upper,
                                       double* state, double* scratch, int64_t* scratch_idx, int64_t n, int64_t m) {
    LbfgsbArrays a;
    a.x = x;
    a.g = g;
    a.lower = lower;
    a.upper = upper;
    double* s = state;
    a.x_old = take(s, n);
    a.g_old = take(s, n);
    a.z = take(s, n);
    a.d = take(s, n);
    a.S = take(s, m * n);
    a.Y = take(s, m * n);
    a.sy = take(s, m * m);
    a.ss = take(s, m * m);
    a.yy = take(s, m * m);
    a.mid = take(s, 4 * m * m);
    double* t = scratch;
    a.path = take(t, n);
    a.breakpoint = take(t, n);
    a.r = take(t, n);
    a.du = take(t, n);
    a.gram = take(t, 4 * m * m);
    a.K = take(t, 4 * m * m);
    a.Kinv = take(t, 4 * m * m);
    double** small[] = {&a.c, &a.p, &a.Mp, &a.Mc, &a.Mw, &a.w, &a.Ar, &a.v, &a.Nv};
    for (double** vec : small) *vec = take(t, 2 * m);
    a.heap = scratch_idx;
    a.is_free = scratch_idx + n;
    return a;
  }

 private:
  //! The next count values from at.
  PDFSOLVE_HD static double* take(double*& at, int64_t count) {
    double* out = at;
    at += count;
    return out;
  }
};

//! Scalar state of one problem (plain data: copied to and from device memory as a whole).
struct LbfgsbState {
  PDFSOLVE_HD LbfgsbState(int64_t n_, const Options& opt_) : n(n_), opt(opt_) {}

  int64_t n;
  Options opt;
  Status status = Status::kRunning;
  bool line_search = false;            // false until the first evaluation has been told
  int64_t iter = 0, nfev = 0, ifun = 0;  // iterations, evaluations, evaluations in this line search
  int64_t col = 0, head = 0;           // pairs in memory, ring-buffer slot of the oldest
  double f = 0;                        // f at x
  double theta = 1.0;                  // scaling of the limited-memory model
  bool constrained = false, boxed = true;  // some variable has a bound; every variable has both
  double f_old = 0, gd_old = 0, stp = 0;   // f and g.d at x_k, trial step along d
  MoreThuente search;
};

//! The iteration logic on one problem's state and arrays (a short-lived view: make one per call).
class LbfgsbCore {
 public:
  PDFSOLVE_HD LbfgsbCore(LbfgsbState& state, const LbfgsbArrays& arrays) : s_(state), a_(arrays) {}

  //! Starts a run from x (x0, n values, projected here onto the box); the first evaluation is wanted at x.
  PDFSOLVE_HD_FUNC void start() {
    for (int64_t i = 0; i < s_.n; ++i) {
      if (has_lower(i)) a_.x[i] = hd_max(a_.x[i], a_.lower[i]);
      if (has_upper(i)) a_.x[i] = hd_min(a_.x[i], a_.upper[i]);
      a_.g[i] = 0;
      s_.constrained = s_.constrained || has_lower(i) || has_upper(i);
      s_.boxed = s_.boxed && has_lower(i) && has_upper(i);
    }
  }

  //! f and g (already in arrays.g) at x; afterwards x is the next point to evaluate unless the run has finished.
  PDFSOLVE_HD_FUNC void tell(double f) {
    const int64_t n = s_.n;
    ++s_.nfev;
    s_.f = f;
    bool finite = hd_isfinite(f);
    for (int64_t i = 0; i < n && finite; ++i) finite = hd_isfinite(a_.g[i]);
    if (!s_.line_search) {
      if (!finite) return finish(Status::kNonFinite);
      if (projected_gradient_norm() <= s_.opt.gtol) return finish(Status::kConvergedGradient);
      return begin_iteration();
    }
    if (!finite) return line_search_failed();  // the trial left the region where f is defined
    double gd = 0;
    for (int64_t i = 0; i < n; ++i) gd += a_.g[i] * a_.d[i];
    const SearchState st = s_.search.next(f, gd);
    if (st == SearchState::kConverged || st == SearchState::kWarning) return accept_step(gd);
    if (st == SearchState::kError || s_.ifun >= s_.opt.maxls) return line_search_failed();
    if (s_.nfev >= s_.opt.maxfun) return restore_and_finish(Status::kMaxEvaluations);
    s_.stp = s_.search.step();
    set_trial_point();
    ++s_.ifun;
  }

 private:
  PDFSOLVE_HD bool has_lower(int64_t i) const { return hd_isfinite(a_.lower[i]); }
  PDFSOLVE_HD bool has_upper(int64_t i) const { return hd_isfinite(a_.upper[i]); }

  PDFSOLVE_HD void finish(Status s) { s_.status = s; }

  PDFSOLVE_HD static void copy(const double* from, double* to, int64_t k) {
    for (int64_t i = 0; i < k; ++i) to[i] = from[i];
  }

  //! Back to the last accepted iterate x_k (its f and g) after a trial step.
  PDFSOLVE_HD void restore() {
    copy(a_.x_old, a_.x, s_.n);
    copy(a_.g_old, a_.g, s_.n);
    s_.f = s_.f_old;
  }

  PDFSOLVE_HD void restore_and_finish(Status s) {
    restore();
    finish(s);
  }

  PDFSOLVE_HD_FUNC double projected_gradient_norm() const {
    double norm = 0;
    for (int64_t i = 0; i < s_.n; ++i) {
      double gi = a_.g[i];
      if (gi < 0) {
        if (has_upper(i)) gi = hd_max(a_.x[i] - a_.upper[i], gi);
      } else {
        if (has_lower(i)) gi = hd_min(a_.x[i] - a_.lower[i], gi);
      }
      norm = hd_max(norm, fabs(gi));
    }
    return norm;
  }

  // ---- limited memory ------------------------------------------------------------------------------------------
  //! Row (in S and Y) of memory pair k (0 the oldest).
  PDFSOLVE_HD int64_t slot(int64_t k) const {
    const int64_t at = s_.head + k;
    return at < s_.opt.m ? at : at - s_.opt.m;
  }

  //! Row i of W = [Y, theta S] (2 col values).
  PDFSOLVE_HD void w_row(int64_t i, double* w) const {
    const int64_t c = s_.col, n = s_.n;
    for (int64_t k = 0; k < c; ++k) {
      const int64_t at = slot(k) * n + i;
      w[k] = a_.Y[at];
      w[c + k] = s_.theta * a_.S[at];
    }
  }

  PDFSOLVE_HD void reset_memory() {
    s_.col = 0;
    s_.head = 0;
    s_.theta = 1.0;
  }

  //! Cached inner product of memory pairs a and b (oldest first): v[a * m + b].
  PDFSOLVE_HD double cached(const double* v, int64_t a, int64_t b) const { return v[a * s_.opt.m + b]; }

  PDFSOLVE_HD static double dotk(const double* a, const double* b, int64_t k) {
    double s = 0;
    for (int64_t i = 0; i < k; ++i) s += a[i] * b[i];
    return s;
  }

  //! Makes room for a new pair (the oldest dropped beyond m, the cached products shifted with it) and returns its
  //! rows of S and Y; the new pair is the newest, col - 1.
  PDFSOLVE_HD_FUNC int64_t push_slot() {
    const int64_t m = s_.opt.m;
    if (s_.col < m) return slot(s_.col++);
    const int64_t oldest = s_.head;
    s_.head = slot(1);
    double* cached_products[] = {a_.sy, a_.ss, a_.yy};
    for (double* v : cached_products)
      for (int64_t a = 0; a + 1 < m; ++a)
        for (int64_t b = 0; b + 1 < m; ++b) v[a * m + b] = v[(a + 1) * m + b + 1];
    return oldest;
  }

  //! After the newest pair (s, y) with s.y = sy, y.y = yy was written: its cached products s.y, s.s, y.y with every
  //! pair (2 col new dot products each), theta and M = [[-D, L^T], [L, theta S^T S]]^-1. False if M is singular.
  PDFSOLVE_HD_FUNC bool update_memory(double sy, double yy) {
    const int64_t m = s_.opt.m, n = s_.n, k = s_.col - 1;
    const double *sk = a_.S + slot(k) * n, *yk = a_.Y + slot(k) * n;
    for (int64_t a = 0; a <= k; ++a) {
      const double *sa = a_.S + slot(a) * n, *ya = a_.Y + slot(a) * n;
      a_.sy[a * m + k] = dotk(sa, yk, n);
      a_.sy[k * m + a] = dotk(sk, ya, n);
      a_.ss[a * m + k] = a_.ss[k * m + a] = dotk(sa, sk, n);
      a_.yy[a * m + k] = a_.yy[k * m + a] = dotk(ya, yk, n);
    }
    s_.theta = yy / sy;
    return form_middle();
  }

  PDFSOLVE_HD_FUNC bool form_middle() {
    const int64_t c = s_.col, k2 = 2 * c;
    double* K = a_.K;
    for (int64_t e = 0; e < k2 * k2; ++e) K[e] = 0;
    for (int64_t a = 0; a < c; ++a) {
      for (int64_t b = 0; b < c; ++b) {
        const double sy = cached(a_.sy, a, b);
        if (a == b) K[a * k2 + b] = -sy;                               // -D
        if (a > b) {                                                   // L (strictly lower part of S^T Y)
          K[(c + a) * k2 + b] = sy;
          K[b * k2 + c + a] = sy;                                      // L^T
        }
        K[(c + a) * k2 + c + b] = s_.theta * cached(a_.ss, a, b);  // theta S^T S
      }
    }
    return invert(K, a_.mid, k2);
  }

  //! gram += sign * sum over the rows i with is_free[i] == free_rows of w_i w_i^T.
  PDFSOLVE_HD_FUNC void add_gram_rows(bool free_rows, double sign) {
    const int64_t k2 = 2 * s_.col;
    double *G = a_.gram, *w = a_.w;
    for (int64_t i = 0; i < s_.n; ++i) {
      if ((a_.is_free[i] != 0) != free_rows) continue;
      w_row(i, w);
      for (int64_t a = 0; a < k2; ++a)
        for (int64_t b = 0; b < k2; ++b) G[a * k2 + b] += sign * w[a] * w[b];
    }
  }

  //! gram = A A^T = sum over the nf free rows i of w_i w_i^T (2 col x 2 col). With few fixed rows it is W^T W from
  //! the cached products ([[Y^T Y, theta Y^T S], [theta S^T Y, theta^2 S^T S]]) minus the fixed rows' terms, else
  //! the direct sum over the free rows (no cancellation when most rows are fixed).
  PDFSOLVE_HD_FUNC void free_gram(int64_t nf) {
    const int64_t c = s_.col, k2 = 2 * c;
    const double theta = s_.theta;
    double* G = a_.gram;
    if (2 * (s_.n - nf) >= s_.n) {
      for (int64_t e = 0; e < k2 * k2; ++e) G[e] = 0;
      return add_gram_rows(true, 1.0);
    }
    for (int64_t a = 0; a < c; ++a) {
      for (int64_t b = 0; b < c; ++b) {
        G[a * k2 + b] = cached(a_.yy, a, b);
        G[a * k2 + c + b] = theta * cached(a_.sy, b, a);  // y_a . s_b
        G[(c + a) * k2 + b] = theta * cached(a_.sy, a, b);
        G[(c + a) * k2 + c + b] = theta * theta * cached(a_.ss, a, b);
      }
    }
    add_gram_rows(false, -1.0);
  }

  //! inv = A^-1 for a k x k matrix A (destroyed) by Gauss–Jordan elimination with partial pivoting; false if
  //! singular.
  PDFSOLVE_HD_FUNC static bool invert(double* A, double* inv, int64_t k) {
    for (int64_t e = 0; e < k * k; ++e) inv[e] = 0;
    for (int64_t i = 0; i < k; ++i) inv[i * k + i] = 1.0;
    for (int64_t c = 0; c < k; ++c) {
      int64_t piv = c;
      for (int64_t r = c + 1; r < k; ++r)
        if (fabs(A[r * k + c]) > fabs(A[piv * k + c])) piv = r;
      if (!(fabs(A[piv * k + c]) > 0)) return false;
      if (piv != c)
        for (int64_t j = 0; j < k; ++j) {
          hd_swap(A[c * k + j], A[piv * k + j]);
          hd_swap(inv[c * k + j], inv[piv * k + j]);
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
    return true;
  }

  //! out = M v (2 col values).
  PDFSOLVE_HD void mid_times(const double* v, double* out) const {
    const int64_t k2 = 2 * s_.col;
    for (int64_t a = 0; a < k2; ++a) {
      double s = 0;
      for (int64_t b = 0; b < k2; ++b) s += a_.mid[a * k2 + b] * v[b];
      out[a] = s;
    }
  }

  // ---- breakpoint heap: variables ordered by their breakpoint (ties by index) ----------------------------------
  PDFSOLVE_HD bool earlier(int64_t i, int64_t j) const {
    const double ti = a_.breakpoint[i], tj = a_.breakpoint[j];
    return ti < tj || (ti == tj && i < j);
  }

  PDFSOLVE_HD_FUNC void sift_down(int64_t at, int64_t size) {
    int64_t* h = a_.heap;
    for (;;) {
      const int64_t left = 2 * at + 1, right = left + 1;
      int64_t first = at;
      if (left < size && earlier(h[left], h[first])) first = left;
      if (right < size && earlier(h[right], h[first])) first = right;
      if (first == at) return;
      hd_swap(h[at], h[first]);
      at = first;
    }
  }

  // ---- one iteration -------------------------------------------------------------------------------------------
  //! Generalized Cauchy point into z with the free set (is_free) and c = W^T (z - x) (c).
  PDFSOLVE_HD_FUNC void cauchy_point() {
    const int64_t n = s_.n, c = s_.col, k2 = 2 * c;
    const double theta = s_.theta;
    const double *x = a_.x, *g = a_.g, *l = a_.lower, *u = a_.upper;
    double *z = a_.z, *d = a_.path, *t = a_.breakpoint, *p = a_.p, *w = a_.w, *cc = a_.c;
    copy(x, z, n);
    for (int64_t i = 0; i < n; ++i) a_.is_free[i] = 1;
    for (int64_t k = 0; k < k2; ++k) cc[k] = 0;
    if (!s_.constrained && c > 0) return;  // unconstrained with memory: the subspace step works on all variables
    for (int64_t i = 0; i < n; ++i) d[i] = 0;
    for (int64_t k = 0; k < k2; ++k) p[k] = 0;
    int64_t nbreak = 0;
    int64_t moving_unbounded = 0;  // variables moving along d without a breakpoint
    double f1 = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double neg = -g[i];
      if (has_lower(i) && has_upper(i) && l[i] == u[i]) {  // fixed variable
        a_.is_free[i] = 0;
        continue;
      }
      const bool at_lower = has_lower(i) && x[i] - l[i] <= 0, at_upper = has_upper(i) && u[i] - x[i] <= 0;
      if ((at_lower && neg <= 0) || (at_upper && neg >= 0)) {
        a_.is_free[i] = 0;  // at a bound, pushed outwards: stays there
        continue;
      }
      if (neg == 0) continue;
      d[i] = neg;
      f1 -= neg * neg;
      if (c > 0) {
        w_row(i, w);
        for (int64_t k = 0; k < k2; ++k) p[k] += w[k] * neg;
      }
      if (neg < 0 && has_lower(i)) {
        t[i] = (x[i] - l[i]) / -neg;
        a_.heap[nbreak++] = i;
      } else if (neg > 0 && has_upper(i)) {
        t[i] = (u[i] - x[i]) / neg;
        a_.heap[nbreak++] = i;
      } else {
        ++moving_unbounded;
      }
    }
    if (f1 == 0) return;  // projected gradient is zero
    double *Mp = a_.Mp, *Mc = a_.Mc, *Mw = a_.Mw;
    mid_times(p, Mp);
    const double f2_org = -theta * f1 - dotk(p, Mp, k2);
    double f2 = f2_org;
    double dtm = -f1 / f2, tsum = 0;
    for (int64_t at = nbreak / 2 - 1; at >= 0; --at) sift_down(at, nbreak);
    while (nbreak > 0) {
      const int64_t b = a_.heap[0];
      const double dt = t[b] - tsum;
      if (dtm < dt) break;
      a_.heap[0] = a_.heap[--nbreak];
      sift_down(0, nbreak);
      // the variable reaches its bound: fix it and move to the next segment
      const double gb = g[b];
      const double zb = (d[b] > 0 ? u[b] : l[b]) - x[b];
      z[b] = d[b] > 0 ? u[b] : l[b];
      a_.is_free[b] = 0;
      d[b] = 0;
      tsum = t[b];
      for (int64_t k = 0; k < k2; ++k) cc[k] += dt * p[k];
      f1 += dt * f2 + gb * gb + theta * gb * zb;
      f2 -= theta * gb * gb;
      if (c > 0) {
        w_row(b, w);
        mid_times(cc, Mc);
        mid_times(w, Mw);
        f1 -= gb * dotk(w, Mc, k2);
        f2 -= 2.0 * gb * dotk(w, Mp, k2) + gb * gb * dotk(w, Mw, k2);
        for (int64_t k = 0; k < k2; ++k) p[k] += gb * w[k];
        mid_times(p, Mp);
      }
      f2 = hd_max(kDoubleEps * f2_org, f2);
      dtm = -f1 / f2;
    }
    if (nbreak == 0 && moving_unbounded == 0) dtm = 0;  // every moving variable reached its bound
    dtm = hd_max(dtm, 0.0);
    tsum += dtm;
    for (int64_t i = 0; i < n; ++i)
      if (d[i] != 0) z[i] = x[i] + tsum * d[i];
    for (int64_t k = 0; k < k2; ++k) cc[k] += dtm * p[k];
  }

  //! x_i clipped to the bounds of variable i.
  PDFSOLVE_HD double project(int64_t i, double xi) const {
    if (has_lower(i)) xi = hd_max(xi, a_.lower[i]);
    if (has_upper(i)) xi = hd_min(xi, a_.upper[i]);
    return xi;
  }

  //! Direct primal subspace minimisation from the Cauchy point z over the free variables; z becomes x-bar.
  PDFSOLVE_HD_FUNC void subspace_minimisation() {
    const int64_t n = s_.n, c = s_.col, k2 = 2 * c;
    if (c == 0) return;
    int64_t nf = 0;
    for (int64_t i = 0; i < n; ++i) nf += a_.is_free[i] != 0;
    if (nf == 0) return;
    const double theta = s_.theta;
    const double *x = a_.x, *g = a_.g, *l = a_.lower, *u = a_.upper;
    const int64_t* is_free = a_.is_free;
    double *z = a_.z, *r = a_.r, *du = a_.du, *w = a_.w, *Mc = a_.Mc, *Ar = a_.Ar, *v = a_.v, *Nv = a_.Nv;
    // reduced gradient r = g + theta (z - x) - W M c on the free variables
    mid_times(a_.c, Mc);
    for (int64_t k = 0; k < k2; ++k) Ar[k] = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (!is_free[i]) continue;
      w_row(i, w);
      r[i] = g[i] + theta * (z[i] - x[i]) - dotk(w, Mc, k2);
      for (int64_t k = 0; k < k2; ++k) Ar[k] += w[k] * r[i];
    }
    free_gram(nf);
    // v = (I - M A A^T / theta)^-1 M A r, du = -r / theta - A^T v / theta^2
    mid_times(Ar, v);
    double* N = a_.K;
    for (int64_t a = 0; a < k2; ++a) {
      for (int64_t b = 0; b < k2; ++b) {
        double s = 0;
        for (int64_t k = 0; k < k2; ++k) s += a_.mid[a * k2 + k] * a_.gram[k * k2 + b];
        N[a * k2 + b] = (a == b ? 1.0 : 0.0) - s / theta;
      }
    }
    if (!invert(N, a_.Kinv, k2)) return;  // keep the Cauchy point
    for (int64_t a = 0; a < k2; ++a) Nv[a] = dotk(a_.Kinv + a * k2, v, k2);
    for (int64_t i = 0; i < n; ++i) {
      if (!is_free[i]) continue;
      w_row(i, w);
      du[i] = -r[i] / theta - dotk(w, Nv, k2) / (theta * theta);
    }
    // projection onto the box; kept when it is a descent direction from x
    double dd = 0;
    for (int64_t i = 0; i < n; ++i) dd += ((is_free[i] ? project(i, z[i] + du[i]) : z[i]) - x[i]) * g[i];
    if (dd <= 0) {
      for (int64_t i = 0; i < n; ++i)
        if (is_free[i]) z[i] = project(i, z[i] + du[i]);
      return;
    }
    // otherwise the longest step along du from z that stays feasible
    double alpha = 1.0;
    int64_t ibd = -1;
    for (int64_t i = 0; i < n; ++i) {
      if (!is_free[i]) continue;
      const double dk = du[i];
      double lim = alpha;
      if (dk < 0 && has_lower(i)) {
        const double room = l[i] - z[i];
        lim = room >= 0 ? 0.0 : (dk * alpha < room ? room / dk : alpha);
      } else if (dk > 0 && has_upper(i)) {
        const double room = u[i] - z[i];
        lim = room <= 0 ? 0.0 : (dk * alpha > room ? room / dk : alpha);
      }
      if (lim < alpha) {
        alpha = lim;
        ibd = i;
      }
    }
    for (int64_t i = 0; i < n; ++i) {
      if (!is_free[i]) continue;
      if (i == ibd && alpha < 1.0)
        z[i] = du[i] > 0 ? u[i] : l[i];
      else
        z[i] += alpha * du[i];
    }
  }

  //! Search direction from x_k and the first trial point of its line search; without a usable direction the memory
  //! is dropped once (steepest descent), then the run stops with kLineSearchFailed.
  PDFSOLVE_HD_FUNC void begin_iteration() {
    const int64_t n = s_.n;
    const double *x = a_.x, *l = a_.lower, *u = a_.upper;
    double* d = a_.d;
    for (;;) {
      cauchy_point();
      subspace_minimisation();
      double dnorm2 = 0, gd = 0;
      for (int64_t i = 0; i < n; ++i) {
        d[i] = a_.z[i] - x[i];
        dnorm2 += d[i] * d[i];
        gd += a_.g[i] * d[i];
      }
      copy(x, a_.x_old, n);
      copy(a_.g, a_.g_old, n);
      s_.f_old = s_.f;
      s_.gd_old = gd;
      if (gd < 0) {
        const double dnorm = sqrt(dnorm2);
        double stpmx = 1e10;
        if (s_.constrained) {
          if (s_.iter == 0) {
            stpmx = 1.0;
          } else {
            for (int64_t i = 0; i < n; ++i) {
              const double a1 = d[i];
              if (a1 < 0 && has_lower(i)) {
                const double a2 = l[i] - x[i];
                if (a2 >= 0)
                  stpmx = 0;
                else if (a1 * stpmx < a2)
                  stpmx = a2 / a1;
              } else if (a1 > 0 && has_upper(i)) {
                const double a2 = u[i] - x[i];
                if (a2 <= 0)
                  stpmx = 0;
                else if (a1 * stpmx > a2)
                  stpmx = a2 / a1;
              }
            }
          }
        }
        s_.stp = (s_.iter == 0 && !s_.boxed) ? hd_min(1.0 / dnorm, stpmx) : hd_min(1.0, stpmx);
        s_.line_search = true;
        if (s_.search.start(s_.f, gd, s_.stp, 0.0, stpmx) != SearchState::kError) {
          s_.ifun = 1;
          return set_trial_point();
        }
      }
      if (s_.col == 0) return finish(Status::kLineSearchFailed);
      reset_memory();
    }
  }

  PDFSOLVE_HD void set_trial_point() {
    if (s_.stp == 1.0) return copy(a_.z, a_.x, s_.n);
    for (int64_t i = 0; i < s_.n; ++i) a_.x[i] = a_.x_old[i] + s_.stp * a_.d[i];
  }

  //! No acceptable step after a trial: back to x_k and restart from steepest descent (drop the memory), or give
  //! up if that was it already.
  PDFSOLVE_HD_FUNC void line_search_failed() {
    restore();
    if (s_.col == 0) return finish(Status::kLineSearchFailed);
    reset_memory();
    begin_iteration();
  }

  PDFSOLVE_HD_FUNC void accept_step(double gd) {
    ++s_.iter;
    if (projected_gradient_norm() <= s_.opt.gtol) return finish(Status::kConvergedGradient);
    const double scale = hd_max(hd_max(fabs(s_.f_old), fabs(s_.f)), 1.0);
    if (s_.f_old - s_.f <= s_.opt.ftol * scale) return finish(Status::kConvergedDecrease);
    if (s_.iter >= s_.opt.maxiter) return finish(Status::kMaxIterations);
    if (s_.nfev >= s_.opt.maxfun) return finish(Status::kMaxEvaluations);
    // curvature pair s = x - x_old = stp d, y = g - g_old
    const double dr = (gd - s_.gd_old) * s_.stp, ddum = -s_.gd_old * s_.stp;
    if (dr > kDoubleEps * ddum) {
      const int64_t n = s_.n, at = push_slot() * n;
      double yy = 0;
      for (int64_t i = 0; i < n; ++i) {
        a_.S[at + i] = a_.x[i] - a_.x_old[i];
        const double yi = a_.g[i] - a_.g_old[i];
        a_.Y[at + i] = yi;
        yy += yi * yi;
      }
      if (!update_memory(dr, yy)) reset_memory();
    }
    begin_iteration();
  }

  LbfgsbState& s_;
  LbfgsbArrays a_;
};

}  // namespace optim
}  // namespace pdfsolve
