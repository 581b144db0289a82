"""pdfsolve.geometry.acsf: parameters, the user API, invariances and the published 380-number descriptor."""
import math

import pytest
import torch

from pdfsolve.geometry import ACSFParameters, acsf, pooled_acsf

SMALL = ACSFParameters([(0.1, 0.0), (0.6, 2.5)], [(0.05, 1.0, 1.0), (0.3, 2.0, -1.0), (0.1, 2.5, 1.0)], 6.0)


def cluster(n, seed=0, box=6.0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, generator=g, dtype=torch.float64) * box


def test_published_parameters_and_380_numbers():
    p = ACSFParameters.published()
    assert p.rcut == 20.0 and p.radial.shape == (140, 2) and p.angular.shape == (50, 3)
    assert p.n_features(1) == 190 and p.n_features(2) == 2 * 140 + 3 * 50
    # G2 eta-major (their einsum order), G5 zeta-major, then lambda, then eta
    assert p.radial[1].tolist() == [0.01, 1.0] and p.radial[14].tolist() == [0.06, 0.0]
    assert p.angular[0].tolist() == [0.06, 1.0, -1.0] and p.angular[5].tolist() == [0.06, 1.0, 1.0]
    assert p.angular[10].tolist() == [0.06, 2.0, -1.0] and p.angular[49].tolist() == [1.0, 64.0, 1.0]
    from ase.cluster import Icosahedron
    pos = torch.tensor(Icosahedron("Pt", 2).positions)
    out = pooled_acsf(pos)
    assert out.shape == (380,)
    per_atom = acsf(pos)
    assert torch.equal(out[:190], per_atom.amax(0)) and torch.equal(out[190:], per_atom.amin(0))


def test_validation_errors():
    for radial, angular, rcut, word in [([(0.1, 0.0)], [(0.1, 0.5, 1.0)], 5.0, "zeta"),
                                        ([(0.1, 0.0)], [(0.1, 1.0, 0.0)], 5.0, "lambda"),
                                        ([(-0.1, 0.0)], [(0.1, 1.0, 1.0)], 5.0, "eta"),
                                        ([(0.1, 0.0)], [(0.1, 1.0, 1.0)], 0.0, "rcut"),
                                        ([(math.nan, 0.0)], [(0.1, 1.0, 1.0)], 5.0, "NaN")]:
        with pytest.raises(ValueError, match=word):
            ACSFParameters(radial, angular, rcut)
    pos = cluster(4)
    pos[1, 0] = math.nan
    with pytest.raises(ValueError, match="NaN"):
        acsf(pos, params=SMALL)


def test_shapes_mask_and_empty_batch():
    pos = cluster(7)[None].repeat(2, 1, 1)
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[1, 5:] = False
    out = acsf(pos, params=SMALL, mask=mask)
    assert out.shape == (2, 7, SMALL.n_features(1))
    assert torch.allclose(out[1, :5], acsf(pos[1, :5], params=SMALL), rtol=1e-12, atol=1e-14)
    assert float(out[1, 5:].abs().max()) == 0.0
    pooled = pooled_acsf(pos, params=SMALL, mask=mask, pooling=("max", "min", "mean"))
    assert pooled.shape == (2, 3 * SMALL.n_features(1))
    assert torch.allclose(pooled[1], pooled_acsf(pos[1, :5], params=SMALL, pooling=("max", "min", "mean")),
                          rtol=1e-12, atol=1e-14)
    assert acsf(torch.zeros(0, 5, 3, dtype=torch.float64), params=SMALL).shape == (0, 5, SMALL.n_features(1))
    assert pooled_acsf(torch.zeros(0, 5, 3), params=SMALL).shape == (0, 2 * SMALL.n_features(1))


def test_rotation_translation_permutation_invariance():
    pos = cluster(9, seed=3)
    species = torch.tensor([0, 1, 0, 2, 1, 0, 2, 2, 1])
    base = acsf(pos, species, SMALL, n_species=3)
    q, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(4)))
    moved = pos @ q.T + torch.tensor([1.5, -2.0, 0.7], dtype=torch.float64)
    assert torch.allclose(acsf(moved, species, SMALL, n_species=3), base, rtol=1e-10, atol=1e-12)
    perm = torch.randperm(9, generator=torch.Generator().manual_seed(5))
    assert torch.allclose(acsf(pos[perm], species[perm], SMALL, n_species=3), base[perm], rtol=1e-12, atol=1e-14)
    pooled = pooled_acsf(pos, species, SMALL, n_species=3, pooling=("max", "min", "mean"))
    assert torch.allclose(pooled_acsf(moved[perm], species[perm], SMALL, n_species=3, pooling=("max", "min", "mean")),
                          pooled, rtol=1e-10, atol=1e-12)


def test_gradient_flows_through_pooling():
    pos = cluster(6, seed=6).requires_grad_()
    pooled_acsf(pos, params=SMALL, pooling=("mean",)).sum().backward()
    assert pos.grad is not None and torch.isfinite(pos.grad).all() and pos.grad.abs().max() > 0
    assert torch.allclose(pos.grad.sum(0), torch.zeros(3, dtype=torch.float64), atol=1e-12)  # translation
