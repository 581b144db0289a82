// ACSF of one cluster on the host, for solvers that evaluate the features inside their own loop (the fingerprint
// objective, csrc/optim/fingerprint_objective.h, driven by csrc/cpu/fingerprint_cpu.cpp). The maths is the CPU
// kernel's own (csrc/cpu/acsf_cpu.cpp implements this class); serial, in double. No torch headers.
#pragma once

#include <cstdint>
#include <memory>

#include "common/acsf_math.h"

namespace pdfsolve {
namespace cpu {

//! Evaluator for clusters of N atom slots and S species: owns the per-centre scratch, so use one per thread.
//! The tables `t` must outlive it.
class AcsfCluster {
 public:
  AcsfCluster(int64_t n_atoms, int n_species, double rcut, const acsf::Tables& t);
  ~AcsfCluster();
  AcsfCluster(const AcsfCluster&) = delete;
  AcsfCluster& operator=(const AcsfCluster&) = delete;

  //! Features per atom, F = S n_r + S (S + 1) / 2 n_a.
  int64_t n_features() const;
  //! Features (N, F) of the atoms at pos (N, 3) [Angstrom] with species (N) (-1 = padding: its row is zero).
  void forward(const double* pos, const int64_t* species, double* out);
  //! gpos (N, 3) = d/dpos sum_{i, f} grad[i, f] G_f(i), overwritten; grad (N, F). Centres whose grad row is all
  //! zero cost nothing.
  void backward(const double* grad, const double* pos, const int64_t* species, double* gpos);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cpu
}  // namespace pdfsolve
