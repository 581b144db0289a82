"""PDF parameters and augmentations for simulated training data: fixed, or drawn per cluster from ranges."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..engine.parameters import PDFParameters

#: A parameter is either fixed (a number) or drawn uniformly from a (low, high) range.
Spec = float | tuple[float, float]
#: Names of the drawn values stored with each simulated PDF, in this order.
DRAWN = ("qmin", "qmax", "qdamp", "biso", "delta2", "scale", "rattle", "noise")


@dataclass(frozen=True)
class ParameterRanges:
    """What varies between simulated PDFs of a dataset (units as in :class:`PDFParameters`).

    Attributes:
        qmin, qmax, qdamp [1/Angstrom], biso, delta2 [Angstrom^2], scale: PDF parameters.
        rattle: standard deviation of Gaussian displacements added to every coordinate [Angstrom].
        noise: standard deviation of Gaussian noise added to G(r), relative to max|G| [dimensionless].
        rmin, rmax, rstep: the r grid shared by the whole dataset [Angstrom] (fixed, so PDFs stack).
    """

    qmin: Spec = 0.7
    qmax: Spec = 25.0
    qdamp: Spec = 0.04
    biso: Spec = 0.3
    delta2: Spec = 2.0
    scale: Spec = 1.0
    rattle: Spec = 0.0
    noise: Spec = 0.0
    rmin: float = 0.0
    rmax: float = 30.0
    rstep: float = 0.01

    def __post_init__(self):
        for name in DRAWN:
            spec = getattr(self, name)
            low, high = (spec, spec) if np.isscalar(spec) else spec
            if not (np.isfinite(low) and np.isfinite(high) and low <= high):
                raise ValueError(f"{name} must be a number or a (low, high) range with low <= high, got {spec!r}")
            if low < 0:
                raise ValueError(f"{name} must be >= 0, got {spec!r}")

    @property
    def is_fixed(self) -> bool:
        """True when every PDF gets the same parameters and no augmentation is random."""
        return all(np.isscalar(getattr(self, n)) for n in DRAWN)

    def draw(self, rng: np.random.Generator) -> dict[str, float]:
        """One draw of every value in :data:`DRAWN` (qmax is kept above qmin + 5 1/Angstrom)."""
        values = {}
        for name in DRAWN:
            spec = getattr(self, name)
            values[name] = float(spec) if np.isscalar(spec) else float(rng.uniform(*spec))
        values["qmax"] = max(values["qmax"], values["qmin"] + 5.0)
        return values

    def pdf_parameters(self, drawn: dict[str, float]) -> PDFParameters:
        """The engine parameters of one draw (rattle and noise are applied by the dataset builder)."""
        keys = ("qmin", "qmax", "qdamp", "biso", "delta2", "scale")
        return PDFParameters(rmin=self.rmin, rmax=self.rmax, rstep=self.rstep, **{k: drawn[k] for k in keys})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


#: The DeepStruc training set: one parameter set for every PDF.
DEEPSTRUC_FIXED = ParameterRanges()
#: Randomised parameters covering common synchrotron set-ups, with rattling and noise, so that models meet
#: measured data (qmax 18-28, qdamp 0.01-0.06, etc.).
RANDOMISED = ParameterRanges(qmin=(0.5, 1.5), qmax=(18.0, 28.0), qdamp=(0.01, 0.06), biso=(0.1, 1.2),
                             delta2=(0.0, 4.0), scale=(0.5, 1.5), rattle=(0.0, 0.05), noise=(0.0, 0.02))
