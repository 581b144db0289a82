"""Benchmark fixtures: reproducible batches of metal clusters of given sizes."""
import numpy as np
import pytest
from ase.cluster import Decahedron, FaceCenteredCubic, Icosahedron, Octahedron


def _parents():
    return [
        Icosahedron("Au", 10),
        Decahedron("Pt", 8, 4, 2),
        Octahedron("Pd", 17, 6),
        FaceCenteredCubic("Ag", [(1, 0, 0), (1, 1, 0), (1, 1, 1)], [12, 13, 12]),
    ]


def make_clusters(sizes, seed=0):
    """Clusters with the given atom counts: the n atoms nearest a random point near the centre of a
    parent cluster (over 2000 atoms) of one of four motifs, rattled by 0.02 Angstrom."""
    rng = np.random.default_rng(seed)
    parents = _parents()
    out = []
    for k, n in enumerate(sizes):
        parent = parents[k % len(parents)]
        pos = parent.positions - parent.positions.mean(0)
        centre = rng.normal(scale=0.5, size=3)
        order = np.argsort(np.linalg.norm(pos - centre, axis=1))[:n]
        atoms = parent[order]
        atoms.positions += rng.normal(scale=0.02, size=(n, 3))
        out.append(atoms)
    return out


@pytest.fixture(scope="session")
def batch_1000():
    """1000 clusters of 50-150 atoms (the issue's benchmark batch)."""
    sizes = np.random.default_rng(1).integers(50, 151, size=1000)
    return make_clusters(sizes)
