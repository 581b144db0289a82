"""Measured-like PDF files for the screening and watch tests: a Pt13 icosahedron with 1 % noise, and a small
library (Pt, 10-16 atoms) under which each solve takes about a second."""
from __future__ import annotations

import numpy as np
from ase.cluster import Icosahedron

from pdfsolve import PDFParameters, simulate_pdf
from pdfsolve.io import write_pdf

#: Options giving the small library.
LIBRARY = ["--element", "Pt", "--min-atoms", "10", "--max-atoms", "16"]
PARAMS = PDFParameters(qmin=0.9, qmax=24.0, qdamp=0.03, biso=0.5, scale=0.8)


def write_pt13(seed: int, path) -> None:
    """Write the PDF G(r) of an icosahedral Pt13 with noise of seed ``seed`` (1 % of max|G|) to ``path``."""
    res = simulate_pdf(Icosahedron("Pt", 2), PARAMS, mode="exact")
    g = res.G[0].numpy()
    g = g + np.random.default_rng(seed).normal(scale=0.01 * np.abs(g).max(), size=g.shape)
    write_pdf(path, res.r, g, PARAMS, metadata={"composition": "Pt13"})
