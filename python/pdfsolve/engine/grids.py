"""The Q and r grids of diffpy.srreal's DebyePDFCalculator, and its F(Q) -> G(r) transform as a matrix.

diffpy's rules (libdiffpy DebyePDFCalculator, PDFUtils, GaussianProfile; see
../shared/reference/README.md of the pdfsolve developers):

* The calculation range is extended beyond [rmin, rmax] by min(maxextension, 6 * 2 pi / qmax + the
  Gaussian tail bound of the widest peak), rounded outwards onto the r grid. Only pairs with
  extendedrmin <= r <= extendedrmax enter the Debye sum.
* qstep = pi / extendedrmax (unless qmax * extendedrmax / pi <= 4, then qmax / 4); the Debye sum runs
  on Q_k = k * qstep, k = 0 .. ceil(qmax / qstep) - 1.
* F(Q) is zeroed for k < ceil(qmin / qstep) (one less when qmin sits on a grid point), then
  G(r) = (2 / pi) * qstep * sum_k F_k sin(Q_k r) is evaluated by a zero-padded FFT on the fine grid
  r_i = i * pi / (npad * qstep) and linearly interpolated onto the output grid r = k * rstep.

The FFT followed by linear interpolation is a linear map of F, so it is built here once as an exact
(nq, nr) matrix: a whole batch is then transformed by one matrix product.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

from .parameters import PDFParameters

#: diffpy's tolerance for grid-point tests (sqrt of double epsilon).
_EPS = 1.4901161193847656e-08
#: diffpy's peak-tail precision for the range extension (GaussianProfile bound used by DebyePDFCalculator).
PEAK_TAIL_PRECISION = 3.33e-6
#: number of termination ripples covered by the range extension.
N_RIPPLES = 6
_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def rgrid(rmin: float, rmax: float, rstep: float) -> np.ndarray:
    """The output r grid [Angstrom]: r = k * rstep for rmin <= r < rmax (diffpy's rule), float64."""
    kmin = math.ceil(rmin / rstep)
    if abs(rmin - (kmin - 1) * rstep) <= _EPS:
        kmin -= 1
    kmax = math.ceil(rmax / rstep)
    return np.arange(kmin, kmax, dtype=np.float64) * rstep


def output_rgrid(params: PDFParameters) -> np.ndarray:
    """The output r grid of ``params`` [Angstrom], float64."""
    return rgrid(params.rmin, params.rmax, params.rstep)


def range_extension(params: PDFParameters, max_uiso: float) -> float:
    """Extension of the calculation range beyond [rmin, rmax] [Angstrom], before rounding."""
    ripples = N_RIPPLES * 2.0 * math.pi / params.qmax if params.qmax > 0 else 0.0
    # Widest peak in [rmin, rmax]: the Jeong factor grows with r for non-negative delta1, delta2, qbroad.
    widths = []
    for r in (params.rmin, params.rmax):
        corr = 0.0 if r <= 0 else 1.0 - params.delta1 / r - params.delta2 / r**2 + (params.qbroad * r) ** 2
        widths.append(max(corr, 0.0))
    fwhm = _FWHM_PER_SIGMA * math.sqrt(2.0 * max_uiso * max(widths))
    tail = math.sqrt(-math.log(PEAK_TAIL_PRECISION) / (4.0 * math.log(2.0))) * fwhm
    return min(ripples + tail, params.maxextension)


@dataclass(frozen=True)
class DebyeGrid:
    """Q grid and pair range of one DebyePDFCalculator evaluation.

    Attributes:
        extended_rmin, extended_rmax: pair-distance range of the Debye sum [Angstrom].
        qstep: Q spacing [1/Angstrom]; Q_k = k * qstep for k < nq.
        nq: number of Q points (from Q = 0).
        kmin: index of the first Q point kept (F is zeroed below it).
        params: the parameters the grid was built for.
    """

    extended_rmin: float
    extended_rmax: float
    qstep: float
    nq: int
    kmin: int
    params: PDFParameters

    @classmethod
    def build(cls, params: PDFParameters, max_uiso: float | None = None) -> "DebyeGrid":
        """The grid diffpy uses for a structure whose largest U_iso is ``max_uiso`` [Angstrom^2]."""
        if max_uiso is None:
            max_uiso = params.uiso
        ext = range_extension(params, max_uiso)
        rstep = params.rstep
        lo = max(params.rmin - ext, 0.0)
        hi = params.rmax + ext
        # rounded outwards onto the r grid (with diffpy's tolerance for values already on it)
        lo = math.floor(lo / rstep + _EPS) * rstep
        hi = math.ceil(hi / rstep - _EPS) * rstep
        qstep = math.pi / hi if params.qmax * hi / math.pi > 4 else params.qmax / 4
        nq = math.ceil(params.qmax / qstep)
        kmin = math.ceil(params.qmin / qstep)
        if abs(params.qmin - (kmin - 1) * qstep) <= _EPS:
            kmin -= 1
        return cls(lo, hi, qstep, nq, kmin, params)

    @property
    def q(self) -> np.ndarray:
        """Q grid [1/Angstrom], float64, shape (nq,)."""
        return np.arange(self.nq, dtype=np.float64) * self.qstep

    @property
    def r(self) -> np.ndarray:
        """Output r grid [Angstrom], float64."""
        return output_rgrid(self.params)

    def fft_length(self) -> int:
        """Half-length of diffpy's zero-padded odd-extended FFT (a power of two)."""
        needed = max(self.nq, math.ceil(math.pi / (self.params.rstep * self.qstep)))
        return 1 << math.ceil(math.log2(needed))

    def transform_matrix(self, dtype=torch.float64, device=None) -> torch.Tensor:
        """(nq, nr) matrix M with G = F @ M: qmin cut, sine transform, FFT-grid interpolation, envelopes.

        Built exactly in float64 (the envelopes scale and qdamp multiply its columns), cached per dtype.
        """
        return _transform_matrix(self.nq, self.kmin, self.qstep, self.fft_length(), self.params.rmin,
                                 self.params.rmax, self.params.rstep, self.params.scale, self.params.qdamp,
                                 dtype, torch.device(device) if device is not None else None)



@functools.lru_cache(maxsize=32)
def _transform_matrix(nq, kmin, qstep, npad, rmin, rmax, rstep, scale, qdamp, dtype, device) -> torch.Tensor:
    r = rgrid(rmin, rmax, rstep)
    drfine = math.pi / (npad * qstep)
    x = r / drfine
    ilo = x.astype(np.int64)  # diffpy truncates (r >= 0)
    whi = x - ilo
    k = np.arange(nq, dtype=np.int64)
    period = 2 * npad  # sin(pi * k * i / npad) has period 2 npad in k * i: reduce exactly in integers

    def sine(i):
        return np.sin(np.pi * ((np.outer(k, i) % period).astype(np.float64)) / npad)

    m = (2.0 / np.pi) * qstep * (sine(ilo) * (1.0 - whi) + sine(ilo + 1) * whi)
    m[:kmin] = 0.0
    m *= scale * np.exp(-0.5 * (qdamp * r) ** 2)[None, :]
    return torch.from_numpy(m).to(dtype=dtype, device=device)
