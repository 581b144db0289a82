"""Target: header Q range, resampling onto the engine grid, and its errors."""
import numpy as np
import pytest

from pdfsolve.engine import PDFParameters
from pdfsolve.io import write_pdf
from pdfsolve.target import Target


def _g(r):
    """A smooth PDF-like test function [1/Angstrom^2]."""
    return np.sin(3.0 * r) * np.exp(-r / 10.0) * r


def _plain(path, r):
    path.write_text("\n".join(f"{float(x)!r} {float(y)!r}" for x, y in zip(r, _g(r))) + "\n")
    return path


def test_header_q_range_and_resampling_from_002_grid(tmp_path):
    r = np.arange(0, 1501) * 0.02  # 0 - 30 Angstrom
    path = write_pdf(tmp_path / "a.gr", r, _g(r), PDFParameters(qmin=0.9, qmax=22.0, qdamp=0.03))
    t = Target.from_file(path)
    assert (t.params.qmin, t.params.qmax, t.params.qdamp, t.params.rstep) == (0.9, 22.0, 0.03, 0.01)
    assert t.r[0] == pytest.approx(1.5) and t.r[-1] == pytest.approx(29.99)
    np.testing.assert_allclose(t.r, np.arange(150, 3000) * 0.01)
    assert t.g.shape == (len(t.r),)
    np.testing.assert_allclose(t.g.numpy(), _g(t.r), atol=2e-5)
    linear = Target.from_file(path, interpolation="linear")
    assert np.abs(linear.g.numpy() - _g(t.r)).max() < 2e-3
    assert float(t.rwp(t.g)) == 0.0


def test_grid_starting_at_05_and_arguments(tmp_path):
    r = 0.5 + np.arange(0, 2451) * 0.01  # 0.5 - 25 Angstrom
    path = _plain(tmp_path / "b.gr", r)
    t = Target.from_file(path, qmin=1.0, qmax=20.0, qdamp=0.05, rmin=1.0)
    assert (t.params.qmin, t.params.qmax, t.params.qdamp) == (1.0, 20.0, 0.05)
    assert t.r[0] == pytest.approx(1.0) and t.r[-1] == pytest.approx(25.0)
    np.testing.assert_allclose(t.g.numpy(), _g(t.r), atol=1e-12)


def test_missing_q_range_warns(tmp_path):
    path = _plain(tmp_path / "c.gr", np.arange(0, 3001) * 0.01)
    with pytest.warns(UserWarning, match=r"c\.gr.*qmax = 25\.0"):
        t = Target.from_file(path, qmin=0.8)
    assert (t.params.qmin, t.params.qmax) == (0.8, 25.0)


def test_argument_contradicting_header_warns(tmp_path):
    r = np.arange(0, 3001) * 0.01
    path = write_pdf(tmp_path / "d.gr", r, _g(r), PDFParameters(qmax=22.0))
    with pytest.warns(UserWarning, match="qmax = 22.0"):
        assert Target.from_file(path, qmax=20.0).params.qmax == 22.0


def test_range_errors(tmp_path):
    path = _plain(tmp_path / "e.gr", 0.5 + np.arange(0, 2451) * 0.01)
    with pytest.raises(ValueError, match=r"e\.gr.*cover r = 0\.5-25 .*rmin = 0\.2"):
        Target.from_file(path, qmin=0.7, qmax=25.0, rmin=0.2)
    with pytest.raises(ValueError, match="rmax = 30"):
        Target.from_file(path, qmin=0.7, qmax=25.0, rmax=30.0)
    short = _plain(tmp_path / "f.gr", np.arange(0, 501) * 0.01)
    with pytest.raises(ValueError, match=r"f\.gr.*shorter than 5"):
        Target.from_file(short, qmin=0.7, qmax=25.0)
    coarse = _plain(tmp_path / "g.gr", np.arange(0, 151) * 0.2)
    with pytest.raises(ValueError, match=r"g\.gr.*too coarse"):
        Target.from_file(coarse, qmin=0.7, qmax=25.0)
