"""Distance route: decoded unit-sphere distances trilaterated, scaled by the first shell, screened, refined, ranked;
``pdfsolve solve --method cvae|dae``."""
import json

import ase.io
import numpy as np
import pytest
import torch
from conftest import run_cli

from pdfsolve import PDFParameters, simulate_pdf
from pdfsolve.io import write_pdf
from pdfsolve.metrics import aligned_mae
from pdfsolve.models import DistanceCVAE, DistanceDAE, DistanceParams
from pdfsolve.models.unit_sphere import distance_features, ordered_unit_sphere, upper_pairs
from pdfsolve.routes.cvae import first_shell_scale, propose, solve
from pdfsolve.routes.distance_interpolation import interpolate
from pdfsolve.structures import motifs
from pdfsolve.target import Target
from pdfsolve.training.checkpoint import save_atomic
from _models import one_thread  # noqa: F401 (one_thread: autouse fixture)

TINY = dict(n_max=24, latent_dim=2, satellites=11, pdf_rmin=1.0, pdf_rmax=12.0, pdf_rstep=0.1, channels=3,
            encoder_hidden=(16,), decoder_hidden=(16,), prior_lengths=(12, 6))


def decoding(xyz: np.ndarray, kind=DistanceCVAE):
    """A model whose decoder returns the unit-sphere distances of ``xyz`` (n, 3) [Angstrom] for every latent and
    whose slots say n atoms."""
    torch.manual_seed(0)
    model = kind(DistanceParams(**TINY)).double().eval()
    n = len(xyz)
    x, _, _ = ordered_unit_sphere(torch.as_tensor(xyz)[None], torch.ones(1, n, dtype=torch.bool), model.points)
    x = torch.nn.functional.pad(x, (0, 0, 0, TINY["n_max"] - n))
    real = torch.arange(TINY["n_max"])[None] < n
    pair, to_points = distance_features(x, real, model.points)
    with torch.no_grad():
        model.decoder[-1].weight.zero_()
        model.decoder[-1].bias.copy_(torch.cat([upper_pairs(pair)[0], to_points[0].reshape(-1),
                                                torch.where(real[0], 10.0, -10.0).double()]))
    return model


@pytest.fixture(scope="module")
def fcc19():
    return motifs.cubic_cut("fcc", (2, 2, 2), element="Pt").positions


@pytest.fixture(scope="module")
def target(fcc19):
    """The PDF of the Pt19 fcc cut expanded by 1.5 % (qmax 24, scale 0.7)."""
    import ase

    params = PDFParameters(qmin=0.8, qmax=24.0, qdamp=0.03, biso=0.4, scale=0.7)
    res = simulate_pdf(ase.Atoms("Pt19", positions=1.015 * fcc19), params, mode="exact")
    return Target.from_arrays(res.r, res.G[0].numpy(), 0.8, 24.0, 0.03)


def test_first_shell_scale_sets_the_median_nearest_neighbour_distance():
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.normal(size=(2, 9, 3)))
    n = torch.tensor([9, 6])
    scale = first_shell_scale(x, n, 2.77)
    for b, count in enumerate(n.tolist()):
        xyz = x[b, :count].numpy()
        d = np.linalg.norm(xyz[:, None] - xyz[None], axis=-1) + np.diag(np.full(count, np.inf))
        assert float(scale[b]) == pytest.approx(2.77 / np.median(d.min(1)), rel=1e-12)


@pytest.mark.parametrize("kind", [DistanceCVAE, DistanceDAE])
def test_decoded_distances_give_back_the_cluster(kind, fcc19, target):
    clusters = propose(decoding(fcc19, kind), target, 6, (1.0, 2.0), element="Pt")
    assert len(clusters) == (1 if kind is DistanceDAE else 6)
    for atoms in clusters:  # trilateration of exact distances, scaled to the Pt bond 2.77 Angstrom
        assert len(atoms) == 19 and aligned_mae(atoms.positions, fcc19) < 1e-4


def test_candidates_are_refined_and_ranked_by_the_shared_loop(fcc19, target):
    result = solve(target, decoding(fcc19), k=4, widen=(1.0, 2.0), n_refine=2, element="Pt")
    assert result.method == "cvae" and len(result.candidates) == 2
    best = result.ranked_structure(0)
    assert best.info["rwp"] < 0.02 and best.info["expansion"] == pytest.approx(1.015, abs=0.002)
    assert solve(target, decoding(fcc19, DistanceDAE), n_refine=2, element="Pt").method == "dae"
    with pytest.raises(ValueError, match="no metallic radius"):
        solve(target, decoding(fcc19), k=2, element="Xx")


