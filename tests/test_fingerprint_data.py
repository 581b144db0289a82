"""The fingerprint route's EMT cluster set: bulk and formation energies against direct ASE computations, the
relaxation record, random starts, and farthest-point sampling against a brute-force reference."""
from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT

from pdfsolve.datasets.emt_clusters import (bulk_energy, build_clusters, fcc_energy, formation_energy,
                                            random_cluster, relax)
from pdfsolve.datasets.farthest_point import farthest_point_order, sampling_features


def emt_energy(positions, element="Pt") -> float:
    atoms = Atoms(element * len(positions), positions=positions)
    atoms.calc = EMT()
    return float(atoms.get_potential_energy())


def test_bulk_energy_is_the_fcc_minimum_of_a_cubic_cell():
    e, a = bulk_energy("Pt")
    cubic = bulk("Pt", "fcc", a=a, cubic=True)  # 4 atoms: another cell than the one minimised
    cubic.calc = EMT()
    assert cubic.get_potential_energy() / 4 == pytest.approx(e, abs=1e-9)
    for h in (-1e-3, 1e-3):
        assert fcc_energy("Pt", a + h) > e
    assert 3.85 < a < 4.0  # Pt, about 3.92 Angstrom (experiment 3.92)


def test_formation_energy_matches_a_direct_emt_computation():
    rng = np.random.default_rng(3)
    pos = random_cluster(10, rng, radius=4.0, min_distance=2.2)
    frames, energies, converged = relax(pos, "Pt", fmax=0.05, steps=300)
    assert converged and np.allclose(frames[0], pos)
    final = Atoms("Pt10", positions=frames[-1])
    final.calc = EMT()
    assert np.abs(final.get_forces()).max() < 0.05 * np.sqrt(3)
    direct = final.get_potential_energy() / 10 - bulk_energy("Pt")[0]
    assert formation_energy(energies[-1], 10, "Pt") == pytest.approx(direct, abs=1e-10)
    assert formation_energy(energies[0], 10) == pytest.approx(emt_energy(pos) / 10 - bulk_energy()[0], abs=1e-10)


def test_build_clusters_records_relaxations_and_minima():
    data = build_clusters(6, 40, "Cu", seed=1)
    assert len(data.positions) >= 40 and data.positions.shape[1:] == (6, 3)
    runs = np.unique(data.relaxation)
    assert data.minimum.sum() == len(runs)  # every short relaxation converged, its last frame the minimum
    for k in runs:
        last = np.flatnonzero(data.relaxation == k)[-1]
        assert data.minimum[last]
    k = len(data.energy) // 2
    assert data.energy[k] == pytest.approx(emt_energy(data.positions[k], "Cu") / 6 - bulk_energy("Cu")[0],
                                           abs=1e-10)


def test_random_cluster_keeps_atoms_apart_and_inside():
    pos = random_cluster(13, np.random.default_rng(0), radius=5.0, min_distance=2.3)
    d = np.linalg.norm(pos[:, None] - pos[None], axis=-1)[np.triu_indices(13, 1)]
    assert d.min() >= 2.3 and np.linalg.norm(pos, axis=1).max() <= 5.0
    with pytest.raises(ValueError, match="could not place"):
        random_cluster(50, np.random.default_rng(0), radius=2.0, min_distance=2.0, max_tries=100)
    with pytest.raises(ValueError, match="EMT has no parameters"):
        bulk_energy("Fe")


def brute_force_fps(x, k, start):
    """Reference: the full float64 distance matrix, next point = argmax of the min distance to those taken."""
    d = np.linalg.norm(x[:, None].astype(np.float64) - x[None], axis=-1)
    order = [start]
    while len(order) < k:
        order.append(int(np.argmax(d[:, order].min(1))))
    return np.array(order)


def test_farthest_point_order_matches_brute_force():
    x = np.random.default_rng(0).normal(size=(300, 5))
    np.testing.assert_array_equal(farthest_point_order(x, 60, start=7), brute_force_fps(x, 60, 7))
    with pytest.raises(ValueError, match="k <= 300"):
        farthest_point_order(x, 301)


def test_sampling_features_keep_distances_of_the_scaled_logs():
    v = np.random.default_rng(1).lognormal(size=(200, 8)) * np.logspace(-8, 1, 8)
    f = sampling_features(v, dims=8)
    scale = np.median(v, 0)
    y = np.log1p(v / scale)
    y = (y - y.mean(0)) / y.std(0)
    ref = np.linalg.norm(y[:, None] - y[None], axis=-1)
    assert np.allclose(np.linalg.norm(f[:, None] - f[None], axis=-1), ref, atol=1e-4)
    with pytest.raises(ValueError, match=">= 0"):
        sampling_features(-v)
