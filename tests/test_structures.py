"""Cluster generators, stacking, decoration, dedupe and the library (pdfsolve.structures)."""
import itertools
import math

import numpy as np
import pytest
from scipy.spatial.distance import pdist
from ase.cluster import BodyCenteredCubic, FaceCenteredCubic, SimpleCubic
from scipy.spatial import cKDTree

from pdfsolve import structures as st
from pdfsolve.structures import motifs


def nn_distances(atoms):
    p = atoms.get_positions()
    d, _ = cKDTree(p).query(p, k=2)
    return d[:, 1]


def coordination(atoms, cutoff):
    p = atoms.get_positions()
    return np.array([len(n) - 1 for n in cKDTree(p).query_ball_point(p, cutoff)])


def test_radii_table():
    assert st.metallic_radius("Au") == pytest.approx(1.44)
    assert st.bond_length("Fe", 1.02) == pytest.approx(2 * 1.26 * 1.02)
    assert {"Al", "Pb", "Pt", "W"} <= set(st.METALS) and len(st.D_BLOCK_28) == 28
    with pytest.raises(KeyError):
        st.metallic_radius("Xx")


def test_magic_numbers():
    assert [len(st.icosahedron(n)) for n in (2, 3, 4, 5)] == [13, 55, 147, 309]
    assert [len(st.octahedron(n)) for n in (2, 3, 4, 5, 6)] == [6, 19, 44, 85, 146]
    assert len(st.octahedron(5, 2)) == 55  # cuboctahedron (length = 2 cutoff + 1)
    assert len(st.octahedron(7, 2)) == 201  # regular truncated octahedron (length = 3 cutoff + 1)
    assert [len(st.decahedron(n, n, 0)) for n in (2, 3)] == [13, 55]  # Ino decahedra
    assert len(st.decahedron(1, 1, 1)) == 18 and len(st.decahedron(5, 1, 0)) == 105  # DeepStruc's examples
    assert len(st.hcp_block((2, 2, 7))) == 56
    # DeepStruc's published examples: BCC_h_2_k_9_l_9 35, BCC_h_4_k_7_l_8 149, FCC_h_3_k_6_l_7 171, SC_h_4_k_4_l_5 177
    assert [len(st.cubic_cut(lat, hkl)) for lat, hkl in
            [("bcc", (2, 9, 9)), ("bcc", (4, 7, 8)), ("fcc", (3, 6, 7)), ("sc", (4, 4, 5))]] == [35, 149, 171, 177]


@pytest.mark.parametrize("element", ["Au", "Fe", "W", "Zn"])
def test_nearest_neighbour_is_twice_the_radius(element):
    d = st.bond_length(element)
    clusters = [st.icosahedron(4, element), st.decahedron(3, 2, 1, element), st.octahedron(6, 1, element),
                st.hcp_cut((2, 2, 2), element), st.hcp_block((3, 3, 3), element),
                st.close_packed("ABCABA", 3.0, element=element)]
    clusters += [st.cubic_cut(lat, (3, 3, 3), c, element) for lat in st.CENTRES for c in st.CENTRES[lat]]
    for atoms in clusters:
        assert nn_distances(atoms).min() == pytest.approx(d, abs=1e-9), atoms.info["construction"]
        assert atoms.info["bond_length"] == pytest.approx(d)


def test_bcc_scale():
    atoms = st.cubic_cut("bcc", (3, 3, 3), element="Fe")
    r = st.metallic_radius("Fe")
    assert nn_distances(atoms).min() == pytest.approx(2 * r)
    edge = np.unique(np.round(pdist(atoms.positions), 6))[1]  # second-neighbour distance = cube edge
    assert edge == pytest.approx(4 * r / math.sqrt(3), abs=1e-5)


def test_fast_cubic_cut_matches_ase():
    builders = {"fcc": FaceCenteredCubic, "bcc": BodyCenteredCubic, "sc": SimpleCubic}
    for lat, centres in st.CENTRES.items():
        for centre, layers in itertools.product(centres, [(1, 2, 3), (3, 1, 2), (2, 4, 2), (4, 4, 5)]):
            ours = st.cubic_cut(lat, layers, centre)
            ref = builders[lat]("Cu", [list(s) for s in motifs.CUBIC_SURFACES], list(layers),
                                latticeconstant=motifs.CUBIC[lat][0], center=centres[centre])
            assert len(ours) == len(ref)
            assert np.allclose(st.sorted_distances(ours), st.sorted_distances(ref), atol=1e-9)


def test_stacking_coordination():
    fcc = st.close_packed("ABCABCABC", 3.0)
    hcp = st.close_packed("ABABABABA", 3.0)
    assert fcc.info["motif"] == "fcc" and hcp.info["motif"] == "hcp"
    for atoms, n_at_c in ((fcc, 0), (hcp, 2)):
        inner = coordination(atoms, 1.01) == 12
        assert inner.any()
        # neighbours at c = sqrt(8/3) along the stacking axis: up to two in hcp, none in fcc
        at_c = coordination(atoms, math.sqrt(8 / 3) + 1e-3) - coordination(atoms, math.sqrt(8 / 3) - 1e-3)
        assert at_c[inner].max() == n_at_c
    faulted = st.close_packed("ABCABA", 4.0, shape="prism")
    assert faulted.info["motif"] == "faulted" and faulted.info["stacking"] == "ABCABA"
    assert st.jagodzinski("ABCABA") == "ccch" and st.classify("ABCBCA") == "faulted"
    assert st.sequences(4) == ["ABCA", "ABCB", "ABAB"]
    with pytest.raises(ValueError):
        st.close_packed("AAB", 2.0)


