"""Engine behaviour beyond the golden data: analytic cases, gradients, batching, parameters."""
import math

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.cluster import Icosahedron

from pdfsolve import ClusterBatch, DebyeGrid, PDFParameters, simulate_pdf, total_scattering
from pdfsolve.engine.scattering import xray_form_factors

MODES = ["exact", "fast"]


def dimer(d=2.8, symbols="Au2"):
    return Atoms(symbols, positions=[[0, 0, 0], [0, 0, d]])


@pytest.mark.parametrize("mode", MODES)
def test_dimer_structure_function_is_analytic(mode):
    """Two identical atoms: F(Q) = exp(-U Q^2) sin(Q d) / d (f cancels; sigma^2 = 2U)."""
    params = PDFParameters()
    res = simulate_pdf(dimer(), params, mode=mode)
    q = res.q
    expected = np.exp(-params.uiso * q**2) * np.sin(q * 2.8) / 2.8
    tol = 1e-12 if mode == "exact" else 1e-6  # fast: tabulated Gaussian taps, deconvolved in Q
    np.testing.assert_allclose(res.F[0].numpy(), expected, atol=tol * np.abs(expected).max())


def test_heteronuclear_dimer_uses_form_factors():
    params = PDFParameters()
    res = simulate_pdf(dimer(2.6, "AuCu"), params)
    q = torch.as_tensor(res.q)
    f = xray_form_factors(["Au", "Cu"], q).numpy()
    qn = res.q
    v = 2 * f[0] * f[1] * np.exp(-params.uiso * qn**2) * np.sin(qn * 2.6) / 2.6
    expected = v / (2 * ((f[0] + f[1]) / 2) ** 2)
    np.testing.assert_allclose(res.F[0].numpy(), expected, atol=1e-12)


