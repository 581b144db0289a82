"""Reading and writing PDF files: the measured PDFs, other writers' layouts, every error, round trips."""
import configparser
from pathlib import Path

import numpy as np
import pytest

from pdfsolve.engine import PDFParameters
from pdfsolve.io import PDFData, PDFFileError, read_pdf, write_pdf

EXPERIMENTAL = Path(__file__).parent / "data" / "experimental"

# file: (qmin, qmax, composition, rmax) from the README table and the headers
MEASURED = {
    "Au144PET_100K-00000.gr": (0.8, 26.0, "Au144S60C180", 30.0),
    "Au144pMBA.gr": (1.33, 28.0, "Au", 20.0),
    "JQ_S1.gr": (1.0, 22.0, "Pt", 50.0),
    "JQ_S2.gr": (1.0, 22.0, "Pt", 50.0),
    "JQ_S3.gr": (1.0, 22.0, "Pt", 50.0),
}


@pytest.mark.parametrize("name", sorted(MEASURED))
def test_measured_files_load(name):
    qmin, qmax, composition, rmax = MEASURED[name]
    data = read_pdf(EXPERIMENTAL / name)
    assert isinstance(data, PDFData)
    assert data.r.dtype == np.float64 and data.G.dtype == np.float64
    assert data.r[0] == 0.0 and data.r[-1] == pytest.approx(rmax)
    assert len(data.r) == round(rmax / 0.01) + 1
    assert data.rstep == pytest.approx(0.01)
    assert data.dG is None and data.dr is None
    assert data.qmin == pytest.approx(qmin)
    assert data.qmax == pytest.approx(qmax, abs=0.01)
    assert data.composition == composition
    assert data.metadata["outputtype"] == "gr" and data.metadata["mode"] == "xray"
    assert data.metadata["rstep"] == 0.01
    assert data.source == EXPERIMENTAL / name
    params = data.params()
    assert (params.qmin, params.rmax, params.radiation) == (pytest.approx(qmin), pytest.approx(rmax), "xray")


def test_xpdfsuite_sections_are_flattened():
    data = read_pdf(EXPERIMENTAL / "JQ_S1.gr")
    md = data.metadata
    assert md["wavelength"] == 0.1 and md["qmaxinst"] == 22.0 and md["qmax"] == pytest.approx(21.998245281)
    assert md["dataformat"] == "Qnm"  # the input .chi file's format, not this file's
    assert md["inputdir"].endswith("DESY_Sep17")  # from the [Misc] section
    assert data.G[1] == pytest.approx(0.00144704)


def test_pdfgetx3_default_section():
    md = read_pdf(EXPERIMENTAL / "Au144pMBA.gr").metadata
    assert md["version"] == "pdfgetx3-1.0-r2239-20130415"
    assert md["backgroundfile"] == ""
    assert md["qmaxinst"] == 29.0


def test_qmax_falls_back_to_qmaxinst(tmp_path):
    f = tmp_path / "a.gr"
    f.write_text("qmaxinst = 24\n#### start data\n0 0\n0.1 1\n")
    assert read_pdf(f).qmax == 24.0 and read_pdf(f).qmin is None and read_pdf(f).composition is None


def test_pdfgui_four_columns(tmp_path):
    f = tmp_path / "fit.fgr"
    f.write_text("[Fit]\nstype = X\nqmax = 25.0\nqdamp = 0.05\n\n#### start data\n#S 1\n"
                 "#L r(A) G(r) dr dG(r)\n1.0 0.5 0.0 0.01\n1.01 0.6 0.0 0.02\n1.02 0.7 0.0 0.03\n")
    data = read_pdf(f)
    np.testing.assert_array_equal(data.r, [1.0, 1.01, 1.02])
    np.testing.assert_array_equal(data.G, [0.5, 0.6, 0.7])
    np.testing.assert_array_equal(data.dr, [0, 0, 0])
    np.testing.assert_array_equal(data.dG, [0.01, 0.02, 0.03])
    assert data.metadata["stype"] == "X" and data.params().qdamp == 0.05


