"""rank_candidates: the first refinement, the delta2 polish of the best few, and the ranking every route shares."""
import numpy as np
import pytest
import torch

from pdfsolve import PDFParameters, simulate_pdf
from pdfsolve.refine import refine
from pdfsolve.routes.ranking import POLISH_MAX_ITER, POLISH_TOL, rank_candidates
from pdfsolve.structures import motifs
from pdfsolve.target import Target

DELTA2 = 3.0


@pytest.fixture(scope="module")
def octahedra():
    """Au octahedra of 79, 116, 140 and 147 atoms (length, cutoff: (5, 1), (6, 2), (6, 1), (7, 3))."""
    return [motifs.octahedron(length, cutoff, element="Au") for length, cutoff in ((5, 1), (6, 2), (6, 1), (7, 3))]


@pytest.fixture(scope="module")
def target_140(octahedra):
    """The 140-atom octahedron measured with correlated motion (delta2 = 3 Angstrom^2) and 0.5 % noise."""
    params = PDFParameters.from_uiso(0.008, qmin=1.0, qmax=24.0, qdamp=0.03, delta2=DELTA2)
    res = simulate_pdf(octahedra[2], params, mode="exact")
    g = res.G[0].numpy()
    g = g + np.random.default_rng(0).normal(scale=0.005 * np.abs(g).max(), size=g.shape)
    return Target.from_arrays(np.asarray(res.r), g, 1.0, 24.0, 0.03)


def test_polish_finds_the_atom_count_the_first_refinement_misses(octahedra, target_140):
    plain = rank_candidates(target_140, octahedra, "test", polish=0)
    polished = rank_candidates(target_140, octahedra, "test", polish=2)
    # without delta2 the sharper near-neighbour peaks are mistaken for a smaller octahedron
    assert len(octahedra[plain.order[0]]) == 116
    best = polished.ranked_structure(0)
    assert len(best) == 140
    assert best.info["delta2"] == pytest.approx(DELTA2, abs=0.1)
    assert best.info["rwp"] < 0.5 * float(plain.refinement.rwp.min())
    assert set(polished.seconds) == {"refine", "polish"} and set(plain.seconds) == {"refine"}


def test_polished_rows_are_a_delta2_refinement_and_the_others_are_kept(octahedra, target_140):
    plain = rank_candidates(target_140, octahedra, "test", polish=0).refinement
    polished = rank_candidates(target_140, octahedra, "test", polish=2).refinement
    top2 = torch.argsort(plain.rwp)[:2]
    direct = refine([octahedra[k] for k in top2], target_140, refine_delta2=True, max_iter=POLISH_MAX_ITER,
                    tol=POLISH_TOL)
    for name in ("rwp", "delta2", "scale", "expansion", "uiso"):
        torch.testing.assert_close(getattr(polished, name)[top2], getattr(direct, name))
    n = len(octahedra[top2[0]])
    torch.testing.assert_close(polished.positions[top2[0], :n], direct.positions[0, :n])
    assert n < polished.positions.shape[1] and not polished.positions[top2[0], n:].any()  # padding stays zero
    rest = torch.argsort(plain.rwp)[2:]
    for name in ("rwp", "delta2", "scale", "expansion", "uiso", "g_calc"):
        torch.testing.assert_close(getattr(polished, name)[rest], getattr(plain, name)[rest])
    assert torch.all(plain.delta2 == 0.0)
    assert polished.engine_calls > plain.engine_calls


def test_polish_more_than_the_candidates_and_bad_values(octahedra, target_140):
    ranked = rank_candidates(target_140, octahedra[:2], "test", polish=10)
    assert len(ranked.order) == 2 and torch.all(ranked.refinement.delta2 > 0)
    with pytest.raises(ValueError, match="polish"):
        rank_candidates(target_140, octahedra, "test", polish=-1)
    with pytest.raises(ValueError, match="no candidate"):
        rank_candidates(target_140, [], "test")
