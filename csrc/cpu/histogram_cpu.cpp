// CPU kernels of pdfsolve::pair_histogram and pdfsolve::pair_histogram_backward (linear two-bin splatting).
// Distances and weights are computed in double for both dtypes and summed in double.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "common/debye_math.h"
#include "common/op_checks.h"
#include "cpu/pair_loop.h"

namespace pdfsolve {
namespace cpu {
namespace {

template <typename T>
void hist_units(double* acc, const T* pos, const int64_t* sp, int64_t n, int64_t S, double bw, int64_t nbins,
                int64_t u0, int64_t u1) {
  for_each_pair(pos, sp, n, static_cast<int>(S), u0, u1,
                [&](int64_t, int64_t, double r, double, double, double, int p) {
                  int64_t lo;
                  double f;
                  if (!hist_splat<double>(r, bw, nbins, lo, f)) return;
                  double* a = acc + p * nbins + lo;
                  a[0] += 1.0 - f;
                  a[1] += f;
                });
}

template <typename T>
void hist_grad_units(double* gp, const T* grad, const T* pos, const int64_t* sp, int64_t n, int64_t S, double bw,
                     int64_t nbins, int64_t u0, int64_t u1) {
  const double ibw = 1.0 / bw;
  for_each_pair(pos, sp, n, static_cast<int>(S), u0, u1,
                [&](int64_t i, int64_t j, double r, double dx, double dy, double dz, int p) {
                  int64_t lo;
                  double f;
                  if (!hist_splat<double>(r, bw, nbins, lo, f)) return;
                  const T* g = grad + p * nbins + lo;
                  const double dEdr = (static_cast<double>(g[1]) - static_cast<double>(g[0])) * ibw;
                  if (dEdr == 0.0) return;
                  const double s = dEdr / r;
                  gp[3 * i + 0] += s * dx;
                  gp[3 * i + 1] += s * dy;
                  gp[3 * i + 2] += s * dz;
                  gp[3 * j + 0] -= s * dx;
                  gp[3 * j + 1] -= s * dy;
                  gp[3 * j + 2] -= s * dz;
                });
}

template <typename T>
void hist_forward_impl(const at::Tensor& pos, const at::Tensor& sp, at::Tensor& out, int64_t S, double bw,
                       int64_t nbins) {
  const int64_t B = pos.size(0), N = pos.size(1), M = S * S * nbins;
  const T* P = pos.data_ptr<T>();
  const int64_t* SP = sp.data_ptr<int64_t>();
  T* O = out.data_ptr<T>();
  const int64_t nunits = n_fold_units(N);
  if (!use_atom_parallel(B, N, 1)) {
    at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
      std::vector<double> buf;
      if (!std::is_same<T, double>::value) buf.assign(M, 0.0);
      for (int64_t b = b0; b < b1; ++b) {
        T* o = O + b * M;
        if constexpr (std::is_same<T, double>::value) {
          hist_units<T>(o, P + b * N * 3, SP + b * N, N, S, bw, nbins, 0, nunits);  // out is zero-filled
        } else {
          hist_units<T>(buf.data(), P + b * N * 3, SP + b * N, N, S, bw, nbins, 0, nunits);
          for (int64_t k = 0; k < M; ++k) {
            o[k] = static_cast<T>(buf[k]);
            buf[k] = 0.0;
          }
        }
      }
    });
    return;
  }
  const int64_t nt = at::get_num_threads();
  std::vector<std::vector<double>> part(nt);
  for (int64_t b = 0; b < B; ++b) {
    for (auto& v : part) v.assign(M, 0.0);
    at::parallel_for(0, nunits, atom_grain(N, 1), [&](int64_t u0, int64_t u1) {
      hist_units<T>(part[at::get_thread_num()].data(), P + b * N * 3, SP + b * N, N, S, bw, nbins, u0, u1);
    });
    T* o = O + b * M;
    at::parallel_for(0, M, 4096, [&](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; ++k) {
        double s = 0.0;
        for (int64_t t = 0; t < nt; ++t) s += part[t][k];
        o[k] = static_cast<T>(s);
      }
    });
  }
}

