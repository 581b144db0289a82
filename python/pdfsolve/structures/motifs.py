"""Mono-metallic cluster generators: fcc, bcc, sc, hcp cuts and the icosahedral, decahedral and octahedral motifs.

Every generator builds the geometry with nearest-neighbour distance 1 (ase's builders at the lattice constants
below), then :func:`retarget` scales it to 2 r scale [Angstrom] of the element (``element=None`` keeps the unit
geometry, symbol "X", which :mod:`.library` copies per element). Lattice constants for bond length d:

- fcc a = d sqrt(2), bcc a = 2 d / sqrt(3) (the body diagonal bond, not the cube edge, is d), sc a = d,
  hcp a = d, c = d sqrt(8/3).
- ase's Icosahedron, Decahedron and Octahedron take the fcc constant d sqrt(2). Octahedra are strain-free (all
  bonds d). In ase's icosahedron the radial (shell-to-shell) bonds are d and the bonds within a shell 5.15 %
  longer; in its decahedron the bonds across the twin planes are up to 1.8 % longer. We keep that convention:
  the shortest bond of every motif is exactly d.

Each cluster is centred on its centroid, has no cell, and carries labels in ``atoms.info`` (see :func:`label`).
"""
from __future__ import annotations

import itertools
import math

import ase
import numpy as np
from ase.cluster import (BodyCenteredCubic, Decahedron, FaceCenteredCubic, HexagonalClosedPacked, Icosahedron,
                         Octahedron, SimpleCubic)
from ase.lattice.hexagonal import HexagonalClosedPacked as HexagonalBulk

from .radii import bond_length

#: Cubic lattice constants (in units of the nearest-neighbour distance) and ase's builders.
CUBIC = {"fcc": (math.sqrt(2.0), FaceCenteredCubic), "bcc": (2.0 / math.sqrt(3.0), BodyCenteredCubic),
         "sc": (1.0, SimpleCubic)}
#: Atoms of the conventional cubic cell (fractional) and spacing of the atomic {100}, {110}, {111} planes
#: (in units of the nearest-neighbour distance).
_CUBIC_BASIS = {"fcc": np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]),
                "bcc": np.array([[0, 0, 0], [0.5, 0.5, 0.5]]), "sc": np.zeros((1, 3))}
_PLANE_SPACING = {"fcc": (math.sqrt(2.0) / 2, 0.5, math.sqrt(2.0 / 3.0)),
                  "bcc": (1.0 / math.sqrt(3.0), math.sqrt(2.0 / 3.0), 1.0 / 3.0),
                  "sc": (1.0, 1.0 / math.sqrt(2.0), 1.0 / math.sqrt(3.0))}
HCP_C = math.sqrt(8.0 / 3.0)
CUBIC_SURFACES = ((1, 0, 0), (1, 1, 0), (1, 1, 1))
HCP_SURFACES = ((0, 0, 0, 1), (1, 0, -1, 0), (1, 1, -2, 0))
#: Cut centres in fractional coordinates of the conventional cubic cell: a lattice site, interstitial holes and
#: a nearest-neighbour bond midpoint.
CENTRES = {
    "fcc": {"site": (0, 0, 0), "octahedral": (0.5, 0.5, 0.5), "tetrahedral": (0.25, 0.25, 0.25),
            "bond": (0.25, 0.25, 0.0)},
    "bcc": {"site": (0, 0, 0), "octahedral": (0.5, 0.5, 0.0), "tetrahedral": (0.5, 0.25, 0.0),
            "bond": (0.25, 0.25, 0.25)},
    "sc": {"site": (0, 0, 0), "cubic": (0.5, 0.5, 0.5), "bond": (0.5, 0.0, 0.0)},
}
MOTIFS = ("fcc", "bcc", "sc", "hcp", "icosahedral", "decahedral", "octahedral")


def label(positions: np.ndarray, motif: str, builder: str, construction: str, *, centre: str = "",
          stacking: str = "") -> ase.Atoms:
    """A unit-bond cluster (symbol "X") centred on its centroid, with its labels.

    positions: (N, 3) in units of the nearest-neighbour distance. Labels in ``info``: ``motif``, ``builder``
    (the function that made it), ``construction`` (builder and parameters: a unique name of the geometry),
    ``centre`` (name of the cut centre, "" for polyhedral motifs), ``stacking`` (close-packed layer sequence or
    ""), ``elements``, ``n_atoms``, ``lattice_scale``, ``bond_length`` [Angstrom; 1 for the unit geometry].
    """
    positions = np.asarray(positions, dtype=float).reshape(-1, 3)
    if len(positions):
        positions = positions - positions.mean(0)
    atoms = ase.Atoms("X" * len(positions), positions=positions)
    atoms.info.update(motif=motif, builder=builder, construction=construction, centre=centre, stacking=stacking,
                      elements="X", n_atoms=len(atoms), lattice_scale=1.0, bond_length=1.0)
    return atoms


def retarget(atoms: ase.Atoms, element: str | None, scale: float = 1.0) -> ase.Atoms:
    """A copy made of ``element`` with bond length 2 r scale [Angstrom]; ``element=None`` returns the copy as is."""
    out = atoms.copy()
    if element is None:
        return out
    d = bond_length(element, scale)
    out.positions *= d / atoms.info["bond_length"]
    out.set_chemical_symbols([element] * len(out))
    out.info.update(elements=element, lattice_scale=float(scale), bond_length=d)
    return out


def _ints(values) -> str:
    return "-".join(str(int(v)) for v in values)


