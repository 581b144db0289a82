"""Scoring a solver on a dataset split: ``evaluate_split`` and ``pdfsolve evaluate``."""
import json

import pytest
import torch
from conftest import run_cli

from pdfsolve.evaluate import evaluate_split
from pdfsolve.routes.mine import cached_library, mine
from _models import au_dataset


@pytest.fixture(autouse=True)
def one_thread(monkeypatch, tmp_path):
    monkeypatch.setenv("PDFSOLVE_CACHE", str(tmp_path / "cache"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Noise-free PDFs (DeepStruc's fixed parameters) of the Au library of 10-14 atoms, all in the test split."""
    out = tmp_path_factory.mktemp("data")
    return au_dataset(out, 10, 14, (0.0, 0.0, 1.0))


def test_mining_the_own_library_scores_perfectly(data_dir):
    def solve(target, element):
        return mine(target, cached_library([element], 10, 14))

    scores = evaluate_split(data_dir, solve, n_targets=3, seed=1)
    total = scores["total"]
    assert total["n"] == 3 and total["motif_top1"] == 1.0 and total["exact_n"] == 1.0
    assert total["median_rwp"] < 0.05 and total["median_mae"] < 0.05 and total["seconds_per_pdf"] > 0
    assert total["failed"] == 0
    assert sum(m["n"] for m in scores["per_motif"].values()) == 3
    assert list(scores["per_size"]) == ["5-80"] and scores["per_size"]["5-80"]["n"] == 3  # 10-14 atoms
    assert list(scores["per_geometry"]) == ["unseen"]  # no train split here
    assert {"motif", "best_motif", "n_atoms", "best_n_atoms", "rwp", "mae", "seconds"} <= set(scores["results"][0])
    with pytest.raises(ValueError, match="holds no PDFs"):
        evaluate_split(data_dir, solve, split="train")

    def failing(target, element):
        raise ValueError("no usable candidate")

    scores = evaluate_split(data_dir, failing, n_targets=2)
    assert scores["total"]["failed"] == 2 and scores["total"]["exact_n"] == 0.0
    assert scores["total"]["median_rwp"] is None and scores["results"][0]["error"] == "no usable candidate"


def test_evaluate_command_prints_and_writes_the_scores(data_dir, tmp_path, capsys):
    out = tmp_path / "scores.json"
    argv = ["evaluate", "--data", data_dir, "--targets", "2", "--min-atoms", "10", "--max-atoms", "14", "--json", out]
    status, stdout, err = run_cli(argv, capsys)
    assert status == 0, err
    assert "total" in stdout and "motif_top1" in stdout
    geometry = [line for line in stdout.splitlines() if "seen geometry" in line]  # row names are never cut
    assert len(geometry) == len(json.loads(out.read_text())["per_geometry"]) >= 1
    saved = json.loads(out.read_text())
    assert saved["method"] == "mine" and saved["total"]["n"] == 2 and saved["total"]["exact_n"] == 1.0
    status, _, err = run_cli(["evaluate", "--data", data_dir, "--method", "deepstruc", "--weights",
                              tmp_path / "missing.pt"], capsys)
    assert status == 2 and "no model weights" in err


def test_size_bins_follow_the_cbldm_table():
    from pdfsolve.evaluate import size_bin

    assert [size_bin(n) for n in (5, 6, 80, 81, 170, 171, 256, 257, 4)] == [
        "5-80", "5-80", "5-80", "80-170", "80-170", "170-256", "170-256", "other", "other"]


def test_rows_say_whether_their_geometry_was_trained_on(tmp_path):
    data = au_dataset(tmp_path / "data", 10, 14, (0.5, 0.0, 0.5))

    def solve(target, element):
        return mine(target, cached_library([element], 10, 14))

    on_test = evaluate_split(data, solve, split="test")
    on_train = evaluate_split(data, solve, split="train")
    assert list(on_test["per_geometry"]) == ["unseen"] and list(on_train["per_geometry"]) == ["seen"]
    assert on_train["per_geometry"]["seen"]["n"] == on_train["total"]["n"] > 0
