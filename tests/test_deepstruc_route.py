"""DeepStruc route: decoded prior samples screened, refined and ranked, written like cluster mining; weights loading."""
import csv
import json
from collections import Counter

import numpy as np
import pytest
import torch
from conftest import run_cli

import pdfsolve.models.weights
from pdfsolve import PDFParameters, simulate_pdf
from pdfsolve.io import write_pdf
from pdfsolve.models import DeepStruc, DeepStrucParams
from pdfsolve.models.weights import file_sha256, load_model
from pdfsolve.routes import write_outputs
from pdfsolve.routes.ranking import merge_ranked, rank_candidates
from pdfsolve.routes.deepstruc import propose, solve
from pdfsolve.routes.sampling import closest_distance, decoded_clusters, screen_and_rank, sizes_within
from pdfsolve.structures import motifs
from pdfsolve.target import Target
from pdfsolve.training.checkpoint import save_atomic
from _models import au_dataset, one_thread  # noqa: F401 (one_thread: autouse fixture)

TINY = dict(n_max=24, latent_dim=3, hidden=16, graph_layers=1, n_rbf=8, pdf_channels=(4, 8), pdf_dim=16,
            decoder_hidden=(32,))


def decoding(xyz: np.ndarray) -> DeepStruc:
    """A model whose decoder returns ``xyz`` (n, 3) [Angstrom] for every latent and whose count head says n."""
    torch.manual_seed(0)
    model = DeepStruc(DeepStrucParams(**TINY)).eval()
    slots = np.zeros((TINY["n_max"], 3))
    slots[:len(xyz)] = xyz
    with torch.no_grad():
        model.decoder[-1].weight.zero_()
        model.decoder[-1].bias.copy_(torch.as_tensor(slots.reshape(-1)))
        model.count_head[-1].weight.zero_()
        model.count_head[-1].bias.copy_(torch.arange(TINY["n_max"]) == len(xyz) - 1)
    return model


@pytest.fixture(scope="module")
def ico13():
    return motifs.icosahedron(2, element="Pt").positions


@pytest.fixture(scope="module")
def target(ico13):
    """The PDF of the Pt13 icosahedron expanded by 2 % (qmax 24, scale 0.7)."""
    import ase

    params = PDFParameters(qmin=0.8, qmax=24.0, qdamp=0.03, biso=0.4, scale=0.7)
    res = simulate_pdf(ase.Atoms("Pt13", positions=1.02 * ico13), params, mode="exact")
    return Target.from_arrays(res.r, res.G[0].numpy(), 0.8, 24.0, 0.03)


def test_samples_are_screened_refined_ranked_and_written(ico13, target, tmp_path):
    result = solve(target, decoding(ico13), k=8, widen=(1.0, 3.0), n_refine=3, element="Pt")
    assert result.method == "deepstruc" and len(result.candidates) == 3
    best = result.ranked_structure(0)
    assert len(best) == 13 and best.get_chemical_symbols() == ["Pt"] * 13
    assert best.info["rwp"] < 0.02 and best.info["expansion"] == pytest.approx(1.02, abs=0.002)
    assert best.info["motif"] == "unknown" and best.info["widen"] in (1.0, 3.0)
    summary = write_outputs(result, tmp_path, top=2)
    assert summary["method"] == "deepstruc" and summary["n_candidates"] == 3
    assert set(summary["seconds"]) == {"sample", "screen", "refine", "polish"} and all(t >= 0 for t in summary["seconds"].values())
    assert {p.name for p in tmp_path.iterdir()} == {"candidates.csv", "fit.png", "summary.json", "rank_01.xyz",
                                                    "rank_02.xyz"}
    assert json.loads((tmp_path / "summary.json").read_text())["top"][0]["n_atoms"] == 13


