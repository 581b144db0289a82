"""``acsf``: atom-centred symmetry functions (Behler G2 radial and G5 angular) of every atom.

:func:`register` adds, in Python, the autograd formula of the compiled op (its backward calls
``pdfsolve::acsf_backward``) and the fake (meta) kernels of both ops. It is idempotent and does nothing when the
compiled extension is missing. :func:`acsf` calls it on first use.

Parameter tensors: ``radial`` and ``angular`` are float64 on any device (they are read on the host once per call
to build the grouping tables, so a CPU copy avoids a device sync); they get no gradient. :func:`acsf` converts
whatever it is given.
"""
from __future__ import annotations

import torch

from . import reference_acsf
from ._registry import register_once, register_pos_backward, use_compiled

_OP = "acsf"


def _n_features(n_species, radial, angular):
    return reference_acsf.n_features(n_species, radial.shape[0], angular.shape[0])


def register() -> bool:
    """Registers autograd and fake kernels of ``pdfsolve::acsf(_backward)``.

    Returns True when the ops are registered (now or before), False without the compiled extension.
    """
    return register_once(_OP, (_OP,), _register)


def _register() -> None:
    register_pos_backward(_OP)

    @torch.library.register_fake(f"pdfsolve::{_OP}")
    def _(pos, species, n_species, radial, angular, rcut):
        torch._check(pos.dim() == 3, lambda: "pos must have shape (B, N, 3)")
        return pos.new_empty((pos.shape[0], pos.shape[1], _n_features(n_species, radial, angular)))

    @torch.library.register_fake(f"pdfsolve::{_OP}_backward")
    def _(grad, pos, species, n_species, radial, angular, rcut):
        torch._check(pos.dim() == 3, lambda: "pos must have shape (B, N, 3)")
        return pos.new_empty(pos.shape)


def acsf(pos: torch.Tensor, species: torch.Tensor, n_species: int, radial: torch.Tensor, angular: torch.Tensor,
         rcut: float) -> torch.Tensor:
    """Behler symmetry functions of every atom, (B, N, F), differentiable in ``pos``.

    Parameters
    ----------
    pos : (B, N, 3) float32/float64 tensor, atom positions in Angstrom.
    species : (B, N) int64 tensor, species index in ``[0, n_species)``, ``-1`` for a padding slot.
    n_species : number of species S.
    radial : (n_r, 2) rows (eta in 1/Angstrom^2, R_s in Angstrom) of the G2 functions.
    angular : (n_a, 3) rows (eta in 1/Angstrom^2, zeta >= 1, lambda = +1 or -1) of the G5 functions.
    rcut : cutoff radius in Angstrom.

    Returns
    -------
    (B, N, F) tensor of ``pos``'s dtype, F = S n_r + S (S + 1) / 2 n_a: ``G2[s * n_r + q]`` for the neighbour
    species s, then ``G5[S n_r + p * n_a + a]`` for the neighbour species pair p (row-major upper triangle of
    S x S); zero rows for padding. See :mod:`pdfsolve.ops.reference_acsf` for the definition.

    Uses the compiled op when ``pdfsolve._C`` is loaded and has a kernel for ``pos``'s device, else (with a
    warning issued once) the plain-torch :func:`pdfsolve.ops.reference_acsf.acsf`.
    """
    radial = torch.as_tensor(radial, dtype=torch.float64)
    angular = torch.as_tensor(angular, dtype=torch.float64)
    if use_compiled(_OP, pos.device) and register():
        return torch.ops.pdfsolve.acsf(pos, species, int(n_species), radial, angular, float(rcut))
    return reference_acsf.acsf(pos, species, int(n_species), radial, angular, float(rcut))
