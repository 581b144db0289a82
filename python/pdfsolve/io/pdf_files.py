"""Read and write PDF files G(r): PDFgetX3, xPDFsuite, PDFgui and diffpy ``.gr`` files, or plain columns.

A ``.gr`` file is an optional header (INI-style ``[section]`` and ``key = value`` lines, ``#`` comments,
diffpy's ``# key = value`` comments), an optional ``#### start data`` marker, optional ``#S``/``#L``
lines (``#L`` names the columns) and 2 to 4 numeric columns: ``r G``, ``r G dG`` or ``r G dr dG``
(PDFgui), r in Angstrom on a uniform grid, G in 1/Angstrom^2.
"""
from __future__ import annotations

import dataclasses
import datetime
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..engine.parameters import BISO_PER_UISO, RADIATIONS, PDFParameters


class PDFFileError(ValueError):
    """A PDF file that is missing, malformed or does not hold G(r); the message names the file."""


#: Relative tolerance (of the grid step) on the uniformity of r.
GRID_TOLERANCE = 1e-6
#: File extensions of reciprocal-space data (F(Q), S(Q), I(Q), 1D diffraction patterns).
Q_EXTENSIONS = (".fq", ".sq", ".iq", ".chi")
#: PDFgetX3 ``outputtype`` values that are not G(r).
Q_OUTPUT_TYPES = ("fq", "sq", "iq")
#: Parameters written by :func:`write_pdf`, in order (uiso is derived from biso).
PARAMETER_KEYS = ("rmin", "rmax", "rstep", "qmin", "qmax", "qdamp", "qbroad", "delta1", "delta2", "biso", "uiso",
                  "scale", "radiation", "maxextension")
#: Column labels of G(r) files and the PDFData field each one fills.
_COLUMN_FIELDS = {"r": "r", "g": "G", "gr": "G", "dr": "dr", "dg": "dG", "dgr": "dG"}
_DEFAULT_COLUMNS = {2: ("r", "G"), 3: ("r", "G", "dG"), 4: ("r", "G", "dr", "dG")}
_START_DATA = re.compile(r"^#+\s*start\s+data", re.IGNORECASE)
_SPLIT = re.compile(r"[\s,]+")


@dataclass
class PDFData:
    """A PDF G(r) read from a file.

    Attributes:
        r: (n,) float64 r grid [Angstrom], uniform and strictly increasing.
        G: (n,) float64 reduced PDF [1/Angstrom^2].
        dG: (n,) float64 uncertainty of G [1/Angstrom^2], or None.
        dr: (n,) float64 uncertainty of r [Angstrom] (PDFgui's 4-column files), or None.
        metadata: every ``key = value`` of the header, section names flattened (a key repeated in a later
            section is stored as ``"section.key"``); numeric values parsed to float.
        source: the file read, or None.
    """

    r: np.ndarray
    G: np.ndarray
    dG: np.ndarray | None = None
    dr: np.ndarray | None = None
    metadata: dict = field(default_factory=dict)
    source: Path | None = None

    @property
    def rstep(self) -> float:
        """Grid step [Angstrom]."""
        return float((self.r[-1] - self.r[0]) / (len(self.r) - 1))

    @property
    def qmin(self) -> float | None:
        """Lowest Q of the Fourier transform [1/Angstrom] (header ``qmin``), or None."""
        return _number(self.metadata.get("qmin"))

    @property
    def qmax(self) -> float | None:
        """Highest Q of the Fourier transform [1/Angstrom] (header ``qmax``, else ``qmaxinst``), or None."""
        value = _number(self.metadata.get("qmax"))
        return value if value is not None else _number(self.metadata.get("qmaxinst"))

    @property
    def composition(self) -> str | None:
        """Chemical composition from the header without spaces (e.g. ``"Pt"``, ``"Au144S60C180"``), or None."""
        value = self.metadata.get("composition")
        if value is None or value == "":
            return None
        return re.sub(r"\s+", "", str(value))

    def params(self) -> PDFParameters | None:
        """PDF parameters recorded in the header (others at their defaults), or None when none is recorded.

        Reads the :class:`PDFParameters` fields, ``uiso`` when ``biso`` is absent, and PDFgetX3's
        ``mode = xray|neutron`` as the radiation.
        """
        names = [f.name for f in dataclasses.fields(PDFParameters)]
        values = {k: self.metadata[k] for k in names if k in self.metadata}
        if "biso" not in values and "uiso" in self.metadata:
            values["biso"] = _as_float(self.metadata["uiso"], "uiso", self.source) * BISO_PER_UISO
        if "radiation" not in values and self.metadata.get("mode") in RADIATIONS:
            values["radiation"] = self.metadata["mode"]
        if not values:
            return None
        for k, v in values.items():
            if k != "radiation":
                values[k] = _as_float(v, k, self.source)
        try:
            return PDFParameters(**values)
        except ValueError as exc:
            raise PDFFileError(f"{self.source}: header parameters are invalid: {exc}") from exc


