"""``pdfsolve dataset build``: a tiny library (Au, 10-20 atoms) written, counted, resumed and refused."""
import json

import pytest
from conftest import run_cli as _run

from pdfsolve.datasets import read_split
from pdfsolve.structures import build_library

TINY = ["--element", "Au", "--min-atoms", "10", "--max-atoms", "20", "--shard-size", "16", "--no-progress"]


@pytest.fixture(scope="module")
def n_tiny():
    return len(build_library(["Au"], min_atoms=10, max_atoms=20))


def _files(out):
    return {p.relative_to(out): p.stat().st_mtime_ns for p in sorted(out.rglob("*")) if p.is_file()}


def test_build_writes_shards_and_manifest_and_rerun_is_a_noop(tmp_path, capsys, n_tiny):
    out = tmp_path / "ds"
    status, stdout, err = _run(["dataset", "build", "-o", out, "--seed", "3", *TINY], capsys)
    assert status == 0, err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["n_structures"] == n_tiny > 10
    assert sum(manifest["counts"].values()) == n_tiny
    assert manifest["seed"] == 3 and manifest["fractions"] == [0.8, 0.1, 0.1]
    assert manifest["counts"]["train"] > manifest["counts"]["test"] > 0
    n_read = 0
    for split, count in manifest["counts"].items():
        shards = sorted((out / split).glob("shard_*.h5"))
        assert len(shards) == len(manifest["shards"][split]) == -(-count // 16)
        data = read_split(out, split)
        assert data["G"].shape == (count, 3000) and len(data["n_atoms"]) == count
        assert ((data["n_atoms"] >= 10) & (data["n_atoms"] <= 20)).all()
        n_read += count
    assert n_read == n_tiny
    assert not list(out.rglob("*.tmp"))
    assert f"{n_tiny} PDFs" in stdout and "Au" in stdout
    before = _files(out)
    status, _, err = _run(["dataset", "build", "-o", out, "--seed", "3", *TINY], capsys)
    assert status == 0, err
    assert _files(out) == before  # nothing rewritten


def test_interrupted_build_resumes(tmp_path, capsys):
    out = tmp_path / "ds"
    assert _run(["dataset", "build", "-o", out, *TINY], capsys)[0] == 0
    shards = sorted(out.rglob("shard_*.h5"))
    complete = {p: p.stat().st_mtime_ns for p in shards[1:]}
    shards[0].unlink()  # as if killed while writing the first shard
    (out / "train" / "shard_00000.h5.tmp").write_bytes(b"partial")
    assert _run(["dataset", "build", "-o", out, *TINY], capsys)[0] == 0
    assert shards[0].exists()
    assert {p: p.stat().st_mtime_ns for p in shards[1:]} == complete


def test_randomised_parameters_are_recorded(tmp_path, capsys):
    out = tmp_path / "ds"
    argv = ["dataset", "build", "-o", out, "--params", "randomised", "--fractions", "0.5", "0.25", "0.25", *TINY]
    assert _run(argv, capsys)[0] == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["ranges"]["qmax"] == [18.0, 28.0] and manifest["fractions"] == [0.5, 0.25, 0.25]
    drawn = read_split(out, "train")["drawn"]
    assert drawn[:, 1].std() > 0  # qmax differs between clusters


@pytest.mark.parametrize("extra", [
    ["--element", "Xx"],
    ["--min-atoms", "30", "--max-atoms", "20"],
    ["--min-atoms", "0"],
    ["--shard-size", "0"],
    ["--fractions", "0.5", "0.5", "0.5"],
    ["--seed", "-1"],
    ["--preset", "deepstruc", "--element", "Xx"],
    ["--params", "nope"],
    ["--preset", "nope"],
    ["--fractions", "0.5", "0.5"],
    ["--min-atoms", "ten"],
])
def test_bad_arguments_exit_2(tmp_path, capsys, extra):
    status, _, err = _run(["dataset", "build", "-o", tmp_path / "ds", *extra], capsys)
    assert status == 2
    assert "error:" in err
    assert not (tmp_path / "ds").exists()


def test_empty_selection_and_other_settings_in_the_same_directory_exit_2(tmp_path, capsys, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr("pdfsolve.structures.build_library", lambda *args, **kwargs: [])
        status, _, err = _run(["dataset", "build", "-o", tmp_path / "empty", *TINY], capsys)
    assert status == 2 and "pdfsolve: error:" in err and "no clusters" in err
    assert not (tmp_path / "empty").exists()
    out = tmp_path / "ds"
    assert _run(["dataset", "build", "-o", out, *TINY], capsys)[0] == 0
    status, _, err = _run(["dataset", "build", "-o", out, "--seed", "1", *TINY], capsys)
    assert status == 2 and "pdfsolve: error:" in err and "other structures or settings" in err


def test_missing_output_and_help(capsys):
    assert _run(["dataset", "build", "--element", "Au"], capsys)[0] == 2
    assert _run(["dataset"], capsys)[0] == 2
    status, out, _ = _run(["dataset", "build", "--help"], capsys)
    assert status == 0
    for unit in ("[atoms]", "[1/Angstrom]", "[Angstrom^2]", "clusters per HDF5 file"):
        assert unit in out
