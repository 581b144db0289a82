"""Structure representations besides coordinates, differentiable in the positions (compiled ops, float64 oracle).

:func:`pair_distances`, :func:`point_distances`   distance matrix and distances to fixed (satellite) points.
:func:`sphere_points`   reproducible satellite points on a sphere (Fibonacci lattice).
:func:`graph_laplacian`, :func:`pad_square`, :func:`to_blocks`, :func:`from_blocks`   Gaussian affinity /
Laplacian and CbLDM's 4 x 128 x 128 block layout.
:func:`acsf`, :func:`pooled_acsf`, :class:`ACSFParameters`   atom-centred symmetry functions (Behler G2/G5).
"""
from .distances import pair_distances, point_distances, sphere_points
from .laplacian import CBLDM_SIGMA, from_blocks, graph_laplacian, pad_square, to_blocks
from .acsf import ACSFParameters, acsf, pooled_acsf
