"""Coordinates from pairwise information by spectral embedding: classical MDS of distances and the Laplacian
eigenmap of an affinity. Both are batched over padded clusters and serve as starts of the reconstruction solvers."""
from __future__ import annotations

import torch


def classical_mds(dist: torch.Tensor, mask: torch.Tensor, dim: int = 3) -> torch.Tensor:
    """Classical (Torgerson) MDS of padded distance matrices (B, M, M) -> (B, M, dim) coordinates, centred on the
    real points (padding rows are zero). Exact for exact Euclidean distances, up to rotation and reflection."""
    w = mask.to(dist.dtype)
    n = w.sum(1, keepdim=True).clamp(min=1)
    d2 = dist**2 * w[:, :, None] * w[:, None, :]
    row = d2.sum(2) / n
    total = (row * w).sum(1, keepdim=True) / n
    gram = -0.5 * (d2 - row[:, :, None] - row[:, None, :] + total[:, :, None]) * w[:, :, None] * w[:, None, :]
    evals, evecs = torch.linalg.eigh(gram)
    top = evals[:, -dim:].clamp(min=0).flip(-1)
    return evecs[:, :, -dim:].flip(-1) * top.sqrt()[:, None, :]


def laplacian_eigenmap(affinity: torch.Tensor, mask: torch.Tensor, dim: int = 3) -> torch.Tensor:
    """Laplacian eigenmap of padded affinities W (B, N, N) (diagonal ignored) -> (B, N, dim): the generalized
    eigenvectors v of L v = lambda D v (L = D - W, D the degrees) for the ``dim`` smallest non-zero eigenvalues,
    D-normalised (v^T D v = 1), from ``torch.linalg.eigh`` of the symmetric D^-1/2 L D^-1/2. Padding rows are zero;
    so are the columns a cluster of too few atoms (or with isolated atoms) cannot fill. The axes come out with
    unit D-norm, not in Angstrom: scale them before use.
    """
    B, N, _ = affinity.shape
    real = mask[:, :, None] & mask[:, None, :]
    w = torch.where(real & ~torch.eye(N, dtype=torch.bool, device=affinity.device), affinity,
                    torch.zeros_like(affinity))
    deg = w.sum(2)
    inv_sqrt = torch.where(deg > 0, deg.clamp(min=torch.finfo(deg.dtype).tiny).rsqrt(), torch.zeros_like(deg))
    sym = torch.eye(N, dtype=w.dtype, device=w.device) - inv_sqrt[:, :, None] * w * inv_sqrt[:, None, :]
    # The spectrum of a real block lies in [0, 2]; padding and isolated rows get eigenvalue 3 and are never picked.
    sym = torch.where(real, sym, torch.zeros_like(sym)) + torch.diag_embed(torch.where(deg > 0, 0.0, 3.0).to(w.dtype))
    evals, evecs = torch.linalg.eigh(sym)
    picked = evecs[:, :, 1 : 1 + dim] * (evals[:, None, 1 : 1 + dim] < 2.5)
    picked = torch.nn.functional.pad(picked, (0, dim - picked.shape[2]))  # fewer than dim + 1 atoms
    return picked * inv_sqrt[:, :, None]