template <typename T>
void hist_backward_impl(const at::Tensor& grad, const at::Tensor& pos, const at::Tensor& sp, at::Tensor& gpos,
                        int64_t S, double bw, int64_t nbins) {
  const int64_t B = pos.size(0), N = pos.size(1), M = S * S * nbins;
  const T* G = grad.data_ptr<T>();
  const T* P = pos.data_ptr<T>();
  const int64_t* SP = sp.data_ptr<int64_t>();
  T* GP = gpos.data_ptr<T>();
  const int64_t nunits = n_fold_units(N);
  if (!use_atom_parallel(B, N, 1)) {
    at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
      std::vector<double> buf(3 * N);
      for (int64_t b = b0; b < b1; ++b) {
        std::fill(buf.begin(), buf.end(), 0.0);
        hist_grad_units<T>(buf.data(), G + b * M, P + b * N * 3, SP + b * N, N, S, bw, nbins, 0, nunits);
        for (int64_t k = 0; k < 3 * N; ++k) GP[b * N * 3 + k] = static_cast<T>(buf[k]);
      }
    });
    return;
  }
  const int64_t nt = at::get_num_threads();
  std::vector<std::vector<double>> part(nt);
  for (int64_t b = 0; b < B; ++b) {
    for (auto& v : part) v.assign(3 * N, 0.0);
    at::parallel_for(0, nunits, atom_grain(N, 1), [&](int64_t u0, int64_t u1) {
      hist_grad_units<T>(part[at::get_thread_num()].data(), G + b * M, P + b * N * 3, SP + b * N, N, S, bw, nbins,
                         u0, u1);
    });
    for (int64_t k = 0; k < 3 * N; ++k) {
      double s = 0.0;
      for (int64_t t = 0; t < nt; ++t) s += part[t][k];
      GP[b * N * 3 + k] = static_cast<T>(s);
    }
  }
}

at::Tensor pair_histogram_cpu(const at::Tensor& pos_, const at::Tensor& species_, int64_t n_species,
                              double bin_width, int64_t nbins) {
  const char* op = "pdfsolve::pair_histogram";
  check_atoms(op, pos_, species_, nullptr, n_species);
  check_hist_params(op, bin_width, nbins);
  TORCH_CHECK(pos_.device().is_cpu(), op, ": pos must be a CPU tensor for the CPU kernel");
  auto pos = pos_.contiguous();
  auto sp = species_.contiguous();
  auto out = at::zeros({pos.size(0), n_species * n_species, nbins}, pos.options());
  check_species_values(op, sp, n_species);
  if (pos.size(0) == 0 || pos.size(1) < 2 || nbins < 2) return out;
  AT_DISPATCH_FLOATING_TYPES(pos.scalar_type(), "pair_histogram_cpu",
                             [&] { hist_forward_impl<scalar_t>(pos, sp, out, n_species, bin_width, nbins); });
  return out;
}

at::Tensor pair_histogram_backward_cpu(const at::Tensor& grad_, const at::Tensor& pos_, const at::Tensor& species_,
                                       int64_t n_species, double bin_width, int64_t nbins) {
  const char* op = "pdfsolve::pair_histogram_backward";
  check_atoms(op, pos_, species_, nullptr, n_species);
  check_hist_params(op, bin_width, nbins);
  check_grad(op, grad_, pos_, n_species, nbins, "nbins");
  TORCH_CHECK(pos_.device().is_cpu(), op, ": pos must be a CPU tensor for the CPU kernel");
  auto grad = grad_.contiguous();
  auto pos = pos_.contiguous();
  auto sp = species_.contiguous();
  auto gpos = at::zeros(pos.sizes(), pos.options());
  check_species_values(op, sp, n_species);
  if (pos.size(0) == 0 || pos.size(1) < 2 || nbins < 2) return gpos;
  AT_DISPATCH_FLOATING_TYPES(pos.scalar_type(), "pair_histogram_backward_cpu", [&] {
    hist_backward_impl<scalar_t>(grad, pos, sp, gpos, n_species, bin_width, nbins);
  });
  return gpos;
}

}  // namespace
}  // namespace cpu
}  // namespace pdfsolve

TORCH_LIBRARY_IMPL(pdfsolve, CPU, m) {
  m.impl("pair_histogram", &pdfsolve::cpu::pair_histogram_cpu);
  m.impl("pair_histogram_backward", &pdfsolve::cpu::pair_histogram_backward_cpu);
}
