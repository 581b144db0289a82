"""pdfsolve's Debye engine against diffpy.srreal's DebyePDFCalculator (golden data in tests/data/reference).

The golden arrays are stored in float32, so agreement is limited to ~6e-8 of max|G|; the issue's bound
is 1e-5 * max|G| for G and 1e-6 relative for F. We assert tighter bounds to catch regressions.
"""
import json

import ase.io
import numpy as np
import pytest
import torch

from conftest import REFERENCE, load_npz, reference_params
from pdfsolve import PDFParameters, simulate_pdf

MAIN = sorted((REFERENCE / "diffpy" / "pdf").glob("*.npz"))
EXTRA = sorted((REFERENCE / "diffpy_extra").glob("*/*.npz"))


def _structure_for(path):
    if path.parent.name == "bimetallic":
        return ase.io.read(path.with_suffix(".xyz"))
    return ase.io.read(REFERENCE / "diffpy" / "structures" / (path.stem.split("__")[0] + ".xyz"))


def _rel(a, b):
    return float(np.abs(np.asarray(a) - b).max() / np.abs(b).max())


def test_golden_set_is_complete():
    assert len(MAIN) == 45 and len(EXTRA) == 70


@pytest.mark.parametrize("path", MAIN, ids=lambda p: p.stem)
def test_exact_mode_matches_diffpy(path):
    ref = load_npz(path)
    atoms = _structure_for(path)
    res = simulate_pdf(atoms, PDFParameters(**reference_params(ref)), mode="exact")
    grid = res.grids[0]
    manifest = json.loads(str(ref["params_json"]))
    assert grid.extended_rmax == pytest.approx(manifest["diffpy_extendedrmax"], abs=1e-9)
    assert grid.qstep == pytest.approx(manifest["diffpy_qstep"], rel=1e-12)
    np.testing.assert_allclose(res.r, ref["r"], atol=1e-6)
    assert _rel(res.G[0].numpy(), ref["G"]) < 2e-7
    assert _rel(res.F[0].numpy(), ref["F"]) < 2e-7
    res0 = simulate_pdf(atoms, PDFParameters(**{**reference_params(ref), "qdamp": 0.0}), mode="exact")
    assert _rel(res0.G[0].numpy(), ref["G_qdamp0"]) < 2e-7


@pytest.mark.parametrize("path", sorted((REFERENCE / "diffpy" / "fq_allpairs").glob("*.npz")), ids=lambda p: p.stem)
def test_all_pairs_structure_function(path):
    """Clusters wider than diffpy's extended rmax lose their longest pairs in the golden G; with rmax raised
    above the cluster diameter every pair enters, as in the all-pairs F(Q) stored for them."""
    ref = load_npz(path)
    res = simulate_pdf(_structure_for(path), PDFParameters(**reference_params(ref)), mode="exact")
    assert res.grids[0].extended_rmax == pytest.approx(json.loads(str(ref["params_json"]))["diffpy_extendedrmax"])
    assert _rel(res.F[0].numpy(), ref["F"]) < 2e-7


@pytest.mark.parametrize("path", EXTRA, ids=lambda p: f"{p.parent.name}-{p.stem}")
def test_exact_mode_matches_diffpy_extra(path):
    ref = load_npz(path)
    res = simulate_pdf(_structure_for(path), PDFParameters(**reference_params(ref)), mode="exact")
    assert _rel(res.G[0].numpy(), ref["G"]) < 2e-7
    if "F" in ref:
        assert _rel(res.F[0].numpy(), ref["F"]) < 2e-7


def test_batch_of_mixed_sizes_equals_one_by_one():
    paths = [REFERENCE / "diffpy" / "pdf" / f"{n}.npz" for n in ("octa_Pt_N0006", "ico_Cu_N0055", "hcp_Pd_N0143")]
    atoms = [_structure_for(p) for p in paths]
    res = simulate_pdf(atoms, PDFParameters(), mode="exact")
    for k, p in enumerate(paths):
        assert _rel(res.G[k].numpy(), load_npz(p)["G"]) < 2e-7


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-6), (torch.float32, 3e-4)])
def test_fast_mode_matches_diffpy(dtype, tol):
    """Fast mode on all 45 golden clusters in one padded batch (issue bound: 1e-3 * max|G|). Measured:
    4.7e-7 in float64; 1.5e-4 in float32 (octa_Au_N1289: 830k pairs summed in float32), median 3e-6."""
    refs = [load_npz(p) for p in MAIN]
    atoms = [_structure_for(p) for p in MAIN]
    res = simulate_pdf(atoms, PDFParameters(), mode="fast", dtype=dtype)
    worst = max(_rel(res.G[k].double().numpy(), refs[k]["G"]) for k in range(len(MAIN)))
    assert worst < tol