def test_labels_present():
    for atoms in (st.cubic_cut("fcc", (2, 3, 3), "octahedral", "Pt", 0.98), st.icosahedron(3, "Au"),
                  st.close_packed("ABCB", 2.0, element="Ni")):
        info = atoms.info
        for key in ("motif", "builder", "construction", "centre", "stacking", "elements", "n_atoms",
                    "lattice_scale", "bond_length"):
            assert key in info
        assert info["n_atoms"] == len(atoms)
    atoms = st.cubic_cut("fcc", (2, 3, 3), "octahedral", "Pt", 0.98)
    assert atoms.info["centre"] == "octahedral" and atoms.info["lattice_scale"] == 0.98
    assert atoms.info["elements"] == "Pt"


def test_centres_give_different_clusters_that_dedupe_keeps():
    cuts = [st.cubic_cut("fcc", (3, 3, 3), c, "Au") for c in st.CENTRES["fcc"]]
    assert len({a.info["construction"] for a in cuts}) == 4
    assert st.unique_indices(cuts) == [0, 1, 2, 3]


def test_dedupe_cases():
    rng = np.random.default_rng(0)
    base = st.decahedron(3, 2, 1, "Pd")
    rotated = base.copy()
    rotated.rotate(37, (1, 2, 3))
    rotated = rotated[rng.permutation(len(rotated))]
    rotated.positions += (5.0, -2.0, 1.0)
    noisy = base.copy()
    noisy.positions += rng.normal(0, 1e-4, noisy.positions.shape)
    scaled = st.retarget(base, "Pd", 1.01)
    other_element = st.retarget(base, "Pt")
    kept = st.unique_indices([base, base.copy(), rotated, noisy, scaled, other_element], tol=1e-3)
    assert kept == [0, 4, 5]


def test_dedupe_bin_edges():
    """Near-identical clusters straddling a quantisation edge are still found."""
    base = st.icosahedron(3, "Au")
    tol = 1e-3
    d = st.sorted_distances(base)
    shift = (math.floor(d.mean() / tol) + 1) * tol - d.mean()  # move the mean exactly onto the next bin edge
    a, b = base.copy(), base.copy()
    a.positions *= 1 + (shift - 2e-5) / d.mean()
    b.positions *= 1 + (shift + 2e-5) / d.mean()
    assert st.unique_indices([a, b], tol=tol) == [0]


def test_dedupe_is_not_quadratic(monkeypatch):
    """Hashing compares each cluster only with those in neighbouring buckets: here, 2000 near-identical
    rattled icosahedra (the worst case for the buckets), ~30 comparisons each, not the 2e6 of an all-pairs
    pass."""
    rng = np.random.default_rng(1)
    clusters = []
    for _ in range(1000):
        atoms = st.icosahedron(3, "Cu")
        atoms.positions += rng.normal(0, 0.05, atoms.positions.shape)
        clusters += [atoms, atoms.copy()]
    calls = {"n": 0}
    allclose = np.allclose

    def counting_allclose(*args, **kwargs):
        calls["n"] += 1
        return allclose(*args, **kwargs)

    monkeypatch.setattr(np, "allclose", counting_allclose)
    kept = st.unique_indices(clusters, tol=1e-3)
    assert len(kept) == 1000
    assert calls["n"] < len(clusters) ** 2 / 20


def test_decoration():
    ico = st.icosahedron(4, "Au")
    assert np.bincount(st.surface_shells(ico.positions)).tolist() == [92, 42, 12, 1]
    cs = st.core_shell(ico, "Pt", n_shells=1)
    assert cs.get_chemical_symbols().count("Pt") == 92 and cs.info["elements"] == "Au,Pt"
    by_radius = st.core_shell(ico, "Pt", radius=st.bond_length("Au") * 1.01)
    assert by_radius.get_chemical_symbols().count("Au") == 13
    alloy = st.random_alloy(ico, "Ag", 0.3, seed=3)
    assert alloy.get_chemical_symbols().count("Ag") == round(0.3 * 147)
    assert alloy.get_chemical_symbols() == st.random_alloy(ico, "Ag", 0.3, seed=3).get_chemical_symbols()


def test_library_small():
    lib = st.build_library(["Au", "Fe"], min_atoms=5, max_atoms=60, scales=(1.0, 1.02))
    assert all(5 <= len(a) <= 60 for a in lib)
    per = {(a.info["elements"], a.info["lattice_scale"]) for a in lib}
    assert per == {("Au", 1.0), ("Au", 1.02), ("Fe", 1.0), ("Fe", 1.02)}
    assert set(st.MOTIFS) <= {a.info["motif"] for a in lib}
    assert "faulted" in {a.info["motif"] for a in lib}
    assert len(st.unique_indices(lib)) == len(lib)
    with pytest.raises(ValueError):
        st.build_library(preset="nope")
