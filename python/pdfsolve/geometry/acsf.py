"""Atom-centred symmetry functions (Behler G2 radial, G5 angular) of clusters, per atom and pooled.

Units: positions and R_s in Angstrom, eta in 1/Angstrom^2, rcut in Angstrom. The op and its definition are in
:mod:`pdfsolve.ops.reference_acsf`; the compiled kernels give the gradient with respect to the positions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from ..ops import acsf as _acsf_op
from ..ops.reference_acsf import n_features as _n_features
from ._inputs import as_batch

# Fung et al. (2022), StructRepGen configs/example/example_extract_reconstruct.yaml.
_PUBLISHED_RCUT = 20.0
_G2_ETA = (0.01, 0.06, 0.1, 0.2, 0.4, 0.7, 1.0, 2.0, 3.5, 5.0)
_G2_RS = (0.0, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0)
_G5_LAMBDA = (-1.0, 1.0)
_G5_ZETA = (1.0, 2.0, 4.0, 16.0, 64.0)
_G5_ETA = (0.06, 0.1, 0.2, 0.4, 1.0)

_POOLINGS = ("max", "min", "mean")


def _as_rows(rows, width: int, name: str) -> torch.Tensor:
    t = torch.as_tensor(rows, dtype=torch.float64).detach().cpu()
    if t.numel() == 0:
        t = t.reshape(0, width)
    if t.dim() != 2 or t.shape[1] != width:
        raise ValueError(f"{name} must have shape (n, {width}), got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return t


@dataclass(frozen=True)
class ACSFParameters:
    """Parameters of the G2 and G5 functions.

    radial : (n_r, 2) rows (eta [1/Angstrom^2] >= 0, R_s [Angstrom]).
    angular : (n_a, 3) rows (eta [1/Angstrom^2] >= 0, zeta >= 1, lambda = +1 or -1).
    rcut : cutoff radius in Angstrom (> 0).

    Rows may be given as nested tuples, arrays or tensors; they are stored as float64 CPU tensors.
    """

    radial: torch.Tensor
    angular: torch.Tensor
    rcut: float

    def __post_init__(self):
        radial = _as_rows(self.radial, 2, "radial")
        angular = _as_rows(self.angular, 3, "angular")
        rcut = float(self.rcut)
        if not (math.isfinite(rcut) and rcut > 0):
            raise ValueError(f"rcut must be finite and > 0 Angstrom, got {self.rcut}")
        if (radial[:, 0] < 0).any() or (angular[:, 0] < 0).any():
            raise ValueError("eta must be >= 0 (1/Angstrom^2)")
        if (angular[:, 1] < 1).any():
            raise ValueError(f"zeta must be >= 1, got {angular[:, 1].min().item()}")
        if not (angular[:, 2].abs() == 1).all():
            raise ValueError("lambda must be +1 or -1")
        object.__setattr__(self, "radial", radial)
        object.__setattr__(self, "angular", angular)
        object.__setattr__(self, "rcut", rcut)

    @classmethod
    def published(cls) -> "ACSFParameters":
        """Fung et al. (2022) (StructRepGen): rcut 20 A; 140 G2 rows in their feature order, eta-major
        (row e * 14 + rs: their ``einsum('i,jk->ijk', -eta, (r - Rs)^2)`` puts eta first); 50 G5 rows, zeta-major,
        then lambda (-1, 1), then eta (row (zeta * 2 + lambda) * 5 + eta). One element: 190 features per atom."""
        radial = [(eta, rs) for eta in _G2_ETA for rs in _G2_RS]
        angular = [(eta, zeta, lam) for zeta in _G5_ZETA for lam in _G5_LAMBDA for eta in _G5_ETA]
        return cls(radial, angular, _PUBLISHED_RCUT)

    def n_features(self, n_species: int = 1) -> int:
        """Features per atom for ``n_species`` elements: S n_r + S (S + 1) / 2 n_a."""
        return _n_features(int(n_species), self.radial.shape[0], self.angular.shape[0])


def _prepare(pos, species, n_species, mask):
    """Batched (B, N, 3) positions, (B, N) species with -1 for masked slots, S, and whether a batch dim was added.

    Stricter than the other geometry functions on one point: a NaN or inf position is an error even in a padding
    slot, and integer positions take torch's default dtype.
    """
    pos = torch.as_tensor(pos)
    if not pos.is_floating_point():
        pos = pos.to(torch.get_default_dtype())
    if not torch.isfinite(pos).all():
        raise ValueError("pos contains NaN or inf coordinates")
    pos, mask, squeeze = as_batch(pos, mask)
    B, N = pos.shape[:2]
    if species is None:
        species = torch.zeros(B, N, dtype=torch.long, device=pos.device)
    else:
        species = torch.as_tensor(species, device=pos.device).to(torch.long)
        if squeeze and species.dim() == 1:
            species = species[None]
        if species.shape != (B, N):
            raise ValueError(f"species must have shape {(B, N)}, got {tuple(species.shape)}")
    species = torch.where(mask, species, torch.full_like(species, -1))
    if n_species is None:
        n_species = int(species.max().item()) + 1 if species.numel() else 1
        n_species = max(n_species, 1)
    elif species.numel() and int(species.max().item()) >= n_species:
        raise ValueError(f"species values must be < n_species ({n_species})")
    return pos, species, int(n_species), squeeze


def acsf(pos: torch.Tensor, species: torch.Tensor | None = None, params: ACSFParameters | None = None,
         n_species: int | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetry functions of every atom, differentiable in ``pos``.

    Parameters
    ----------
    pos : (N, 3) or (B, N, 3) float tensor, positions in Angstrom.
    species : (N,) / (B, N) int tensor of element indices in ``[0, n_species)`` (-1 = padding); default all 0.
    params : :class:`ACSFParameters`, default :meth:`ACSFParameters.published`.
    n_species : number of elements S; default ``species.max() + 1``.
    mask : optional (N,) / (B, N) bool tensor, False for padding slots.

    Returns
    -------
    (N, F) or (B, N, F) tensor of ``pos``'s dtype, F = ``params.n_features(S)``: radial block (index
    ``s * n_r + q``), then angular block (index ``S n_r + p * n_a + a``, p the row-major upper-triangle index of
    the neighbour species pair); padding rows are zero.
    """
    params = ACSFParameters.published() if params is None else params
    pos, species, S, squeeze = _prepare(pos, species, n_species, mask)
    out = _acsf_op(pos, species, S, params.radial, params.angular, params.rcut)
    return out[0] if squeeze else out


