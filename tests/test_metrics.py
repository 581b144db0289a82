"""Rwp, Pearson and aligned MAE on small hand-checked cases."""
import math

import numpy as np
import pytest
import torch

from scipy.spatial.transform import Rotation

from pdfsolve import metrics
from pdfsolve.metrics import aligned_mae, pearson, rwp


def test_rwp_hand_values():
    obs = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    assert float(rwp(obs, torch.ones(3, dtype=torch.float64))) == pytest.approx(math.sqrt(5 / 14))
    calc = torch.stack([torch.ones(3, dtype=torch.float64), obs])
    np.testing.assert_allclose(rwp(obs, calc).numpy(), [math.sqrt(5 / 14), 0.0])
    # r range 1.5-3: only the points at r = 2 and 3 count.
    r = np.array([1.0, 2.0, 3.0])
    assert float(rwp(obs, torch.ones(3), r=r, rmin=1.5, rmax=3.0)) == pytest.approx(math.sqrt(5 / 13))
    assert float(rwp(obs, torch.ones(3), weights=[1.0, 0.0, 2.0])) == pytest.approx(math.sqrt(8 / 19))


def test_rwp_batched_observed_and_differentiable():
    obs = torch.tensor([[1.0, 2.0], [2.0, 0.0]], dtype=torch.float64)
    calc = torch.tensor([[1.0, 1.0], [1.0, 0.0]], dtype=torch.float64, requires_grad=True)
    value = rwp(obs, calc)
    np.testing.assert_allclose(value.detach().numpy(), [math.sqrt(1 / 5), 0.5])
    value.sum().backward()
    assert torch.isfinite(calc.grad).all() and calc.grad[0, 1] < 0


def test_rwp_errors():
    with pytest.raises(ValueError, match="points"):
        rwp(torch.ones(3), torch.ones(4))
    with pytest.raises(ValueError, match="no r point"):
        rwp(torch.ones(3), torch.ones(3), r=[0.0, 0.5, 1.0])


def test_pearson_hand_values_batched():
    a = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    b = torch.tensor([[1.0, 3.0, 2.0, 4.0], [2.0, 4.0, 6.0, 8.0], [4.0, 3.0, 2.0, 1.0], [1.0, 1.0, 1.0, 1.0]],
                     dtype=torch.float64)
    np.testing.assert_allclose(pearson(b, a).numpy(), [0.8, 1.0, -1.0, 0.0], atol=1e-15)


def _cluster(n=30, seed=0):
    rng = np.random.default_rng(seed)
    pts = [rng.uniform(-5, 5, 3)]
    while len(pts) < n:  # atoms at least 2 Angstrom apart
        p = rng.uniform(-5, 5, 3)
        if min(np.linalg.norm(p - q) for q in pts) > 2.0:
            pts.append(p)
    return np.array(pts)


def test_aligned_mae_zero_for_rotated_reflected_permuted_copy():
    x = _cluster()
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    if np.linalg.det(q) > 0:
        q[:, 0] = -q[:, 0]  # an improper rotation
    y = (x @ q.T + [3.0, -1.0, 2.0])[rng.permutation(len(x))]
    assert aligned_mae(y, x) < 1e-8
    assert aligned_mae(torch.as_tensor(y), torch.as_tensor(x)) < 1e-8
    assert aligned_mae(y, x, allow_reflection=False) > 0.1


def test_aligned_mae_one_atom_moved():
    # Cube corners; the corner (1, 1, 1) moves radially by d. After centring, the other 7 atoms are off by
    # d/8 and the moved one by 7d/8 (the covariance stays symmetric, so the best rotation is the identity):
    # MAE = (7 d/8 + 7 d/8) / 8 = 2 (N - 1) d / N^2.
    x = np.array([[i, j, k] for i in (-1.0, 1.0) for j in (-1.0, 1.0) for k in (-1.0, 1.0)])
    d = 0.3
    y = x.copy()
    y[-1] += d / math.sqrt(3.0)
    assert aligned_mae(y, x) == pytest.approx(2 * 7 * d / 64, rel=1e-9)


def test_aligned_mae_different_sizes():
    with pytest.raises(ValueError, match="predicted has 3 atoms, true has 4"):
        aligned_mae(np.zeros((3, 3)), np.zeros((4, 3)))


def test_assigned_deviations_rigid_copy_and_one_moved_atom():
    rng = np.random.default_rng(4)
    q = rng.normal(size=(30, 3)) * 4
    rot = Rotation.random(random_state=1).as_matrix() @ np.diag([1, 1, -1])  # improper
    assert metrics.assigned_deviations(q @ rot + 2.0, q).max() < 1e-12
    assert metrics.assigned_deviations(q @ rot, q, allow_reflection=False).max() > 0.1
    moved = q.copy()
    moved[3] += [0.05, 0, 0]
    # the same numbers as the permutation-searching alignment when the order is already right
    assert np.allclose(metrics.assigned_deviations(moved, q), metrics.aligned_deviations(moved, q), atol=1e-12)
    with pytest.raises(ValueError, match="shape"):
        metrics.assigned_deviations(q[:5], q)
