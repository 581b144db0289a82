// Op schemas of pdfsolve, declared once. Each backend file (csrc/cpu/*.cpp, csrc/cuda/*.cu)
// registers only its own dispatch key; autograd and fake kernels are registered from Python
// (python/pdfsolve/ops/_registry.py).
#include <Python.h>
#include <torch/library.h>

extern "C" {
// An empty Python module: importing pdfsolve._C runs the static op registrations below.
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
}

TORCH_LIBRARY(pdfsolve, m) {
  // Debye partial sums per species pair, see python/pdfsolve/ops/reference.py for the definition.
  m.def(
      "debye_partials(Tensor pos, Tensor species, Tensor uiso, int n_species, float q0, float qstep, "
      "int nq, float rcut, float delta1, float delta2, float qbroad) -> Tensor");
  m.def(
      "debye_partials_backward(Tensor grad, Tensor pos, Tensor species, Tensor uiso, int n_species, "
      "float q0, float qstep, int nq, float rcut, float delta1, float delta2, float qbroad) "
      "-> (Tensor, Tensor)");
  // Pair distances spread on a uniform r grid with a Gaussian per pair (1/r weighted): the gridding
  // step of pdfsolve's fast Debye sum (a Gaussian-kernel non-uniform FFT).
  m.def(
      "gaussian_pair_grid(Tensor pos, Tensor species, Tensor uiso, int n_species, float bin_width, "
      "int nbins, float tau0, float truncate, float rcut, float delta1, float delta2, float qbroad) -> Tensor");
  m.def(
      "gaussian_pair_grid_backward(Tensor grad, Tensor pos, Tensor species, Tensor uiso, int n_species, "
      "float bin_width, int nbins, float tau0, float truncate, float rcut, float delta1, float delta2, "
      "float qbroad) -> (Tensor, Tensor)");
  // gaussian_pair_grid's common case, one width tau0 for every pair (no U_iso, no Jeong terms): table-driven.
  m.def("fixed_pair_grid(Tensor pos, Tensor species, int n_species, float bin_width, int nbins, float tau0, float truncate, float rcut) -> Tensor");
  m.def("fixed_pair_grid_backward(Tensor grad, Tensor pos, Tensor species, int n_species, float bin_width, int nbins, float tau0, float truncate, float rcut) -> Tensor");
  // Pair-distance histograms per species pair with linear two-bin splatting.
  m.def("pair_histogram(Tensor pos, Tensor species, int n_species, float bin_width, int nbins) -> Tensor");
  m.def(
      "pair_histogram_backward(Tensor grad, Tensor pos, Tensor species, int n_species, float bin_width, "
      "int nbins) -> Tensor");

  // ---- geometry ops (python/pdfsolve/ops/reference_geometry.py, reference_acsf.py define them) ----
  // Euclidean distances between the real atoms of each cluster (mask true), (B, N, N); zero on the diagonal and
  // for padding. The backward is zero for coincident atoms.
  m.def("pair_distances(Tensor pos, Tensor mask) -> Tensor");
  m.def("pair_distances_backward(Tensor grad, Tensor pos, Tensor mask) -> Tensor");
  // Distances from each real atom to P fixed points (satellites), (B, N, P); the points get no gradient.
  m.def("point_distances(Tensor pos, Tensor mask, Tensor points) -> Tensor");
  m.def("point_distances_backward(Tensor grad, Tensor pos, Tensor mask, Tensor points) -> Tensor");
  // Gaussian affinity W_ij = exp(-d_ij^2 / (2 sigma_b^2)) (form 0, W_ii = 1), graph Laplacian L = D - W (form 1)
  // or normalised Laplacian I - D^-1/2 W D^-1/2 (form 2; D and W without self-loops), (B, N, N).
  m.def("graph_laplacian(Tensor pos, Tensor mask, Tensor sigma, int form) -> Tensor");
  m.def("graph_laplacian_backward(Tensor grad, Tensor pos, Tensor mask, Tensor sigma, int form) -> (Tensor, Tensor)");
  // Atom-centred symmetry functions (Behler G2 radial, G5 angular) per atom with per-element channels, (B, N, F).
  m.def("acsf(Tensor pos, Tensor species, int n_species, Tensor radial, Tensor angular, float rcut) -> Tensor");
  m.def(
      "acsf_backward(Tensor grad, Tensor pos, Tensor species, int n_species, Tensor radial, Tensor angular, "
      "float rcut) -> Tensor");

  // ---- reconstruction solvers: whole L-BFGS-B runs with the objective in C++ (csrc/optim) ----
  // Trilateration of B clusters from target atom-atom (B, N, N) and atom-point (B, N, P) distances to fixed points
  // (P, 3), from x0 (B, N, 3); returns (x, f, iterations, status) with the status codes of pdfsolve.optim.STATUS.
  m.def(
      "trilaterate(Tensor x0, Tensor mask, Tensor target_pair, Tensor target_points, Tensor points, int m, "
      "float ftol, float gtol, int maxiter) -> (Tensor, Tensor, Tensor, Tensor)");
  // Fingerprint inversion (csrc/optim/fingerprint_objective.h): M problems x (M, N, 3), species (M, N), target and
  // weight (M, len(pooling) F) for the pooled ACSF (pooling codes 0 max, 1 min, 2 mean); f = weighted squared error
  // (bounds: every atom held within the max/min targets) + penalty * sum max(0, min_distance - r_ij)^2.
  // fingerprint_loss -> (f (M,), grad (M, N, 3));
  // invert_fingerprint runs L-BFGS-B from x0 -> (x, f, iterations, status).
  m.def(
      "fingerprint_loss(Tensor x, Tensor species, int n_species, Tensor target, Tensor weight, Tensor radial, "
      "Tensor angular, float rcut, int[] pooling, float min_distance, float penalty, bool bounds) "
      "-> (Tensor, Tensor)");
  m.def(
      "invert_fingerprint(Tensor x0, Tensor species, int n_species, Tensor target, Tensor weight, Tensor radial, "
      "Tensor angular, float rcut, int[] pooling, float min_distance, float penalty, bool bounds, int m, float ftol, "
      "float gtol, int maxiter) -> (Tensor, Tensor, Tensor, Tensor)");
  // Coordinates (B, N, 3) whose Gaussian affinity exp(-d^2 / (2 sigma^2)) (sigma (B,)) fits a target (B, N, N) in
  // least squares, from x0; returns (x, f, iterations, status).
  m.def(
      "fit_affinity(Tensor x0, Tensor mask, Tensor target, Tensor sigma, int m, float ftol, float gtol, "
      "int maxiter) -> (Tensor, Tensor, Tensor, Tensor)");
}
