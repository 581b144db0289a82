"""DeepStruc's latent space: the map of training means and priors, interpolation between two PDFs, their commands."""
import ase.io
import numpy as np
import pytest
import torch
from conftest import run_cli

from pdfsolve import PDFParameters, simulate_pdf
from pdfsolve.io import write_pdf
from pdfsolve.models import DeepStruc, DeepStrucParams
from pdfsolve.routes.latent import interpolate, posterior_means, principal_plane, save_latent_map
from pdfsolve.structures import motifs
from pdfsolve.target import Target
from pdfsolve.training import ShardData
from pdfsolve.training.checkpoint import save_atomic
from _models import au_dataset, one_thread  # noqa: F401 (one_thread: autouse fixture)

TINY = dict(n_max=14, latent_dim=3, hidden=8, graph_layers=1, n_rbf=6, pdf_channels=[4, 4], pdf_dim=8,
            decoder_hidden=[16])


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    return au_dataset(out, 5, 14, (0.6, 0.2, 0.2))


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return DeepStruc(DeepStrucParams(**TINY)).eval()


@pytest.fixture(scope="module")
def pdf_files(tmp_path_factory):
    out = tmp_path_factory.mktemp("pdfs")
    paths = []
    for name, atoms in (("ico13", motifs.icosahedron(2, element="Au")), ("deca7", motifs.decahedron(2, 1, 0, "Au"))):
        res = simulate_pdf(atoms, PDFParameters(qmax=24.0), mode="fast")
        paths.append(out / f"{name}.gr")
        write_pdf(paths[-1], res.r, res.G[0].numpy(), PDFParameters(qmax=24.0))
    return paths


def test_posterior_means_and_their_principal_plane(model, data_dir):
    data = ShardData(data_dir, "train")
    means = posterior_means(model, data, batch_size=7)
    assert means.shape == (len(data), 3) and len(data.motifs) == len(data)
    centre, axes = principal_plane(means)
    np.testing.assert_allclose(axes.T @ axes, np.eye(2), atol=1e-12)
    spread = np.var((means - centre) @ axes, axis=0)
    assert spread[0] >= spread[1] >= np.var((means - centre) @ np.cross(axes[:, 0], axes[:, 1])) - 1e-12
    with pytest.raises(ValueError, match="2 or more dimensions"):
        principal_plane(means[:, :1])


def test_latent_map_is_drawn(model, data_dir, pdf_files, tmp_path):
    targets = [Target.from_file(p) for p in pdf_files]
    path = save_latent_map(tmp_path / "map.png", model, ShardData(data_dir, "train"), targets, ["a", "b"])
    assert path.stat().st_size > 10_000


def test_interpolation_runs_from_one_prior_mean_to_the_other(model, pdf_files):
    a, b = (Target.from_file(p) for p in pdf_files)
    frames = interpolate(model, a, b, steps=5, element="Pt")
    assert [f.info["t"] for f in frames] == [0.0, 0.25, 0.5, 0.75, 1.0]
    for f in frames:
        assert 1 <= len(f) <= 14 and set(f.get_chemical_symbols()) == {"Pt"}
        np.testing.assert_allclose(f.positions.mean(0), 0.0, atol=1e-5)
    with pytest.raises(ValueError, match="steps must be >= 2"):
        interpolate(model, a, b, steps=1)


def test_interpolate_and_latent_map_commands(model, data_dir, pdf_files, tmp_path, capsys):
    weights = tmp_path / "best.pt"
    save_atomic({"model": model.state_dict(), "config": {"model": "deepstruc", "model_params": TINY,
                                                          "data": str(data_dir)}}, weights)
    out = tmp_path / "line.extxyz"
    status, stdout, err = run_cli(["interpolate", *pdf_files, "--weights", weights, "--steps", "3", "-o", out], capsys)
    assert status == 0, err
    assert len(ase.io.read(out, index=":")) == 3 and "t=0.50" in stdout
    status, stdout, err = run_cli(["latent-map", *pdf_files, "--weights", weights, "-o", tmp_path / "m.png"], capsys)
    assert status == 0, err
    assert (tmp_path / "m.png").exists() and "training clusters" in stdout
    status, _, err = run_cli(["interpolate", *pdf_files, "--weights", weights, "--element", "Xx", "-o", out], capsys)
    assert status == 2 and "no metallic radius" in err
