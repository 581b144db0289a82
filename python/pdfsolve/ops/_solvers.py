"""Fake (meta) kernels of the solver ops (whole L-BFGS-B runs in C++; no autograd), so they trace under
``torch.compile`` / ``torch.export``. :func:`register` is idempotent and does nothing without the extension."""
from __future__ import annotations

import torch

from ._registry import register_once


def register() -> bool:
    """Registers the fake kernels of the solver ops; False without the compiled extension."""
    return register_once("solvers", ("trilaterate", "fit_affinity", "fingerprint_loss", "invert_fingerprint"),
                         _register)


def _solver_outputs(x0):
    """(x, f, iterations, status) of a whole-run solver op from x0 (B, N, 3)."""
    torch._check(x0.dim() == 3, lambda: "x0 must have shape (B, N, 3)")
    b = x0.shape[0]
    return (x0.new_empty(x0.shape), x0.new_empty((b,), dtype=torch.float64),
            x0.new_empty((b,), dtype=torch.long), x0.new_empty((b,), dtype=torch.long))


def _register() -> None:
    @torch.library.register_fake("pdfsolve::trilaterate")
    def _(x0, mask, target_pair, target_points, points, m, ftol, gtol, maxiter):
        return _solver_outputs(x0)

    @torch.library.register_fake("pdfsolve::fit_affinity")
    def _(x0, mask, target, sigma, m, ftol, gtol, maxiter):
        return _solver_outputs(x0)

    @torch.library.register_fake("pdfsolve::fingerprint_loss")
    def _(x, species, n_species, target, weight, radial, angular, rcut, pooling, min_distance, penalty, bounds):
        torch._check(x.dim() == 3, lambda: "x must have shape (M, N, 3)")
        return x.new_empty((x.shape[0],), dtype=torch.float64), x.new_empty(x.shape)

    @torch.library.register_fake("pdfsolve::invert_fingerprint")
    def _(x0, species, n_species, target, weight, radial, angular, rcut, pooling, min_distance, penalty, bounds, m,
          ftol, gtol, maxiter):
        return _solver_outputs(x0)
