"""The pdfsolve command line, run in-process: simulate, info, example, errors and help."""
import os
import subprocess
import sys
from pathlib import Path

import ase.io
import numpy as np
import pytest
from conftest import run_cli as _run
from ase.cluster import Icosahedron

import pdfsolve
from pdfsolve import PDFParameters, simulate_pdf
from pdfsolve.io import read_pdf, read_structures

EXPERIMENTAL = Path(__file__).parent / "data" / "experimental"
EXAMPLES = Path(pdfsolve.__file__).parent / "data" / "examples"
SMALL = ["--rmax", "8", "--rstep", "0.02"]  # keeps the pure-torch fallback fast


@pytest.fixture
def pt13(tmp_path):
    path = tmp_path / "pt13.xyz"
    ase.io.write(path, Icosahedron("Pt", 2, latticeconstant=3.92))
    return path


def test_simulate_matches_engine_and_records_parameters(tmp_path, capsys, pt13):
    out = tmp_path / "pt13.gr"
    argv = ["simulate", pt13, "-o", out, "--rmin", "0.5", "--rmax", "9", "--rstep", "0.02", "--qmin", "0.9",
            "--qmax", "22", "--qdamp", "0.05", "--qbroad", "0.01", "--delta1", "0.1", "--delta2", "1.5",
            "--uiso", "0.005", "--scale", "0.8"]
    status, stdout, err = _run(argv, capsys)
    assert status == 0, err
    params = PDFParameters.from_uiso(0.005, rmin=0.5, rmax=9.0, rstep=0.02, qmin=0.9, qmax=22.0, qdamp=0.05,
                                     qbroad=0.01, delta1=0.1, delta2=1.5, scale=0.8)
    expected = simulate_pdf(read_structures(pt13), params)
    data = read_pdf(out)
    np.testing.assert_allclose(data.r, expected.r, rtol=1e-12)
    np.testing.assert_allclose(data.G, expected.G[0].numpy(), rtol=0, atol=1e-12)
    assert data.params() == params
    text = out.read_text()
    for key in ("rmin", "rmax", "rstep", "qmin", "qmax", "qdamp", "qbroad", "delta1", "delta2", "biso", "uiso",
                "scale", "radiation", "version", "date"):
        assert f"\n{key} = " in text
    md = data.metadata
    assert md["natoms"] == 13 and md["composition"] == "Pt13" and md["simulation_mode"] == "exact"
    assert md["structure"] == str(pt13)
    assert stdout.count("\n") == 1 and "pt13: 13 atoms" in stdout and str(out) in stdout
    assert f"max|G| = {np.abs(data.G).max():.4g} 1/Angstrom^2" in stdout


def test_simulate_several_with_plot(tmp_path, capsys, pt13):
    traj = tmp_path / "traj.xyz"
    ase.io.write(traj, [Icosahedron("Au", 2), Icosahedron("Pd", 2)])
    png = tmp_path / "plots" / "all.png"
    status, stdout, err = _run(["simulate", pt13, EXAMPLES / "ico_Pt_N0147.xyz", traj, "-o", tmp_path / "run.gr",
                                "--plot", png, "--mode", "fast", *SMALL], capsys)
    assert status == 0, err
    names = ["pt13", "ico_Pt_N0147", "traj_0", "traj_1"]
    for name in names:
        assert (tmp_path / f"run_{name}.gr").is_file()
    assert len(stdout.splitlines()) == 5 and "ico_Pt_N0147: 147 atoms" in stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    frame = read_pdf(tmp_path / "run_traj_1.gr").metadata
    assert frame["composition"] == "Pd13" and frame["frame"] == 1 and frame["simulation_mode"] == "fast"


def test_simulate_into_directory_normalized_float32(tmp_path, capsys, pt13):
    outdir = tmp_path / "out"
    outdir.mkdir()
    status, stdout, err = _run(["simulate", pt13, "-o", outdir, "--normalize", "--dtype", "float32",
                                "--radiation", "neutron", *SMALL], capsys)
    assert status == 0, err
    data = read_pdf(outdir / "pt13.gr")
    assert np.abs(data.G).max() == pytest.approx(1.0)
    assert data.metadata["normalized"] == "True" and data.metadata["dtype"] == "float32"
    assert data.params().radiation == "neutron"
    assert "(normalized)" in stdout


