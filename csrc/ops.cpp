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
}
