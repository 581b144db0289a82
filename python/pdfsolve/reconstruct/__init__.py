"""Coordinates from the representations the generative routes predict (distances; Laplacians and fingerprints
to follow)."""
from .trilateration import TrilaterationResult, UnitSphereFrame, classical_mds, to_unit_sphere, trilaterate

__all__ = ["TrilaterationResult", "UnitSphereFrame", "classical_mds", "to_unit_sphere", "trilaterate"]
