"""Metallic radii and the lattice scale of every generated cluster.

The table ``pdfsolve/data/metallic_radii.csv`` names its source in its header. A cluster of element X at
lattice scale s has nearest-neighbour distance 2 r_X s [Angstrom].
"""
from __future__ import annotations

import functools
from importlib import resources


@functools.lru_cache(maxsize=1)
def metallic_radii() -> dict[str, float]:
    """{symbol: metallic radius r [Angstrom]} in table order."""
    text = resources.files("pdfsolve.data").joinpath("metallic_radii.csv").read_text()
    rows = [line.split(",") for line in text.splitlines() if line and not line.startswith("#")]
    return {symbol: float(value) for symbol, value in rows[1:]}


#: Every metal in the table: the d-block of periods 4-6 plus Mg, Al, Pb.
METALS: tuple[str, ...] = tuple(metallic_radii())
#: 28 metals: the d-block of periods 4-6 without Tc (radioactive) and Hg (liquid). DeepStruc's library spans 28
#: metals; its list is not published with the examples, so this is our stand-in for it.
D_BLOCK_28: tuple[str, ...] = tuple(s for s in METALS[:30] if s not in ("Tc", "Hg"))


def metallic_radius(symbol: str) -> float:
    """Metallic radius [Angstrom] of ``symbol``; KeyError naming the known metals when absent."""
    try:
        return metallic_radii()[symbol]
    except KeyError:
        raise KeyError(f"no metallic radius for {symbol!r}; known: {', '.join(METALS)}") from None


def bond_length(symbol: str, scale: float = 1.0) -> float:
    """Nearest-neighbour distance 2 r scale [Angstrom] of a cluster of ``symbol``."""
    if not scale > 0:
        raise ValueError(f"lattice scale must be > 0, got {scale}")
    return 2.0 * metallic_radius(symbol) * scale
