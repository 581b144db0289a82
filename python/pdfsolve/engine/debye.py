"""The Debye PDF engine: F(Q), S(Q), I(Q) and G(r) of batches of finite clusters.

Two modes share everything but the Debye sum itself:

``"exact"``  the pair sum sum_ij f_i f_j exp(-sigma_ij^2 Q^2 / 2) sin(Q r_ij) / r_ij, evaluated per pair
           (compiled op ``debye_partials``). With the diffpy grid this reproduces diffpy.srreal's
           DebyePDFCalculator to float64 rounding.
``"fast"``   the same sum through Gaussian gridding (a non-uniform FFT): every pair is spread on a
           0.05 Angstrom grid by a Gaussian of its own width (compiled op ``gaussian_pair_grid``), and
           one matrix shared by the whole batch turns the grids into Debye sums; the extra Gaussian
           of width tau0 is divided out exactly in Q. Errors ~1e-8 of max|F| in float64.

Both are differentiable with respect to positions and U_iso (backward kernels in the ops); scale,
qdamp and expansion (scale positions) are plain torch on top.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from .. import ops
from .batch import ClusterBatch
from .grids import DebyeGrid
from .parameters import PDFParameters
from .scattering import check_symbols, scattering_factors

MODES = ("exact", "fast")
#: Fast mode: Gaussian tails are cut at this many standard deviations (error ~exp(-5.5^2/2) = 3e-7,
#: and far less after the sum over pairs; see tests/test_engine_fast.py).
FAST_TRUNCATE = 5.5


def fast_grid_spacing(qmax: float) -> float:
    """Spacing [Angstrom] of the fast mode's r grid: 0.05, or finer for qmax > 25 1/Angstrom.

    The grid samples Q up to 2 pi / h = 5 qmax, which keeps aliasing below ~1e-9 with tau0 = h.
    """
    return min(0.05, 2.0 * math.pi / (5.0 * max(qmax, 1e-12)))


@functools.lru_cache(maxsize=16)
def _fast_sine_matrix(h: float, nbins: int, qstep: float, nq: int, tau0: float, dtype, device) -> torch.Tensor:
    """(nbins, nq) matrix h sin(Q_k r_m) exp(tau0^2 Q_k^2 / 2), r_m = m h, Q_k = k qstep (float64 built)."""
    r = torch.arange(nbins, dtype=torch.float64) * h
    q = torch.arange(nq, dtype=torch.float64) * qstep
    m = h * torch.sin(r[:, None] * q[None, :]) * torch.exp(0.5 * (tau0 * q) ** 2)[None, :]
    return m.to(dtype=dtype, device=device)


def debye_partials(batch: ClusterBatch, qstep: float, nq: int, rmin: float, rmax: float,
                   params: PDFParameters, mode: str = "exact") -> torch.Tensor:
    """Debye sums per species pair over pairs with rmin < r_ij <= rmax [Angstrom], shape (B, S*S, nq).

    out[b, s*S+t, k] = sum_{i<j, species {s,t}} exp(-(U_i+U_j) c(r_ij) Q_k^2 / 2) sin(Q_k r_ij) / r_ij
    with Q_k = k * qstep [1/Angstrom] and c the Jeong width factor of ``params``.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    partial_sum = _exact_partials if mode == "exact" else _fast_partials
    out = partial_sum(batch, qstep, nq, rmax, params)
    if rmin > 0:
        out = out - partial_sum(batch, qstep, nq, rmin, params)
    return out


def _exact_partials(batch: ClusterBatch, qstep: float, nq: int, rcut: float, params: PDFParameters):
    return ops.debye_partials(batch.pos, batch.species, batch.uiso, batch.n_species, 0.0, qstep, nq, rcut,
                              params.delta1, params.delta2, params.qbroad)


def _cluster_uiso(batch: ClusterBatch) -> torch.Tensor | None:
    """(B,) the U_iso shared by all atoms of each cluster, or None when some cluster has several."""
    u = batch.uiso.detach()
    if u.shape[1] == 0:
        return u.new_zeros(batch.batch_size)
    hi = torch.where(batch.mask, u, torch.full_like(u, -math.inf)).amax(1)
    lo = torch.where(batch.mask, u, torch.full_like(u, math.inf)).amin(1)
    empty = ~batch.mask.any(1)
    if not bool(((hi == lo) | empty).all()):
        return None
    return torch.where(empty, torch.zeros_like(hi), hi)


