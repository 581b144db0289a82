"""Batched refinement recovers scale, expansion and U_iso of PDFs simulated with known values."""
import numpy as np
import pytest
import torch
from ase.cluster import Decahedron, Icosahedron, Octahedron

from pdfsolve.engine import ClusterBatch, PDFParameters, simulate_pdf
from pdfsolve.refine import refine
from pdfsolve.target import Target

SCALE, EXPANSION, UISO, QDAMP = 0.7, 1.02, 0.006, 0.04


def _target(atoms, expansion=EXPANSION, uiso=UISO, scale=SCALE, delta2=0.0) -> Target:
    """Exact-mode PDF of ``atoms`` expanded by ``expansion``, as a target on 1.5-30 Angstrom."""
    expanded = atoms.copy()
    expanded.positions *= expansion
    params = PDFParameters.from_uiso(uiso, qmin=0.7, qmax=25.0, qdamp=QDAMP, delta2=delta2)
    res = simulate_pdf(expanded, params, mode="exact")
    return Target.from_arrays(res.r, scale * res.G[0].numpy(), 0.7, 25.0, QDAMP)


@pytest.fixture(scope="module")
def clusters():
    return [Icosahedron("Au", 3), Octahedron("Au", 5, 1), Decahedron("Au", 3, 2, 0)]


@pytest.fixture(scope="module")
def targets(clusters):
    return [_target(c) for c in clusters]


def test_recovers_known_parameters_for_a_batch(clusters, targets):
    out = refine(clusters, targets)  # candidate k against target k
    np.testing.assert_allclose(out.scale.numpy(), SCALE, rtol=1e-3)
    np.testing.assert_allclose(out.expansion.numpy(), EXPANSION, rtol=1e-4)
    np.testing.assert_allclose(out.uiso.numpy(), UISO, rtol=1e-3)
    np.testing.assert_allclose(out.qdamp.numpy(), QDAMP)
    assert (out.rwp < 0.01).all()
    assert out.g_calc.shape == (3, len(targets[0].r)) and out.engine_calls > 0
    g_obs = torch.stack([t.g for t in targets])
    np.testing.assert_allclose(out.rwp.numpy(), (((g_obs - out.g_calc) ** 2).sum(1) / (g_obs**2).sum(1)).sqrt())
    # refined positions are centred and expanded: distances scale by the expansion
    pos = out.positions[0, :len(clusters[0])].numpy()
    np.testing.assert_allclose(np.linalg.norm(pos[1] - pos[0]), out.expansion[0].item()
                               * np.linalg.norm(clusters[0].positions[1] - clusters[0].positions[0]))
    np.testing.assert_allclose(pos.mean(0), 0.0, atol=1e-12)


def test_wrong_cluster_has_higher_rwp(clusters, targets):
    out = refine(ClusterBatch.from_atoms(clusters), targets[0], chunk_size=2)
    assert out.rwp[0] < 0.01 and (out.rwp[1:] > 10 * out.rwp[0]).all()
    # many targets at once through target_index
    out2 = refine(clusters + clusters, targets, target_index=[0, 1, 2, 1, 1, 1])
    assert out2.rwp[1] == pytest.approx(out2.rwp[4]) and out2.rwp[1] < out2.rwp[3] and out2.rwp[1] < out2.rwp[5]


def test_refines_qdamp_and_delta2():
    atoms = Icosahedron("Pt", 3)
    t = _target(atoms, expansion=0.98, uiso=0.008, scale=1.3, delta2=2.0)
    out = refine([atoms], t, uiso=0.008, refine_qdamp=False, refine_delta2=True)
    assert out.delta2[0].item() == pytest.approx(2.0, rel=1e-2)
    assert out.expansion[0].item() == pytest.approx(0.98, rel=1e-4)
    assert out.scale[0].item() == pytest.approx(1.3, rel=1e-3)
    t = _target(atoms)
    out = refine([atoms], t, refine_qdamp=True)
    assert out.qdamp[0].item() == pytest.approx(QDAMP, rel=1e-2)


