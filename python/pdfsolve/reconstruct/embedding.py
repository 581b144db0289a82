"""Coordinates from pairwise information by spectral embedding: classical MDS of distances and the Laplacian
eigenmap of an affinity. Both are batched over padded clusters and serve as starts of the reconstruction solvers.

Each needs only the top few eigenpairs of a matrix whose wanted eigenvalues stand well clear of the rest (a Gram
matrix of 3-D points has rank 3; a wide Gaussian affinity's spectrum decays fast), so they come from batched
subspace iteration with Rayleigh-Ritz (:func:`top_eigenpairs`): a few batched matrix products instead of a full
eigendecomposition of every padded matrix.
"""
from __future__ import annotations

import torch


def top_eigenpairs(mats: torch.Tensor, mask: torch.Tensor, k: int, *, oversample: int = 4, tol: float = 1e-12,
                   max_iter: int = 500):
    """The k eigenpairs of largest magnitude of symmetric padded matrices (B, N, N) with zero padding rows and
    columns (mask (B, N) real rows), by subspace iteration on k + ``oversample`` vectors with Rayleigh-Ritz.

    Stops when every residual |A v - lambda v| is below ``tol`` times the cluster's largest |lambda| (or after
    ``max_iter`` products). Returns eigenvalues (B, k) in descending order and orthonormal eigenvectors
    (B, N, k) with zero padding rows. A cluster of n < k atoms gets zero pairs after its n.
    """
    B, N, _ = mats.shape
    p = min(k + oversample, N)
    g = torch.Generator(device=mats.device).manual_seed(0)
    q = torch.linalg.qr(torch.randn(B, N, p, generator=g, dtype=mats.dtype, device=mats.device)
                        * mask[..., None]).Q
    for _ in range(max_iter):
        z = mats @ q
        ritz, s = torch.linalg.eigh(q.mT @ z)
        order = ritz.abs().argsort(-1, descending=True)[:, :k]
        values, s = ritz.gather(1, order), s.gather(2, order[:, None, :].expand(B, p, -1))
        vectors = q @ s
        residual = (z @ s - vectors * values[:, None, :]).norm(dim=1)
        if bool((residual <= tol * values.abs().amax(1, keepdim=True).clamp(min=1e-300)).all()):
            break
        q = torch.linalg.qr(z).Q
    vectors = vectors * mask[..., None]
    if p < k:
        values, vectors = torch.nn.functional.pad(values, (0, k - p)), torch.nn.functional.pad(vectors, (0, k - p))
    return values, vectors


def classical_mds(dist: torch.Tensor, mask: torch.Tensor, dim: int = 3) -> torch.Tensor:
    """Classical (Torgerson) MDS of padded distance matrices (B, M, M) -> (B, M, dim) coordinates, centred on the
    real points (padding rows are zero). Exact for exact Euclidean distances, up to rotation and reflection."""
    w = mask.to(dist.dtype)
    n = w.sum(1, keepdim=True).clamp(min=1)
    d2 = dist**2 * w[:, :, None] * w[:, None, :]
    row = d2.sum(2) / n
    total = (row * w).sum(1, keepdim=True) / n
    gram = -0.5 * (d2 - row[:, :, None] - row[:, None, :] + total[:, :, None]) * w[:, :, None] * w[:, None, :]
    evals, evecs = top_eigenpairs(gram, mask, dim)
    return evecs * evals.clamp(min=0).sqrt()[:, None, :]


def laplacian_eigenmap(affinity: torch.Tensor, mask: torch.Tensor, dim: int = 3) -> torch.Tensor:
    """Laplacian eigenmap of padded affinities W (B, N, N) -> (B, N, dim): the generalized eigenvectors v of
    L v = lambda D v (L = D - W, D = diag(sum_j W_ij) with the self-loop W_ii = 1 of CbLDM's W) for the ``dim``
    smallest non-zero eigenvalues, D-normalised (v^T D v = 1).

    They are the eigenvectors of A = D^-1/2 W D^-1/2 for its largest eigenvalues after the trivial 1 (the
    symmetric form of the pencil is I - A). A Gaussian affinity is positive definite, so these are also the
    largest in magnitude and :func:`top_eigenpairs` finds them. Padding rows are zero; so are the columns a
    cluster of too few atoms cannot fill. The axes come out with unit D-norm, not in Angstrom: scale them before
    use.
    """
    N = affinity.shape[1]
    eye = torch.eye(N, dtype=torch.bool, device=affinity.device)
    real = mask[:, :, None] & mask[:, None, :]
    w = torch.where(real, torch.where(eye, 1.0, affinity), 0.0)
    inv_sqrt = torch.where(mask, w.sum(2).clamp(min=torch.finfo(w.dtype).tiny).rsqrt(), 0.0)
    evals, evecs = top_eigenpairs(inv_sqrt[:, :, None] * w * inv_sqrt[:, None, :], mask, dim + 1)
    picked = evecs[:, :, 1:] * (evals[:, None, 1:] > 0)
    return picked * inv_sqrt[:, :, None]