def test_clusters_with_coincident_atoms_are_set_aside(ico13, target):
    crowded = ico13.copy()
    crowded[1] = crowded[0] + 0.3
    proposed = propose(decoding(crowded), target, 3)
    assert [(len(a), a.info["physical"], a.info["sample"]) for a in proposed] == [(13, False, s) for s in range(3)]
    pos = torch.zeros(3, 13, 3, dtype=torch.float64)
    pos[0], pos[1], pos[2, :4] = torch.as_tensor(ico13), torch.as_tensor(crowded), torch.as_tensor(ico13[:4])
    mask = torch.arange(13)[None] < torch.tensor([[13], [13], [1]])
    for chunk in (1, 2, 128):
        closest = closest_distance(pos, mask, chunk).tolist()
        assert closest[0] == pytest.approx(np.linalg.norm(ico13[1] - ico13[0])) and closest[1] == pytest.approx(0.3 * 3**0.5)
        assert closest[2] == np.inf  # one atom: no pair
    with pytest.raises(ValueError, match="deepstruc: none of the decoded clusters"):
        solve(target, decoding(crowded), k=4, widen=(1.0, 2.0))
    with pytest.raises(ValueError, match="no metallic radius"):
        solve(target, decoding(ico13), k=2, element="Xx")


def test_trained_weights_load_and_are_checked(tmp_path, ico13):
    model = decoding(ico13)
    path = tmp_path / "best.pt"
    save_atomic({"model": model.state_dict(), "config": {"model": "deepstruc", "model_params": TINY}}, path)
    loaded, config = load_model(path, sha256=file_sha256(path))
    assert config["model"] == "deepstruc" and not loaded.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])
    with pytest.raises(ValueError, match="does not match the expected"):
        load_model(path, sha256="0" * 64)
    with pytest.raises(ValueError, match="no model weights"):
        load_model(tmp_path / "missing.pt")
    save_atomic({"model": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not the weights of a pdfsolve training run"):
        load_model(tmp_path / "other.pt")


def test_solve_command_with_deepstruc_weights(ico13, target, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PDFSOLVE_CACHE", str(tmp_path / "cache"))
    weights = tmp_path / "best.pt"
    save_atomic({"model": decoding(ico13).state_dict(), "config": {"model": "deepstruc", "model_params": TINY}},
                weights)
    data = tmp_path / "pt13.gr"
    write_pdf(data, target.r, target.g.numpy(), target.params)
    argv = ["solve", data, "-o", tmp_path / "out", "--method", "deepstruc", "--samples", "4", "--widen", "1", "2",
            "--refine", "2", "--element", "Pt", "--top", "1", "--min-atoms", "10", "--max-atoms", "16"]
    status, out, err = run_cli([*argv, "--weights", weights, "--no-snap"], capsys)
    assert status == 0, err
    summary = json.loads((tmp_path / "out" / "pt13" / "summary.json").read_text())
    assert summary["method"] == "deepstruc" and summary["n_candidates"] == 2
    assert summary["top"][0]["motif"] == "icosahedral" and "icosahedral" in out  # labelled against the library
    status, out, err = run_cli([*argv, "--weights", weights, "-o", tmp_path / "snapped"], capsys)  # snap: default
    assert status == 0, err
    with open(tmp_path / "snapped" / "pt13" / "candidates.csv") as f:
        rows = list(csv.DictReader(f))
    methods = [r["method"] for r in rows]
    assert methods.count("deepstruc") == 2 and methods.count("deepstruc+library") >= 2
    assert [float(r["rwp"]) for r in rows] == sorted(float(r["rwp"]) for r in rows)
    library_best = next(r for r in rows if r["method"] == "deepstruc+library")  # the exact icosahedron
    assert library_best["motif"] == "icosahedral" and library_best["n_atoms"] == "13"
    assert float(library_best["rwp"]) < 0.02
    # 'all' also runs the other routes whose weights are shipped; this checks mining + DeepStruc
    shipped = pdfsolve.models.weights.shipped_weights
    monkeypatch.setattr(pdfsolve.models.weights, "shipped_weights",
                        lambda name: None if name in ("cvae", "dae", "cbldm", "fingerprint") else shipped(name))
    status, out, err = run_cli([*argv, "--weights", weights, "--method", "all", "--no-snap", "-o", tmp_path / "all"],
                               capsys)
    assert status == 0, err
    summary = json.loads((tmp_path / "all" / "pt13" / "summary.json").read_text())
    library = summary["n_candidates"] - 2  # the library clusters of 10-16 atoms, then the 2 DeepStruc samples
    assert summary["method"] == "all" and library > 2
    assert set(summary["seconds"]) == {"mine/refine", "mine/polish", "deepstruc/sample", "deepstruc/screen",
                                       "deepstruc/classify", "deepstruc/refine", "deepstruc/polish"}
    with open(tmp_path / "all" / "pt13" / "candidates.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["method"] for r in rows].count("deepstruc") == 2 and [r["method"] for r in rows].count("mine") == library
    assert [float(r["rwp"]) for r in rows] == sorted(float(r["rwp"]) for r in rows)
    assert rows[0]["motif"] == "icosahedral" and float(rows[0]["rwp"]) < 0.02
    status, _, err = run_cli([*argv, "--weights", tmp_path / "missing.pt"], capsys)
    assert status == 2 and "no model weights" in err


def test_merged_ranking_orders_every_route_by_rwp(ico13, target):
    import ase

    a = solve(target, decoding(ico13), k=2, widen=(1.0,), n_refine=2, element="Pt")
    rattled = ico13 + np.random.default_rng(0).normal(scale=0.1, size=ico13.shape)
    b = rank_candidates(target, [ase.Atoms("Pt13", positions=rattled), ase.Atoms("Pt12", positions=ico13[1:])],
                        "other", seconds={"x": 1.0})
    merged = merge_ranked([b, a])
    assert merged.method == "all" and len(merged.candidates) == 4
    rwps = torch.cat([b.refinement.rwp, a.refinement.rwp])
    torch.testing.assert_close(merged.refinement.rwp, rwps)
    assert merged.order.tolist() == torch.argsort(rwps, stable=True).tolist()
    assert [c.info["method"] for c in merged.candidates] == ["other", "other", "deepstruc", "deepstruc"]
    best = merged.ranked_structure(0)
    assert best.info["method"] == "deepstruc" and best.info["rwp"] == pytest.approx(float(a.refinement.rwp.min()))
    np.testing.assert_allclose(merged.ranked_structure(3).positions,
                               b.ranked_structure(1).positions)  # padding widened, positions kept
    assert merged.seconds["other/x"] == 1.0 and "deepstruc/refine" in merged.seconds
    assert "method" not in b.candidates[0].info  # the route's own candidates are not touched
    with pytest.raises(ValueError, match="no rankings"):
        merge_ranked([])


def test_snapping_adds_the_nearest_library_clusters_and_those_of_the_same_size(ico13, target, tmp_path, monkeypatch):
    from pdfsolve.classify import MotifClassifier
    from pdfsolve.routes.mine import cached_library

    monkeypatch.setenv("PDFSOLVE_CACHE", str(tmp_path / "cache"))
    library = cached_library(["Pt"], 10, 16)
    classifier = MotifClassifier(library)
    rattled = ico13 + np.random.default_rng(1).normal(scale=0.15, size=ico13.shape)
    plain = solve(target, decoding(rattled), k=4, widen=(1.0,), n_refine=2, element="Pt", classifier=classifier)
    snapped = solve(target, decoding(rattled), k=4, widen=(1.0,), n_refine=2, element="Pt", classifier=classifier,
                    snap=True, snap_width=0.0)
    k = plain.candidates[0].info["nearest_index"]
    same_size = [i for i, atoms in enumerate(library) if len(atoms) == 13 and i != k]
    assert len(same_size) >= 2  # the 13-atom library: icosahedron, cuboctahedron, decahedron, ...
    # both samples chose the same nearest cluster; then every other 13-atom library cluster, in library order
    assert len(plain.candidates) == 2 and len(snapped.candidates) == 3 + len(same_size)
    extra = snapped.candidates[2:]
    assert all(a.info["method"] == "deepstruc+library" for a in extra)
    assert extra[0].info["motif"] == "icosahedral"
    assert extra[0].info["motif_distance"] == plain.candidates[0].info["motif_distance"]
    assert all("motif_distance" not in a.info for a in extra[1:])
    for atoms, i in zip(extra, [k, *same_size]):
        np.testing.assert_array_equal(atoms.positions, library[i].positions)
    assert "method" not in library[k].info or library[k].info["method"] != "deepstruc+library"  # a copy
    best = snapped.ranked_structure(0)
    assert best.info["method"] == "deepstruc+library" and best.info["rwp"] < 0.02 < float(plain.refinement.rwp.min())
    with pytest.raises(ValueError, match="needs a motif classifier"):
        solve(target, decoding(rattled), k=2, element="Pt", snap=True)
    # the default width also takes the library clusters of 10-12 and 14-16 atoms (13 +- 8 at least)
    widened = solve(target, decoding(rattled), k=4, widen=(1.0,), n_refine=2, element="Pt", classifier=classifier,
                    snap=True)
    near = [i for i, atoms in enumerate(library) if len(atoms) != 13]
    sizes = Counter(len(a) for a in widened.candidates)
    assert near and sizes == Counter(len(a) for a in snapped.candidates) + Counter(len(library[i]) for i in near)
    # the same best cluster; the polish stops at a relative gain of 1e-5, so Rwp agrees to about that
    assert widened.ranked_structure(0).info["rwp"] == pytest.approx(best.info["rwp"], rel=1e-4)
    with pytest.raises(ValueError, match="snap_width"):
        solve(target, decoding(rattled), k=2, element="Pt", classifier=classifier, snap=True, snap_width=-0.1)


def test_sizes_within_a_fraction():
    assert sizes_within({13, 150}, 0.0) == {13, 150}
    assert sizes_within({20, 150}, 0.1) == {*range(12, 29), *range(135, 166)}  # +- 8 at least; +- 15 at 150
    assert sizes_within({5}, 0.1) == set(range(1, 14))  # no count below 1
    assert sizes_within(set(), 0.1) == set()


def test_without_a_physical_sample_snapping_refines_the_library_clusters_of_its_size(ico13, target, tmp_path,
                                                                                     monkeypatch):
    from pdfsolve.classify import MotifClassifier
    from pdfsolve.routes.mine import cached_library

    monkeypatch.setenv("PDFSOLVE_CACHE", str(tmp_path / "cache"))
    library = cached_library(["Pt"], 10, 16)
    crowded = ico13.copy()
    crowded[1] = crowded[0] + 0.3  # every sample has a pair 0.52 Angstrom apart: none is refined
    snapped = solve(target, decoding(crowded), k=4, widen=(1.0,), n_refine=2, element="Pt",
                    classifier=MotifClassifier(library), snap=True, snap_width=0.0)
    assert [len(a) for a in snapped.candidates] == [len(a) for a in library if len(a) == 13]
    assert all(a.info["method"] == "deepstruc+library" for a in snapped.candidates)
    best = snapped.ranked_structure(0)
    assert best.info["motif"] == "icosahedral" and best.info["rwp"] < 0.02
    one_atom = torch.zeros(4, dtype=torch.long)  # a count head that says one atom: no size leads to the library
    with pytest.raises(ValueError, match="none of the decoded clusters"):
        screen_and_rank(target, lambda: decoded_clusters(torch.zeros(2, 1, 3), one_atom[:2], "Pt", "x"), "x",
                        classifier=MotifClassifier(library), snap=True)
    with pytest.raises(ValueError, match=r"no library cluster has an atom count near theirs \[2\]"):
        screen_and_rank(target, lambda: decoded_clusters(torch.zeros(2, 2, 3), one_atom[:2] + 2, "Pt", "x"), "x",
                        classifier=MotifClassifier(library), snap=True, snap_width=0.0)


def test_shipped_weights_match_their_record_and_solve_an_icosahedron(tmp_path, monkeypatch):
    """The shipped model (trained on the deepstruc preset) samples the Au55 icosahedron of a simulated PDF: right
    size and motif, Rwp < 0.15 after refinement (0.089 measured)."""
    import hashlib

    import ase

    from pdfsolve.classify import MotifClassifier
    from pdfsolve.models.weights import load_weights, shipped_weights
    from pdfsolve.routes.mine import cached_library

    monkeypatch.setenv("PDFSOLVE_CACHE", str(tmp_path / "cache"))
    path, record = shipped_weights("deepstruc")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == record["sha256"] and path.stat().st_size < 20e6
    assert {"sha256", "command", "metrics", "trained"} <= set(record)
    model, config = load_weights(None, "deepstruc")
    assert config["model"] == "deepstruc" and not model.training
    ico = motifs.icosahedron(3, element="Au")
    params = PDFParameters(qmin=0.8, qmax=24.0, qdamp=0.03, biso=0.4)
    res = simulate_pdf(ase.Atoms("Au55", positions=ico.positions), params, mode="exact")
    target = Target.from_arrays(res.r, res.G[0].numpy(), 0.8, 24.0, 0.03)
    torch.manual_seed(0)
    best = solve(target, model, k=200, n_refine=20, element="Au",
                 classifier=MotifClassifier(cached_library(["Au"], 30, 60))).ranked_structure(0)
    assert len(best) == 55 and best.info["motif"] == "icosahedral" and best.info["rwp"] < 0.15


def test_the_sample_seed_makes_solves_repeatable(tmp_path, capsys, monkeypatch):
    """The shipped model samples afresh for each PDF from --sample-seed: the same candidates every time, whatever the
    global random state; another seed gives other samples."""
    monkeypatch.setenv("PDFSOLVE_CACHE", str(tmp_path / "cache"))
    res = simulate_pdf(motifs.decahedron(2, 1, 0, element="Au"), PDFParameters(qmin=0.8, qmax=24.0, qdamp=0.03),
                       mode="fast")
    data = tmp_path / "au.gr"
    write_pdf(data, res.r, res.G[0].numpy(), PDFParameters(qmin=0.8, qmax=24.0, qdamp=0.03))
    tables = []
    for k, seed in enumerate((0, 0, 1)):
        torch.manual_seed(100 + k)  # the global state must not matter
        out = tmp_path / f"run{k}"
        status, _, err = run_cli(["solve", data, "-o", out, "--method", "deepstruc", "--samples", "60", "--refine",
                                  "4", "--element", "Au", "--min-atoms", "5", "--max-atoms", "20", "--no-snap",
                                  "--sample-seed", str(seed)], capsys)
        assert status == 0, err
        tables.append((out / "au" / "candidates.csv").read_text())
    assert tables[0] == tables[1] and tables[0] != tables[2]


def test_all_skips_a_route_without_candidates_and_keeps_the_others(ico13, target, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PDFSOLVE_CACHE", str(tmp_path / "cache"))
    shipped = pdfsolve.models.weights.shipped_weights
    monkeypatch.setattr(pdfsolve.models.weights, "shipped_weights",
                        lambda name: None if name != "deepstruc" else shipped(name))
    crowded = ico13.copy()
    crowded[1] = crowded[0] + 0.3  # every decoded cluster has two atoms 0.5 Angstrom apart: DeepStruc gives none
    weights = tmp_path / "best.pt"
    save_atomic({"model": decoding(crowded).state_dict(), "config": {"model": "deepstruc", "model_params": TINY}},
                weights)
    data = tmp_path / "pt13.gr"
    write_pdf(data, target.r, target.g.numpy(), target.params)
    status, _, err = run_cli(["solve", data, "-o", tmp_path / "out", "--method", "all", "--weights", weights,
                              "--samples", "4", "--element", "Pt", "--min-atoms", "10", "--max-atoms", "16"], capsys)
    assert status == 0, err
    assert "warning: deepstruc gave no candidates" in err
    with open(tmp_path / "out" / "pt13" / "candidates.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["method"] for r in rows} == {"mine"} and rows[0]["motif"] == "icosahedral"


def test_physical_drops_non_finite_clusters_and_close_atoms(ico13):
    from pdfsolve.routes.sampling import physical

    pos = torch.zeros(4, 13, 3, dtype=torch.float64)
    pos[:] = torch.as_tensor(ico13)
    pos[1, 4, 0] = float("nan")       # a diverged sample
    pos[2, 1] = pos[2, 0] + 0.2       # two atoms 0.35 Angstrom apart
    pos[3, 12] = float("inf")         # beyond its 12 atoms: padding is not checked
    assert physical(pos, torch.tensor([13, 13, 13, 12])).tolist() == [0, 3]
    assert physical(pos[1:3], torch.tensor([13, 13])).tolist() == []
