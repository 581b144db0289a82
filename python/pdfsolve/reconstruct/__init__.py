"""Coordinates from the representations the generative routes predict: distances to atoms and satellites
(:func:`trilaterate`), a Gaussian affinity or graph Laplacian (:func:`laplacian_to_coordinates`), a pooled ACSF
fingerprint (:func:`invert_fingerprint`)."""
from ._solver import ReconstructionResult
from .embedding import classical_mds, laplacian_eigenmap
from .fingerprint import FingerprintInversion, FingerprintObjective, fingerprint_weights, invert_fingerprint
from .laplacian import affinity_from_matrix, count_atoms, laplacian_to_coordinates, separate_atoms
from .trilateration import UnitSphereFrame, to_unit_sphere, trilaterate

__all__ = ["FingerprintInversion", "FingerprintObjective", "ReconstructionResult", "UnitSphereFrame",
           "affinity_from_matrix", "classical_mds", "count_atoms", "fingerprint_weights", "invert_fingerprint",
           "laplacian_eigenmap", "laplacian_to_coordinates", "separate_atoms", "to_unit_sphere", "trilaterate"]
