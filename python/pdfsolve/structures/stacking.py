"""Close-packed clusters with any stacking sequence of triangular layers (fcc "ABC", hcp "AB", faults between).

Layers of a triangular lattice of bond length 1 lie sqrt(2/3) apart along z; a layer at position A, B or C is shifted in plane by 0, (a1 + a2)/3 or 2 (a1 + a2)/3. Consecutive layers must differ.
A layer is "c" (cubic) when its two neighbours differ and "h" (hexagonal) when they are equal (Jagodzinski
notation): all c is fcc, all h is hcp, anything else is a faulted stacking.
"""
from __future__ import annotations

import itertools
import math

import ase
import numpy as np

from .motifs import label, retarget

LAYER_SPACING = math.sqrt(2.0 / 3.0)
_A1, _A2 = np.array([1.0, 0.0]), np.array([0.5, math.sqrt(3.0) / 2.0])
_SHIFT = {"A": 0.0 * _A1, "B": (_A1 + _A2) / 3.0, "C": 2.0 * (_A1 + _A2) / 3.0}
#: In-plane cut centres: on an atom of an A layer, or on the hollow above it (a B site).
CENTRES = {"site": _SHIFT["A"], "hollow": _SHIFT["B"]}
SHAPES = ("sphere", "prism")


def check_sequence(sequence: str) -> str:
    """The sequence in upper case; ValueError unless it is letters A/B/C with no two equal neighbours."""
    seq = sequence.upper()
    if not seq or set(seq) - set("ABC") or any(x == y for x, y in zip(seq, seq[1:])):
        raise ValueError(f"a stacking sequence is A/B/C letters with no two equal neighbours, got {sequence!r}")
    return seq


def jagodzinski(sequence: str) -> str:
    """'h'/'c' for each interior layer of the sequence (two letters fewer than the sequence)."""
    seq = check_sequence(sequence)
    return "".join("h" if seq[i - 1] == seq[i + 1] else "c" for i in range(1, len(seq) - 1))


def classify(sequence: str) -> str:
    """"fcc" (all c), "hcp" (all h), "faulted" (both), or "close_packed" (fewer than three layers)."""
    hc = jagodzinski(sequence)
    if not hc:
        return "close_packed"
    return "fcc" if set(hc) == {"c"} else "hcp" if set(hc) == {"h"} else "faulted"


def from_jagodzinski(hc: str) -> str:
    """The sequence starting "AB" whose interior layers are ``hc`` ('h'/'c' string)."""
    seq = "AB"
    for x in hc:
        seq += seq[-2] if x == "h" else ({"A", "B", "C"} - {seq[-2], seq[-1]}).pop()
    return seq


def sequences(n_layers: int) -> list[str]:
    """Every stacking of ``n_layers`` >= 2 layers up to relabelling and reversal, each starting "AB"."""
    seen = {min(hc, hc[::-1]) for hc in ("".join(t) for t in itertools.product("hc", repeat=n_layers - 2))}
    return [from_jagodzinski(hc) for hc in sorted(seen)]


def close_packed(sequence: str, size: float, shape: str = "sphere", centre: str = "site",
                 element: str | None = None, scale: float = 1.0) -> ase.Atoms:
    """A cluster cut from the layers ``sequence`` (bottom to top), centred at mid-height.

    size: the sphere radius, or for ``shape="prism"`` the in-plane distance from the axis to each of the six
        {10-10}-like side facets, in units of the nearest-neighbour distance (times 2 r scale [Angstrom]).
    centre: "site" (axis through atoms of the A layers) or "hollow".
    Labels: ``motif`` from :func:`classify` of the layers that hold atoms, ``stacking`` those layers' letters.
    """
    seq = check_sequence(sequence)
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {SHAPES}, got {shape!r}")
    m = int(math.ceil(size)) + 2
    i, j = np.meshgrid(np.arange(-2 * m, 2 * m + 1), np.arange(-2 * m, 2 * m + 1), indexing="ij")
    grid = i.reshape(-1, 1) * _A1 + j.reshape(-1, 1) * _A2 - CENTRES[centre]  # (M, 2) in-plane lattice
    z0 = 0.5 * (len(seq) - 1) * LAYER_SPACING
    # in-plane facet normals: the six directions perpendicular to a1, a2 and a1 - a2
    normals = np.array([[math.cos(t), math.sin(t)] for t in np.arange(6) * math.pi / 3 + math.pi / 6])
    atoms_xyz, present = [], ""
    for k, letter in enumerate(seq):
        xy = grid + _SHIFT[letter]
        z = k * LAYER_SPACING - z0
        if shape == "sphere":
            keep = (xy**2).sum(1) + z * z <= size * size + 1e-9
        else:
            keep = (xy @ normals.T).max(1) <= size + 1e-9
        if keep.any():
            atoms_xyz.append(np.column_stack([xy[keep], np.full(keep.sum(), z)]))
            present += letter
    motif = classify(present) if present else "close_packed"
    construction = f"stacking_{present}_{shape}{size:g}_{centre}"
    atoms = label(np.concatenate(atoms_xyz) if atoms_xyz else np.zeros((0, 3)), motif, "stacking.close_packed",
                  construction, centre=centre, stacking=present)
    return retarget(atoms, element, scale)
