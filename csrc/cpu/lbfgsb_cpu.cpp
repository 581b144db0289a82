// torch.classes.pdfsolve.BatchedLbfgsb: B independent L-BFGS-B problems (csrc/optim/lbfgsb.h) advanced together by
// reverse communication. ask() returns the problems that want f and g and the points to evaluate them at; tell()
// hands back f (k,) and g (k, n) for those problems, which then run their iteration logic in parallel
// (at::parallel_for, one problem per task, float64 state). Converged or stopped problems are frozen.
// Padding variables are expressed as fixed variables (lower == upper).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/custom_class.h>
#include <torch/library.h>

#include <vector>

#include "cpu/solver_options.h"
#include "optim/lbfgsb.h"

namespace pdfsolve {
namespace {

using optim::Lbfgsb;

class BatchedLbfgsb : public torch::CustomClassHolder {
 public:
  BatchedLbfgsb(const at::Tensor& x0_, const at::Tensor& lower_, const at::Tensor& upper_, int64_t m, double ftol,
                double gtol, int64_t maxiter, int64_t maxfun, int64_t maxls) {
    const char* op = "pdfsolve.BatchedLbfgsb";
    TORCH_CHECK(x0_.dim() == 2, op, ": x0 must have shape (B, n), got ", x0_.sizes());
    TORCH_CHECK(lower_.sizes() == x0_.sizes() && upper_.sizes() == x0_.sizes(), op,
                ": lower and upper must have x0's shape ", x0_.sizes(), ", got ", lower_.sizes(), " and ",
                upper_.sizes());
    const optim::Options opt = solver_options(op, m, ftol, gtol, maxiter, maxfun, maxls);
    auto x0 = x0_.to(at::kCPU, at::kDouble).contiguous();
    auto lower = lower_.to(at::kCPU, at::kDouble).contiguous();
    auto upper = upper_.to(at::kCPU, at::kDouble).contiguous();
    TORCH_CHECK(at::isfinite(x0).all().item<bool>(), op, ": x0 must be finite");
    TORCH_CHECK((lower <= upper).all().item<bool>(), op, ": lower must be <= upper everywhere");
    TORCH_CHECK(!(lower.isnan().any().item<bool>() || upper.isnan().any().item<bool>()), op,
                ": bounds must not be NaN (use -inf/inf for none)");
    n_ = x0.size(1);
    const double *X = x0.data_ptr<double>(), *L = lower.data_ptr<double>(), *U = upper.data_ptr<double>();
    problems_.reserve(x0.size(0));
    for (int64_t b = 0; b < x0.size(0); ++b) problems_.emplace_back(X + b * n_, L + b * n_, U + b * n_, n_, opt);
  }

  //! (index (k,) int64, points (k, n) float64) of the problems that want f and g next.
  std::tuple<at::Tensor, at::Tensor> ask() const {
    std::vector<int64_t> idx;
    for (int64_t b = 0; b < batch(); ++b)
      if (problems_[b].needs_evaluation()) idx.push_back(b);
    auto index = at::tensor(idx, at::kLong);
    auto pts = at::empty({index.size(0), n_}, at::kDouble);
    double* P = pts.data_ptr<double>();
    for (size_t k = 0; k < idx.size(); ++k) {
      const auto& x = problems_[idx[k]].point();
      std::copy(x.begin(), x.end(), P + k * n_);
    }
    return {index, pts};
  }

  //! f (k,) and g (k, n) at the points of ask() for the problems in index (k,).
  void tell(const at::Tensor& index_, const at::Tensor& f_, const at::Tensor& g_) {
    const char* op = "pdfsolve.BatchedLbfgsb.tell";
    auto index = index_.to(at::kCPU, at::kLong).contiguous();
    auto f = f_.to(at::kCPU, at::kDouble).contiguous();
    auto g = g_.to(at::kCPU, at::kDouble).contiguous();
    const int64_t k = index.numel();
    TORCH_CHECK(index.dim() == 1, op, ": index must have shape (k,), got ", index.sizes());
    TORCH_CHECK(f.dim() == 1 && f.size(0) == k, op, ": f must have shape (", k, ",), got ", f.sizes());
    TORCH_CHECK(g.dim() == 2 && g.size(0) == k && g.size(1) == n_, op, ": g must have shape (", k, ", ", n_,
                "), got ", g.sizes());
    const int64_t* I = index.data_ptr<int64_t>();
    for (int64_t a = 0; a < k; ++a) {
      TORCH_CHECK(I[a] >= 0 && I[a] < batch(), op, ": index out of range: ", I[a]);
      TORCH_CHECK(problems_[I[a]].needs_evaluation(), op, ": problem ", I[a], " did not ask for an evaluation");
    }
    const double *F = f.data_ptr<double>(), *G = g.data_ptr<double>();
    at::parallel_for(0, k, 1, [&](int64_t a0, int64_t a1) {
      for (int64_t a = a0; a < a1; ++a) problems_[I[a]].tell(F[a], G + a * n_);
    });
  }

  at::Tensor x() const { return gather_vectors([](const Lbfgsb& p) { return &p.point(); }); }
  at::Tensor grad() const { return gather_vectors([](const Lbfgsb& p) { return &p.gradient(); }); }
  at::Tensor fun() const { return gather_scalars<double>(at::kDouble, [](const Lbfgsb& p) { return p.f(); }); }
  at::Tensor status() const {
    return gather_scalars<int64_t>(at::kLong, [](const Lbfgsb& p) { return static_cast<int64_t>(p.status()); });
  }
  at::Tensor iterations() const {
    return gather_scalars<int64_t>(at::kLong, [](const Lbfgsb& p) { return p.iterations(); });
  }
  at::Tensor evaluations() const {
    return gather_scalars<int64_t>(at::kLong, [](const Lbfgsb& p) { return p.evaluations(); });
  }

 private:
  int64_t batch() const { return static_cast<int64_t>(problems_.size()); }

  template <typename F>
  at::Tensor gather_vectors(F&& get) const {
    auto out = at::empty({batch(), n_}, at::kDouble);
    double* O = out.data_ptr<double>();
    for (int64_t b = 0; b < batch(); ++b) {
      const std::vector<double>* v = get(problems_[b]);
      std::copy(v->begin(), v->end(), O + b * n_);
    }
    return out;
  }

  template <typename T, typename F>
  at::Tensor gather_scalars(at::ScalarType dtype, F&& get) const {
    auto out = at::empty({batch()}, dtype);
    T* O = out.data_ptr<T>();
    for (int64_t b = 0; b < batch(); ++b) O[b] = get(problems_[b]);
    return out;
  }

  int64_t n_ = 0;
  std::vector<Lbfgsb> problems_;
};

}  // namespace
}  // namespace pdfsolve

TORCH_LIBRARY_FRAGMENT(pdfsolve, m) {
  m.class_<pdfsolve::BatchedLbfgsb>("BatchedLbfgsb")
      .def(torch::init<at::Tensor, at::Tensor, at::Tensor, int64_t, double, double, int64_t, int64_t, int64_t>())
      .def("ask", &pdfsolve::BatchedLbfgsb::ask)
      .def("tell", &pdfsolve::BatchedLbfgsb::tell)
      .def("x", &pdfsolve::BatchedLbfgsb::x)
      .def("grad", &pdfsolve::BatchedLbfgsb::grad)
      .def("fun", &pdfsolve::BatchedLbfgsb::fun)
      .def("status", &pdfsolve::BatchedLbfgsb::status)
      .def("iterations", &pdfsolve::BatchedLbfgsb::iterations)
      .def("evaluations", &pdfsolve::BatchedLbfgsb::evaluations);
}
