"""`pdfsolve solve` (cluster mining) end to end on a small library and a simulated measurement."""
import csv
import json

import numpy as np
import pytest
from ase.cluster import Icosahedron

from pdfsolve import PDFParameters, simulate_pdf
from pdfsolve.cli import main
from pdfsolve.io import write_pdf
from pdfsolve.routes.mine import elements_from_composition


@pytest.fixture()
def measured_ico55(tmp_path):
    """An Au55 icosahedron, expanded by 1.5 % and rattled, measured with qmax 24, noise 1 %."""
    atoms = Icosahedron("Au", 3, latticeconstant=2 * 2 * 1.44 / np.sqrt(2) * 1.015)
    atoms.rattle(0.01, seed=2)
    params = PDFParameters(qmin=0.9, qmax=24.0, qdamp=0.03, biso=0.5, scale=0.8)
    res = simulate_pdf(atoms, params, mode="exact")
    g = res.G[0].numpy()
    g = g + np.random.default_rng(0).normal(scale=0.01 * np.abs(g).max(), size=g.shape)
    path = tmp_path / "au55.gr"
    write_pdf(path, res.r, g, params, metadata={"composition": "Au55"})
    return path


def test_solve_ranks_the_true_motif_first(measured_ico55, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PDFSOLVE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    status = main(["solve", str(measured_ico55), "-o", str(out), "--min-atoms", "40", "--max-atoms", "60",
                   "--top", "3"])
    assert status == 0
    result = out / "au55"
    with open(result / "candidates.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["motif"] == "icosahedral" and rows[0]["n_atoms"] == "55" and rows[0]["element"] == "Au"
    assert float(rows[0]["rwp"]) < 0.15 < float(rows[1]["rwp"])
    assert float(rows[0]["expansion"]) == pytest.approx(1.015, abs=0.003)
    assert float(rows[0]["scale"]) == pytest.approx(0.8, rel=0.05)
    assert {p.name for p in result.iterdir()} >= {"candidates.csv", "fit.png", "summary.json", "rank_01.xyz",
                                                  "rank_03.xyz"}
    summary = json.loads((result / "summary.json").read_text())
    assert summary["parameters"]["qmax"] == 24.0 and summary["n_candidates"] == len(rows)
    assert "icosahedral" in capsys.readouterr().out
    # the library is cached: a second run does not rebuild it
    assert len(list((tmp_path / "cache").glob("library-*.extxyz"))) == 1


def test_solve_rejects_bad_arguments(measured_ico55, tmp_path, capsys):
    assert main(["solve", str(measured_ico55), "-o", str(tmp_path), "--element", "Xx"]) == 2
    assert "Xx" in capsys.readouterr().err
    assert main(["solve", str(tmp_path / "missing.gr"), "-o", str(tmp_path)]) == 2
    capsys.readouterr()
    for option in (["--polish", "-1"], ["--method", "deepstruc", "--snap-width", "-0.1"]):
        assert main(["solve", str(measured_ico55), "-o", str(tmp_path), *option]) == 2
        assert "--polish and --snap-width must be >= 0" in capsys.readouterr().err


def test_elements_from_composition():
    assert elements_from_composition("Au144S60C480H360") == ["Au"]
    assert elements_from_composition("Pt") == ["Pt"]
    assert elements_from_composition(None) == []