def test_labels_choose_columns(tmp_path):
    f = tmp_path / "a.gr"
    f.write_text("#L r G dG dr\n0 1 0.1 0.01\n0.5 2 0.2 0.01\n")
    data = read_pdf(f)
    np.testing.assert_array_equal(data.dG, [0.1, 0.2])
    np.testing.assert_array_equal(data.dr, [0.01, 0.01])


def test_diffpy_comment_header_three_columns(tmp_path):
    f = tmp_path / "diffpy.gr"
    f.write_text("# PDF calculated by diffpy.srreal\n# qmax = 25.0\n# qdamp = 0.04\n# composition = Pt 147\n"
                 "r G dG\n0.0, 0.0, 0.1\n0.5, 1.5, 0.1\n1.0, -2.5e-3, 0.1\n")
    data = read_pdf(f)
    assert data.qmax == 25.0 and data.composition == "Pt147"
    np.testing.assert_array_equal(data.G, [0.0, 1.5, -2.5e-3])
    np.testing.assert_array_equal(data.dG, [0.1, 0.1, 0.1])


def test_plain_two_columns(tmp_path):
    f = tmp_path / "plain.txt"
    r = np.arange(1, 101) * 0.05
    np.savetxt(f, np.c_[r, np.sin(r)])
    data = read_pdf(f)
    np.testing.assert_allclose(data.r, r, rtol=1e-15)
    np.testing.assert_allclose(data.G, np.sin(r), rtol=1e-15)
    assert data.metadata == {} and data.params() is None


def _error(tmp_path, text, name="bad.gr"):
    f = tmp_path / name
    f.write_text(text)
    with pytest.raises(PDFFileError) as info:
        read_pdf(f)
    assert str(f) in str(info.value)
    return str(info.value)


@pytest.mark.parametrize("text, expected", [
    ("", "empty"),
    ("\n  \n", "empty"),
    ("[DEFAULT]\nqmax = 25\n#### start data\n#L r G\n", "no data rows"),
    ("0 0\n0.1 1\n0.2 abc\n0.3 1\n", "line 3 is not numeric"),
    ("0 0\n0.1 1\n0.2\n", "line 3 has 1 column"),
    ("0 0\n0.1 1 2\n", "line 2 has 3 columns"),
    ("0 0\n0.1 1 2 3 4\n", "line 2 has 5 column"),
    ("0 0\n0.1 nan\n0.2 0\n", "line 2 holds a NaN or infinite"),
    ("0 0\n0.1 inf\n", "NaN or infinite"),
    ("# x\n0.5 1\n", "only 1 data point"),
    ("-0.1 0\n0 1\n0.1 2\n", "negative"),
    ("0 0\n0.2 1\n0.1 2\n", "not strictly increasing"),
    ("0 0\n0.1 1\n0.1 2\n", "not strictly increasing"),
    ("0 0\n0.1 1\n0.2 2\n0.31 3\n", "not uniform"),
    ("#### start data\n#L Q(A^-1) F(Q)\n0.5 0\n0.6 1\n", "labelled 'Q(A^-1)'"),
    ("outputtype = fq\n#### start data\n0.5 0\n0.6 1\n", "outputtype = fq"),
])
def test_errors(tmp_path, text, expected):
    assert expected in _error(tmp_path, text)


def test_non_numeric_message_quotes_the_line(tmp_path):
    assert "'0.2 abc'" in _error(tmp_path, "0 0\n0.1 1\n0.2 abc\n")


def test_missing_file(tmp_path):
    f = tmp_path / "nothere.gr"
    with pytest.raises(PDFFileError, match="nothere.gr: no such file"):
        read_pdf(f)


@pytest.mark.parametrize("ext", [".fq", ".sq", ".iq", ".chi"])
def test_q_space_extension(tmp_path, ext):
    message = _error(tmp_path, "0.5 0\n0.6 1\n", name=f"data{ext}")
    assert "reciprocal-space (Q)" in message and "expected a G(r) file" in message


