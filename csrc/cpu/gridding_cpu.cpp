// CPU kernels of gaussian_pair_grid and its backward (schemas in csrc/ops.cpp, definition in
// python/pdfsolve/ops/reference.py::gaussian_pair_grid).
//
// Per pair: distance r, width s, the window of bins within truncate*s, then the Gaussian over the
// window by a multiplicative recurrence (common/gridding_math.h), accumulated in float64.
// Parallel over the batch (grain 1, each cluster owns its output slice); when the batch is small and
// the clusters large, parallel over atom rows of one cluster with thread-local grids merged after.
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <vector>

// Nothing here reads errno: let sqrt/exp skip it (and the distance loop vectorise).
#pragma GCC optimize("no-math-errno")
#include "common/op_checks.h"
#include "common/gridding_math.h"

namespace pdfsolve {
namespace {

using gridding::GridParams;

// Real atoms of one cluster (padding dropped), float64, structure of arrays, plus per-row scratch.
struct Cluster {
  std::vector<double> x, y, z, u;
  std::vector<int64_t> s, idx;  // species, index in the padded cluster
  int64_t n = 0;
  explicit Cluster(int64_t N) : x(N), y(N), z(N), u(N), s(N), idx(N) {}
};

// Per-thread scratch of one row: squared distances and distances to the atoms j > i.
struct RowScratch {
  std::vector<double> d2, r;
  explicit RowScratch(int64_t N) : d2(N), r(N) {}
};

// Atom rows at or above this size take the atom-parallel path when the batch is too small to fill
// the threads.
constexpr int64_t kAtomParallelMinAtoms = 64;

void check_inputs(const char* op, const at::Tensor& pos, const at::Tensor& species, const at::Tensor& uiso,
                  int64_t n_species, double bin_width, int64_t nbins, double tau0, double truncate) {
  check_atoms(op, pos, species, &uiso, n_species);
  check_grid_params(op, bin_width, nbins, tau0, truncate);
}

// Real atoms of cluster b (padding dropped), in float64.
template <typename scalar_t>
void gather_atoms(const scalar_t* pos, const int64_t* species, const scalar_t* uiso, int64_t N, int64_t S,
                  Cluster& c) {
  int64_t n = 0;
  for (int64_t i = 0; i < N; ++i) {
    const int64_t s = species[i];
    if (s < 0) continue;
    c.x[n] = double(pos[3 * i]);
    c.y[n] = double(pos[3 * i + 1]);
    c.z[n] = double(pos[3 * i + 2]);
    c.u[n] = double(uiso[i]);
    c.s[n] = s;
    c.idx[n] = i;
    ++n;
  }
  c.n = n;
}

// Distances from atom i to the atoms j > i: a branch-free loop the compiler vectorises (sqrt included,
// math errno being off in this file), so the per-pair loop below starts from ready distances.
inline void row_distances(const Cluster& c, int64_t i, RowScratch& w) {
  const double xi = c.x[i], yi = c.y[i], zi = c.z[i];
  const double* __restrict__ xs = c.x.data();
  const double* __restrict__ ys = c.y.data();
  const double* __restrict__ zs = c.z.data();
  double* __restrict__ d2 = w.d2.data();
  double* __restrict__ r = w.r.data();
  for (int64_t j = i + 1; j < c.n; ++j) {
    const double dx = xi - xs[j], dy = yi - ys[j], dz = zi - zs[j];
    const double q = dx * dx + dy * dy + dz * dz;
    d2[j] = q;
    r[j] = std::sqrt(q);
  }
}

// Whether pair (i, j) counts: not coincident (reference: d^2 > tol^2), within rcut, finite.
inline bool pair_counts(double d2, double r, double rcut) {
  return d2 > kCoincidentTol * kCoincidentTol && r <= rcut;
}

// Forward: all pairs (i, j > i) of the rows i in `rows` into grid (S*S, nbins), float64.
template <typename RowFn>
void grid_rows(const Cluster& c, int64_t S, const GridParams<double>& p, double* grid, RowScratch& w,
               RowFn&& rows) {
  const double h = p.h, inv_h = p.inv_h;
  const int64_t nbins = p.nbins;
  gridding::WidthCache<double> wc;
  rows([&](int64_t i) {
    row_distances(c, i, w);
    const double ui = c.u[i];
    const int64_t si = c.s[i];
    for (int64_t j = i + 1; j < c.n; ++j) {
      const double r = w.r[j];
      if (!pair_counts(w.d2[j], r, p.rcut)) continue;
      const double usum = ui + c.u[j];
      const auto pw = gridding::pair_width(r, usum, p, wc);
      const double half = p.truncate * pw.s;
      const int64_t sj = c.s[j];
      double* row = grid + (std::min(si, sj) * S + std::max(si, sj)) * nbins;
      const double norm = kInvSqrt2Pi / (pw.s * r);
      int64_t lo, hi;
      if (!pair_window(r, half, h, inv_h, nbins, lo, hi)) continue;
      gridding::for_each_bin(r, pw.s2, wc.cstep, norm, h, inv_h, lo, hi,
                             [row](int64_t m, double, double g) { row[m] += g; });
    }
  });
}

// Backward: gradient sums of the pairs (i, j > i), rows in `rows`, into gpos (n, 3) and gu (n), float64,
// indexed like the cluster's real atoms.
template <typename scalar_t, typename RowFn>
void grad_rows(const Cluster& c, int64_t S, const GridParams<double>& p, const scalar_t* grad, double* gpos,
               double* gu, RowScratch& w, RowFn&& rows) {
  const double h = p.h;
  gridding::WidthCache<double> wc;
  rows([&](int64_t i) {
    row_distances(c, i, w);
    const double xi = c.x[i], yi = c.y[i], zi = c.z[i], ui = c.u[i];
    const int64_t si = c.s[i];
    double gxi = 0, gyi = 0, gzi = 0, gui = 0;
    for (int64_t j = i + 1; j < c.n; ++j) {
      const double r = w.r[j];
      if (!pair_counts(w.d2[j], r, p.rcut)) continue;
      const double usum = ui + c.u[j];
      const auto pw = gridding::pair_width(r, usum, p, wc);
      int64_t lo, hi;
      if (!pair_window(r, p.truncate * pw.s, h, p.inv_h, p.nbins, lo, hi)) continue;
      const int64_t sj = c.s[j];
      const scalar_t* grow = grad + (std::min(si, sj) * S + std::max(si, sj)) * p.nbins;
      const double norm = kInvSqrt2Pi / (pw.s * r);
      double S0 = 0, S1 = 0, S2 = 0;
      gridding::for_each_bin(r, pw.s2, wc.cstep, norm, h, p.inv_h, lo, hi, [&](int64_t m, double x, double g) {
        const double gg = double(grow[m]) * g;
        S0 += gg;
        S1 += gg * x;
        S2 += gg * x * x;
      });
      double dLdr, dLdu;
      gridding::pair_grad(r, usum, pw, S0, S1, S2, p, dLdr, dLdu);
      const double k = dLdr / r;
      const double dx = xi - c.x[j], dy = yi - c.y[j], dz = zi - c.z[j];
      gxi += k * dx;
      gyi += k * dy;
      gzi += k * dz;
      gui += dLdu;
      gpos[3 * j] -= k * dx;
      gpos[3 * j + 1] -= k * dy;
      gpos[3 * j + 2] -= k * dz;
      gu[j] += dLdu;
    }
    gpos[3 * i] += gxi;
    gpos[3 * i + 1] += gyi;
    gpos[3 * i + 2] += gzi;
    gu[i] += gui;
  });
}

// Rows of one cluster for the atom-parallel path: task k takes rows k and n-1-k, so every task has
// about n pairs.
template <typename Body>
void for_folded_rows(int64_t n, int64_t k, Body&& body) {
  body(k);
  if (n - 1 - k != k) body(n - 1 - k);
}

bool use_atom_parallel(int64_t B, int64_t N) {
  const int64_t nt = at::get_num_threads();
  return nt > 1 && B < 2 * nt && N >= kAtomParallelMinAtoms;
}

at::Tensor gaussian_pair_grid_cpu(const at::Tensor& pos_in, const at::Tensor& species_in, const at::Tensor& uiso_in,
                                  int64_t n_species, double bin_width, int64_t nbins, double tau0, double truncate,
                                  double rcut, double delta1, double delta2, double qbroad) {
  const char* op = "gaussian_pair_grid";
  check_inputs(op, pos_in, species_in, uiso_in, n_species, bin_width, nbins, tau0, truncate);
  const int64_t B = pos_in.size(0), N = pos_in.size(1), S = n_species, SS = S * S;
  auto out = at::zeros({B, SS, nbins}, pos_in.options());
  check_species_values(op, species_in, S);
  if (B == 0 || N < 2 || nbins == 0) return out;
  const auto pos = pos_in.contiguous();
  const auto species = species_in.contiguous();
  const auto uiso = uiso_in.contiguous();
  const auto p = gridding::make_grid_params<double>(bin_width, nbins, tau0, truncate, rcut, delta1, delta2, qbroad);
  const int64_t G = SS * nbins;

  AT_DISPATCH_FLOATING_TYPES(pos.scalar_type(), "gaussian_pair_grid_cpu", [&] {
    const scalar_t* pp = pos.data_ptr<scalar_t>();
    const int64_t* sp = species.data_ptr<int64_t>();
    const scalar_t* up = uiso.data_ptr<scalar_t>();
    scalar_t* op_ = out.data_ptr<scalar_t>();

    if (!use_atom_parallel(B, N)) {
      at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
        Cluster atoms(N);
        RowScratch scratch(N);
        std::vector<double> buf(static_cast<size_t>(G));  // float64 accumulator, any dtype
        for (int64_t b = b0; b < b1; ++b) {
          gather_atoms(pp + b * N * 3, sp + b * N, up + b * N, N, S, atoms);
          const int64_t n = atoms.n;
          if (n < 2) continue;
          std::fill(buf.begin(), buf.end(), 0.0);
          grid_rows(atoms, S, p, buf.data(), scratch, [n](auto&& body) {
            for (int64_t i = 0; i + 1 < n; ++i) body(i);
          });
          scalar_t* ob = op_ + b * G;
          for (int64_t k = 0; k < G; ++k) ob[k] = static_cast<scalar_t>(buf[k]);
        }
      });
    } else {
      const int64_t nt = at::get_num_threads();
      std::vector<double> bufs(static_cast<size_t>(nt * G));
      Cluster atoms(N);
      for (int64_t b = 0; b < B; ++b) {
        gather_atoms(pp + b * N * 3, sp + b * N, up + b * N, N, S, atoms);
        const int64_t n = atoms.n;
        if (n < 2) continue;
        std::fill(bufs.begin(), bufs.end(), 0.0);
        const int64_t ntask = n / 2;  // task k: rows k and n-1-k (row n-1 has no pairs)
        std::vector<char> used(static_cast<size_t>(nt), 0);
        at::parallel_for(0, ntask, 1, [&](int64_t k0, int64_t k1) {
          const int64_t tid = at::get_thread_num();
          used[tid] = 1;
          double* grid = bufs.data() + tid * G;
          RowScratch scratch(N);
          grid_rows(atoms, S, p, grid, scratch, [&](auto&& body) {
            for (int64_t k = k0; k < k1; ++k) for_folded_rows(n, k, body);
          });
        });
        // n/2 tasks cover rows 0..n-1 when n is even; for odd n the middle row (n-1)/2 is left.
        if (n % 2 == 1) {
          used[0] = 1;
          const int64_t mid = (n - 1) / 2;
          RowScratch scratch(N);
          grid_rows(atoms, S, p, bufs.data(), scratch, [mid](auto&& body) { body(mid); });
        }
        scalar_t* ob = op_ + b * G;
        at::parallel_for(0, G, 4096, [&](int64_t k0, int64_t k1) {
          for (int64_t k = k0; k < k1; ++k) {
            double acc = 0;
            for (int64_t t = 0; t < nt; ++t)
              if (used[t]) acc += bufs[t * G + k];
            ob[k] = static_cast<scalar_t>(acc);
          }
        });
      }
    }
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> gaussian_pair_grid_backward_cpu(
    const at::Tensor& grad_in, const at::Tensor& pos_in, const at::Tensor& species_in, const at::Tensor& uiso_in,
    int64_t n_species, double bin_width, int64_t nbins, double tau0, double truncate, double rcut, double delta1,
    double delta2, double qbroad) {
  const char* op = "gaussian_pair_grid_backward";
  check_inputs(op, pos_in, species_in, uiso_in, n_species, bin_width, nbins, tau0, truncate);
  const int64_t B = pos_in.size(0), N = pos_in.size(1), S = n_species, SS = S * S;
  check_grad(op, grad_in, pos_in, n_species, nbins, "nbins");
  check_species_values(op, species_in, S);
  auto gpos_out = at::zeros({B, N, 3}, pos_in.options());
  auto gu_out = at::zeros({B, N}, pos_in.options());
  if (B == 0 || N < 2 || nbins == 0) return {gpos_out, gu_out};
  const auto grad = grad_in.contiguous();
  const auto pos = pos_in.contiguous();
  const auto species = species_in.contiguous();
  const auto uiso = uiso_in.contiguous();
  const auto p = gridding::make_grid_params<double>(bin_width, nbins, tau0, truncate, rcut, delta1, delta2, qbroad);
  const int64_t G = SS * nbins;

  AT_DISPATCH_FLOATING_TYPES(pos.scalar_type(), "gaussian_pair_grid_backward_cpu", [&] {
    const scalar_t* gp = grad.data_ptr<scalar_t>();
    const scalar_t* pp = pos.data_ptr<scalar_t>();
    const int64_t* sp = species.data_ptr<int64_t>();
    const scalar_t* up = uiso.data_ptr<scalar_t>();
    scalar_t* gpo = gpos_out.data_ptr<scalar_t>();
    scalar_t* guo = gu_out.data_ptr<scalar_t>();

    auto write_back = [&](int64_t b, const Cluster& atoms, const double* gpos, const double* gu) {
      for (int64_t a = 0; a < atoms.n; ++a) {
        const int64_t i = atoms.idx[a];
        for (int d = 0; d < 3; ++d) gpo[(b * N + i) * 3 + d] = static_cast<scalar_t>(gpos[3 * a + d]);
        guo[b * N + i] = static_cast<scalar_t>(gu[a]);
      }
    };

    if (!use_atom_parallel(B, N)) {
      at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
        Cluster atoms(N);
        RowScratch scratch(N);
        std::vector<double> gpos(3 * N), gu(N);
        for (int64_t b = b0; b < b1; ++b) {
          gather_atoms(pp + b * N * 3, sp + b * N, up + b * N, N, S, atoms);
          const int64_t n = atoms.n;
          if (n < 2) continue;
          std::fill(gpos.begin(), gpos.begin() + 3 * n, 0.0);
          std::fill(gu.begin(), gu.begin() + n, 0.0);
          grad_rows(atoms, S, p, gp + b * G, gpos.data(), gu.data(), scratch, [n](auto&& body) {
            for (int64_t i = 0; i + 1 < n; ++i) body(i);
          });
          write_back(b, atoms, gpos.data(), gu.data());
        }
      });
    } else {
      const int64_t nt = at::get_num_threads();
      std::vector<double> gpos(static_cast<size_t>(nt * 3 * N)), gu(static_cast<size_t>(nt * N));
      std::vector<double> gpos_sum(3 * N), gu_sum(N);
      Cluster atoms(N);
      for (int64_t b = 0; b < B; ++b) {
        gather_atoms(pp + b * N * 3, sp + b * N, up + b * N, N, S, atoms);
        const int64_t n = atoms.n;
        if (n < 2) continue;
        std::fill(gpos.begin(), gpos.end(), 0.0);
        std::fill(gu.begin(), gu.end(), 0.0);
        const int64_t ntask = n / 2;
        at::parallel_for(0, ntask, 1, [&](int64_t k0, int64_t k1) {
          const int64_t tid = at::get_thread_num();
          RowScratch scratch(N);
          grad_rows(atoms, S, p, gp + b * G, gpos.data() + tid * 3 * N, gu.data() + tid * N, scratch,
                    [&](auto&& body) {
            for (int64_t k = k0; k < k1; ++k) for_folded_rows(n, k, body);
          });
        });
        if (n % 2 == 1) {
          const int64_t mid = (n - 1) / 2;
          RowScratch scratch(N);
          grad_rows(atoms, S, p, gp + b * G, gpos.data(), gu.data(), scratch, [mid](auto&& body) { body(mid); });
        }
        for (int64_t a = 0; a < n; ++a) {
          double g3[3] = {0, 0, 0}, g1 = 0;
          for (int64_t t = 0; t < nt; ++t) {
            for (int d = 0; d < 3; ++d) g3[d] += gpos[t * 3 * N + 3 * a + d];
            g1 += gu[t * N + a];
          }
          for (int d = 0; d < 3; ++d) gpos_sum[3 * a + d] = g3[d];
          gu_sum[a] = g1;
        }
        write_back(b, atoms, gpos_sum.data(), gu_sum.data());
      }
    }
  });
  return {gpos_out, gu_out};
}

}  // namespace

TORCH_LIBRARY_IMPL(pdfsolve, CPU, m) {
  m.impl("gaussian_pair_grid", &gaussian_pair_grid_cpu);
  m.impl("gaussian_pair_grid_backward", &gaussian_pair_grid_backward_cpu);
}

}  // namespace pdfsolve
