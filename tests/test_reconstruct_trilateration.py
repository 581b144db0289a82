"""Trilateration (distance route): round trips on clusters of every motif, noise, compiled vs torch objective."""
from __future__ import annotations

import pytest
import torch

import pdfsolve.ops as ops
from pdfsolve.geometry import pair_distances, point_distances, sphere_points
from pdfsolve.reconstruct import classical_mds, to_unit_sphere, trilaterate
from _clusters import motif_clusters, padded

needs_ext = pytest.mark.skipif(not ops.extension_available(), reason="pdfsolve._C not built")

CLUSTERS = motif_clusters()


def padded_batch():
    return padded(CLUSTERS)


def targets(pos, mask, n_sat=11):
    unit, frame = to_unit_sphere(pos, mask)
    sats = sphere_points(n_sat)
    return unit, frame, sats, pair_distances(unit, mask), point_distances(unit, sats, mask)


def max_error(x, frame, pos, mask):
    """Largest atom position error in Angstrom (no alignment: the satellites fix the frame)."""
    return float(((frame.to_angstrom(x) - pos).norm(dim=-1) * mask).max())


def test_unit_sphere_frame():
    pos, mask = padded_batch()
    unit, frame = to_unit_sphere(pos, mask)
    r = unit.norm(dim=-1) * mask
    assert torch.allclose(r.amax(1), torch.ones(len(CLUSTERS), dtype=torch.float64), atol=1e-15)
    assert (r.masked_fill(~mask, 9).amin(1) == 0).all()  # one atom at the origin
    assert torch.allclose(frame.to_angstrom(unit)[mask], pos[mask], atol=1e-13)


def test_classical_mds_reproduces_distances():
    pos, mask = padded_batch()
    d = pair_distances(pos, mask)
    y = classical_mds(d, mask)
    assert (y[~mask] == 0).all()
    assert (pair_distances(y, mask) - d).abs().max() < 1e-9


@needs_ext
@pytest.mark.parametrize("n_sat", [4, 11, 100])
def test_exact_distances_round_trip(n_sat):
    pos, mask = padded_batch()
    _, frame, sats, pair, to_sat = targets(pos, mask, n_sat)
    res = trilaterate(pair, to_sat, sats, mask)
    assert (res.status <= 2).all()
    assert max_error(res.x, frame, pos, mask) < 1e-3
    assert (res.x[~mask] == 0).all()


@needs_ext
def test_noise_degrades_smoothly_and_backends_agree():
    pos, mask = padded_batch()
    _, frame, sats, pair, to_sat = targets(pos, mask)
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(pair.shape, generator=g, dtype=torch.float64)
    noise = (noise + noise.transpose(1, 2)) / 2
    errors = []
    for level in (0.0, 0.001, 0.003, 0.01, 0.03):
        res = trilaterate(pair + level * noise, to_sat, sats, mask)
        errors.append(max_error(res.x, frame, pos, mask))
    assert errors[0] < 1e-9
    assert all(a < b for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < 1.0  # 3 % distance noise on unit-sphere distances: well under an Angstrom
    # the C++ objective and the torch objective (autograd through the geometry ops) take the same path
    a = trilaterate(pair + 0.01 * noise, to_sat, sats, mask, backend="compiled")
    b = trilaterate(pair + 0.01 * noise, to_sat, sats, mask, backend="torch")
    assert (a.x - b.x).abs().max() < 1e-6 and (a.nit - b.nit).abs().max() <= 1


def test_bad_input_is_named():
    pos, mask = padded_batch()
    _, _, sats, pair, to_sat = targets(pos, mask)
    with pytest.raises(ValueError, match="pair must have shape"):
        trilaterate(pair[:, :3], to_sat, sats, mask)
    with pytest.raises(ValueError, match="to_points must have shape"):
        trilaterate(pair, to_sat[..., :5], sats, mask)
    bad = pair.clone()
    bad[0, 1, 2] = float("nan")
    with pytest.raises(ValueError, match="pair contains NaN"):
        trilaterate(bad, to_sat, sats, mask)


@needs_ext
def test_opcheck():
    pos, mask = padded_batch()
    unit, _, sats, pair, to_sat = targets(pos[:2, :20], mask[:2, :20])
    torch.library.opcheck(torch.ops.pdfsolve.trilaterate.default, (unit, mask[:2, :20], pair, to_sat, sats, 10,
                                                                   1e-9, 1e-8, 50))
