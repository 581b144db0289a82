"""A measured PDF as a refinement target: G(r) resampled onto the engine's r grid, with its Q range."""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.interpolate import CubicSpline

from .engine.grids import rgrid
from .engine.parameters import PDFParameters
from .io import read_pdf
from .metrics import RWP_RMAX, RWP_RMIN, rwp

#: Shortest r range [Angstrom] a target may span.
MIN_RANGE = 5.0
#: The data's r step may be at most this fraction of the Nyquist step pi / qmax [Angstrom].
MAX_STEP_FRACTION = 0.5
INTERPOLATIONS = ("linear", "cubic")


@dataclass
class Target:
    """An observed PDF on the engine's grid r_k = k * rstep, rmin <= r_k < rmax.

    Attributes:
        r: (nr,) float64 r grid [Angstrom].
        g: (nr,) torch float64 G(r) [1/Angstrom^2].
        params: :class:`PDFParameters` matching the data: its qmin, qmax [1/Angstrom], qdamp [1/Angstrom]
            and the grid's rmin, rmax, rstep [Angstrom] (others at their defaults).
        source: the file read, or None.
    """

    r: np.ndarray
    g: torch.Tensor
    params: PDFParameters
    source: Path | None = None

    @property
    def rmin(self) -> float:
        """Lower end of the fitted (and Rwp) range [Angstrom]."""
        return self.params.rmin

    @property
    def rmax(self) -> float:
        """Upper end of the fitted (and Rwp) range [Angstrom], exclusive as in the engine's grid."""
        return self.params.rmax

    def rwp(self, g_calc) -> torch.Tensor:
        """Rwp of calculated G(r) on ``self.r``, (..., nr) -> (...)."""
        return rwp(self.g, g_calc)

    @classmethod
    def from_file(cls, path, qmin: float | None = None, qmax: float | None = None, qdamp: float | None = None,
                  rmin: float | None = None, rmax: float | None = None, rstep: float = 0.01,
                  interpolation: str = "cubic") -> "Target":
        """Read a G(r) file (see :func:`pdfsolve.io.read_pdf`) and resample it onto the engine's grid.

        qmin, qmax [1/Angstrom] come from the header when it records them, else from these arguments,
        else the :class:`PDFParameters` defaults with a warning naming the file; an argument that
        contradicts the header is ignored with a warning. qdamp [1/Angstrom]: header, argument or default.
        rmin, rmax [Angstrom]: the fitted range; default 1.5-30 Angstrom clipped to the data's range.
        rstep [Angstrom]: step of the engine grid. ``interpolation``: "linear" or "cubic" (spline).

        Raises:
            ValueError: the data's step is coarser than MAX_STEP_FRACTION * pi / qmax, the data do not
                cover the requested range, or the range is shorter than MIN_RANGE; messages name the file.
        """
        data = read_pdf(path)
        defaults = PDFParameters()
        q = {}
        for name, header, arg in (("qmin", data.qmin, qmin), ("qmax", data.qmax, qmax),
                                  ("qdamp", _header_number(data.metadata, "qdamp"), qdamp)):
            if header is not None:
                if arg is not None and not math.isclose(arg, header, rel_tol=1e-9, abs_tol=1e-12):
                    warnings.warn(f"{data.source}: the header gives {name} = {header}; the argument "
                                  f"{name} = {arg} is ignored", stacklevel=2)
                q[name] = header
            elif arg is not None:
                q[name] = float(arg)
            else:
                q[name] = getattr(defaults, name)
                if name != "qdamp":
                    warnings.warn(f"{data.source}: no {name} in the header or arguments; assuming "
                                  f"{name} = {q[name]} 1/Angstrom", stacklevel=2)
        return cls.from_arrays(data.r, data.G, q["qmin"], q["qmax"], q["qdamp"], rmin=rmin, rmax=rmax,
                               rstep=rstep, interpolation=interpolation, source=data.source)

    @classmethod
    def from_arrays(cls, r, g, qmin: float, qmax: float, qdamp: float, rmin: float | None = None,
                    rmax: float | None = None, rstep: float = 0.01, interpolation: str = "cubic",
                    source=None) -> "Target":
        """A target from a uniform r grid (n,) [Angstrom] and G (n,) [1/Angstrom^2]; see :meth:`from_file`."""
        name = str(source) if source is not None else "PDF data"
        r = np.asarray(r, dtype=np.float64)
        g = np.asarray(g, dtype=np.float64)
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
        if r.ndim != 1 or r.shape != g.shape or len(r) < 4:
            raise ValueError(f"{name}: r and G must be 1-D of equal length >= 4, got {r.shape} and {g.shape}")
        step = float((r[-1] - r[0]) / (len(r) - 1))
        limit = MAX_STEP_FRACTION * math.pi / qmax
        if step > limit:
            raise ValueError(f"{name}: the data's r step {step:.4g} Angstrom is too coarse for qmax = {qmax} "
                             f"1/Angstrom (at most {limit:.4g} Angstrom = {MAX_STEP_FRACTION} pi / qmax)")
        tol = 1e-6 * step
        lo = max(RWP_RMIN, r[0]) if rmin is None else rmin
        hi = min(RWP_RMAX, r[-1] + rstep) if rmax is None else rmax
        grid = rgrid(lo, hi, rstep)
        for key, outside in (("rmin", rmin is not None and grid[0] < r[0] - tol),
                             ("rmax", rmax is not None and grid[-1] > r[-1] + tol)):
            if outside:
                raise ValueError(f"{name}: the data cover r = {r[0]:.4g}-{r[-1]:.4g} Angstrom, not the requested "
                                 f"{key} = {lo if key == 'rmin' else hi:.4g} Angstrom")
        grid = grid[(grid >= r[0] - tol) & (grid <= r[-1] + tol)]
        if len(grid) == 0 or grid[-1] - grid[0] < MIN_RANGE:
            span = f"{grid[0]:.4g}-{grid[-1]:.4g}" if len(grid) else "none"
            raise ValueError(f"{name}: the fitted r range ({span} Angstrom) is shorter than {MIN_RANGE} Angstrom")
        grid_rmin, grid_rmax = float(grid[0]), float(grid[-1] + 0.5 * rstep)
        grid = np.clip(grid, r[0], r[-1])
        gi = np.interp(grid, r, g) if interpolation == "linear" else CubicSpline(r, g)(grid)
        params = PDFParameters(rmin=grid_rmin, rmax=grid_rmax, rstep=rstep, qmin=qmin, qmax=qmax, qdamp=qdamp)
        return cls(rgrid(params.rmin, params.rmax, params.rstep), torch.as_tensor(gi, dtype=torch.float64), params,
                   Path(source) if source is not None else None)


def _header_number(metadata: dict, key: str) -> float | None:
    value = metadata.get(key)
    return value if isinstance(value, float) else None