def test_bad_target_index(clusters, targets):
    with pytest.raises(ValueError, match="target_index"):
        refine(clusters, targets[:2])
    with pytest.raises(ValueError, match="target_index"):
        refine(clusters, targets, target_index=[0, 1, 3])


def _alloy():
    atoms = Decahedron("Pt", 3, 2, 1)
    atoms.set_chemical_symbols(["Pd" if i % 3 == 0 else s for i, s in enumerate(atoms.get_chemical_symbols())])
    return atoms


@pytest.mark.parametrize("mode,tol", [("fast", 1e-5), ("exact", 1e-7)])
def test_expansion_table_matches_the_engine(mode, tol):
    """One engine call per chunk: the table's F(Q) at expansion s (and dF/ds) equals the engine's F of the
    expanded cluster, for one element and for an alloy (form factors at Q, partial sums at s Q)."""
    from pdfsolve.engine.debye import structure_function
    from pdfsolve.engine.grids import DebyeGrid
    from pdfsolve.refine import ExpansionTable, _centred, _fixed_pair_set

    batch = ClusterBatch.from_atoms([Icosahedron("Au", 4), _alloy()])
    pos = _centred(batch)
    grid = DebyeGrid.build(PDFParameters(qmin=0.7, qmax=25.0, qdamp=0.0), 0.005)
    fixed, dmax = _fixed_pair_set(pos, batch.mask, grid)
    assert fixed.all()
    q = torch.as_tensor(grid.q)
    table = ExpansionTable(pos, batch.species, batch.symbols, q, "xray", 0.0, grid.extended_rmax / 1.1,
                           float(dmax.max()), mode)
    m = grid.transform_matrix()

    def direct(s):
        zero = torch.zeros(pos.shape[:2], dtype=pos.dtype)
        return structure_function(ClusterBatch(pos * s, batch.species, zero, batch.symbols), grid, "exact")

    for s in (0.92, 1.0, 1.07):
        f, df = table(torch.arange(2), torch.full((2,), s, dtype=torch.float64), deriv=True)
        ref = direct(s)
        assert ((f - ref).abs().amax(1) / ref.abs().amax(1)).max() < tol
        g, g_ref = f @ m, ref @ m
        assert ((g - g_ref).abs().amax(1) / g_ref.abs().amax(1)).max() < tol
        h = 1e-5
        df_ref = (direct(s + h) - direct(s - h)) / (2 * h)
        assert ((df - df_ref).abs().amax(1) / df_ref.abs().amax(1)).max() < 1e-5


def test_expansion_table_makes_one_engine_call(clusters, targets):
    out = refine(clusters, targets)
    assert out.engine_calls == 1
    out = refine(clusters, targets, n_scan=1, chunk_size=2)
    assert out.engine_calls == 2


def test_pairs_crossing_the_pair_range_use_engine_calls():
    """Pairs that cross the engine's extended rmax as the expansion varies: exact engine calls, same fit."""
    atoms = Icosahedron("Au", 4)  # ~14 Angstrom across, rmax 12 Angstrom
    expanded = atoms.copy()
    expanded.positions *= EXPANSION
    params = PDFParameters.from_uiso(UISO, qmin=0.7, qmax=25.0, qdamp=QDAMP, rmax=12.0)
    res = simulate_pdf(expanded, params, mode="exact")
    t = Target.from_arrays(res.r, SCALE * res.G[0].numpy(), 0.7, 25.0, QDAMP, rmax=12.0)
    out = refine([atoms], t)
    assert out.engine_calls > 1
    assert out.expansion[0].item() == pytest.approx(EXPANSION, rel=1e-4)
    assert out.uiso[0].item() == pytest.approx(UISO, rel=1e-3)
    assert out.rwp[0] < 0.01