def _cubic_normals(miller) -> np.ndarray:
    """(M, 3) unit normals of the cubic family {miller} (all sign changes and permutations)."""
    vecs = {tuple(s * v for s, v in zip(signs, perm)) for perm in itertools.permutations(miller)
            for signs in itertools.product((1, -1), repeat=3)}
    n = np.array(sorted(vecs), dtype=float)
    return n / np.linalg.norm(n, axis=1, keepdims=True)


_NORMALS = [_cubic_normals(m) for m in CUBIC_SURFACES]


def cubic_cut(lattice: str, layers, centre: str = "site", element: str | None = None,
              scale: float = 1.0) -> ase.Atoms:
    """An fcc, bcc or sc crystal cut by the {100}, {110} and {111} planes, as ase.cluster's cubic builders.

    Keeps the lattice points x with max_n n.(x - c) < d_f (layers_f + 0.1) for each family f, c the centre and
    d_f the spacing of its atomic planes: the same atoms as ``ase.cluster.FaceCenteredCubic(..., center=...)``
    (and Body-, SimpleCubic; checked in the tests), vectorised, ~100x faster.

    layers: 3 ints, the number of layers from the centre to the {100}, {110} and {111} surfaces.
    centre: a key of ``CENTRES[lattice]`` (site, interstitial hole or bond midpoint).
    """
    a, builder = CUBIC[lattice]
    bound = np.array([d * (int(n) + 0.1) for d, n in zip(_PLANE_SPACING[lattice], layers)])
    # the {100} planes bound a cube, {110} a rhombic dodecahedron, {111} an octahedron: all within this cube
    half = float(min(bound * np.array([1.0, math.sqrt(2.0), math.sqrt(3.0)]))) + a
    centre_xyz = a * np.asarray(CENTRES[lattice][centre], dtype=float)
    span = np.arange(-math.ceil(half / a) - 1, math.ceil(half / a) + 2)
    cells = np.stack(np.meshgrid(span, span, span, indexing="ij"), -1).reshape(-1, 1, 3)
    points = (a * (cells + _CUBIC_BASIS[lattice][None])).reshape(-1, 3) - centre_xyz
    keep = np.ones(len(points), dtype=bool)
    for normals, limit in zip(_NORMALS, bound):
        keep &= (points @ normals.T).max(1) < limit
    construction = f"{lattice}_cut_l{_ints(layers)}_{centre}"
    atoms = label(points[keep], lattice, f"cubic_cut (ase.cluster.{type(builder).__name__})", construction,
                  centre=centre)
    return retarget(atoms, element, scale)


def hcp_cut(layers, element: str | None = None, scale: float = 1.0) -> ase.Atoms:
    """An hcp crystal cut by the (0001), {10-10} and {11-20} planes (ase.cluster), centred on a site.

    layers: 3 ints, layers from the centre to each surface family.
    """
    cluster = HexagonalClosedPacked("Cu", [list(s) for s in HCP_SURFACES], [int(v) for v in layers],
                                    latticeconstant=(1.0, HCP_C))
    atoms = label(cluster.positions, "hcp", "ase.cluster.HexagonalClosedPacked", f"hcp_cut_l{_ints(layers)}",
                  centre="site", stacking="AB")
    return retarget(atoms, element, scale)


def hcp_block(size, element: str | None = None, scale: float = 1.0) -> ase.Atoms:
    """A block of size[0] x size[1] x size[2] hcp unit cells (2 atoms each), DeepStruc's hcp construction."""
    bulk = HexagonalBulk("Cu", size=tuple(int(v) for v in size), latticeconstant=(1.0, HCP_C))
    atoms = label(bulk.positions, "hcp", "ase.lattice.hexagonal.HexagonalClosedPacked", f"hcp_block_{_ints(size)}",
                  stacking="AB")
    return retarget(atoms, element, scale)


def icosahedron(shells: int, element: str | None = None, scale: float = 1.0) -> ase.Atoms:
    """Mackay icosahedron of ``shells`` shells: 1, 13, 55, 147, 309, ... atoms (ase.cluster.Icosahedron)."""
    cluster = Icosahedron("Cu", int(shells), latticeconstant=math.sqrt(2.0))
    atoms = label(cluster.positions, "icosahedral", "ase.cluster.Icosahedron", f"icosahedron_{int(shells)}")
    return retarget(atoms, element, scale)


def decahedron(p: int, q: int, r: int, element: str | None = None, scale: float = 1.0) -> ase.Atoms:
    """Ino/Marks decahedron (ase.cluster.Decahedron): p atoms on the (100) edges, q along the axis, r Marks
    re-entrance depth."""
    cluster = Decahedron("Cu", int(p), int(q), int(r), latticeconstant=math.sqrt(2.0))
    atoms = label(cluster.positions, "decahedral", "ase.cluster.Decahedron", f"decahedron_{_ints((p, q, r))}")
    return retarget(atoms, element, scale)


def octahedron(length: int, cutoff: int = 0, element: str | None = None, scale: float = 1.0) -> ase.Atoms:
    """fcc octahedron of ``length`` atoms per edge, corners truncated by ``cutoff`` layers (ase.cluster.Octahedron;
    cutoff 0: regular, length = 2 cutoff + 1: cuboctahedron, length = 3 cutoff + 1: regular truncated)."""
    cluster = Octahedron("Cu", int(length), int(cutoff), latticeconstant=math.sqrt(2.0))
    atoms = label(cluster.positions, "octahedral", "ase.cluster.Octahedron", f"octahedron_{_ints((length, cutoff))}")
    return retarget(atoms, element, scale)
