"""Motif classifier: nearest library cluster by a rotation-, order- and scale-free fingerprint, or "unknown"."""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from pdfsolve.classify import UNKNOWN, MotifClassifier, bond_length, fingerprint
from pdfsolve.structures import motifs


@pytest.fixture(scope="module")
def library():
    """Unit-bond clusters of every motif (13-147 atoms)."""
    return [motifs.icosahedron(3), motifs.decahedron(3, 2, 1), motifs.octahedron(5, 1), motifs.cubic_cut("fcc", (3, 3, 2)),
            motifs.cubic_cut("bcc", (3, 3, 3)), motifs.cubic_cut("sc", (3, 3, 3)), motifs.hcp_cut((2, 2, 2))]


def test_fingerprint_ignores_rotation_order_translation_and_scale(library):
    pos = library[1].positions
    moved = 2.9 * Rotation.random(random_state=1).apply(pos[np.random.default_rng(0).permutation(len(pos))]) + 4.0
    np.testing.assert_allclose(fingerprint(moved), fingerprint(pos), atol=1e-12)
    assert bond_length(moved) == pytest.approx(2.9 * bond_length(pos))


def test_rattled_scaled_library_clusters_get_their_motif_and_random_ones_unknown(library):
    classifier = MotifClassifier(library)
    rng = np.random.default_rng(3)
    copies = []
    for atoms in library:
        copy = atoms.copy()
        copy.positions = Rotation.random(random_state=2).apply(2.8 * atoms.positions)
        copy.positions += rng.normal(scale=0.05, size=copy.positions.shape)
        copies.append(copy)
    assert classifier.label(copies) == [a.info["motif"] for a in library]
    assert all(c.info["motif_distance"] < 0.45 and c.info["nearest"] for c in copies)
    gas = library[0].copy()
    gas.positions = rng.normal(scale=3.0, size=gas.positions.shape)
    assert classifier.label([gas]) == [UNKNOWN]


def test_bad_input_raises_clear_errors(library):
    with pytest.raises(ValueError, match="N >= 2"):
        fingerprint(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="coincident"):
        fingerprint(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="library is empty"):
        MotifClassifier([])
