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

}  // namespace pdfsolve
