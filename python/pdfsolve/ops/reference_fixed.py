"""Plain-torch reference of ``fixed_pair_grid``: :func:`pdfsolve.ops.reference.gaussian_pair_grid` with U_iso = 0.

Every pair then has the one Gaussian width ``tau0``; the compiled op (``csrc/cpu/fixed_grid_cpu.cpp``) exploits
that with a tap table. This function is its definition, test oracle and fallback.
"""
from __future__ import annotations

import torch

from . import reference


def fixed_pair_grid(pos: torch.Tensor, species: torch.Tensor, n_species: int, bin_width: float, nbins: int,
                    tau0: float, truncate: float, rcut: float) -> torch.Tensor:
    """``gaussian_pair_grid(pos, species, zeros, n_species, bin_width, nbins, tau0, truncate, rcut, 0, 0, 0)``.

    out[b, s*S+t, m] = sum over pairs i<j of species {s, t}, COINCIDENT_TOL < r_ij <= rcut and
    |r_m - r_ij| <= truncate * tau0 of exp(-(r_m - r_ij)^2 / (2 tau0^2)) / (sqrt(2 pi) tau0 r_ij), r_m = m bin_width.
    Shape (B, S*S, nbins), dtype of ``pos``.
    """
    uiso = torch.zeros(pos.shape[:2], dtype=pos.dtype, device=pos.device)
    return reference.gaussian_pair_grid(pos, species, uiso, n_species, bin_width, nbins, tau0, truncate, rcut,
                                        0.0, 0.0, 0.0)
