"""pdfsolve's compiled ops with their plain-torch reference as oracle and fallback.

Public functions
----------------
:func:`debye_partials`   Debye sums per species pair, (B, S*S, nq), differentiable in pos and uiso.
:func:`pair_histogram`   pair-distance histograms per species pair, (B, S*S, nbins), differentiable in pos.
:func:`fixed_pair_grid`  the same with one Gaussian width for every pair (tabulated taps, ~4x faster).
:func:`gaussian_pair_grid`  pairs spread on an r grid by per-pair Gaussians (the fast Debye mode), differentiable
                         in pos and uiso.
:func:`pair_distances`, :func:`point_distances`  distance matrices (B, N, N) and to fixed points (B, N, P).
:func:`graph_laplacian`  Gaussian affinity / graph Laplacian (B, N, N), differentiable in pos and sigma.
:func:`acsf`             Behler G2/G5 symmetry functions per atom, (B, N, F), differentiable in pos.
:func:`extension_available`  whether the compiled extension ``pdfsolve._C`` was loaded.

Set ``PDFSOLVE_FORCE_REFERENCE=1`` to force the plain-torch implementations (:mod:`pdfsolve.ops.reference`).
"""
from . import reference
from ._acsf import acsf
from ._acsf import register as _register_acsf
from ._fixed_grid import fixed_pair_grid
from ._fixed_grid import register as _register_fixed_grid
from ._geometry import graph_laplacian, pair_distances, point_distances
from ._geometry import register as _register_geometry
from ._gridding import gaussian_pair_grid
from ._gridding import register as _register_gridding
from ._solvers import register as _register_solvers
from ._registry import debye_partials, extension_available, force_reference, has_kernel, pair_histogram

_register_gridding()
_register_fixed_grid()
_register_acsf()
_register_geometry()
_register_solvers()

__all__ = ["acsf", "debye_partials", "fixed_pair_grid", "gaussian_pair_grid", "pair_histogram", "pair_distances", "point_distances",
           "graph_laplacian", "extension_available", "force_reference", "has_kernel", "reference"]
