"""The fingerprint route: a PDF-conditioned cVAE that decodes one exact fingerprint gives back its cluster through
the batched inversion and the shared screen-refine-rank loop, ``pdfsolve solve --method fingerprint`` runs it, and
the shipped weights match their record and find the icosahedron of an icosahedron's PDF."""
from __future__ import annotations

import hashlib
import json

import ase
import pytest
import torch
from conftest import run_cli

from pdfsolve import PDFParameters, simulate_pdf
from pdfsolve.geometry import pooled_acsf
from pdfsolve.io import write_pdf
from pdfsolve.metrics import aligned_deviations, aligned_mae
from pdfsolve.models.fingerprint_cvae import FingerprintCVAE, FingerprintParams
from pdfsolve.routes.fingerprint import propose, solve
from pdfsolve.structures import icosahedron
from pdfsolve.target import Target
from pdfsolve.models.weights import load_weights, shipped_weights
from pdfsolve.training.checkpoint import save_atomic
from _models import one_thread  # noqa: F401 (one_thread: autouse fixture)

TINY = {"condition": "pdf", "hidden": [16], "latent_dim": 2, "max_atoms": 16, "channels": [4], "condition_dim": 8}


@pytest.fixture(scope="module")
def ico13():
    return icosahedron(2, "Pt").positions


@pytest.fixture(scope="module")
def target(ico13):
    params = PDFParameters(qmin=0.8, qmax=24.0, qdamp=0.03, biso=0.4, scale=0.7)
    res = simulate_pdf(ase.Atoms("Pt13", positions=1.01 * ico13), params, mode="exact")
    return Target.from_arrays(res.r, res.G[0].numpy(), 0.8, 24.0, 0.03)


def decoding(positions) -> FingerprintCVAE:
    """A tiny PDF-conditioned model whose decoder returns the fingerprint of ``positions`` for every latent and
    PDF, and whose count head says len(positions)."""
    model = FingerprintCVAE(FingerprintParams(**TINY)).eval()
    v = pooled_acsf(torch.as_tensor(positions)[None])
    model.scaler.fit(torch.cat([v, 1.5 * v]))
    with torch.no_grad():
        model.decoder[-1].weight.zero_()
        model.decoder[-1].bias.copy_(model.scaler(v)[0])
        model.count_head[-1].weight.zero_()
        model.count_head[-1].bias.copy_(torch.where(torch.arange(16) == len(positions) - 1, 10.0, -10.0))
    return model


def test_an_exact_fingerprint_gives_back_its_cluster(ico13, target):
    clusters = propose(decoding(ico13), target, 2, element="Pt")
    assert len(clusters) == 2
    for atoms in clusters:
        assert len(atoms) == 13 and atoms.info["method"] == "fingerprint" and atoms.info["loss"] < 1e-8
        assert aligned_deviations(atoms.positions, ico13).max() < 1e-3
    with pytest.raises(ValueError, match="PDF-conditioned"):
        propose(FingerprintCVAE(FingerprintParams()), target, 2)


def test_candidates_are_refined_and_ranked_by_the_shared_loop(ico13, target):
    result = solve(target, decoding(ico13), k=2, n_refine=1, element="Pt")
    best = result.ranked_structure(0)
    assert result.method == "fingerprint" and best.info["rwp"] < 0.02
    assert best.info["expansion"] == pytest.approx(1.01, abs=0.002)
    with pytest.raises(ValueError, match="no metallic radius"):
        solve(target, decoding(ico13), k=2, element="Xx")


def test_solve_command_with_fingerprint_weights(ico13, target, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PDFSOLVE_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "pt13.gr"
    write_pdf(data, target.r, target.g.numpy(), target.params)
    weights = tmp_path / "fingerprint.pt"
    save_atomic({"model": decoding(ico13).state_dict(), "config": {"model": "fingerprint", "model_params": TINY}},
                weights)
    status, _, err = run_cli(["solve", data, "-o", tmp_path / "out", "--method", "fingerprint", "--fingerprints", "2",
                              "--refine", "1", "--element", "Pt", "--top", "1", "--min-atoms", "10", "--max-atoms",
                              "14", "--weights", weights], capsys)
    assert status == 0, err
    summary = json.loads((tmp_path / "out" / "pt13" / "summary.json").read_text())
    assert summary["method"] == "fingerprint" and float(summary["top"][0]["rwp"]) < 0.02
    assert summary["top"][0]["motif"] == "icosahedral"
    status, _, err = run_cli(["solve", data, "-o", tmp_path / "x", "--method", "fingerprint", "--fingerprints", "0",
                              "--weights", weights], capsys)
    assert status == 2 and "--fingerprints" in err


def test_shipped_weights_match_their_record_and_predict_the_size(target):
    shipped = shipped_weights("fingerprint")
    assert shipped is not None, "no fingerprint weights shipped"
    path, record = shipped
    assert hashlib.sha256(path.read_bytes()).hexdigest() == record["sha256"] and path.stat().st_size < 2e6
    model, config = load_weights(None, "fingerprint")
    assert isinstance(model, FingerprintCVAE) and model.params.condition == "pdf" and not model.training
    assert record["trained"]["model_params"] == config["model_params"]
    assert any("pdfsolve train fingerprint" in command for command in record["command"])
    with torch.no_grad():
        assert int(model.count_logits(model.embed_pdf(target.r, target.g[None])).argmax()) + 1 == 13


@pytest.mark.slow
def test_shipped_weights_generate_the_icosahedron(ico13, target):
    model, _ = load_weights(None, "fingerprint")
    clusters = propose(model, target, 4, element="Pt")
    assert min(aligned_mae(atoms.positions, ico13) for atoms in clusters) < 0.25  # Angstrom, before refinement
