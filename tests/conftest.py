"""Shared fixtures: paths of the bundled golden data."""
import json
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"
REFERENCE = DATA / "reference"


def reference_params(npz) -> dict:
    """The PDF parameters stored with a golden npz file, as PDFParameters keyword arguments."""
    p = json.loads(str(npz["params_json"]))
    keys = ("rmin", "rmax", "rstep", "qmin", "qmax", "qdamp", "qbroad", "delta1", "delta2", "biso", "scale")
    return {k: float(p[k]) for k in keys}


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return REFERENCE


def load_npz(path) -> dict:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def run_cli(argv, capsys):
    """(exit status, stdout, stderr) of ``pdfsolve.cli.main(argv)``; argparse's own exits are caught too."""
    from pdfsolve.cli import main

    try:
        status = main([str(a) for a in argv])
    except SystemExit as exc:
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err
