"""What the reconstruction solvers share: their result, the choice of backend, and the reference path that
minimises a torch objective over atom positions with :func:`pdfsolve.optim.minimize_batched`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..ops._registry import use_compiled
from ..optim import minimize_batched, value_and_grad

BACKENDS = ("auto", "compiled", "torch")


@dataclass
class ReconstructionResult:
    """x (B, N, 3) coordinates (padding rows as in the start), loss (B,) final objective, nit and status (B,)
    (codes of :data:`pdfsolve.optim.STATUS`)."""

    x: torch.Tensor
    loss: torch.Tensor
    nit: torch.Tensor
    status: torch.Tensor


def resolve_backend(backend: str, op: str, device: torch.device = torch.device("cpu")) -> str:
    """``"compiled"`` or ``"torch"`` for ``backend`` (``"auto"`` picks the compiled op ``op`` where it runs on
    ``device``)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        return "compiled" if use_compiled(op, device) else "torch"
    return backend


def minimize_positions(objective: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
                       start: torch.Tensor, mask: torch.Tensor, **options) -> ReconstructionResult:
    """Minimises ``objective(x (k, N, 3), mask (k, N), index (k,)) -> (k,)`` over the real atoms of B clusters
    from ``start`` (B, N, 3) by batched L-BFGS-B with autograd gradients; padding atoms stay where they are.
    ``options`` go to :func:`pdfsolve.optim.minimize_batched`."""
    B, N, _ = start.shape
    fixed = (~mask)[..., None].expand(B, N, 3).reshape(B, -1)
    flat = start.reshape(B, -1)
    inf = torch.full_like(flat, float("inf"))
    res = minimize_batched(value_and_grad(lambda x, index: objective(x.reshape(-1, N, 3), mask[index], index)),
                           flat, torch.where(fixed, flat, -inf), torch.where(fixed, flat, inf), **options)
    return ReconstructionResult(res.x.reshape(B, N, 3), res.fun, res.nit, res.status)
