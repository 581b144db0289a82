// Argument checks of pdfsolve::acsf(_backward) shared by the CPU and CUDA registrations (torch headers; not for .cu
// files): atoms, parameter tensors, and the validated host tables built from them (common/acsf_math.h).
#pragma once

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include "common/acsf_math.h"
#include "common/op_checks.h"

namespace pdfsolve {

//! Checks pos/species, radial (n_r, 2) and angular (n_a, 3) float64 tables and rcut; returns the host tables.
inline acsf::HostTables check_acsf_inputs(const char* op, const at::Tensor& pos, const at::Tensor& species,
                                          int64_t n_species, const at::Tensor& radial, const at::Tensor& angular,
                                          double rcut) {
  check_atoms(op, pos, species, nullptr, n_species);
  TORCH_CHECK(radial.scalar_type() == at::kDouble && angular.scalar_type() == at::kDouble, op,
              ": radial and angular must be float64, got ", radial.scalar_type(), " and ", angular.scalar_type());
  TORCH_CHECK(radial.dim() == 2 && radial.size(1) == 2, op, ": radial must have shape (n_r, 2), got ",
              radial.sizes());
  TORCH_CHECK(angular.dim() == 2 && angular.size(1) == 3, op, ": angular must have shape (n_a, 3), got ",
              angular.sizes());
  const auto r = radial.to(at::kCPU).contiguous();
  const auto a = angular.to(at::kCPU).contiguous();
  auto h = acsf::build_tables(r.data_ptr<double>(), r.size(0), a.data_ptr<double>(), a.size(0), rcut);
  TORCH_CHECK(h.error.empty(), op, ": ", h.error);
  check_species_values(op, species, n_species);
  return h;
}

}  // namespace pdfsolve