def _fast_partials(batch: ClusterBatch, qstep: float, nq: int, rcut: float, params: PDFParameters):
    """Gaussian gridding: bin_width h = tau0, one shared (nbins, nq) sine matrix for the batch.

    With no Jeong widths and one U_iso per cluster (and no gradient wanted for U_iso) every pair gets the
    same Gaussian (width tau0, op ``fixed_pair_grid``) and the thermal factor exp(-U Q^2) is applied per
    cluster in Q; otherwise each pair is spread with its own width sqrt(tau0^2 + sigma_ij^2)
    (op ``gaussian_pair_grid``). Either way the extra exp(-tau0^2 Q^2 / 2) is divided out exactly.
    """
    h = fast_grid_spacing(qstep * max(nq - 1, 1))
    jeong = (params.delta1, params.delta2, params.qbroad) != (0.0, 0.0, 0.0)
    cluster_u = None if jeong or batch.uiso.requires_grad else _cluster_uiso(batch)
    s = batch.n_species
    if cluster_u is not None:
        nbins = int(math.ceil((rcut + FAST_TRUNCATE * h) / h)) + 2
        grid = ops.fixed_pair_grid(batch.pos, batch.species, s, h, nbins, h, FAST_TRUNCATE, rcut)
    else:
        max_u = float(batch.uiso.detach().max()) if batch.uiso.numel() else 0.0
        corr = max(1.0, 1.0 + (params.qbroad * rcut) ** 2)
        smax = math.sqrt(h * h + 2.0 * max_u * corr)
        nbins = int(math.ceil((rcut + FAST_TRUNCATE * smax) / h)) + 2
        grid = ops.gaussian_pair_grid(batch.pos, batch.species, batch.uiso, s, h, nbins, h, FAST_TRUNCATE,
                                      rcut, params.delta1, params.delta2, params.qbroad)
    out = grid @ _fast_sine_matrix(h, nbins, qstep, nq, h, batch.pos.dtype, batch.pos.device)
    if cluster_u is not None:
        q = qstep * torch.arange(nq, dtype=batch.pos.dtype, device=batch.pos.device)
        out = out * torch.exp(-cluster_u.to(q.dtype)[:, None, None] * q**2)
    return out


def structure_function(batch: ClusterBatch, grid: DebyeGrid, mode: str = "exact") -> torch.Tensor:
    """Reduced structure function F(Q) = Q [S(Q) - 1] on ``grid.q``, shape (B, nq) [1/Angstrom].

    F(Q) = sum_{i != j} f_i f_j exp(-sigma_ij^2 Q^2 / 2) sin(Q r_ij) / r_ij / (N <f(Q)>^2) over pairs in
    the grid's extended range, as diffpy's DebyePDFCalculator.fq (not zeroed below qmin). Clusters are
    summed in groups of equal element sets, so per-species-pair work follows each cluster's elements.
    """
    params = grid.params
    check_symbols(batch.symbols, params.radiation)
    q = torch.as_tensor(grid.q, dtype=batch.pos.dtype, device=batch.pos.device)
    groups = batch.split_by_species()
    out = None if len(groups) == 1 else batch.pos.new_zeros((batch.batch_size, grid.nq))
    for index, sub in groups:
        a = debye_partials(sub, grid.qstep, grid.nq, grid.extended_rmin, grid.extended_rmax, params, mode)
        fq = _normalise(sub, a, q, params.radiation)
        if out is None:
            return fq
        out = out.index_copy(0, index, fq)
    return out


def _normalise(batch: ClusterBatch, a: torch.Tensor, q: torch.Tensor, radiation: str) -> torch.Tensor:
    """F = 2 sum_{s<=t} f_s f_t A_st / (N <f>^2) from partial sums A (B, S*S, nq)."""
    s = batch.n_species
    f = scattering_factors(batch.symbols, q, radiation)  # (S, nq)
    ff = (f[:, None, :] * f[None, :, :]).reshape(s * s, -1)
    v = 2.0 * torch.einsum("bpk,pk->bk", a, ff)
    counts = batch.species_counts().to(q.dtype)  # (B, S)
    n = counts.sum(1, keepdim=True)
    fsum = counts @ f  # N <f>
    denom = fsum * fsum / n.clamp(min=1)
    return torch.where(denom > 0, v / torch.where(denom > 0, denom, torch.ones_like(denom)), torch.zeros_like(v))


def pdf_from_structure_function(fq: torch.Tensor, grid: DebyeGrid) -> torch.Tensor:
    """G(r) [1/Angstrom^2] on ``grid.r`` from F(Q) on ``grid.q``: qmin cut, sine transform, envelopes."""
    return fq @ grid.transform_matrix(fq.dtype, fq.device)


@dataclass
class PDFResult:
    """Simulated PDFs of a batch.

    Attributes:
        r: (nr,) r grid [Angstrom].
        G: (B, nr) reduced PDF G(r) [1/Angstrom^2] (or max|G| = 1 when normalised).
        params: the parameters used.
        grids: the Debye grid of each cluster (diffpy sizes the Q grid from each cluster's largest U_iso).
        F: (B, nq) F(Q) on ``q`` when all clusters share one grid, else None.
        q: (nq,) Q grid [1/Angstrom] of ``F`` (None when grids differ).
    """

    r: np.ndarray
    G: torch.Tensor
    params: PDFParameters
    grids: list = field(repr=False)
    F: torch.Tensor | None = None
    q: np.ndarray | None = None


def _as_batch(structures, params: PDFParameters, dtype, device) -> ClusterBatch:
    if isinstance(structures, ClusterBatch):
        return structures.to(dtype=dtype, device=device) if dtype or device else structures
    return ClusterBatch.from_atoms(structures, biso=params.biso, dtype=dtype or torch.float64, device=device)


