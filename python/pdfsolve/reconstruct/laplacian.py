"""Coordinates from a Gaussian affinity W or graph Laplacian L = D - W: the Laplacian route's reconstruction
(CbLDM, Cao et al. 2025).

W_ij = exp(-d_ij^2 / (2 sigma^2)) (d and sigma in Angstrom, W_ii = 1 for real atoms) as
:func:`pdfsolve.geometry.graph_laplacian` builds it. From a possibly noisy, possibly padded matrix the atoms are
counted (:func:`affinity_from_matrix`), a start is embedded (classical MDS of the distances W implies, by
default; or the Laplacian eigenmap, the generalized eigenvectors of (L, D), with per-axis scales fitted to those
distances), and the squared misfit sum_{i<j} (W_ij(x) - W_ij)^2 is minimised by L-BFGS-B, a whole run per
cluster in C++ (``pdfsolve::fit_affinity``) or, as reference and fallback, by autograd through
:func:`pdfsolve.optim.minimize_batched`.
There is no MDS re-embedding after the fit (the CbLDM code's last step, which moves exact solutions away).
"""
from __future__ import annotations

import math

import torch

from .. import ops
from ..geometry import CBLDM_SIGMA
from ._solver import ReconstructionResult, minimize_positions, resolve_backend
from .embedding import classical_mds, laplacian_eigenmap

#: An atom is real where it has a partner (itself included, for W) within this distance in Angstrom: CbLDM's
#: test "column max >= exp(-64 / t)" with t = 2 sigma^2.
NEIGHBOUR_DISTANCE = 8.0
FORMS = ("affinity", "laplacian")
STARTS = ("eigenmap", "mds")
_TINY_AFFINITY = 1e-12  # W below this says nothing about a distance


def _as_matrices(matrix, form: str, sigma: float) -> torch.Tensor:
    """W or L as (B, N, N) float64 (a 2-D input is one cluster), after checking shape, values and sigma."""
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    mat = torch.as_tensor(matrix, dtype=torch.float64)
    if mat.dim() == 2:
        mat = mat[None]
    if mat.dim() != 3 or mat.shape[1] != mat.shape[2]:
        raise ValueError(f"the {form} must have shape (B, N, N) or (N, N), got {tuple(mat.shape)}")
    if not bool(torch.isfinite(mat.sum((1, 2))).all()):  # a sum is NaN or inf if any entry is
        raise ValueError(f"the {form} contains NaN or inf")
    if not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be finite and > 0 (Angstrom), got {sigma}")
    return mat


def _real_atoms(mat: torch.Tensor, form: str, sigma: float) -> torch.Tensor:
    """(B, N) bool: columns holding a value >= exp(-NEIGHBOUR_DISTANCE^2 / (2 sigma^2)) (for L, of -L off the
    diagonal, or the degree on it)."""
    if form == "laplacian":
        mat = -mat + torch.diag_embed(2 * mat.diagonal(dim1=1, dim2=2))
    return mat.amax(1) >= math.exp(-NEIGHBOUR_DISTANCE**2 / (2 * sigma**2))


def _affinity_block(mat: torch.Tensor, mask: torch.Tensor, form: str) -> torch.Tensor:
    """Symmetrised W (B, n, n) from W or L: W_ii = 1 for real atoms, zero padding rows and columns."""
    eye = torch.eye(mat.shape[1], dtype=torch.bool, device=mat.device)
    sym = (mat + mat.transpose(1, 2)) / 2
    if form == "laplacian":
        sym = -sym
    real = mask[:, :, None] & mask[:, None, :]
    return torch.where(real, torch.where(eye, 1.0, sym), 0.0)


def _size_chunks(mask: torch.Tensor, chunk: int):
    """(indices, n) per chunk of at most ``chunk`` clusters of similar extent (last real atom + 1), n the chunk's
    largest extent: the block [:n, :n] holds every real atom of the chunk."""
    B, N = mask.shape
    extent = torch.where(mask, torch.arange(1, N + 1, device=mask.device), 0).amax(1) if N else mask.sum(1)
    order = extent.argsort()
    for k in range(0, B, chunk):
        idx = order[k : k + chunk]
        yield idx, int(extent[idx].max())


def affinity_from_matrix(matrix, form: str = "affinity", sigma: float = CBLDM_SIGMA):
    """Symmetrised affinity (B, N, N) float64 and atom mask (B, N) bool from W or L (B, N, N) or (N, N).

    An atom is real where its column holds a value >= exp(-NEIGHBOUR_DISTANCE^2 / (2 sigma^2)): its own W_ii = 1,
    or for ``form="laplacian"`` (whose diagonal is the degree) a neighbour's -L_ij or its degree. Padding rows get
    zeros; real rows get W_ii = 1. A one-atom Laplacian is all zero and counts no atom.
    """
    mat = _as_matrices(matrix, form, sigma)
    mask = _real_atoms(mat, form, sigma)
    return _affinity_block(mat, mask, form), mask


def count_atoms(matrix, form: str = "affinity", sigma: float = CBLDM_SIGMA) -> torch.Tensor:
    """Atoms (B,) int64 in W or L (B, N, N), by the test of :func:`affinity_from_matrix`."""
    return affinity_from_matrix(matrix, form, sigma)[1].sum(1)