def read_pdf(path) -> PDFData:
    """Read a G(r) file (PDFgetX3, xPDFsuite, PDFgui, diffpy or plain 2-4 columns).

    Raises:
        PDFFileError: the file is missing, empty, has non-numeric or non-finite rows, fewer than 2 points,
            negative or non-increasing or non-uniform r, or appears to hold Q-space data.
    """
    path = Path(path)
    if not path.is_file():
        raise PDFFileError(f"{path}: no such file" if not path.exists() else f"{path}: not a regular file")
    if path.suffix.lower() in Q_EXTENSIONS:
        raise PDFFileError(f"{path}: the extension {path.suffix!r} marks reciprocal-space (Q) data; "
                           "expected a G(r) file (.gr) with r in Angstrom")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise PDFFileError(f"{path}: the file is empty")

    start = _data_start(lines)
    metadata = _parse_header(lines[:start])
    outputtype = str(metadata.get("outputtype", "")).strip().lower()
    if outputtype in Q_OUTPUT_TYPES:
        raise PDFFileError(f"{path}: the header says outputtype = {outputtype}, i.e. {outputtype.upper()} in Q "
                           "space; expected a G(r) file (outputtype = gr)")
    rows, line_numbers, labels = _parse_rows(path, lines, start)
    columns = _column_names(path, labels, len(rows[0]))
    data = np.asarray(rows, dtype=np.float64)
    bad = np.nonzero(~np.isfinite(data).all(axis=1))[0]
    if len(bad):
        raise PDFFileError(f"{path}: line {line_numbers[bad[0]]} holds a NaN or infinite value "
                           f"({lines[line_numbers[bad[0]] - 1].strip()!r})")
    arrays = {name: data[:, k].copy() for k, name in enumerate(columns)}
    _check_grid(path, arrays["r"], line_numbers)
    return PDFData(r=arrays["r"], G=arrays["G"], dG=arrays.get("dG"), dr=arrays.get("dr"),
                   metadata=metadata, source=path)


def write_pdf(path, r, G, params: PDFParameters | None = None, metadata: dict | None = None, dG=None) -> Path:
    """Write G(r) to a ``.gr`` file that PDFgetX3-style readers (and :func:`read_pdf`) understand.

    Args:
        path: output file.
        r: (n,) r grid [Angstrom].
        G: (n,) G(r) [1/Angstrom^2].
        params: parameters of the calculation, recorded in the ``[pdfsolve]`` section with the pdfsolve
            version and the date.
        metadata: further ``key = value`` entries (structure file, composition, number of atoms, ...),
            written in a ``[metadata]`` section.
        dG: (n,) uncertainty of G [1/Angstrom^2], written as a third column.

    Values are written with ``repr`` (shortest exact float64 text), so reading back is exact.
    Returns the path written.
    """
    from .. import __version__

    path = Path(path)
    columns = [_as_column(r, "r"), _as_column(G, "G")]
    if dG is not None:
        columns.append(_as_column(dG, "dG"))
    if any(len(c) != len(columns[0]) for c in columns):
        raise ValueError(f"r, G and dG must have the same length, got {[len(c) for c in columns]}")
    if not all(np.isfinite(c).all() for c in columns):
        raise ValueError(f"{path}: refusing to write NaN or infinite values")
    header = ["# PDF G(r) written by pdfsolve", "[pdfsolve]", f"version = {__version__}",
              f"date = {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}"]
    if params is not None:
        pdict = params.to_dict()
        header += [f"{k} = {_format_value(pdict[k])}" for k in PARAMETER_KEYS]
    if metadata:
        header.append("")
        header.append("[metadata]")
        header += [f"{_clean_key(k)} = {_format_value(v)}" for k, v in metadata.items()]
    labels = "#L r($\\AA$)  G($\\AA^{-2}$)" + ("  dG($\\AA^{-2}$)" if dG is not None else "")
    header += ["", "#### start data", "#S 1", labels]
    body = [" ".join(repr(float(x)) for x in row) for row in zip(*columns)]
    path.write_text("\n".join(header + body) + "\n")
    return path


def _data_start(lines: list[str]) -> int:
    """Index of the first line after the header: after ``#### start data``, else the first row of 2-4 numbers."""
    for k, line in enumerate(lines):
        if _START_DATA.match(line.strip()):
            return k + 1
    for k, line in enumerate(lines):
        values = _numbers(line)
        if values is not None and 2 <= len(values) <= 4:
            return k
    return len(lines)


def _parse_header(lines: list[str]) -> dict:
    """``key = value`` entries of INI sections and ``# key = value`` comments, flattened into one dict."""
    metadata, section = {}, None
    for line in lines:
        text = line.strip()
        if text.startswith("[") and text.endswith("]"):
            section = text[1:-1].strip()
            continue
        text = text.lstrip("#").strip()
        if "=" not in text:
            continue
        key, value = (s.strip() for s in text.split("=", 1))
        if not key or " " in key:
            continue
        if key in metadata and section and metadata[key] != _parse_value(value):
            key = f"{section}.{key}"
        metadata.setdefault(key, _parse_value(value))
    return metadata