def simulate_pdf(structures, params: PDFParameters | None = None, *, mode: str = "exact",
                 normalize: bool = False, dtype=None, device=None) -> PDFResult:
    """Simulate the X-ray (or neutron) PDF G(r) of one cluster or a batch.

    Args:
        structures: an ``ase.Atoms``, a list of them, or a :class:`ClusterBatch` (its own U_iso used).
        params: :class:`PDFParameters` (defaults: rmax 30, rstep 0.01 Angstrom, qmin 0.7, qmax 25
            1/Angstrom, qdamp 0.04, biso 0.3 Angstrom^2).
        mode: ``"exact"`` (diffpy-identical pair sum) or ``"fast"`` (Gaussian gridding, batched GEMM).
        normalize: scale each G to max|G| = 1 (as the DeepStruc training data).
        dtype, device: torch dtype (default float64 for Atoms input) and device.

    Returns:
        :class:`PDFResult` with ``r`` (nr,), ``G`` (B, nr) and, when the clusters share a grid,
        ``q`` and ``F`` (B, nq).
    """
    params = params or PDFParameters()
    batch = _as_batch(structures, params, dtype, device)
    r = DebyeGrid.build(params).r
    b = batch.batch_size
    if b == 0:
        return PDFResult(r, batch.pos.new_zeros((0, len(r))), params, [], batch.pos.new_zeros((0, 0)), np.zeros(0))
    # diffpy extends the calculation range by each structure's widest peak: group clusters by it.
    max_u = torch.where(batch.mask, batch.uiso, torch.zeros_like(batch.uiso)).amax(1).detach().cpu()
    groups: dict[DebyeGrid, list[torch.Tensor]] = {}
    for u in torch.unique(max_u).tolist():
        groups.setdefault(DebyeGrid.build(params, u), []).append(torch.nonzero(max_u == u).flatten())
    grids, results = [None] * b, []
    g_out = batch.pos.new_zeros((b, len(r))) if len(groups) > 1 else None
    for grid, idx_list in groups.items():
        idx = torch.cat(idx_list)
        for i in idx.tolist():
            grids[i] = grid
        idx = idx.to(batch.pos.device)
        sub = batch.subset(idx) if len(idx) < b else batch
        fq = structure_function(sub, grid, mode)
        g = pdf_from_structure_function(fq, grid)
        g_out = g if len(groups) == 1 else g_out.index_copy(0, idx, g)
        results.append((grid, idx, fq))
    if normalize:
        g_out = g_out / g_out.abs().amax(1, keepdim=True).clamp(min=torch.finfo(g_out.dtype).tiny)
    f_out, q_out = None, None
    if len(results) == 1:
        grid, _, f_out = results[0]
        q_out = grid.q
    return PDFResult(r, g_out, params, grids, f_out, q_out)


def total_scattering(structures, params: PDFParameters | None = None, *, mode: str = "exact",
                     dtype=None, device=None) -> dict:
    """F(Q), S(Q) and I(Q) on diffpy's Q grid for a batch sharing one grid.

    Returns a dict with ``q`` (nq,) [1/Angstrom], ``F`` (B, nq) [1/Angstrom], ``S`` (B, nq)
    (dimensionless, S = 1 + F/Q, its Q -> 0 limit at Q = 0) and ``I`` (B, nq): the Debye intensity
    sum_i f_i^2 + sum_{i != j} f_i f_j exp(-sigma_ij^2 Q^2/2) sin(Q r_ij)/(Q r_ij) [electrons^2 or fm^2].
    """
    params = params or PDFParameters()
    batch = _as_batch(structures, params, dtype, device)
    max_u = float(batch.uiso.detach().max()) if batch.uiso.numel() else 0.0
    grid = DebyeGrid.build(params, max_u)
    fq = structure_function(batch, grid, mode)
    q = torch.as_tensor(grid.q, dtype=batch.pos.dtype, device=batch.pos.device)
    # Q -> 0: sin(Q r)/(Q r) -> 1, so F/Q -> 2 sum f f (pair count) / (N <f>^2); evaluate at a tiny Q.
    q_tiny = 1e-6
    a0 = debye_partials(batch, q_tiny, 2, grid.extended_rmin, grid.extended_rmax, params, "exact")[..., 1:]
    f0_over_q = _normalise(batch, a0 / q_tiny, q[:1] * 0, params.radiation)[:, 0]
    safe_q = torch.where(q > 0, q, torch.ones_like(q))
    f_over_q = torch.where(q > 0, fq / safe_q, f0_over_q[:, None].expand_as(fq))
    s_q = 1.0 + f_over_q
    f = scattering_factors(batch.symbols, q, params.radiation)
    counts = batch.species_counts().to(q.dtype)
    n = counts.sum(1, keepdim=True)
    favg = counts @ f / n.clamp(min=1)
    self_term = counts @ (f * f)
    i_q = self_term + n * favg**2 * f_over_q
    return {"q": grid.q, "F": fq, "S": s_q, "I": i_q}
