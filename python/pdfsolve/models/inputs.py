"""G(r) as a model input: resampled onto the model's fixed r grid and scaled to max|G| = 1."""
from __future__ import annotations

import torch

from ..engine.grids import rgrid


def model_grid(rmin: float, rmax: float, rstep: float) -> torch.Tensor:
    """(L,) float64 r grid r_k = k rstep, rmin <= r_k < rmax [Angstrom] (the engine's rule)."""
    if not 0 <= rmin < rmax or rstep <= 0:
        raise ValueError(f"need 0 <= rmin < rmax and rstep > 0 Angstrom, got {rmin}, {rmax}, {rstep}")
    return torch.as_tensor(rgrid(rmin, rmax, rstep))


def resample_pdf(r, g: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """G (B, nr) on the increasing grid ``r`` (nr,) [Angstrom], linearly interpolated onto ``grid`` (L,), 0 outside
    the data's range, each row divided by its largest |G| on ``grid`` (so that the scale factor drops out).

    Returns (B, L) in ``g``'s dtype. Raises ValueError for mismatched shapes, a non-increasing ``r``, or a PDF
    that is zero on the whole grid.
    """
    r = torch.as_tensor(r, dtype=torch.float64, device=g.device)
    if g.dim() != 2 or r.dim() != 1 or g.shape[1] != len(r) or len(r) < 2:
        raise ValueError(f"need r (nr,) with nr >= 2 and G (B, nr), got {tuple(r.shape)} and {tuple(g.shape)}")
    if not bool((r[1:] > r[:-1]).all()):
        raise ValueError("the r grid of the PDF must be increasing")
    x = grid.to(device=g.device, dtype=torch.float64)
    hi = torch.searchsorted(r, x).clamp(1, len(r) - 1)
    w = ((x - r[hi - 1]) / (r[hi] - r[hi - 1])).to(g.dtype)
    out = g[:, hi - 1] * (1 - w) + g[:, hi] * w
    inside = ((x >= r[0]) & (x <= r[-1])).to(g.dtype)
    out = out * inside
    peak = out.abs().amax(1, keepdim=True)
    if bool((peak == 0).any()):
        raise ValueError("a PDF is zero over the model's r grid")
    return out / peak
