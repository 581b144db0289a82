"""Plain-torch reference implementations of pdfsolve's compiled ops.

They define what each op computes, serve as the oracle in the tests (run them in float64), and are
the fallback when the compiled extension is missing or has no kernel for the tensor's device.
Autograd differentiates them, so they need no hand-written backward.

Conventions shared by all ops
-----------------------------
``pos``      (B, N, 3) atom positions in Angstrom, float32 or float64.
``species``  (B, N) int64 species index in ``[0, n_species)``; ``-1`` marks a padding slot (no atom).
``uiso``     (B, N) isotropic mean-square displacement U_iso in Angstrom^2 (same dtype as ``pos``).
Pairs are unordered (i < j); a pair whose distance is below ``COINCIDENT_TOL`` is skipped (its
distance is undefined for sin(Qr)/r and diffpy skips it too), so its gradient is zero.
Species pairs are flattened to ``s * n_species + t`` with ``s <= t``; slots with ``s > t`` stay zero.
"""
from __future__ import annotations

import torch

#: Distances (Angstrom) at or below this count as coincident atoms and are skipped (sqrt of double eps).
COINCIDENT_TOL = 1.4901161193847656e-08


def _pairs(pos: torch.Tensor, species: torch.Tensor, n_species: int):
    """Distances, pair-type index and validity of every unordered pair i < j.

    Returns ``(d, i, j, ptype, valid)`` with ``d`` of shape (B, P) for P = N(N-1)/2 pairs.
    """
    n = pos.shape[1]
    i, j = torch.triu_indices(n, n, offset=1, device=pos.device)
    diff = pos[:, i, :] - pos[:, j, :]
    d2 = (diff * diff).sum(-1)
    valid = (species[:, i] >= 0) & (species[:, j] >= 0) & (d2 > COINCIDENT_TOL**2)
    # sqrt of a clamped value keeps the gradient finite (and zero, via the mask) at coincident atoms.
    d = torch.sqrt(torch.where(valid, d2, torch.ones_like(d2)))
    si = species[:, i].clamp(min=0)
    sj = species[:, j].clamp(min=0)
    ptype = torch.minimum(si, sj) * n_species + torch.maximum(si, sj)
    return d, i, j, ptype, valid


def jeong_width_factor(r: torch.Tensor, delta1: float, delta2: float, qbroad: float) -> torch.Tensor:
    """Squared Jeong peak-width factor c(r) = 1 - delta1/r - delta2/r^2 + (qbroad r)^2, clamped at 0.

    ``r`` in Angstrom, ``delta1`` in Angstrom, ``delta2`` in Angstrom^2, ``qbroad`` in 1/Angstrom.
    The pair's Gaussian variance is sigma_ij^2 = (U_i + U_j) c(r_ij) (diffpy's JeongPeakWidth).
    """
    c = 1.0 - delta1 / r - delta2 / (r * r) + (qbroad * r) ** 2
    return torch.clamp(c, min=0.0)


def debye_partials(pos, species, uiso, n_species: int, q0: float, qstep: float, nq: int, rcut: float,
                   delta1: float = 0.0, delta2: float = 0.0, qbroad: float = 0.0) -> torch.Tensor:
    """Debye sums per species pair, shape (B, n_species**2, nq).

    out[b, s*S+t, k] = sum over pairs i<j of species {s, t} with 0 < r_ij <= rcut of
    exp(-0.5 (U_i + U_j) c(r_ij) Q_k^2) sin(Q_k r_ij) / r_ij,   Q_k = q0 + k*qstep (1/Angstrom).

    The X-ray intensity follows as V(Q) = 2 sum_{s<=t} f_s(Q) f_t(Q) out[s*S+t] (each pair twice).
    """
    b = pos.shape[0]
    out = pos.new_zeros((b, n_species * n_species, nq))
    if b == 0 or pos.shape[1] < 2 or nq == 0:
        return out
    d, i, j, ptype, valid = _pairs(pos, species, n_species)
    valid = valid & (d <= rcut)
    q = q0 + qstep * torch.arange(nq, dtype=pos.dtype, device=pos.device)
    s2 = (uiso[:, i] + uiso[:, j]) * jeong_width_factor(d, delta1, delta2, qbroad)  # (B, P)
    term = torch.exp(-0.5 * s2[..., None] * q**2) * torch.sin(d[..., None] * q) / d[..., None]
    term = term * valid[..., None].to(pos.dtype)
    return out.scatter_add(1, ptype[..., None].expand_as(term), term)


