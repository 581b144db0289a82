"""The anker2020 library preset (Anker, Kjaer et al. 2020): site-centred fcc cuts of 2-8 layers, < 100 atoms, the
30 d-block metals, 10 lattice scales over 0.99-1.01, one split group per cluster."""
import itertools

import numpy as np
import pytest
from ase.cluster import FaceCenteredCubic

from pdfsolve.datasets.splits import assign_splits, group_key
from pdfsolve.structures import build_library
from pdfsolve.structures.dedupe import unique_indices
from pdfsolve.structures.radii import METALS, bond_length


@pytest.fixture(scope="module")
def library():
    return build_library(preset="anker2020")


def test_preset_holds_every_distinct_fcc_cut_of_2_to_8_layers_per_metal_and_scale(library):
    # independent reference: ase's own builder over every layer triple, deduplicated on sorted distances
    reference = []
    for layers in itertools.product(range(2, 9), repeat=3):
        atoms = FaceCenteredCubic("Cu", [(1, 0, 0), (1, 1, 0), (1, 1, 1)], list(layers), latticeconstant=np.sqrt(2))
        if len(atoms) < 100:
            reference.append(atoms)
    sizes = sorted(len(reference[i]) for i in unique_indices(reference, 1e-3))
    assert sizes == [19, 43, 55, 63, 79, 85, 87, 93]
    assert len(library) == len(sizes) * 30 * 10 == 2400
    assert sorted({a.info["elements"] for a in library}) == sorted(METALS[:30])
    scales = sorted({a.info["lattice_scale"] for a in library})
    np.testing.assert_allclose(scales, np.linspace(0.99, 1.01, 10), rtol=0, atol=1e-12)
    pt = [a for a in library if a.info["elements"] == "Pt" and a.info["lattice_scale"] == scales[0]]
    assert sorted(len(a) for a in pt) == sizes
    d = np.linalg.norm(pt[0].positions[:, None] - pt[0].positions[None], axis=-1)
    assert d[d > 0].min() == pytest.approx(bond_length("Pt", 0.99), rel=1e-12)


def test_every_cluster_is_its_own_split_group(library):
    keys = [group_key(a) for a in library]
    assert len(set(keys)) == len(library)
    split = assign_splits(keys, (2400 / 3137, 600 / 3137, 137 / 3137), seed=0)
    counts = np.bincount(split, minlength=3)
    np.testing.assert_allclose(counts / len(keys), [2400 / 3137, 600 / 3137, 137 / 3137], atol=2e-3)
