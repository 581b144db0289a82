// Argument checks shared by the CPU and CUDA registrations of pdfsolve's ops (torch headers; not for .cu files).
#pragma once

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <cmath>
#include <string>

namespace pdfsolve {

//! pos (B, N, 3) float/double; species (B, N) int64; optional uiso (B, N) of pos's dtype; all on one device.
inline void check_atoms(const char* op, const at::Tensor& pos, const at::Tensor& species, const at::Tensor* uiso,
                        int64_t n_species) {
  TORCH_CHECK(pos.dim() == 3 && pos.size(2) == 3, op, ": pos must have shape (B, N, 3), got ", pos.sizes());
  TORCH_CHECK(pos.scalar_type() == at::kFloat || pos.scalar_type() == at::kDouble, op,
              ": pos must be float32 or float64, got ", pos.scalar_type());
  TORCH_CHECK(species.scalar_type() == at::kLong, op, ": species must be int64, got ", species.scalar_type());
  TORCH_CHECK(species.dim() == 2 && species.size(0) == pos.size(0) && species.size(1) == pos.size(1), op,
              ": species must have shape (B, N) = (", pos.size(0), ", ", pos.size(1), "), got ", species.sizes());
  TORCH_CHECK(species.device() == pos.device(), op, ": species must be on pos's device (", pos.device(), "), got ",
              species.device());
  if (uiso != nullptr) {
    TORCH_CHECK(uiso->scalar_type() == pos.scalar_type(), op, ": uiso must have pos's dtype (", pos.scalar_type(),
                "), got ", uiso->scalar_type());
    TORCH_CHECK(uiso->dim() == 2 && uiso->size(0) == pos.size(0) && uiso->size(1) == pos.size(1), op,
                ": uiso must have shape (B, N) = (", pos.size(0), ", ", pos.size(1), "), got ", uiso->sizes());
    TORCH_CHECK(uiso->device() == pos.device(), op, ": uiso must be on pos's device (", pos.device(), "), got ",
                uiso->device());
  }
  TORCH_CHECK(n_species >= 1, op, ": n_species must be >= 1, got ", n_species);
  TORCH_CHECK(n_species <= 4096, op, ": n_species must be <= 4096, got ", n_species);
}

//! grad (B, S*S, nq) of pos's dtype and device.
inline void check_grad(const char* op, const at::Tensor& grad, const at::Tensor& pos, int64_t n_species,
                       int64_t n_last, const char* last_name) {
  TORCH_CHECK(grad.scalar_type() == pos.scalar_type(), op, ": grad must have pos's dtype (", pos.scalar_type(),
              "), got ", grad.scalar_type());
  TORCH_CHECK(grad.device() == pos.device(), op, ": grad must be on pos's device (", pos.device(), "), got ",
              grad.device());
  TORCH_CHECK(grad.dim() == 3 && grad.size(0) == pos.size(0) && grad.size(1) == n_species * n_species &&
                  grad.size(2) == n_last,
              op, ": grad must have shape (B, n_species**2, ", last_name, ") = (", pos.size(0), ", ",
              n_species * n_species, ", ", n_last, "), got ", grad.sizes());
}

inline void check_debye_params(const char* op, int64_t nq, double q0, double qstep, double rcut, double delta1,
                               double delta2, double qbroad) {
  TORCH_CHECK(nq >= 0, op, ": nq must be >= 0, got ", nq);
  TORCH_CHECK(nq <= (int64_t(1) << 24), op, ": nq must be <= 2**24, got ", nq);
  TORCH_CHECK(std::isfinite(q0) && std::isfinite(qstep), op, ": q0 and qstep must be finite, got ", q0, ", ", qstep);
  TORCH_CHECK(!std::isnan(rcut), op, ": rcut must not be NaN");
  TORCH_CHECK(std::isfinite(delta1) && std::isfinite(delta2) && std::isfinite(qbroad), op,
              ": delta1, delta2 and qbroad must be finite");
}

inline void check_hist_params(const char* op, double bin_width, int64_t nbins) {
  TORCH_CHECK(nbins >= 0, op, ": nbins must be >= 0, got ", nbins);
  TORCH_CHECK(std::isfinite(bin_width) && bin_width > 0.0, op, ": bin_width must be finite and > 0, got ",
              bin_width);
}

//! Every species value < n_species (negative values mark padding). Reads the tensor (one sync on CUDA).
inline void check_species_values(const char* op, const at::Tensor& species, int64_t n_species) {
  if (species.numel() == 0) return;
  const int64_t top = species.max().item<int64_t>();
  TORCH_CHECK(top < n_species, op, ": species values must be < n_species (", n_species,
              ") or negative for padding, got ", top);
}

//! Gaussian gridding: bin width, window (tau0, truncate) and bin count.
inline void check_grid_params(const char* op, double bin_width, int64_t nbins, double tau0, double truncate) {
  check_hist_params(op, bin_width, nbins);
  TORCH_CHECK(std::isfinite(tau0) && tau0 > 0, op, ": tau0 must be finite and > 0, got ", tau0);
  TORCH_CHECK(std::isfinite(truncate) && truncate > 0, op, ": truncate must be finite and > 0, got ", truncate);
}

//! pos (B, N, 3) float/double and mask (B, N) bool on pos's device (the geometry ops).
inline void check_masked_atoms(const char* op, const at::Tensor& pos, const at::Tensor& mask) {
  TORCH_CHECK(pos.dim() == 3 && pos.size(2) == 3, op, ": pos must have shape (B, N, 3), got ", pos.sizes());
  TORCH_CHECK(pos.scalar_type() == at::kFloat || pos.scalar_type() == at::kDouble, op,
              ": pos must be float32 or float64, got ", pos.scalar_type());
  TORCH_CHECK(mask.scalar_type() == at::kBool, op, ": mask must be bool, got ", mask.scalar_type());
  TORCH_CHECK(mask.dim() == 2 && mask.size(0) == pos.size(0) && mask.size(1) == pos.size(1), op,
              ": mask must have shape (B, N) = (", pos.size(0), ", ", pos.size(1), "), got ", mask.sizes());
  TORCH_CHECK(mask.device() == pos.device(), op, ": mask must be on pos's device (", pos.device(), "), got ",
              mask.device());
}

//! A tensor t of pos's dtype and device with the given sizes (named `name` in the error).
inline void check_like_pos(const char* op, const char* name, const at::Tensor& t, const at::Tensor& pos,
                           at::IntArrayRef sizes) {
  TORCH_CHECK(t.scalar_type() == pos.scalar_type(), op, ": ", name, " must have pos's dtype (", pos.scalar_type(),
              "), got ", t.scalar_type());
  TORCH_CHECK(t.device() == pos.device(), op, ": ", name, " must be on pos's device (", pos.device(), "), got ",
              t.device());
  TORCH_CHECK(t.sizes() == sizes, op, ": ", name, " must have shape ", sizes, ", got ", t.sizes());
}

//! points (P, 3) of pos's dtype and device.
inline void check_points(const char* op, const at::Tensor& points, const at::Tensor& pos) {
  TORCH_CHECK(points.dim() == 2 && points.size(1) == 3, op, ": points must have shape (P, 3), got ",
              points.sizes());
  check_like_pos(op, "points", points, pos, points.sizes());
}

//! sigma (B,) of pos's dtype and device, every value finite and > 0 (reads the tensor: one sync on CUDA).
inline void check_sigma(const char* op, const at::Tensor& sigma, const at::Tensor& pos) {
  check_like_pos(op, "sigma", sigma, pos, {pos.size(0)});
  if (sigma.numel() == 0) return;
  const bool ok = (sigma.isfinite() & (sigma > 0)).all().item<bool>();
  TORCH_CHECK(ok, op, ": sigma must be finite and > 0 (Angstrom)");
}

//! graph_laplacian's form: 0 affinity, 1 Laplacian, 2 normalised Laplacian.
inline void check_laplacian_form(const char* op, int64_t form) {
  TORCH_CHECK(form >= 0 && form <= 2, op, ": form must be 0 (affinity), 1 (laplacian) or 2 (normalized), got ",
              form);
}

}  // namespace pdfsolve
