"""Batched L-BFGS-B: many independent bound-constrained minimisations advanced together.

The compiled solver (``torch.classes.pdfsolve.BatchedLbfgsb``, csrc/optim/lbfgsb.h) runs the algorithm of scipy's
L-BFGS-B (v3.0: generalized Cauchy point, subspace minimisation with projection, Moré–Thuente line search) for
every problem in float64, in parallel; Python only evaluates the objective, once per round for all problems that
need it. ``backend="scipy"`` runs :func:`scipy.optimize.minimize` problem by problem with the same objective: the
oracle of the tests and the fallback without the extension.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from ..ops import extension_available

#: Status codes of :attr:`LbfgsbResult.status` and their meaning.
STATUS = {
    0: "running",
    1: "converged: projected gradient <= gtol",
    2: "converged: relative reduction of f <= ftol",
    3: "stopped: maxiter reached",
    4: "stopped: maxfun reached",
    5: "stopped: line search found no acceptable step",
    6: "stopped: f or g is not finite at the start",
}
SCIPY_FTOL = 2.220446049250313e-09  # scipy's default ftol (factr 1e7)

#: ``fun(x, index) -> (f, g)``: x (k, n) float64 points of the problems ``index`` (k,); f (k,), g (k, n).
Objective = Callable[[torch.Tensor, torch.Tensor], "tuple[torch.Tensor, torch.Tensor]"]


@dataclass
class LbfgsbResult:
    """Solutions of a batch of problems: x (B, n), fun (B,), grad (B, n), nit, nfev, status (B,) int64."""

    x: torch.Tensor
    fun: torch.Tensor
    grad: torch.Tensor
    nit: torch.Tensor
    nfev: torch.Tensor
    status: torch.Tensor

    @property
    def success(self) -> torch.Tensor:
        """(B,) bool: converged (status 1 or 2)."""
        return (self.status == 1) | (self.status == 2)

    def message(self, b: int) -> str:
        return STATUS[int(self.status[b])]


def value_and_grad(objective: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Objective:
    """Turns a differentiable ``objective(x, index) -> f (k,)`` into ``fun(x, index) -> (f, g)`` by autograd."""

    def fun(x: torch.Tensor, index: torch.Tensor):
        with torch.enable_grad():
            xr = x.detach().requires_grad_(True)
            f = objective(xr, index)
            (g,) = torch.autograd.grad(f.sum(), xr)
        return f.detach(), g

    return fun


def _bounds(x0: torch.Tensor, bound, default: float) -> torch.Tensor:
    if bound is None:
        return torch.full_like(x0, default)
    b = torch.as_tensor(bound, dtype=torch.float64)
    return b.expand_as(x0).contiguous()


def minimize_batched(fun: Objective, x0, lower=None, upper=None, *, m: int = 10, ftol: float = SCIPY_FTOL,
                     gtol: float = 1e-5, maxiter: int = 15000, maxfun: int = 15000, maxls: int = 20,
                     backend: str = "auto", progress: bool = False) -> LbfgsbResult:
    """Minimises B independent problems f_b(x), x in R^n, lower_b <= x <= upper_b, by L-BFGS-B.

    Parameters
    ----------
    fun : ``fun(x, index) -> (f, g)`` for the points x (k, n) float64 of problems ``index`` (k,) int64 (see
        :func:`value_and_grad` to get g by autograd). Called once per round with every problem still running.
    x0 : (B, n) starting points; projected onto the bounds.
    lower, upper : (B, n), (n,) or scalar bounds (default none: -inf / inf); lower == upper fixes a variable,
        which is how padded variables are expressed.
    m, ftol, gtol, maxiter, maxfun, maxls : as in ``scipy.optimize.minimize(method="L-BFGS-B")`` (same defaults).
    backend : ``"compiled"``, ``"scipy"`` (one scipy call per problem) or ``"auto"`` (compiled when available).
    progress : show a progress bar of running problems.
    """
    x0 = torch.as_tensor(x0, dtype=torch.float64).detach().cpu()
    if x0.dim() != 2:
        raise ValueError(f"x0 must have shape (B, n), got {tuple(x0.shape)}")
    if not bool(torch.isfinite(x0).all()):
        raise ValueError("x0 contains NaN or inf")
    lo, hi = _bounds(x0, lower, -np.inf), _bounds(x0, upper, np.inf)
    if bool((lo > hi).any()):
        raise ValueError("lower must be <= upper everywhere")
    if backend == "auto":
        backend = "compiled" if extension_available() and hasattr(torch.classes.pdfsolve, "BatchedLbfgsb") else "scipy"
    if backend == "scipy":
        return _scipy_loop(fun, x0, lo, hi, m, ftol, gtol, maxiter, maxfun, maxls)
    if backend != "compiled":
        raise ValueError(f"backend must be 'auto', 'compiled' or 'scipy', got {backend!r}")
    solver = torch.classes.pdfsolve.BatchedLbfgsb(x0, lo, hi, m, ftol, gtol, maxiter, maxfun, maxls)
    with tqdm(total=x0.shape[0], desc="L-BFGS-B", unit="problem", disable=not progress) as bar:
        while True:
            index, points = solver.ask()
            bar.update(x0.shape[0] - len(index) - bar.n)
            if len(index) == 0:
                break
            f, g = fun(points, index)
            solver.tell(index, f.detach().to(torch.float64).reshape(-1), g.detach().to(torch.float64))
    return LbfgsbResult(solver.x(), solver.fun(), solver.grad(), solver.iterations(), solver.evaluations(),
                        solver.status())


def _scipy_loop(fun, x0, lo, hi, m, ftol, gtol, maxiter, maxfun, maxls) -> LbfgsbResult:
    """scipy.optimize.minimize per problem, calling ``fun`` with one problem at a time."""
    from scipy.optimize import minimize

    B, n = x0.shape
    xs, fs, gs, nit, nfev, status = [], [], [], [], [], []
    for b in range(B):
        index = torch.tensor([b])

        def f_and_g(x, index=index):
            f, g = fun(torch.as_tensor(x, dtype=torch.float64)[None], index)
            return float(f.reshape(-1)[0]), g.reshape(-1).to(torch.float64).numpy()

        bounds = list(zip(*(np.where(np.isfinite(v), v, None) for v in (lo[b].numpy(), hi[b].numpy()))))
        r = minimize(f_and_g, x0[b].numpy(), jac=True, method="L-BFGS-B", bounds=bounds,
                     options=dict(maxcor=m, ftol=ftol, gtol=gtol, maxiter=maxiter, maxfun=maxfun, maxls=maxls))
        xs.append(r.x)
        fs.append(r.fun)
        gs.append(r.jac)
        nit.append(r.nit)
        nfev.append(r.nfev)
        status.append(_scipy_status(r))
    t = lambda v, dt: torch.tensor(np.array(v), dtype=dt)  # noqa: E731
    return LbfgsbResult(t(xs, torch.float64), t(fs, torch.float64), t(gs, torch.float64), t(nit, torch.long),
                        t(nfev, torch.long), t(status, torch.long))


def _scipy_status(r) -> int:
    msg = str(r.message).upper()
    if "PROJ" in msg and "GRAD" in msg:
        return 1
    if "REL_REDUCTION" in msg or "FACTR" in msg:
        return 2
    if "ITERATIONS" in msg:
        return 3
    if "EVALUATIONS" in msg or "FUNCTION" in msg:
        return 4
    return 5
