"""The distance route's view of a cluster (Anker, Kjaer et al. 2020): atoms on the unit sphere, in a fixed order,
described by their pair distances and their distances to fixed satellite points on the sphere.

The cluster is moved by :func:`pdfsolve.reconstruct.trilateration.to_unit_sphere` (the atom nearest the centroid at
the origin, the farthest atom on the unit sphere). A fully connected network needs the atoms in an order it can
learn, so they are sorted by distance to the origin atom, then by distance to the first satellite, the second, ...
(each rounded to :data:`ORDER_DECIMALS` digits so that equal shells stay equal under float noise; four satellites
not in one plane tell any two atoms apart); padding goes last.
The satellites pin the orientation, which the training clusters share (ase's cubic cuts are axis-aligned). The view
is unique when one atom is nearest the centroid (as in every cluster of the study: site-centred fcc cuts); where
several tie, the first of them in slot order becomes the origin.
"""
from __future__ import annotations

import torch

from ..geometry import pair_distances, point_distances, sphere_points
from ..reconstruct.trilateration import to_unit_sphere

#: Digits kept of the unit-sphere distances that order the atoms.
ORDER_DECIMALS = 3


def satellites(n: int) -> torch.Tensor:
    """(n, 3) float64 satellite points on the unit sphere (the Fibonacci lattice of
    :func:`pdfsolve.geometry.sphere_points`; 4, 11 and 100 were studied)."""
    return sphere_points(n)


def ordered_unit_sphere(pos: torch.Tensor, mask: torch.Tensor, points: torch.Tensor):
    """Clusters on the unit sphere with their atoms in the learnable order of the module doc.

    Args:
        pos: (B, N, 3) positions [Angstrom], padding anywhere; mask: (B, N) bool real atoms.
        points: (P, 3) satellites on the unit sphere (P >= 2).
    Returns:
        x (B, N, 3) float64 unit-sphere coordinates with the real atoms in the first ``n_atoms`` slots (0 after),
        n_atoms (B,) and radius (B,), the distance from the origin atom to the farthest atom [Angstrom].
    """
    if points.dim() != 2 or points.shape[0] < 2 or points.shape[1] != 3:
        raise ValueError(f"need (P, 3) satellites with P >= 2, got {tuple(points.shape)}")
    x, frame = to_unit_sphere(pos.double(), mask)
    radial = torch.linalg.vector_norm(x, dim=-1)
    keys = [torch.where(mask, radial, torch.full_like(radial, torch.inf)), *point_distances(x, points, mask).unbind(-1)]
    order = torch.arange(x.shape[1], device=x.device).expand(len(x), -1)
    for key in reversed(keys):  # a lexicographic sort: stable sorts from the last key to the first
        key = torch.round(torch.gather(key, 1, order) * 10.0**ORDER_DECIMALS)
        order = torch.gather(order, 1, torch.argsort(key, dim=1, stable=True))
    x = torch.gather(x, 1, order[..., None].expand(-1, -1, 3))
    n_atoms = mask.sum(1)
    first = torch.arange(x.shape[1], device=x.device)[None, :] < n_atoms[:, None]
    return torch.where(first[..., None], x, torch.zeros_like(x)), n_atoms, frame.scale


def distance_features(x: torch.Tensor, mask: torch.Tensor, points: torch.Tensor):
    """(pair (B, N, N), to_points (B, N, P)) distances of unit-sphere clusters x (B, N, 3) (float64, dimensionless),
    zero on padding and on the diagonal."""
    return pair_distances(x, mask), point_distances(x, points, mask)


def upper_pairs(pair: torch.Tensor) -> torch.Tensor:
    """(B, N (N - 1) / 2) entries above the diagonal of (B, N, N), row by row."""
    i, j = torch.triu_indices(pair.shape[1], pair.shape[1], 1, device=pair.device)
    return pair[:, i, j]


def symmetric_pairs(upper: torch.Tensor, n: int) -> torch.Tensor:
    """(B, n, n) symmetric matrix with zero diagonal from its upper entries (B, n (n - 1) / 2) (the inverse of
    :func:`upper_pairs`)."""
    if upper.shape[-1] != n * (n - 1) // 2:
        raise ValueError(f"{upper.shape[-1]} upper entries do not fill a {n} x {n} matrix")
    i, j = torch.triu_indices(n, n, 1, device=upper.device)
    out = upper.new_zeros(len(upper), n, n)
    out[:, i, j] = upper
    return out + out.transpose(1, 2)