def pair_histogram(pos, species, n_species: int, bin_width: float, nbins: int) -> torch.Tensor:
    """Pair-distance histograms per species pair with linear two-bin splatting, shape (B, S*S, nbins).

    A pair at distance r (Angstrom) with x = r / bin_width, lo = floor(x), w = x - lo adds (1 - w) to
    bin lo and w to bin lo + 1. Pairs with r >= (nbins - 1) * bin_width are dropped, so no weight
    falls off the end. Bin k stands for the distance k * bin_width.
    """
    b = pos.shape[0]
    out = pos.new_zeros((b, n_species * n_species, nbins))
    if b == 0 or pos.shape[1] < 2 or nbins < 2:
        return out
    d, _, _, ptype, valid = _pairs(pos, species, n_species)
    x = d / bin_width
    valid = valid & (x < nbins - 1)
    lo = torch.floor(x).detach()
    w = (x - lo) * valid.to(pos.dtype)
    lo = torch.where(valid, lo.long(), torch.zeros_like(lo, dtype=torch.long))
    flat = out.view(b, -1)
    base = ptype * nbins + lo
    flat = flat.scatter_add(1, base, valid.to(pos.dtype) - w)
    flat = flat.scatter_add(1, base + 1, w)
    return flat.view(b, n_species * n_species, nbins)


def gaussian_pair_grid(pos, species, uiso, n_species: int, bin_width: float, nbins: int, tau0: float,
                       truncate: float, rcut: float, delta1: float = 0.0, delta2: float = 0.0,
                       qbroad: float = 0.0) -> torch.Tensor:
    """Pair distances spread on the grid r_m = m * bin_width by a normalised Gaussian each, 1/r weighted.

    out[b, s*S+t, m] = sum over pairs i<j of species {s, t} with 0 < r_ij <= rcut and
    |r_m - r_ij| <= truncate * s_ij of  exp(-(r_m - r_ij)^2 / (2 s_ij^2)) / (sqrt(2 pi) s_ij r_ij),
    with s_ij^2 = tau0^2 + (U_i + U_j) c(r_ij) (Angstrom^2). Shape (B, S*S, nbins).

    Because the Fourier sine transform of this grid is, up to aliasing and truncation errors that the
    choice of bin_width, tau0 and truncate make negligible,
    bin_width * sum_m out[m] sin(Q r_m) = exp(-tau0^2 Q^2 / 2) * debye_partials(...)(Q),
    one shared matrix turns a whole batch of grids into Debye sums.
    """
    b = pos.shape[0]
    out = pos.new_zeros((b, n_species * n_species, nbins))
    if b == 0 or pos.shape[1] < 2 or nbins == 0:
        return out
    d, i, j, ptype, valid = _pairs(pos, species, n_species)
    valid = valid & (d <= rcut)
    s2 = tau0**2 + (uiso[:, i] + uiso[:, j]) * jeong_width_factor(d, delta1, delta2, qbroad)
    s = torch.sqrt(s2)
    rm = bin_width * torch.arange(nbins, dtype=pos.dtype, device=pos.device)
    x = rm - d[..., None]  # (B, P, nbins)
    inside = (x.abs() <= truncate * s[..., None]) & valid[..., None]
    g = torch.exp(-0.5 * x * x / s2[..., None]) / (s[..., None] * d[..., None] * (2 * torch.pi) ** 0.5)
    g = torch.where(inside, g, torch.zeros_like(g))
    return out.scatter_add(1, ptype[..., None].expand_as(g), g)
