"""Coordinates from predicted distances: the distance route's reconstruction (Anker, Kjær et al. 2020).

A cluster is translated so one atom (the one nearest the centroid) sits at the origin and scaled so the farthest
atom lies on the unit sphere (:func:`to_unit_sphere`); fixed satellite points on the sphere
(:func:`pdfsolve.geometry.sphere_points`) pin the frame. From atom-atom and atom-satellite distances, classical
MDS of atoms and satellites together, aligned to the satellites by orthogonal Procrustes, gives the start; the
squared distance residuals are then minimised by L-BFGS-B, a whole run per cluster in C++ (``pdfsolve::trilaterate``)
or, as reference and fallback, through :func:`pdfsolve.optim.minimize_batched` with the objective in torch.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import ops
from ..geometry import pair_distances
from ..geometry._inputs import as_batch
from ..optim import SCIPY_FTOL
from ._solver import ReconstructionResult, minimize_positions, resolve_backend
from .embedding import classical_mds


@dataclass
class UnitSphereFrame:
    """Where a cluster was moved: ``x_unit = (x - origin) / scale``; origin (B, 3) and scale (B,) in Angstrom."""

    origin: torch.Tensor
    scale: torch.Tensor

    def to_angstrom(self, x_unit: torch.Tensor) -> torch.Tensor:
        """(B, N, 3) unit-sphere coordinates back to Angstrom."""
        return x_unit * self.scale[:, None, None] + self.origin[:, None, :]


def to_unit_sphere(pos, mask=None) -> tuple[torch.Tensor, UnitSphereFrame]:
    """Translates each cluster so its atom nearest the centroid is at the origin, scales the farthest atom onto
    the unit sphere. pos (B, N, 3) or (N, 3) in Angstrom -> (unit-sphere coordinates (B, N, 3), frame)."""
    pos, mask, _ = as_batch(pos, mask)
    w = mask.to(pos.dtype)[..., None]
    centroid = (pos * w).sum(1) / w.sum(1).clamp(min=1)
    dc = torch.where(mask, (pos - centroid[:, None]).norm(dim=-1), torch.full_like(w[..., 0], float("inf")))
    origin = pos[torch.arange(pos.shape[0]), dc.argmin(1)]
    radius = torch.where(mask, (pos - origin[:, None]).norm(dim=-1), torch.zeros_like(w[..., 0])).amax(1)
    scale = torch.where(radius > 0, radius, torch.ones_like(radius))
    frame = UnitSphereFrame(origin, scale)
    return torch.where(mask[..., None], (pos - origin[:, None]) / scale[:, None, None], torch.zeros_like(pos)), frame


def _align_to_points(y: torch.Tensor, y_pts: torch.Tensor, pts: torch.Tensor) -> torch.Tensor:
    """Moves y (B, M, 3) by the orthogonal transform (reflections allowed) and translation taking y_pts (B, P, 3)
    closest to pts (P, 3) (least squares, Procrustes)."""
    yc = y_pts.mean(1, keepdim=True)
    pc = pts.mean(0)
    h = (y_pts - yc).transpose(1, 2) @ (pts - pc)
    u, _, vt = torch.linalg.svd(h)
    rot = u @ vt  # y @ rot maps onto pts
    return (y - yc) @ rot + pc


def trilateration_start(pair: torch.Tensor, to_points: torch.Tensor, points: torch.Tensor,
                        mask: torch.Tensor) -> torch.Tensor:
    """Initial coordinates (B, N, 3) in the points' frame: MDS of atoms and points together, then Procrustes."""
    B, N = mask.shape
    P = points.shape[0]
    full = torch.zeros(B, N + P, N + P, dtype=pair.dtype)
    full[:, :N, :N] = pair
    full[:, :N, N:] = to_points
    full[:, N:, :N] = to_points.transpose(1, 2)
    full[:, N:, N:] = pair_distances(points)  # exact differences (cdist takes the Gram shortcut past 25 points)
    m = torch.cat([mask, torch.ones(B, P, dtype=torch.bool)], 1)
    y = classical_mds(full, m)
    x = _align_to_points(y, y[:, N:], points)[:, :N]
    return torch.where(mask[..., None], x, torch.zeros_like(x))


def trilaterate(pair, to_points, points, mask=None, *, x0=None, m: int = 10, ftol: float = SCIPY_FTOL,
                gtol: float = 1e-8, maxiter: int = 2000, backend: str = "auto") -> ReconstructionResult:
    """Coordinates of B clusters from distances: pair (B, N, N) between atoms, to_points (B, N, P) from atoms to
    the fixed points (P, 3) (e.g. satellites on the unit sphere), padding marked by mask (B, N) bool.

    Starts from classical MDS aligned to the points (or from ``x0`` (B, N, 3)) and minimises
    sum_{i<j} (|x_i - x_j| - pair_ij)^2 + sum_{i,p} (|x_i - s_p| - to_points_ip)^2 by L-BFGS-B. Units are those of
    the inputs. ``backend``: ``"compiled"`` (whole runs in C++), ``"torch"`` (the same objective by autograd through
    :func:`pdfsolve.optim.minimize_batched`, the reference) or ``"auto"``.
    """
    pair = torch.as_tensor(pair, dtype=torch.float64)
    to_points = torch.as_tensor(to_points, dtype=torch.float64)
    points = torch.as_tensor(points, dtype=torch.float64)
    if pair.dim() != 3 or pair.shape[1] != pair.shape[2]:
        raise ValueError(f"pair must have shape (B, N, N), got {tuple(pair.shape)}")
    B, N = pair.shape[:2]
    if points.dim() != 2 or points.shape[1] != 3:
        raise ValueError(f"points must have shape (P, 3), got {tuple(points.shape)}")
    if to_points.shape != (B, N, points.shape[0]):
        raise ValueError(f"to_points must have shape {(B, N, points.shape[0])}, got {tuple(to_points.shape)}")
    mask = torch.ones(B, N, dtype=torch.bool) if mask is None else torch.as_tensor(mask, dtype=torch.bool)
    for name, t in (("pair", pair), ("to_points", to_points)):
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} contains NaN or inf")
    start = trilateration_start(pair, to_points, points, mask) if x0 is None else torch.as_tensor(x0, dtype=torch.float64)
    if resolve_backend(backend, "trilaterate") == "compiled":
        return ReconstructionResult(*torch.ops.pdfsolve.trilaterate(start, mask, pair, to_points, points, m, ftol,
                                                                    gtol, maxiter))
    upper = torch.triu(torch.ones(N, N, dtype=torch.bool), 1)  # each pair once

    def residuals(x, mk, index):
        rp = (ops.pair_distances(x, mk) - pair[index]) * (upper & mk[:, :, None] & mk[:, None, :])
        rs = (ops.point_distances(x, mk, points) - to_points[index]) * mk[..., None]
        return (rp**2).sum((1, 2)) + (rs**2).sum((1, 2))

    return minimize_positions(residuals, start, mask, m=m, ftol=ftol, gtol=gtol, maxiter=maxiter)
