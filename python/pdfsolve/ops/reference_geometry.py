"""Plain-torch reference of the geometry ops: pair distances, distances to fixed points, graph Laplacian.

They define what the compiled ops compute, are the oracle of the tests (run them in float64) and the fallback
when the compiled extension is missing. Autograd differentiates them.

Conventions
-----------
``pos``    (B, N, 3) atom positions in Angstrom, float32 or float64.
``mask``   (B, N) bool, True for a real atom, False for a padding slot.
Outputs are zero wherever a padding slot is involved. Two points closer than ``COINCIDENT_TOL`` Angstrom are
at distance 0 and their distance has zero gradient (never NaN).
"""
from __future__ import annotations

import torch

from .reference import COINCIDENT_TOL

AFFINITY, LAPLACIAN, NORMALIZED = 0, 1, 2
#: ``form`` argument of :func:`graph_laplacian` by name.
LAPLACIAN_FORMS = {"affinity": AFFINITY, "laplacian": LAPLACIAN, "normalized": NORMALIZED}


def _safe_norm(diff: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """|diff| over the last axis where ``valid`` and the points are not coincident, else 0 (zero gradient)."""
    d2 = (diff * diff).sum(-1)
    ok = valid & (d2 > COINCIDENT_TOL**2)
    return torch.where(ok, torch.sqrt(torch.where(ok, d2, torch.ones_like(d2))), torch.zeros_like(d2))


def pair_distances(pos: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, N, N) distances d_ij = |x_i - x_j| in Angstrom between real atoms; 0 on the diagonal and for padding."""
    n = pos.shape[1]
    eye = torch.eye(n, dtype=torch.bool, device=pos.device)
    valid = mask[:, :, None] & mask[:, None, :] & ~eye
    return _safe_norm(pos[:, :, None, :] - pos[:, None, :, :], valid)


def point_distances(pos: torch.Tensor, mask: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(B, N, P) distances |x_i - s_p| in Angstrom from real atoms to the fixed points ``points`` (P, 3)."""
    valid = mask[:, :, None].expand(-1, -1, points.shape[0])
    return _safe_norm(pos[:, :, None, :] - points.detach()[None, None], valid)


def graph_laplacian(pos: torch.Tensor, mask: torch.Tensor, sigma: torch.Tensor, form: int) -> torch.Tensor:
    """Gaussian affinity or graph Laplacian of each cluster, (B, N, N).

    W_ij = exp(-d_ij^2 / (2 sigma_b^2)) between real atoms (sigma (B,) in Angstrom), D_i = sum_{j != i} W_ij.

    * ``form`` 0 (affinity): W with W_ii = 1 for a real atom (the CbLDM representation);
    * ``form`` 1 (Laplacian): L = D - W (self-loops cancel);
    * ``form`` 2 (normalised): I - D^-1/2 W D^-1/2 without self-loops; an isolated atom (D_i = 0) has a zero
      row and column, as in ``scipy.sparse.csgraph.laplacian(normed=True)``.
    Padding rows and columns are zero.
    """
    if form not in (AFFINITY, LAPLACIAN, NORMALIZED):
        raise ValueError(f"form must be 0 (affinity), 1 (laplacian) or 2 (normalized), got {form}")
    n = pos.shape[1]
    eye = torch.eye(n, dtype=torch.bool, device=pos.device)
    real = mask[:, :, None] & mask[:, None, :]
    diff = pos[:, :, None, :] - pos[:, None, :, :]
    d2 = (diff * diff).sum(-1)
    w = torch.exp(-d2 / (2.0 * sigma[:, None, None] ** 2))
    w_off = torch.where(real & ~eye, w, torch.zeros_like(w))
    if form == AFFINITY:
        return w_off + torch.diag_embed(mask.to(pos.dtype))
    degree = w_off.sum(-1)
    if form == LAPLACIAN:
        return torch.diag_embed(degree) - w_off
    connected = degree > 0
    dinv = torch.where(connected, torch.rsqrt(torch.where(connected, degree, torch.ones_like(degree))),
                       torch.zeros_like(degree))
    return torch.diag_embed(connected.to(pos.dtype)) - dinv[:, :, None] * w_off * dinv[:, None, :]