def test_qnm_dataformat_is_not_q_data():
    # xPDFsuite's dataformat = Qnm describes the input .chi file; these are G(r) files
    assert read_pdf(EXPERIMENTAL / "JQ_S2.gr").metadata["dataformat"] == "Qnm"


def test_errors_are_value_errors(tmp_path):
    assert issubclass(PDFFileError, ValueError)


def test_tiny_float_noise_in_r_is_uniform(tmp_path):
    f = tmp_path / "a.gr"
    r = np.arange(3001) * 0.01  # not exactly k/100 in binary: noise far below the tolerance
    np.savetxt(f, np.c_[r, r], fmt="%.17g")
    assert len(read_pdf(f).r) == 3001


def test_write_read_round_trip(tmp_path):
    params = PDFParameters(rmin=1.0, rmax=12.5, rstep=0.025, qmin=0.9, qmax=23.5, qdamp=0.031, qbroad=0.01,
                           delta1=0.2, delta2=1.7, biso=0.45, scale=0.8, radiation="neutron", maxextension=8.0)
    rng = np.random.default_rng(0)
    r = params.rmin + np.arange(460) * params.rstep
    g = rng.normal(size=r.shape) * 1e3 ** rng.uniform(-3, 1, size=r.shape)
    dg = np.abs(rng.normal(size=r.shape)) * 1e-3
    f = write_pdf(tmp_path / "out.gr", r, g, params=params, dG=dg,
                  metadata={"structure": "my cluster.xyz", "composition": "Au144S60", "natoms": 204,
                            "mode": "fast", "qmax": 99.0})
    data = read_pdf(f)
    np.testing.assert_allclose(data.r, r, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(data.G, g)  # repr: exact
    np.testing.assert_array_equal(data.dG, dg)
    assert data.params() == params
    md = data.metadata
    assert md["version"] and md["date"] and md["uiso"] == pytest.approx(params.uiso, rel=1e-15)
    assert md["structure"] == "my cluster.xyz" and md["natoms"] == 204.0 and md["composition"] == "Au144S60"
    assert md["mode"] == "fast"
    assert md["qmax"] == 23.5 and md["metadata.qmax"] == 99.0  # a clashing extra key does not hide the parameter


def test_written_header_layout(tmp_path):
    params = PDFParameters()
    f = write_pdf(tmp_path / "o.gr", [0.0, 0.01], [0.0, 1.0], params=params)
    text = f.read_text()
    head, _, body = text.partition("#### start data\n")
    assert head.splitlines()[1] == "[pdfsolve]"
    for key in ("version", "date", "rmin", "rmax", "rstep", "qmin", "qmax", "qdamp", "qbroad", "delta1", "delta2",
                "biso", "uiso", "scale", "radiation"):
        assert f"\n{key} = " in head
    assert body.splitlines()[1] == "#L r($\\AA$)  G($\\AA^{-2}$)"
    parser = configparser.ConfigParser()  # INI readers (as PDFgetX3's) accept the header
    parser.read_string(head)
    assert float(parser["pdfsolve"]["qmax"]) == params.qmax


def test_write_accepts_torch_and_rejects_bad_input(tmp_path):
    torch = pytest.importorskip("torch")
    f = write_pdf(tmp_path / "t.gr", torch.tensor([0.0, 0.5]), torch.tensor([1.0, 2.0], dtype=torch.float32))
    np.testing.assert_array_equal(read_pdf(f).G, [1.0, 2.0])
    with pytest.raises(ValueError, match="same length"):
        write_pdf(tmp_path / "x.gr", [0.0, 0.5], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        write_pdf(tmp_path / "x.gr", [0.0, 0.5], [1.0, float("nan")])


def test_invalid_header_parameters(tmp_path):
    f = tmp_path / "p.gr"
    f.write_text("rmin = 5\nrmax = 2\n#### start data\n0 0\n1 1\n")
    with pytest.raises(PDFFileError, match="p.gr: header parameters are invalid: rmax"):
        read_pdf(f).params()
