"""Radial distribution function R(r) of finite clusters, without the termination of a finite Q range.

R(r) = (1 / N) sum_{i != j} (w_i w_j / <w>^2) (r / r_ij) g(r - r_ij; sigma_ij),
with g a normalised Gaussian of variance sigma_ij^2 = (U_i + U_j) c(r_ij) (c the Jeong factor), and
w the scattering weights at Q = 0 (X-ray form factors f(0) ~ Z, or neutron scattering lengths).
R(r) / r is then the reduced PDF G(r) of the cluster for an infinite Q range (the transform of F(Q) over
0 <= Q < infinity), up to the mirror peaks g(r + r_ij) that matter only within a few sigma of r = 0.
Integrated over r, R gives (1 / N) sum_{i != j} w_i w_j / <w>^2: the average number of neighbours.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .. import ops
from .batch import ClusterBatch
from .debye import _as_batch
from .grids import output_rgrid
from .parameters import PDFParameters
from .scattering import check_symbols, scattering_factors

#: Gaussian tails are cut at this many standard deviations (exp(-8^2/2) ~ 1e-14).
RDF_TRUNCATE = 8.0
#: The gridding op needs a positive base width; this one is negligible against any thermal width.
_TAU0 = 1e-6


def radial_distribution(structures, params: PDFParameters | None = None, *, dtype=None,
                        device=None) -> tuple[np.ndarray, torch.Tensor]:
    """R(r) [1/Angstrom] on the output grid of ``params``, shape (B, nr); see the module docstring.

    Returns ``(r, R)`` with r (nr,) in Angstrom. Differentiable with respect to positions and U_iso.
    """
    params = params or PDFParameters()
    batch: ClusterBatch = _as_batch(structures, params, dtype, device)
    check_symbols(batch.symbols, params.radiation)
    r = output_rgrid(params)
    nbins = int(round(r[-1] / params.rstep)) + 1 if len(r) else 0
    grid = ops.gaussian_pair_grid(batch.pos, batch.species, batch.uiso, batch.n_species, params.rstep, nbins,
                                  _TAU0, RDF_TRUNCATE, math.inf, params.delta1, params.delta2, params.qbroad)
    w = scattering_factors(batch.symbols, batch.pos.new_zeros(1), params.radiation)[:, 0]  # (S,)
    ww = (w[:, None] * w[None, :]).reshape(-1)
    counts = batch.species_counts().to(w.dtype)
    n = counts.sum(1)
    wsum = counts @ w  # N <w>
    norm = torch.where(wsum != 0, n / torch.where(wsum != 0, wsum, torch.ones_like(wsum)) ** 2, torch.zeros_like(n))
    rgrid = torch.as_tensor(r, dtype=batch.pos.dtype, device=batch.pos.device)
    first = nbins - len(r)
    reduced = 2.0 * torch.einsum("bpm,p->bm", grid[..., first:], ww) * norm[:, None]
    return r, reduced * rgrid