def test_simulate_default_output_in_cwd(tmp_path, capsys, pt13, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, _, err = _run(["simulate", pt13, *SMALL], capsys)
    assert status == 0, err
    assert read_pdf(tmp_path / "pt13.gr").params().rmax == 8.0


def test_info(capsys):
    status, stdout, _ = _run(["info", EXPERIMENTAL / "JQ_S1.gr"], capsys)
    assert status == 0
    assert "points: 5001, r = 0 .. 50 Angstrom, step 0.01 Angstrom" in stdout
    assert "composition: Pt" in stdout and "qmax: 21.9982" in stdout and "qmaxinst = 22.0" in stdout


def test_example(tmp_path, capsys):
    out = tmp_path / "ex"
    status, stdout, err = _run(["example", "--out", out, "--no-solve"], capsys)  # solve: tests/test_solve.py
    assert status == 0, err
    files = sorted(p.name for p in out.iterdir())
    assert files == ["deca_Au_N0146.gr", "examples.png", "fcc_Pd_N0165.gr", "ico_Pt_N0147.gr"]
    assert str(out) in stdout
    assert read_pdf(out / "fcc_Pd_N0165.gr").metadata["natoms"] == 165


def _bad_cases(tmp_path, pt13):
    bad_gr = tmp_path / "bad.gr"
    bad_gr.write_text("0 0\n0.1 x\n")
    unknown = tmp_path / "unknown.xyz"
    unknown.write_text("1\n\nX 0 0 0\n")
    dup = tmp_path / "dup.xyz"
    dup.write_text("2\n\nAu 0 0 0\nAu 0 0 0.01\n")
    return [
        (["simulate", tmp_path / "missing.xyz"], "missing.xyz: no such file"),
        (["simulate", pt13, "--rmin", "5", "--rmax", "5"], "rmax (5.0 Angstrom) must be greater than rmin"),
        (["simulate", pt13, "--qmin", "20", "--qmax", "10"], "qmax (10.0 1/Angstrom) must be greater than qmin"),
        (["simulate", pt13, "--rstep", "-0.01"], "rstep must be > 0"),
        (["simulate", pt13, "--qmax", "250"], "is it given in 1/nm"),
        (["simulate", unknown], "unknown element symbol(s) ['X']"),
        (["simulate", dup], "atoms 0 and 1 are 0.01 Angstrom apart"),
        (["info", bad_gr], "bad.gr: line 2 is not numeric"),
        (["info", tmp_path / "none.gr"], "none.gr: no such file"),
    ]


def test_bad_input_exits_2_with_one_line(tmp_path, capsys, pt13):
    for argv, expected in _bad_cases(tmp_path, pt13):
        status, stdout, err = _run(argv, capsys)
        assert status == 2, argv
        assert err.startswith("pdfsolve: error: ") and err.count("\n") == 1, err
        assert expected in err and "Traceback" not in err
        assert stdout == ""


def test_usage_errors_exit_2(pt13, capsys):
    for argv in (["simulate", pt13, "--radiation", "electron"], ["simulate", pt13, "--biso", "0.3", "--uiso", "0.1"],
                 ["simulate", pt13, "--rmax", "abc"], ["simulate"], []):
        status, _, err = _run(argv, capsys)
        assert status == 2 and "Traceback" not in err


def test_help(capsys):
    status, stdout, _ = _run(["simulate", "--help"], capsys)
    assert status == 0
    stdout = " ".join(stdout.split())  # undo argparse's line wrapping
    for text in ("1/Angstrom", "Angstrom^2", "--qdamp", "--uiso", "--mode", "default: 25 1/Angstrom",
                 "default: 0.3 Angstrom^2"):
        assert text in stdout
    status, stdout, _ = _run(["--help"], capsys)
    assert status == 0 and "simulate" in stdout and "example" in stdout and "info" in stdout


def test_python_dash_m():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(pdfsolve.__file__).parents[1]),
                                                       os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-m", "pdfsolve", "info", "--help"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: pdfsolve info")