def test_neutron_uses_scattering_lengths():
    params = PDFParameters(radiation="neutron")
    res = simulate_pdf(dimer(2.6, "AuCu"), params)
    b_au, b_cu = 7.63, 7.718
    q = res.q
    expected = 2 * b_au * b_cu * np.exp(-params.uiso * q**2) * np.sin(q * 2.6) / 2.6 / (2 * ((b_au + b_cu) / 2) ** 2)
    np.testing.assert_allclose(res.F[0].numpy(), expected, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_one_atom_empty_batch_and_padding(mode):
    single = simulate_pdf(Atoms("Pt", positions=[[0, 0, 0]]), mode=mode)
    assert torch.all(single.G == 0)
    empty = simulate_pdf(ClusterBatch.from_atoms([]), mode=mode)
    assert empty.G.shape[0] == 0
    ico = Icosahedron("Pt", 2)
    both = simulate_pdf([ico, dimer()], mode=mode)
    alone = simulate_pdf(ico, mode=mode)
    torch.testing.assert_close(both.G[0], alone.G[0], rtol=0, atol=1e-12)


def test_coincident_atoms_are_skipped_like_diffpy():
    base = simulate_pdf(dimer())
    doubled = Atoms("Au3", positions=[[0, 0, 0], [0, 0, 0], [0, 0, 2.8]])
    res = simulate_pdf(doubled)
    assert torch.isfinite(res.G).all()
    # pairs (0,2) and (1,2) at 2.8 A, (0,1) skipped; N = 3: F = (4/3) exp(-U Q^2) sin(Qd)/d
    np.testing.assert_allclose(res.F[0].numpy(), base.F[0].numpy() * 4 / 3, atol=1e-12)


def test_normalize_scales_each_pdf_to_unit_max():
    res = simulate_pdf([Icosahedron("Au", 2), Icosahedron("Au", 3)], normalize=True)
    np.testing.assert_allclose(res.G.abs().amax(1).numpy(), 1.0, rtol=1e-12)


def test_total_scattering_limits():
    """S = 1 + F/Q; I(Q -> 0) = (sum_i f_i)^2 for a cluster inside the pair range."""
    ico = Icosahedron("Au", 3)
    out = total_scattering(ico)
    q = out["q"]
    np.testing.assert_allclose(out["S"][0, 1:].numpy(), 1 + out["F"][0, 1:].numpy() / q[1:], rtol=1e-12)
    f0 = xray_form_factors(["Au"], torch.zeros(1, dtype=torch.float64))[0, 0].item()
    assert out["I"][0, 0].item() == pytest.approx((len(ico) * f0) ** 2, rel=1e-9)
    # S(0) = 1 + 2 (number of pairs) / N = N when every pair is inside the range
    assert out["S"][0, 0].item() == pytest.approx(len(ico), rel=1e-9)


@pytest.mark.parametrize("mode", MODES)
def test_gradcheck_positions_and_uiso(mode):
    """End-to-end float64 gradcheck of G(r) with respect to positions and U_iso (backward kernels)."""
    params = PDFParameters(rmax=8.0, delta2=1.0)
    atoms = Icosahedron("Au", 2)
    atoms.rattle(0.05, seed=1)
    batch = ClusterBatch.from_atoms(atoms, biso=params.biso)
    idx = torch.arange(0, 800, 37)

    def g_of(pos, uiso):
        b = ClusterBatch(pos, batch.species, uiso, batch.symbols)
        return simulate_pdf(b, params, mode=mode).G[:, idx]

    pos = batch.pos.clone().requires_grad_(True)
    uiso = batch.uiso.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(g_of, (pos, uiso), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_expansion_gradient_matches_finite_difference():
    atoms = Icosahedron("Pt", 3)
    batch = ClusterBatch.from_atoms(atoms)
    s = torch.tensor(1.01, dtype=torch.float64, requires_grad=True)

    def rw(scale):
        b = ClusterBatch(batch.pos * scale, batch.species, batch.uiso, batch.symbols)
        return simulate_pdf(b, mode="fast").G.pow(2).sum()

    (grad,) = torch.autograd.grad(rw(s), s)
    h = 1e-6
    fd = (rw(torch.tensor(1.01 + h, dtype=torch.float64)) - rw(torch.tensor(1.01 - h, dtype=torch.float64))) / (2 * h)
    assert grad.item() == pytest.approx(fd.item(), rel=1e-5)


def test_fast_and_exact_agree_with_jeong_widths_and_mixed_uiso():
    atoms = Icosahedron("Au", 3)
    atoms.rattle(0.05, seed=3)
    batch = ClusterBatch.from_atoms(atoms)
    batch.uiso = batch.uiso * (1 + torch.rand(batch.uiso.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    params = PDFParameters(delta1=0.5, delta2=2.0, qbroad=0.01)
    exact = simulate_pdf(batch, params, mode="exact").G
    fast = simulate_pdf(batch, params, mode="fast").G
    assert (fast - exact).abs().max() / exact.abs().max() < 1e-6


@pytest.mark.parametrize("bad,msg", [
    (dict(rmax=0.0), "rmax"), (dict(qmax=0.5), "qmax"), (dict(rstep=0.0), "rstep"),
    (dict(qdamp=-1.0), "qdamp"), (dict(biso=float("nan")), "biso"), (dict(qmax=250.0), "1/nm"),
    (dict(radiation="electron"), "radiation"),
])
def test_parameter_validation_names_the_problem(bad, msg):
    with pytest.raises(ValueError, match=msg):
        PDFParameters(**bad)


def test_unknown_element_and_nan_positions_are_rejected():
    with pytest.raises(ValueError, match="Xx"):
        simulate_pdf(ClusterBatch(torch.zeros(1, 2, 3, dtype=torch.float64), torch.zeros(1, 2, dtype=torch.long),
                                  torch.zeros(1, 2, dtype=torch.float64), ["Xx"]))
    with pytest.raises(ValueError, match="NaN"):
        ClusterBatch(torch.full((1, 2, 3), float("nan")), torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, 2), ["Au"])


def test_grid_rules_follow_diffpy():
    grid = DebyeGrid.build(PDFParameters())
    assert grid.extended_rmax == pytest.approx(31.95)
    assert grid.qstep == pytest.approx(math.pi / 31.95)
    assert grid.nq == 255 and grid.kmin == 8 and grid.fft_length() == 4096
    on_grid = DebyeGrid.build(PDFParameters(qmin=8 * math.pi / 31.95))
    assert on_grid.kmin == 8  # qmin on a grid point keeps that point


def test_rdf_of_a_dimer_is_one_gaussian():
    """Two identical atoms at d: R(r) = (r / d) g(r - d; sigma^2 = 2 U) (each atom sees one neighbour)."""
    from pdfsolve.engine.rdf import radial_distribution

    params = PDFParameters(rmin=1.0, rmax=5.0)
    r, rdf = radial_distribution(dimer(2.8), params)
    s2 = 2 * params.uiso
    expected = r / 2.8 * np.exp(-((r - 2.8) ** 2) / (2 * s2)) / np.sqrt(2 * np.pi * s2)
    np.testing.assert_allclose(rdf[0].numpy(), expected, atol=1e-10)


def test_rdf_counts_neighbours_and_matches_a_direct_sum():
    from pdfsolve.engine.rdf import radial_distribution

    ico = Icosahedron("Cu", 2)  # 13 atoms: 12 neighbours of the centre, 5 + 1 of each surface atom
    ico.symbols[0] = "Au"
    params = PDFParameters(rmax=10.0, rstep=0.005, delta2=1.0)
    r, rdf = radial_distribution(ico, params)
    pos = ico.positions
    w = {"Au": 78.96745800000001, "Cu": 28.992065}
    ws = np.array([w[s] for s in ico.get_chemical_symbols()])
    d = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    i, j = np.nonzero(~np.eye(13, dtype=bool))
    s2 = 2 * params.uiso * (1 - params.delta2 / d[i, j] ** 2)
    terms = ws[i] * ws[j] * np.exp(-((r[:, None] - d[i, j]) ** 2) / (2 * s2)) / np.sqrt(2 * np.pi * s2)
    expected = (terms * r[:, None] / d[i, j]).sum(1) / 13 / ws.mean() ** 2
    np.testing.assert_allclose(rdf[0].numpy(), expected, atol=1e-9 * expected.max())
