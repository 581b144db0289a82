"""pdfsolve: atomic structure of nanoparticles from X-ray pair distribution functions."""
from .engine import (ClusterBatch, DebyeGrid, PDFParameters, PDFResult, radial_distribution, simulate_pdf,
                     total_scattering)

__version__ = "0.1.0"
__all__ = ["ClusterBatch", "DebyeGrid", "PDFParameters", "PDFResult", "radial_distribution", "simulate_pdf",
           "total_scattering"]
