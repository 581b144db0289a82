"""Clusters of every motif for the reconstruction tests, padded into batches, and alignment-free errors."""
from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from pdfsolve.metrics import assigned_deviations
from pdfsolve.structures import motifs


def motif_clusters(element: str = "Au"):
    """One small cluster (ase.Atoms, Angstrom) of each motif: fcc, bcc, sc, hcp, icosahedral, decahedral,
    octahedral (13-146 atoms)."""
    return [motifs.cubic_cut("fcc", (2, 2, 1), element=element), motifs.cubic_cut("bcc", (2, 2, 2), element=element),
            motifs.cubic_cut("sc", (2, 2, 2), element=element), motifs.hcp_cut((2, 2, 2), element=element),
            motifs.icosahedron(3, element=element), motifs.decahedron(3, 2, 1, element=element),
            motifs.octahedron(4, 1, element=element), motifs.icosahedron(2, element=element)]


def padded(clusters, rotate_seed: int | None = None):
    """(pos (B, N, 3) float64, mask (B, N) bool) of clusters padded with zeros; optionally each randomly rotated."""
    n = max(len(c) for c in clusters)
    pos = torch.zeros(len(clusters), n, 3, dtype=torch.float64)
    mask = torch.zeros(len(clusters), n, dtype=torch.bool)
    for k, c in enumerate(clusters):
        xyz = c.positions
        if rotate_seed is not None:
            xyz = Rotation.random(random_state=rotate_seed + k).apply(xyz)
        pos[k, : len(c)] = torch.tensor(xyz)
        mask[k, : len(c)] = True
    return pos, mask


def aligned_errors(x: torch.Tensor, ref: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """Largest atom position error (B,) in Angstrom of x against ref (B, N, 3) after the best rotation,
    reflection and translation of the real atoms (atoms in the same order)."""
    return np.array([assigned_deviations(xb[mb], rb[mb]).max(initial=0.0) for xb, rb, mb in zip(x, ref, mask)])
