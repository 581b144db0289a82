"""The Debye PDF engine: parameters, scattering factors, diffpy's grids, and the batched Debye sum."""
from .batch import ClusterBatch
from .debye import PDFResult, simulate_pdf, structure_function, total_scattering
from .grids import DebyeGrid
from .parameters import PDFParameters
from .rdf import radial_distribution
from .scattering import scattering_factors

__all__ = ["ClusterBatch", "DebyeGrid", "PDFParameters", "PDFResult", "radial_distribution", "scattering_factors", "simulate_pdf",
           "structure_function", "total_scattering"]