def _distances_from_affinity(w: torch.Tensor, sigma: float) -> torch.Tensor:
    """d_ij = sigma sqrt(-2 ln W_ij) in Angstrom (W clamped to [tiny, 1])."""
    return sigma * (-2 * w.clamp(_TINY_AFFINITY, 1.0).log()).sqrt()


def _scaled_eigenmap(w: torch.Tensor, mask: torch.Tensor, sigma: float) -> torch.Tensor:
    """Laplacian eigenmap (B, N, 3) with per-axis scales s_k from the weighted least squares
    d_ij^2 = sum_k s_k^2 (v_ik - v_jk)^2 over real pairs, weights W_ij^2 (a noisy small W gives a noisy log)."""
    v = laplacian_eigenmap(w, mask)
    real = (mask[:, :, None] & mask[:, None, :]).to(w.dtype)
    d2 = _distances_from_affinity(w, sigma) ** 2
    a = ((v[:, :, None, :] - v[:, None, :, :]) ** 2).flatten(1, 2)  # (B, N * N, 3)
    weighted = a * (w.clamp(min=0) ** 2 * real).flatten(1)[..., None]
    gram = weighted.transpose(1, 2) @ a
    rhs = (weighted.transpose(1, 2) @ d2.flatten(1)[..., None])[..., 0]
    ridge = 1e-12 * gram.diagonal(dim1=1, dim2=2).sum(-1).clamp(min=1e-300)
    eye3 = torch.eye(3, dtype=w.dtype, device=w.device)
    scale2 = torch.linalg.solve(gram + ridge[:, None, None] * eye3, rhs[..., None])[..., 0]
    return v * scale2.clamp(min=0).sqrt()[:, None, :]


def _start(w: torch.Tensor, mask: torch.Tensor, sigma: float, start: str) -> torch.Tensor:
    if start == "eigenmap":
        return _scaled_eigenmap(w, mask, sigma)
    return classical_mds(_distances_from_affinity(w, sigma), mask)


def laplacian_start(w: torch.Tensor, mask: torch.Tensor, sigma: float, start: str = "mds",
                    chunk: int = 64) -> torch.Tensor:
    """Start coordinates (B, N, 3) in Angstrom for affinities ``w`` (B, N, N) with atoms ``mask`` (B, N):
    ``"mds"`` (classical MDS of the distances sigma sqrt(-2 ln W)) or ``"eigenmap"`` (scaled generalized
    eigenvectors of (L, D)), in chunks of similar-sized clusters trimmed to their largest member."""
    if start not in STARTS:
        raise ValueError(f"start must be one of {STARTS}, got {start!r}")
    out = w.new_zeros(*mask.shape, 3)
    for idx, n in _size_chunks(mask, chunk):
        out[idx, :n] = _start(w[idx, :n, :n], mask[idx, :n], sigma, start)
    return out


def laplacian_to_coordinates(matrix, form: str = "affinity", sigma: float = CBLDM_SIGMA, *, mask=None,
                             start: str = "mds", x0=None, m: int = 10, ftol: float = 1e-12,
                             gtol: float = 1e-8, maxiter: int = 5000, backend: str = "auto",
                             chunk: int = 64) -> ReconstructionResult:
    """Coordinates of B clusters from their Gaussian affinity or graph Laplacian.

    matrix: W (``form="affinity"``) or L = D - W (``form="laplacian"``), (B, N, N) or (N, N), padded with zeros;
    sigma: the affinity's width in Angstrom (default CbLDM's sqrt(130)); mask: (B, N) bool real atoms (default:
    counted from the matrix, :func:`affinity_from_matrix`); start: ``"mds"`` or ``"eigenmap"``
    (:func:`laplacian_start`) unless ``x0`` (B, N, 3) is given. Both starts end at the same fits; MDS of the
    distances W implies is exact for an exact W and measured 2x faster over the whole recovery
    (benchmarks/test_bench_reconstruct.py), so it is the default. Minimises sum_{i<j} (W_ij(x) - W_ij)^2 over real
    atoms by L-BFGS-B; the default ftol is tighter than scipy's because the misfit of a 1e-3 Angstrom error is
    ~1e-10.
    ``backend``: ``"compiled"`` (whole runs in C++), ``"torch"`` (autograd reference) or ``"auto"``. Clusters
    are solved in chunks of ``chunk`` of similar size, each trimmed to its largest member.

    Returns x (B, N, 3) in Angstrom, centred on the start's frame (the affinity fixes no orientation: compare up
    to rotation, translation and reflection), padding rows zero, with the final misfit.
    """
    mat = _as_matrices(matrix, form, sigma)
    B, N = mat.shape[:2]
    if mask is None:
        mask = _real_atoms(mat, form, sigma)
    else:
        mask = torch.as_tensor(mask, dtype=torch.bool, device=mat.device)
        if mask.shape != (B, N):
            raise ValueError(f"mask must have shape {(B, N)}, got {tuple(mask.shape)}")
    if start not in STARTS:
        raise ValueError(f"start must be one of {STARTS}, got {start!r}")
    if x0 is not None:
        x0 = torch.as_tensor(x0, dtype=torch.float64, device=mat.device)
        if x0.shape != (B, N, 3):
            raise ValueError(f"x0 must have shape {(B, N, 3)}, got {tuple(x0.shape)}")
        x0 = torch.where(mask[..., None], x0, 0.0)
    compiled = resolve_backend(backend, "fit_affinity", mat.device) == "compiled"
    out = ReconstructionResult(mat.new_zeros(B, N, 3), mat.new_zeros(B), torch.zeros(B, dtype=torch.long),
                               torch.zeros(B, dtype=torch.long))
    for idx, n in _size_chunks(mask, chunk):
        mk = mask[idx, :n]
        w = _affinity_block(mat[idx, :n, :n], mk, form)
        xk = _start(w, mk, sigma, start) if x0 is None else x0[idx, :n]
        res = _fit(w, mk, xk, sigma, compiled, m=m, ftol=ftol, gtol=gtol, maxiter=maxiter)
        out.x[idx, :n] = res.x
        out.loss[idx], out.nit[idx], out.status[idx] = res.loss, res.nit.cpu(), res.status.cpu()
    return out