def test_solve_command_with_distance_weights(fcc19, target, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PDFSOLVE_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "pt19.gr"
    write_pdf(data, target.r, target.g.numpy(), target.params)
    for name, kind in (("cvae", DistanceCVAE), ("dae", DistanceDAE)):
        weights = tmp_path / f"{name}.pt"
        save_atomic({"model": decoding(fcc19, kind).state_dict(), "config": {"model": name, "model_params": TINY}},
                    weights)
        status, out, err = run_cli(["solve", data, "-o", tmp_path / name, "--method", name, "--samples", "4",
                                    "--widen", "1", "2", "--refine", "2", "--element", "Pt", "--top", "1",
                                    "--min-atoms", "15", "--max-atoms", "20", "--weights", weights, "--no-snap"], capsys)
        assert status == 0, err
        summary = json.loads((tmp_path / name / "pt19" / "summary.json").read_text())
        assert summary["method"] == name and summary["n_candidates"] == (2 if name == "cvae" else 1)
        # the 19-atom site-centred fcc cut is the 3-layer octahedron, which the library labels octahedral
        assert float(summary["top"][0]["rwp"]) < 0.02 and summary["top"][0]["motif"] == "octahedral"
    status, _, err = run_cli(["solve", data, "-o", tmp_path / "x", "--method", "dae", "--weights",
                              tmp_path / "cvae.pt"], capsys)
    assert status == 2 and "holds a cvae model, not dae" in err


def scrambled(model: DistanceCVAE, seed: int = 0) -> DistanceCVAE:
    """``model`` with the decoded pair distances replaced by random ones in [0.2, 1]: no cluster has them."""
    rng = np.random.default_rng(seed)
    n_pairs = TINY["n_max"] * (TINY["n_max"] - 1) // 2
    with torch.no_grad():
        model.decoder[-1].bias[:n_pairs] = torch.as_tensor(rng.uniform(0.2, 1.0, n_pairs))
    return model


def test_interpolation_of_exact_distances_is_physical_and_of_scrambled_ones_is_not(fcc19, target):
    frames = interpolate(decoding(fcc19, DistanceDAE), target, target, steps=4, element="Pt")
    assert [f.info["t"] for f in frames] == pytest.approx([0, 1 / 3, 2 / 3, 1])
    for atoms in frames:
        assert atoms.info["physical"] and atoms.info["n_atoms"] == 19 and atoms.info["residual"] < 1e-4
        assert aligned_mae(atoms.positions, fcc19) < 1e-4
        d = np.linalg.norm(fcc19[:, None] - fcc19[None], axis=-1) + np.diag(np.full(19, np.inf))
        assert atoms.info["closest"] == pytest.approx(d.min(), abs=1e-4)
    bad = interpolate(scrambled(decoding(fcc19)), target, target, steps=2, element="Pt")[0]
    pos = bad.positions
    d = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    assert bad.info["closest"] == pytest.approx((d + np.diag(np.full(19, np.inf))).min(), rel=1e-9)
    assert bad.info["residual"] > 0.3 and bad.info["physical"] == (bad.info["closest"] >= 1.5)
    with pytest.raises(ValueError, match="steps"):
        interpolate(decoding(fcc19), target, target, steps=1)


def test_interpolate_command_with_distance_weights(fcc19, target, tmp_path, capsys):
    data = tmp_path / "pt19.gr"
    write_pdf(data, target.r, target.g.numpy(), target.params)
    weights = tmp_path / "dae.pt"
    save_atomic({"model": decoding(fcc19, DistanceDAE).state_dict(), "config": {"model": "dae", "model_params": TINY}},
                weights)
    out = tmp_path / "line.extxyz"
    status, stdout, err = run_cli(["interpolate", data, data, "--method", "dae", "--weights", weights, "--steps", "3",
                                   "--element", "Pt", "-o", out], capsys)
    assert status == 0, err
    frames = ase.io.read(out, index=":")
    assert len(frames) == 3 and "t=0.50:N=19" in stdout and all(f.info["physical"] for f in frames)
    status, _, err = run_cli(["interpolate", data, data, "--method", "cvae", "--weights", weights, "-o", out], capsys)
    assert status == 2 and "holds a dae model, not cvae" in err
