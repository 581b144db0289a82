"""Distance matrices of clusters and distances to fixed points (satellites) on a sphere."""
from __future__ import annotations

import math

import torch

from .. import ops
from ._inputs import as_batch


def pair_distances(pos, mask=None) -> torch.Tensor:
    """Distance matrix in Angstrom of one cluster (N, 3) -> (N, N), or a padded batch (B, N, 3) -> (B, N, N).

    ``mask`` (B, N) bool marks the real atoms (default: all); rows and columns of padding are zero, as is the
    diagonal. Differences are taken directly (no |x|^2 + |y|^2 - 2 x.y shortcut), so small distances keep their
    digits; coincident atoms are at distance 0 with zero gradient. Differentiable in ``pos``.
    """
    pos, mask, single = as_batch(pos, mask)
    out = ops.pair_distances(pos, mask)
    return out[0] if single else out


def point_distances(pos, points, mask=None) -> torch.Tensor:
    """Distances in Angstrom from each atom to fixed points: (N, 3) -> (N, P) or (B, N, 3) -> (B, N, P).

    ``points`` (P, 3) are constants (no gradient), e.g. the satellites of :func:`sphere_points`; padding rows
    (``mask`` False) are zero. Differentiable in ``pos``.
    """
    pos, mask, single = as_batch(pos, mask)
    points = torch.as_tensor(points, dtype=pos.dtype, device=pos.device)
    if points.dim() != 2 or points.shape[1] != 3:
        raise ValueError(f"points must have shape (P, 3), got {tuple(points.shape)}")
    if not bool(torch.isfinite(points).all()):
        raise ValueError("points contain NaN or inf")
    out = ops.point_distances(pos, mask, points.detach().contiguous())
    return out[0] if single else out


def sphere_points(n: int, radius: float = 1.0, dtype=torch.float64) -> torch.Tensor:
    """(n, 3) points spread evenly over a sphere of ``radius`` (a Fibonacci lattice; reproducible, no randomness).

    Point k sits at height z_k = 1 - (2k + 1)/n and azimuth k * pi (3 - sqrt 5): the usual satellite layout of the
    distance route (4, 11 or 100 satellites).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    k = torch.arange(n, dtype=torch.float64)
    z = 1.0 - (2.0 * k + 1.0) / n
    rho = torch.sqrt(torch.clamp(1.0 - z * z, min=0.0))
    phi = k * math.pi * (3.0 - math.sqrt(5.0))
    return (radius * torch.stack([rho * torch.cos(phi), rho * torch.sin(phi), z], dim=1)).to(dtype)
