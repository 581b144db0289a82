"""Plain-torch reference of the ACSF op (Behler G2 radial and G5 angular symmetry functions).

It defines what ``pdfsolve::acsf`` computes, is the oracle of the tests (run it in float64) and the fallback
when the compiled op is unavailable; autograd differentiates it.

Definition (distances in Angstrom, eta in 1/Angstrom^2)
-------------------------------------------------------
``pos`` (B, N, 3); ``species`` (B, N) int64 in ``[0, S)``, ``-1`` for padding; ``radial`` (n_r, 2) rows
(eta, R_s); ``angular`` (n_a, 3) rows (eta, zeta >= 1, lambda = +-1); ``rcut`` > 0. Neighbours j of atom i are
the real atoms j != i with ``COINCIDENT_TOL < r_ij < rcut``; f_c(r) = 0.5 (cos(pi r / rcut) + 1).

* ``G2_i[s, q] = sum_{j: s_j = s} exp(-eta_q (r_ij - Rs_q)^2) f_c(r_ij)``
* ``G5_i[p(s, t), a] = 2^(1 - zeta_a) sum_{j < k: {s_j, s_k} = {s, t}} (1 + lambda_a cos theta_ijk)^zeta_a
  exp(-eta_a (r_ij^2 + r_ik^2)) f_c(r_ij) f_c(r_ik)`` (cos clamped to [-1, 1])

Output (B, N, F), F = S n_r + S (S + 1) / 2 n_a: index ``s * n_r + q`` for the radial block, then
``S * n_r + p * n_a + a`` with p the row-major index of (s <= t) in the upper triangle of S x S. Padding rows
are zero.
"""
from __future__ import annotations

import math

import torch

from .reference import COINCIDENT_TOL

#: Largest (cluster, centre, pair, row) tensor the angular block builds at once (elements).
_CHUNK_ELEMENTS = 1 << 22


def n_features(n_species: int, n_radial: int, n_angular: int) -> int:
    """Features per atom: S n_r + S (S + 1) / 2 n_a."""
    return n_species * n_radial + n_species * (n_species + 1) // 2 * n_angular


def pair_slots(n_species: int) -> torch.Tensor:
    """(S, S) int64: the row-major upper-triangle index p(s, t) of the unordered species pair {s, t}."""
    s, t = torch.triu_indices(n_species, n_species)
    slots = torch.empty(n_species, n_species, dtype=torch.long)
    idx = torch.arange(s.numel())
    slots[s, t] = idx
    slots[t, s] = idx
    return slots


def _neighbours(pos, species, rcut):
    """Unit vectors u_ij (B, N, N, 3), distances r_ij and cutoffs f_c(r_ij) (B, N, N); zero where j is not a
    neighbour of i (padding, j == i, coincident, beyond rcut)."""
    real = species >= 0
    diff = pos[:, None, :, :] - pos[:, :, None, :]  # pos_j - pos_i
    d2 = (diff * diff).sum(-1)
    valid = real[:, :, None] & real[:, None, :] & (d2 > COINCIDENT_TOL**2) & (d2 < rcut * rcut)
    r = torch.sqrt(torch.where(valid, d2, torch.ones_like(d2)))
    fc = torch.where(valid, 0.5 * (torch.cos(math.pi / rcut * r) + 1.0), torch.zeros_like(r))
    u = diff / r[..., None] * valid[..., None]
    return u, torch.where(valid, r, torch.zeros_like(r)), fc


def acsf(pos: torch.Tensor, species: torch.Tensor, n_species: int, radial: torch.Tensor, angular: torch.Tensor,
         rcut: float) -> torch.Tensor:
    """ACSF of every atom, (B, N, F) in ``pos``'s dtype (see the module docstring for the definition)."""
    B, N = pos.shape[:2]
    S = int(n_species)
    radial = radial.to(pos)
    angular = angular.to(pos)
    n_r, n_a = radial.shape[0], angular.shape[0]
    if B == 0 or N == 0:
        return pos.new_zeros((B, N, n_features(S, n_r, n_a)))
    u, r, fc = _neighbours(pos, species, float(rcut))
    onehot = torch.nn.functional.one_hot(species.clamp(min=0), S).to(pos.dtype)  # (B, N, S); padding has fc = 0
    g2 = torch.exp(-radial[:, 0] * (r[..., None] - radial[:, 1]) ** 2) * fc[..., None]  # (B, Ni, Nj, n_r)
    radial_block = torch.einsum("bijq,bjs->bisq", g2, onehot).reshape(B, N, S * n_r)

    eta, zeta, lam = angular[:, 0], angular[:, 1], angular[:, 2]
    jj, kk = torch.triu_indices(N, N, offset=1, device=pos.device)
    slot = pair_slots(S).to(pos.device)[species.clamp(min=0)[:, jj], species.clamp(min=0)[:, kk]]  # (B, P)
    pair_onehot = torch.nn.functional.one_hot(slot, S * (S + 1) // 2).to(pos.dtype)  # (B, P, Sp)
    w = torch.exp(-eta * (r * r)[..., None]) * fc[..., None]  # (B, Ni, Nj, n_a)
    coef = torch.exp2(1.0 - zeta)
    chunk = max(1, _CHUNK_ELEMENTS // max(1, B * jj.numel() * n_a))
    blocks = []
    for i0 in range(0, N, chunk):
        uc, wc = u[:, i0:i0 + chunk], w[:, i0:i0 + chunk]
        cos = (uc[:, :, jj] * uc[:, :, kk]).sum(-1).clamp(-1.0, 1.0)  # (B, c, P)
        term = coef * (1.0 + lam * cos[..., None]) ** zeta * wc[:, :, jj] * wc[:, :, kk]  # (B, c, P, n_a)
        blocks.append(torch.einsum("bcpa,bpq->bcqa", term, pair_onehot).reshape(B, -1, S * (S + 1) // 2 * n_a))
    out = torch.cat([radial_block, torch.cat(blocks, 1)], -1)
    return out * (species >= 0)[..., None].to(pos.dtype)
