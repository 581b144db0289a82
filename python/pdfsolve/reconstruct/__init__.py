"""Coordinates from the representations the generative routes predict: distances to atoms and satellites
(:func:`trilaterate`), a Gaussian affinity or graph Laplacian (:func:`laplacian_to_coordinates`)."""
from ._solver import ReconstructionResult
from .embedding import classical_mds, laplacian_eigenmap
from .laplacian import affinity_from_matrix, count_atoms, laplacian_to_coordinates
from .trilateration import UnitSphereFrame, to_unit_sphere, trilaterate

__all__ = ["ReconstructionResult", "UnitSphereFrame", "affinity_from_matrix", "classical_mds", "count_atoms",
           "laplacian_eigenmap", "laplacian_to_coordinates", "to_unit_sphere", "trilaterate"]
