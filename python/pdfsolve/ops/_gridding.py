"""``gaussian_pair_grid``: pair distances spread on a uniform r grid by a 1/r-weighted Gaussian each.

This is the gridding step of pdfsolve's fast Debye sum (a Gaussian-kernel non-uniform FFT): one shared
sine matrix turns a whole batch of grids into Debye sums, see
:func:`pdfsolve.ops.reference.gaussian_pair_grid`.

:func:`register` adds, in Python, the autograd formula of the compiled op (its backward calls
``pdfsolve::gaussian_pair_grid_backward``) and the fake (meta) kernels of both ops. It is idempotent and
does nothing when the compiled extension is missing. :func:`gaussian_pair_grid` calls it on first use.
"""
from __future__ import annotations

import torch

from . import reference
from ._registry import register_once, use_compiled

_OP = "gaussian_pair_grid"


def _setup_context(ctx, inputs, output):
    pos, species, uiso, *params = inputs
    ctx.save_for_backward(pos, species, uiso)
    ctx.params = tuple(params)


def _backward(ctx, grad):
    pos, species, uiso = ctx.saved_tensors
    need_pos, _, need_uiso = ctx.needs_input_grad[:3]
    if not (need_pos or need_uiso):
        return (None,) * (3 + len(ctx.params))
    gpos, guiso = torch.ops.pdfsolve.gaussian_pair_grid_backward(grad, pos, species, uiso, *ctx.params)
    return (gpos if need_pos else None, None, guiso if need_uiso else None) + (None,) * len(ctx.params)


def register() -> bool:
    """Registers autograd and fake kernels of ``pdfsolve::gaussian_pair_grid(_backward)``.

    Returns True when the ops are registered (now or before), False without the compiled extension.
    """
    return register_once(_OP, (_OP,), _register)


def _register() -> None:
    torch.library.register_autograd(f"pdfsolve::{_OP}", _backward, setup_context=_setup_context)

    @torch.library.register_fake(f"pdfsolve::{_OP}")
    def _(pos, species, uiso, n_species, bin_width, nbins, tau0, truncate, rcut, delta1, delta2, qbroad):
        torch._check(pos.dim() == 3, lambda: "pos must have shape (B, N, 3)")
        return pos.new_empty((pos.shape[0], n_species * n_species, nbins))

    @torch.library.register_fake(f"pdfsolve::{_OP}_backward")
    def _(grad, pos, species, uiso, n_species, bin_width, nbins, tau0, truncate, rcut, delta1, delta2, qbroad):
        torch._check(pos.dim() == 3, lambda: "pos must have shape (B, N, 3)")
        return pos.new_empty(pos.shape), uiso.new_empty(uiso.shape)


def gaussian_pair_grid(pos: torch.Tensor, species: torch.Tensor, uiso: torch.Tensor, n_species: int,
                       bin_width: float, nbins: int, tau0: float, truncate: float, rcut: float,
                       delta1: float = 0.0, delta2: float = 0.0, qbroad: float = 0.0) -> torch.Tensor:
    """Pair distances on the grid r_m = m * bin_width, a normalised 1/r-weighted Gaussian per pair.

    Differentiable in ``pos`` and ``uiso`` (the compiled op has a hand-written backward).

    Parameters
    ----------
    pos : (B, N, 3) float32/float64 tensor, atom positions in Angstrom.
    species : (B, N) int64 tensor, species index in ``[0, n_species)``, ``-1`` for a padding slot.
    uiso : (B, N) tensor of ``pos``'s dtype, isotropic displacement U_iso in Angstrom^2.
    n_species : number of species S.
    bin_width : grid spacing h in Angstrom; bin m stands for r_m = m h, ``nbins`` bins.
    tau0 : base Gaussian width in Angstrom (> 0); its factor exp(-tau0^2 Q^2 / 2) is divided out after the
        sine transform.
    truncate : each Gaussian is cut at |r_m - r| <= truncate * s (5.5 keeps the error near 1e-7).
    rcut : pairs farther apart than ``rcut`` (Angstrom) are left out.
    delta1 (Angstrom), delta2 (Angstrom^2), qbroad (1/Angstrom) : Jeong peak-width parameters.

    Returns
    -------
    (B, S*S, nbins) tensor (units 1/Angstrom^2): ``out[b, s*S+t, m]`` (s <= t; slots with s > t stay zero) =
    sum over pairs i<j of species {s, t} with 0 < r_ij <= rcut and |r_m - r_ij| <= truncate s_ij of
    exp(-(r_m - r_ij)^2 / (2 s_ij^2)) / (sqrt(2 pi) s_ij r_ij), s_ij^2 = tau0^2 + (U_i + U_j) c(r_ij),
    c(r) = max(0, 1 - delta1/r - delta2/r^2 + (qbroad r)^2). Then
    ``bin_width * sum_m out[..., m] sin(Q r_m) ~= exp(-tau0^2 Q^2 / 2) * debye_partials(...)(Q)``.

    Uses the compiled op when ``pdfsolve._C`` is loaded and has a kernel for ``pos``'s device, else (with a
    warning issued once) the plain-torch :func:`pdfsolve.ops.reference.gaussian_pair_grid`.
    """
    args = (int(n_species), float(bin_width), int(nbins), float(tau0), float(truncate), float(rcut),
            float(delta1), float(delta2), float(qbroad))
    if use_compiled(_OP, pos.device) and register():
        return torch.ops.pdfsolve.gaussian_pair_grid(pos, species, uiso, *args)
    return reference.gaussian_pair_grid(pos, species, uiso, *args)
