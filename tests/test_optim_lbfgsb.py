"""Batched L-BFGS-B against scipy.optimize.minimize(method="L-BFGS-B"), row by row, on the same problems."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import pdfsolve.ops as ops
from pdfsolve.optim import minimize_batched, value_and_grad

needs_ext = pytest.mark.skipif(not ops.extension_available(), reason="pdfsolve._C not built")


def rosenbrock(x, index):
    return (100.0 * (x[:, 1:] - x[:, :-1] ** 2) ** 2 + (1.0 - x[:, :-1]) ** 2).sum(1)


def quadratic_problems(B, n, seed):
    """Random convex quadratics 1/2 x^T A_b x - c_b^T x with boxes that cut off the unconstrained minimum."""
    g = torch.Generator().manual_seed(seed)
    Q = torch.randn(B, n, n, generator=g, dtype=torch.float64)
    A = Q @ Q.transpose(1, 2) / n + 0.1 * torch.eye(n, dtype=torch.float64)
    c = 3.0 * torch.randn(B, n, generator=g, dtype=torch.float64)
    lower = -torch.rand(B, n, generator=g, dtype=torch.float64)
    upper = torch.rand(B, n, generator=g, dtype=torch.float64)

    def fun(x, index):
        Ax = torch.einsum("kij,kj->ki", A[index], x)
        return 0.5 * (x * Ax).sum(1) - (c[index] * x).sum(1), Ax - c[index]

    x0 = torch.zeros(B, n, dtype=torch.float64)
    return fun, x0, lower, upper


def assert_rows_match(a, b, x_tol, nit_slack):
    assert torch.equal(a.success, b.success) and bool(a.success.all())
    assert (a.x - b.x).abs().max() < x_tol
    assert ((a.fun - b.fun).abs() <= 1e-8 * (1 + b.fun.abs())).all()
    assert ((a.nit - b.nit).abs() <= nit_slack).all(), (a.nit, b.nit)


@needs_ext
def test_rosenbrock_with_bounds_matches_scipy_row_by_row():
    g = np.random.default_rng(0)
    B, n = 8, 10
    x0 = torch.tensor(g.uniform(-2, 2, (B, n)))
    lower = torch.full((B, n), -1.5, dtype=torch.float64)
    upper = torch.full((B, n), 1.5, dtype=torch.float64)
    lower[0], upper[0] = -np.inf, np.inf          # unconstrained row
    upper[1, :4] = 0.5                              # minimum (1, ..., 1) cut off: active upper bounds
    lower[2, 5:] = 1.2                              # active lower bounds
    fun = value_and_grad(rosenbrock)
    ours = minimize_batched(fun, x0, lower, upper, backend="compiled")
    ref = minimize_batched(fun, x0, lower, upper, backend="scipy")
    assert_rows_match(ours, ref, x_tol=1e-5, nit_slack=2)
    assert (ours.nfev - ref.nfev).abs().max() <= 3
    assert torch.allclose(ours.x[0], torch.ones(n, dtype=torch.float64), atol=1e-4)
    assert float(ours.x[1, 0]) == 0.5 and torch.all(ours.x[1, :4] <= 0.5)  # x_1 sits on its bound
    assert torch.all(ours.x[2, 5:] >= 1.2) and (ours.x[2, 5:] == 1.2).any()


@needs_ext
def test_convex_quadratics_with_active_bounds_match_scipy_and_kkt():
    fun, x0, lower, upper = quadratic_problems(40, 15, seed=1)
    ours = minimize_batched(fun, x0, lower, upper, gtol=1e-9, ftol=1e-14)
    ref = minimize_batched(fun, x0, lower, upper, gtol=1e-9, ftol=1e-14, backend="scipy")
    assert_rows_match(ours, ref, x_tol=1e-7, nit_slack=3)
    # KKT: gradient >= 0 at lower bounds, <= 0 at upper bounds, ~0 in between
    at_lo, at_hi = ours.x == lower, ours.x == upper
    g = ours.grad
    assert at_lo.sum() + at_hi.sum() > 40  # the bounds are active
    assert (g[at_lo] > -1e-9).all() and (g[at_hi] < 1e-9).all()
    assert g[~(at_lo | at_hi)].abs().max() < 1e-6  # |c| ~ 3: stationary to 7 digits


@needs_ext
def test_bounds_are_respected_and_fixed_variables_stay_put():
    fun, x0, lower, upper = quadratic_problems(30, 8, seed=2)
    lower[:, 6:] = upper[:, 6:] = 0.25  # padding: two fixed variables per problem
    res = minimize_batched(fun, x0, lower, upper)
    assert (res.x >= lower).all() and (res.x <= upper).all()
    assert (res.x[:, 6:] == 0.25).all()
    assert bool(res.success.all())


@needs_ext
@pytest.mark.parametrize("B", [1, 2000])
def test_batch_sizes(B):
    fun, x0, lower, upper = quadratic_problems(B, 3, seed=3)
    res = minimize_batched(fun, x0, lower, upper)
    assert res.x.shape == (B, 3) and bool(res.success.all())
    k = [0, B - 1]
    ref = minimize_batched(lambda x, i: fun(x, torch.tensor(k)[i]), x0[k], lower[k], upper[k], backend="scipy")
    assert (res.x[k] - ref.x).abs().max() < 1e-6


@needs_ext
def test_stops_and_statuses():
    fun = value_and_grad(rosenbrock)
    x0 = torch.full((2, 4), -1.0, dtype=torch.float64)
    res = minimize_batched(fun, x0, maxiter=3)
    assert (res.status == 3).all() and (res.nit == 3).all()
    res = minimize_batched(fun, x0, maxfun=5)
    assert (res.status == 4).all() and (res.nfev <= 6).all()

    def nan_start(x, index):
        f, g = fun(x, index)
        return torch.full_like(f, float("nan")), g

    assert (minimize_batched(nan_start, x0).status == 6).all()
    at_min = minimize_batched(fun, torch.ones(1, 4, dtype=torch.float64))
    assert int(at_min.status[0]) == 1 and int(at_min.nit[0]) == 0 and int(at_min.nfev[0]) == 1


def test_bad_input_is_named():
    fun = value_and_grad(rosenbrock)
    with pytest.raises(ValueError, match=r"x0 must have shape \(B, n\)"):
        minimize_batched(fun, torch.zeros(3))
    with pytest.raises(ValueError, match="x0 contains NaN"):
        minimize_batched(fun, torch.tensor([[float("nan"), 0.0]]))
    with pytest.raises(ValueError, match="lower must be <= upper"):
        minimize_batched(fun, torch.zeros(1, 2), lower=1.0, upper=0.0)
    with pytest.raises(ValueError, match="backend"):
        minimize_batched(fun, torch.zeros(1, 2), backend="fortran")


@needs_ext
def test_tell_checks_its_arguments():
    solver = torch.classes.pdfsolve.BatchedLbfgsb(torch.zeros(2, 3, dtype=torch.float64),
                                                  torch.full((2, 3), -1.0, dtype=torch.float64),
                                                  torch.ones(2, 3, dtype=torch.float64), 10, 1e-9, 1e-5, 100, 100, 20)
    index, points = solver.ask()
    assert index.tolist() == [0, 1] and points.shape == (2, 3)
    with pytest.raises(RuntimeError, match="g must have shape"):
        solver.tell(index, torch.zeros(2, dtype=torch.float64), torch.zeros(2, 2, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="index out of range"):
        solver.tell(torch.tensor([5]), torch.zeros(1, dtype=torch.float64), torch.zeros(1, 3, dtype=torch.float64))