def _parse_value(value: str):
    """A header value as float when numeric, else the stripped string."""
    try:
        return float(value)
    except ValueError:
        return value


def _numbers(line: str) -> list[float] | None:
    """The floats of a whitespace- or comma-separated line, or None when it is not all numbers."""
    tokens = [t for t in _SPLIT.split(line.strip()) if t]
    if not tokens:
        return None
    try:
        return [float(t) for t in tokens]
    except ValueError:
        return None


def _parse_rows(path: Path, lines: list[str], start: int):
    """Numeric rows after ``start`` with their 1-based line numbers and the last ``#L`` column labels."""
    rows, line_numbers = [], []
    labels = next((s.strip()[2:].split() for s in reversed(lines[:start]) if s.strip().startswith("#L")), None)
    for k in range(start, len(lines)):
        text = lines[k].strip()
        if not text:
            continue
        if text.startswith("#"):
            if text.startswith("#L"):
                labels = text[2:].split()
            continue
        values = _numbers(text)
        if values is None:
            raise PDFFileError(f"{path}: line {k + 1} is not numeric: {text[:60]!r} "
                               "(expected 2-4 columns r G [dr] [dG])")
        if not 2 <= len(values) <= 4:
            raise PDFFileError(f"{path}: line {k + 1} has {len(values)} column(s); expected 2-4 (r G [dr] [dG])")
        if rows and len(values) != len(rows[0]):
            raise PDFFileError(f"{path}: line {k + 1} has {len(values)} columns but the rows above have "
                               f"{len(rows[0])}")
        rows.append(values)
        line_numbers.append(k + 1)
    if not rows:
        raise PDFFileError(f"{path}: no data rows (expected 2-4 numeric columns r G [dr] [dG])")
    return rows, line_numbers, labels


def _column_names(path: Path, labels: list[str] | None, ncols: int) -> tuple[str, ...]:
    """PDFData field of each column, from the ``#L`` labels when they name them, else by column count."""
    if labels:
        first = labels[0].lower()
        if first.startswith("q"):
            raise PDFFileError(f"{path}: the first column is labelled {labels[0]!r}, i.e. Q in 1/Angstrom; "
                               "expected r in Angstrom (a G(r) file, not F(Q), S(Q) or I(Q))")
        if len(labels) == ncols:
            keys = [re.sub(r"\(.*$", "", s).lower() for s in labels]
            names = tuple(_COLUMN_FIELDS.get(k) for k in keys)
            if None not in names and len(set(names)) == ncols and names[:2] == ("r", "G"):
                return names
    return _DEFAULT_COLUMNS[ncols]


def _check_grid(path: Path, r: np.ndarray, line_numbers: list[int]) -> None:
    """At least 2 points, r >= 0, strictly increasing and uniform to GRID_TOLERANCE of the step."""
    if len(r) < 2:
        raise PDFFileError(f"{path}: only {len(r)} data point; a PDF needs at least 2")
    if r[0] < 0:
        raise PDFFileError(f"{path}: r = {r[0]} Angstrom on line {line_numbers[0]} is negative; expected r >= 0")
    diff = np.diff(r)
    bad = np.nonzero(diff <= 0)[0]
    if len(bad):
        k = bad[0]
        raise PDFFileError(f"{path}: r is not strictly increasing: r = {r[k + 1]} on line {line_numbers[k + 1]} "
                           f"follows r = {r[k]}")
    step = (r[-1] - r[0]) / (len(r) - 1)
    tol = GRID_TOLERANCE * step + 4 * np.finfo(np.float64).eps * abs(r[-1])
    bad = np.nonzero(np.abs(diff - step) > tol)[0]
    if len(bad):
        k = bad[0]
        raise PDFFileError(f"{path}: the r grid is not uniform: step {diff[k]:.6g} Angstrom before line "
                           f"{line_numbers[k + 1]} differs from the mean step {step:.6g} Angstrom")


def _number(value) -> float | None:
    return value if isinstance(value, float) else None


def _as_float(value, key: str, source) -> float:
    if isinstance(value, float):
        return value
    raise PDFFileError(f"{source}: header value {key} = {value!r} is not a number")


def _as_column(values, name: str) -> np.ndarray:
    """A 1-D float64 array from a numpy array, list or (CPU or GPU) torch tensor."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    return array


def _format_value(value) -> str:
    """A header value on one line; floats exact (repr)."""
    if isinstance(value, (float, np.floating)):
        return repr(float(value)) if math.isfinite(value) else str(float(value))
    return " ".join(str(value).split())


def _clean_key(key) -> str:
    """A metadata key usable in a ``key = value`` line (no spaces, '=' or '#')."""
    clean = re.sub(r"[\s=#\[\]]+", "_", str(key)).strip("_")
    if not clean:
        raise ValueError(f"metadata key {key!r} is empty once cleaned")
    return clean