def _fit(w: torch.Tensor, mask: torch.Tensor, x0: torch.Tensor, sigma: float, compiled: bool,
         **options) -> ReconstructionResult:
    """L-BFGS-B fit of W(x) to ``w`` (B, n, n) from x0 (B, n, 3): the C++ op, or autograd through the Laplacian
    op (the reference)."""
    sig = torch.full((w.shape[0],), float(sigma), dtype=torch.float64, device=w.device)
    if compiled:
        o = options
        return ReconstructionResult(*torch.ops.pdfsolve.fit_affinity(x0, mask, w, sig, o["m"], o["ftol"],
                                                                      o["gtol"], o["maxiter"]))
    upper = torch.triu(torch.ones(w.shape[1], w.shape[1], dtype=torch.bool, device=w.device), 1)

    def misfit(x, mk, index):
        real = upper & mk[:, :, None] & mk[:, None, :]
        return (((ops.graph_laplacian(x, mk, sig[index], 0) - w[index]) * real) ** 2).sum((1, 2))

    return minimize_positions(misfit, x0, mask, **options)


def separate_atoms(x: torch.Tensor, matrix, mask: torch.Tensor, min_distance: float, form: str = "affinity",
                   sigma: float = CBLDM_SIGMA, weight: float = 1.0, maxiter: int = 500) -> ReconstructionResult:
    """Refit coordinates x (B, N, 3) [Angstrom] of the atoms ``mask`` (B, N) to W or L ``matrix`` (B, N, N) under a
    minimum interatomic distance: L-BFGS-B (autograd, :func:`minimize_positions`) on

        sum_{i<j} (W_ij(x) - W_ij)^2 + weight * sum_{i<j} max(0, min_distance - d_ij)^2   [d in Angstrom],

    the published CbLDM recovery's constrained fit. A blurred W (a generative model's) fixes the shape but not the
    first shell (at sigma = 11.4 Angstrom, 1.5 and 2.8 Angstrom neighbours differ by 0.01 in W), so its plain fit
    crowds atoms together; this keeps them apart where W cannot. Padding rows stay zero.
    """
    if not min_distance > 0 or weight <= 0:
        raise ValueError(f"min_distance and weight must be > 0, got {min_distance} and {weight}")
    w = _affinity_block(_as_matrices(matrix, form, sigma), mask, form)
    out = ReconstructionResult(x.to(torch.float64).clone(), w.new_zeros(len(w)), torch.zeros(len(w), dtype=torch.long),
                               torch.zeros(len(w), dtype=torch.long))
    for idx, n in _size_chunks(mask, 64):  # similar sizes, trimmed to the largest (the pair terms are n^2)
        res = _separate(out.x[idx, :n], w[idx, :n, :n], mask[idx, :n], min_distance, sigma, weight, maxiter)
        out.x[idx, :n] = res.x
        out.loss[idx], out.nit[idx], out.status[idx] = res.loss, res.nit.cpu(), res.status.cpu()
    return out


def _separate(x, w, mask, min_distance, sigma, weight, maxiter) -> ReconstructionResult:
    """:func:`separate_atoms` on one chunk (W already symmetrised, trimmed)."""
    eye = torch.eye(w.shape[1], dtype=torch.bool, device=w.device)

    def objective(xk, mk, index):
        pair = (mk[:, :, None] & mk[:, None, :] & ~eye).to(xk.dtype)
        d2 = ((xk[:, :, None] - xk[:, None]) ** 2).sum(-1)
        fitted = torch.exp(-d2 / (2 * sigma**2))
        d = d2.add(1e-12).sqrt()
        misfit = ((fitted - w[index]) ** 2 * pair).sum((1, 2)) / 2
        return misfit + weight * (torch.relu(min_distance - d) ** 2 * pair).sum((1, 2)) / 2

    return minimize_positions(objective, x, mask, maxiter=maxiter)