def pooled_acsf(pos: torch.Tensor, species: torch.Tensor | None = None, params: ACSFParameters | None = None,
                n_species: int | None = None, mask: torch.Tensor | None = None,
                pooling: Sequence[str] = ("max", "min")) -> torch.Tensor:
    """Per-cluster descriptor: the per-atom :func:`acsf` pooled over the real atoms, one block per pooling.

    ``pooling`` entries are "max", "min" or "mean" (padding is excluded from each). Returns (F * len(pooling),)
    for (N, 3) input or (B, F * len(pooling)) for (B, N, 3); a cluster without atoms pools to zeros. The default
    reproduces the published 380 numbers (190 maxima, then 190 minima) for one element.
    """
    for name in pooling:
        if name not in _POOLINGS:
            raise ValueError(f"pooling must be among {_POOLINGS}, got {name!r}")
    params = ACSFParameters.published() if params is None else params
    pos, species, S, squeeze = _prepare(pos, species, n_species, mask)
    feats = _acsf_op(pos, species, S, params.radial, params.angular, params.rcut)  # (B, N, F)
    real = (species >= 0)[..., None]
    count = real.sum(1)
    blocks = []
    for name in pooling:
        if feats.shape[1] == 0:
            pooled = feats.new_zeros((feats.shape[0], feats.shape[2]))
        elif name == "mean":
            pooled = (feats * real).sum(1) / count.clamp(min=1)
        else:
            fill = -math.inf if name == "max" else math.inf
            masked = torch.where(real, feats, torch.full_like(feats, fill))
            pooled = masked.amax(1) if name == "max" else masked.amin(1)
            pooled = torch.where(count > 0, pooled, torch.zeros_like(pooled))
        blocks.append(pooled)
    out = torch.cat(blocks, -1) if blocks else feats.new_zeros((feats.shape[0], 0))
    return out[0] if squeeze else out
