"""pdfsolve.geometry: distances, satellites, Laplacian and block layout against scipy and exact identities."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ase.cluster import Icosahedron
from scipy.sparse.csgraph import laplacian as scipy_laplacian
from scipy.spatial.distance import cdist
from scipy.spatial.transform import Rotation

from pdfsolve import geometry

ICO = torch.tensor(Icosahedron("Pt", 3).get_positions(), dtype=torch.float64)  # 55 atoms


def test_pair_and_point_distances_match_scipy_cdist():
    d = geometry.pair_distances(ICO)
    assert d.shape == (55, 55)
    np.testing.assert_allclose(d.numpy(), cdist(ICO.numpy(), ICO.numpy()), rtol=0, atol=1e-13)
    sats = geometry.sphere_points(11, radius=8.0)
    ds = geometry.point_distances(ICO, sats)
    assert ds.shape == (55, 11)
    np.testing.assert_allclose(ds.numpy(), cdist(ICO.numpy(), sats.numpy()), rtol=0, atol=1e-13)


def test_padded_batch_equals_unpadded_clusters():
    small = ICO[:13]
    pos = torch.zeros(2, 55, 3, dtype=torch.float64)
    pos[0] = ICO
    pos[1, :13] = small
    mask = torch.zeros(2, 55, dtype=torch.bool)
    mask[0] = True
    mask[1, :13] = True
    d = geometry.pair_distances(pos, mask)
    assert torch.equal(d[1, :13, :13], geometry.pair_distances(small))
    assert (d[1, 13:] == 0).all() and (d[1, :, 13:] == 0).all()
    L = geometry.graph_laplacian(pos, mask=mask)
    assert torch.allclose(L[1, :13, :13], geometry.graph_laplacian(small), atol=1e-15, rtol=0)


def test_sphere_points_are_reproducible_unit_and_spread():
    for n in (4, 11, 100):
        p = geometry.sphere_points(n)
        assert p.shape == (n, 3)
        assert torch.allclose(p.norm(dim=1), torch.ones(n, dtype=torch.float64), atol=1e-15)
        assert torch.equal(p, geometry.sphere_points(n))
        # well spread: the closest pair is at least half the spacing of n equal caps on the unit sphere
        nearest = torch.pdist(p).min()
        assert nearest > 0.5 * math.sqrt(4 * math.pi / n)
    assert abs(float(geometry.sphere_points(100).mean(0).norm())) < 0.02  # no net offset
    with pytest.raises(ValueError, match="n must be >= 1"):
        geometry.sphere_points(0)


@pytest.mark.parametrize("form,normed", [("laplacian", False), ("normalized", True)])
def test_laplacian_matches_scipy_csgraph(form, normed):
    sigma = 2.7
    d = cdist(ICO.numpy(), ICO.numpy())
    w = np.exp(-d**2 / (2 * sigma**2))
    np.fill_diagonal(w, 0.0)
    expected = scipy_laplacian(w, normed=normed)
    got = geometry.graph_laplacian(ICO, sigma=sigma, form=form).numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-13)


def test_affinity_is_the_cbldm_representation():
    w = geometry.graph_laplacian(ICO, form="affinity")
    d = cdist(ICO.numpy(), ICO.numpy())
    np.testing.assert_allclose(w.numpy(), np.exp(-d**2 / 260.0), rtol=1e-14, atol=0)  # t = 260 A^2
    assert torch.equal(torch.diagonal(w), torch.ones(55, dtype=torch.float64))
    assert geometry.CBLDM_SIGMA == pytest.approx(11.40175425, abs=1e-8)


def test_laplacian_properties_and_invariances():
    L = geometry.graph_laplacian(ICO, sigma=3.0)
    assert torch.allclose(L.sum(1), torch.zeros(55, dtype=torch.float64), atol=1e-12)  # rows sum to zero
    ev = torch.linalg.eigvalsh(L)
    assert abs(float(ev[0])) < 1e-12 and float(ev[1]) > 1e-3  # connected: one zero eigenvalue
    rot = torch.tensor(Rotation.from_euler("xyz", [0.3, -1.1, 2.0]).as_matrix(), dtype=torch.float64)
    moved = ICO @ rot.T + torch.tensor([3.0, -7.0, 0.5], dtype=torch.float64)
    assert torch.allclose(geometry.graph_laplacian(moved, sigma=3.0), L, atol=1e-13, rtol=0)
    perm = torch.randperm(55, generator=torch.Generator().manual_seed(0))
    Lp = geometry.graph_laplacian(ICO[perm], sigma=3.0)
    assert torch.allclose(Lp, L[perm][:, perm], atol=1e-14, rtol=0)
    dp = geometry.pair_distances(moved[perm])
    assert torch.allclose(dp, geometry.pair_distances(ICO)[perm][:, perm], atol=1e-12, rtol=0)


def test_sigma_per_cluster_and_its_gradient():
    pos = torch.stack([ICO[:13], ICO[:13] * 1.1])
    sigma = torch.tensor([2.0, 2.2], dtype=torch.float64, requires_grad=True)
    L = geometry.graph_laplacian(pos, sigma=sigma)
    # scaling positions and sigma together leaves W unchanged
    assert torch.allclose(L[0], L[1], atol=1e-14, rtol=0)
    L[0].trace().backward()
    d2 = torch.cdist(ICO[:13], ICO[:13]) ** 2
    expected = float((torch.exp(-d2 / 8.0) * d2 / 8.0).sum())  # d trace(L)/d sigma = sum_ij W d^2 / sigma^3
    assert sigma.grad[0].item() == pytest.approx(expected, rel=1e-12)
    assert sigma.grad[1] == 0


def test_blocks_round_trip_and_layout():
    w = geometry.graph_laplacian(ICO, form="affinity")
    padded = geometry.pad_square(w, 256)
    assert padded.shape == (256, 256) and torch.equal(padded[:55, :55], w) and (padded[55:] == 0).all()
    m = torch.arange(2 * 256 * 256, dtype=torch.float64).reshape(2, 256, 256)
    blocks = geometry.to_blocks(m)
    assert blocks.shape == (2, 4, 128, 128)
    assert torch.equal(blocks[:, 0], m[:, :128, :128]) and torch.equal(blocks[:, 1], m[:, :128, 128:])
    assert torch.equal(blocks[:, 2], m[:, 128:, :128]) and torch.equal(blocks[:, 3], m[:, 128:, 128:])
    assert torch.equal(geometry.from_blocks(blocks), m)
    with pytest.raises(ValueError, match="does not fit"):
        geometry.pad_square(torch.zeros(300, 300), 256)
    with pytest.raises(ValueError, match="expected"):
        geometry.to_blocks(torch.zeros(2, 200, 200))
    with pytest.raises(ValueError, match="expected"):
        geometry.from_blocks(torch.zeros(2, 3, 128, 128))


def test_bad_input_is_named():
    bad = ICO.clone()
    bad[7, 1] = float("nan")
    with pytest.raises(ValueError, match="non-finite position .* atom 7"):
        geometry.pair_distances(bad)
    masked = torch.ones(55, dtype=torch.bool)
    masked[7] = False
    assert geometry.pair_distances(bad, mask=masked)[7].abs().sum() == 0  # NaN in a padding slot is ignored
    with pytest.raises(ValueError, match=r"pos must have shape \(N, 3\) or \(B, N, 3\)"):
        geometry.pair_distances(ICO[:, :2])
    with pytest.raises(ValueError, match="mask must have shape"):
        geometry.pair_distances(ICO, mask=torch.ones(54, dtype=torch.bool))
    with pytest.raises(ValueError, match="sigma must be finite and > 0"):
        geometry.graph_laplacian(ICO, sigma=0.0)
    with pytest.raises(ValueError, match="form must be one of"):
        geometry.graph_laplacian(ICO, form="laplace")
    with pytest.raises(ValueError, match="points must have shape"):
        geometry.point_distances(ICO, torch.zeros(3, 2))


def test_integer_and_numpy_input_is_accepted():
    pos = np.array([[0, 0, 0], [3, 4, 0]])
    d = geometry.pair_distances(pos)
    assert d.dtype == torch.float64 and float(d[0, 1]) == 5.0
