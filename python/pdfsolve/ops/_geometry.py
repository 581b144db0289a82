"""``pair_distances``, ``point_distances`` and ``graph_laplacian``: compiled ops with autograd and fallback.

:func:`register` adds, in Python, the autograd formulas of the compiled ops (their backward calls the
``*_backward`` ops) and the fake (meta) kernels of all six ops. It is idempotent and does nothing when the compiled
extension is missing. The wrappers below call it on first use and fall back to
:mod:`pdfsolve.ops.reference_geometry` (with a warning issued once) where no compiled kernel can run.
"""
from __future__ import annotations

import torch

from . import reference_geometry
from ._registry import register_once, register_pos_backward, use_compiled

_OPS = ("pair_distances", "point_distances", "graph_laplacian")


def _laplacian_setup_context(ctx, inputs, output):
    pos, mask, sigma, form = inputs
    ctx.save_for_backward(pos, mask, sigma)
    ctx.form = form


def _laplacian_backward(ctx, grad):
    pos, mask, sigma = ctx.saved_tensors
    need_pos, _, need_sigma = ctx.needs_input_grad[:3]
    if not (need_pos or need_sigma):
        return None, None, None, None
    gpos, gsigma = torch.ops.pdfsolve.graph_laplacian_backward(grad.contiguous(), pos, mask, sigma, ctx.form)
    return gpos if need_pos else None, None, gsigma if need_sigma else None, None


def register() -> bool:
    """Registers autograd and fake kernels of the geometry ops; False without the compiled extension."""
    return register_once("geometry", _OPS, _register)


def _register() -> None:
    register_pos_backward("pair_distances")
    register_pos_backward("point_distances")
    torch.library.register_autograd("pdfsolve::graph_laplacian", _laplacian_backward,
                                    setup_context=_laplacian_setup_context)

    def check_pos(pos):
        torch._check(pos.dim() == 3, lambda: "pos must have shape (B, N, 3)")

    @torch.library.register_fake("pdfsolve::pair_distances")
    def _(pos, mask):
        check_pos(pos)
        return pos.new_empty((pos.shape[0], pos.shape[1], pos.shape[1]))

    @torch.library.register_fake("pdfsolve::pair_distances_backward")
    def _(grad, pos, mask):
        check_pos(pos)
        return pos.new_empty(pos.shape)

    @torch.library.register_fake("pdfsolve::point_distances")
    def _(pos, mask, points):
        check_pos(pos)
        return pos.new_empty((pos.shape[0], pos.shape[1], points.shape[0]))

    @torch.library.register_fake("pdfsolve::point_distances_backward")
    def _(grad, pos, mask, points):
        check_pos(pos)
        return pos.new_empty(pos.shape)

    @torch.library.register_fake("pdfsolve::graph_laplacian")
    def _(pos, mask, sigma, form):
        check_pos(pos)
        return pos.new_empty((pos.shape[0], pos.shape[1], pos.shape[1]))

    @torch.library.register_fake("pdfsolve::graph_laplacian_backward")
    def _(grad, pos, mask, sigma, form):
        check_pos(pos)
        return pos.new_empty(pos.shape), sigma.new_empty(sigma.shape)


def pair_distances(pos: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, N, N) distances in Angstrom between the real atoms of ``pos`` (B, N, 3) selected by ``mask`` (B, N) bool.

    Zero on the diagonal, for padding and for coincident atoms (whose gradient is zero); differentiable in
    ``pos``. See :func:`pdfsolve.ops.reference_geometry.pair_distances`.
    """
    if use_compiled("pair_distances", pos.device) and register():
        return torch.ops.pdfsolve.pair_distances(pos, mask)
    return reference_geometry.pair_distances(pos, mask)


def point_distances(pos: torch.Tensor, mask: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(B, N, P) distances in Angstrom from the real atoms of ``pos`` (B, N, 3) to fixed ``points`` (P, 3).

    Differentiable in ``pos`` only (the points are constants). See
    :func:`pdfsolve.ops.reference_geometry.point_distances`.
    """
    if use_compiled("point_distances", pos.device) and register():
        return torch.ops.pdfsolve.point_distances(pos, mask, points)
    return reference_geometry.point_distances(pos, mask, points)


def graph_laplacian(pos: torch.Tensor, mask: torch.Tensor, sigma: torch.Tensor, form: int) -> torch.Tensor:
    """(B, N, N) Gaussian affinity (form 0), Laplacian D - W (1) or normalised Laplacian (2) of each cluster.

    ``sigma`` (B,) in Angstrom sets W_ij = exp(-d_ij^2 / (2 sigma^2)); differentiable in ``pos`` and ``sigma``.
    See :func:`pdfsolve.ops.reference_geometry.graph_laplacian`.
    """
    if use_compiled("graph_laplacian", pos.device) and register():
        return torch.ops.pdfsolve.graph_laplacian(pos, mask, sigma, int(form))
    return reference_geometry.graph_laplacian(pos, mask, sigma, int(form))
