"""PDF calculation parameters, named as PDF users know them (PDFgui, diffpy, PDFgetX3)."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

#: Biso = 8 pi^2 Uiso (Angstrom^2).
BISO_PER_UISO = 8.0 * math.pi**2
RADIATIONS = ("xray", "neutron")


@dataclass(frozen=True)
class PDFParameters:
    """Parameters of a simulated PDF G(r) of a finite cluster.

    Attributes (units in brackets):
        rmin, rmax, rstep: output r grid r_k = k * rstep for rmin <= r_k < rmax [Angstrom].
        qmin, qmax: range of Q used in the Fourier transform [1/Angstrom].
        qdamp: instrumental Gaussian damping of G(r), exp(-(qdamp r)^2 / 2) [1/Angstrom].
        qbroad: instrumental peak broadening, adds (qbroad r)^2 to the width factor [1/Angstrom].
        delta1, delta2: correlated-motion peak sharpening (Jeong model): widths scale by
            sqrt(1 - delta1/r - delta2/r^2) [Angstrom, Angstrom^2].
        biso: isotropic atomic displacement parameter of every atom [Angstrom^2]; Uiso = biso / 8 pi^2.
        scale: overall scale factor of G(r) [dimensionless].
        radiation: "xray" (Waasmaier-Kirfel form factors) or "neutron" (coherent scattering lengths).
        maxextension: largest extension of the calculation range beyond [rmin, rmax] [Angstrom].

    Defaults are pdfsolve's (and diffpy's DebyePDFCalculator's, but for qmin and qdamp, which follow
    typical rapid-acquisition synchrotron data): rmin 0, rmax 30, rstep 0.01 Angstrom, qmin 0.7,
    qmax 25 1/Angstrom, qdamp 0.04 1/Angstrom, delta2 0, biso 0.3 Angstrom^2.
    """

    rmin: float = 0.0
    rmax: float = 30.0
    rstep: float = 0.01
    qmin: float = 0.7
    qmax: float = 25.0
    qdamp: float = 0.04
    qbroad: float = 0.0
    delta1: float = 0.0
    delta2: float = 0.0
    biso: float = 0.3
    scale: float = 1.0
    radiation: str = "xray"
    maxextension: float = 10.0

    def __post_init__(self):
        self.validate()

    @property
    def uiso(self) -> float:
        """Isotropic mean-square displacement U_iso = biso / (8 pi^2) [Angstrom^2]."""
        return self.biso / BISO_PER_UISO

    @classmethod
    def from_uiso(cls, uiso: float, **kwargs) -> "PDFParameters":
        """Build parameters from U_iso [Angstrom^2] instead of biso."""
        return cls(biso=uiso * BISO_PER_UISO, **kwargs)

    def replace(self, **changes) -> "PDFParameters":
        """A copy with some parameters changed (``uiso=`` is accepted and converted to biso)."""
        if "uiso" in changes:
            changes["biso"] = changes.pop("uiso") * BISO_PER_UISO
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """All parameters as a plain dict (uiso included for reference)."""
        d = dataclasses.asdict(self)
        d["uiso"] = self.uiso
        return d

    def validate(self) -> None:
        """Raise ValueError naming the first parameter that is out of range."""
        for name in ("rmin", "rmax", "rstep", "qmin", "qmax", "qdamp", "qbroad", "delta1", "delta2",
                     "biso", "scale", "maxextension"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"PDF parameter {name} must be a finite number, got {value!r}")
        for name in ("rmin", "qmin", "qdamp", "qbroad", "biso", "maxextension"):
            if getattr(self, name) < 0:
                raise ValueError(f"PDF parameter {name} must be >= 0, got {getattr(self, name)}")
        if self.rstep <= 0:
            raise ValueError(f"PDF parameter rstep must be > 0 Angstrom, got {self.rstep}")
        if self.rmax <= self.rmin:
            raise ValueError(f"rmax ({self.rmax} Angstrom) must be greater than rmin ({self.rmin} Angstrom)")
        if self.qmax <= self.qmin:
            raise ValueError(f"qmax ({self.qmax} 1/Angstrom) must be greater than qmin ({self.qmin} 1/Angstrom)")
        if self.qmax > 100:
            raise ValueError(f"qmax = {self.qmax} 1/Angstrom is implausible; is it given in 1/nm?")
        if self.radiation not in RADIATIONS:
            raise ValueError(f"radiation must be one of {RADIATIONS}, got {self.radiation!r}")
