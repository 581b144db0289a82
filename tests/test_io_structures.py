"""Reading structure files: bundled examples, multi-frame files and every error."""
from pathlib import Path

import ase
import ase.io
import numpy as np
import pytest

from pdfsolve.io import StructureFileError, read_structures

EXAMPLES = Path(__file__).parents[1] / "python" / "pdfsolve" / "data" / "examples"


def test_bundled_examples():
    files = sorted(EXAMPLES.glob("*.xyz"))
    assert len(files) == 3
    structures = read_structures(files)
    assert [len(a) for a in structures] == [146, 165, 147]
    assert [a.get_chemical_formula() for a in structures] == ["Au146", "Pd165", "Pt147"]
    assert structures[2].info["name"] == "ico_Pt_N0147"
    assert structures[0].info["source"] == str(files[0])
    assert (structures[0].info["frame"], structures[0].info["nframes"]) == (0, 1)


def test_single_path_and_all_frames(tmp_path):
    f = tmp_path / "traj.xyz"
    frames = [ase.Atoms("Au2", positions=[[0, 0, 0], [0, 0, d]]) for d in (2.8, 2.9, 3.0)]
    ase.io.write(f, frames)
    out = read_structures(f)
    assert len(out) == 3
    assert [a.info["frame"] for a in out] == [0, 1, 2] and out[0].info["nframes"] == 3
    np.testing.assert_allclose([a.get_distance(0, 1) for a in out], [2.8, 2.9, 3.0])


def _error(path, **kwargs):
    with pytest.raises(StructureFileError) as info:
        read_structures([path], **kwargs)
    assert str(path) in str(info.value)
    return str(info.value)


def test_missing(tmp_path):
    assert "no such file" in _error(tmp_path / "nothere.xyz")


def test_empty(tmp_path):
    f = tmp_path / "empty.xyz"
    f.write_text("")
    assert "empty" in _error(f)


def test_unreadable_format(tmp_path):
    f = tmp_path / "cluster.foo"
    f.write_text("not a structure\n")
    assert "cannot read it as a structure file" in _error(f)


def test_truncated_xyz(tmp_path):
    f = tmp_path / "short.xyz"
    f.write_text("3\n\nAu 0 0 0\nAu 0 0 3\n")
    assert "cannot read it" in _error(f)


def test_no_atoms(tmp_path):
    f = tmp_path / "zero.xyz"
    f.write_text("0\n\n")
    assert "no atoms" in _error(f)


def test_nan_position(tmp_path):
    f = tmp_path / "nan.xyz"
    f.write_text("2\n\nAu 0 0 0\nAu nan 0 3\n")
    assert "atom 1 has a NaN or infinite position" in _error(f)


def test_symbol_ase_does_not_know(tmp_path):
    f = tmp_path / "xx.xyz"
    f.write_text("2\n\nXx 0 0 0\nAu 0 0 3\n")
    assert "unknown element symbol 'Xx'" in _error(f)


def test_symbol_without_scattering_factor(tmp_path):
    f = tmp_path / "dummy.xyz"
    f.write_text("2\n\nX 0 0 0\nAu 0 0 3\n")
    assert "unknown element symbol(s) ['X']" in _error(f)


def test_coincident_atoms(tmp_path):
    f = tmp_path / "dup.xyz"
    f.write_text("4\n\nAu 0 0 0\nAu 0 0 2.9\nAu 2.9 0 0\nAu 0 0.05 2.9\n")
    message = _error(f)
    assert "atoms 1 and 3 are 0.05 Angstrom apart" in message and "0.1 Angstrom" in message


def test_coincident_tolerance_and_frame(tmp_path):
    f = tmp_path / "two.xyz"
    ase.io.write(f, [ase.Atoms("Pt2", positions=[[0, 0, 0], [0, 0, 2.7]]),
                     ase.Atoms("Pt2", positions=[[0, 0, 0], [0, 0, 0.5]])])
    assert len(read_structures(f, min_distance=0.4)) == 2
    assert "(frame 1): atoms 0 and 1 are 0.5 Angstrom apart" in _error(f, min_distance=1.0)


def test_errors_are_value_errors():
    assert issubclass(StructureFileError, ValueError)
