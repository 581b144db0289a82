"""The cluster library: every motif's geometries within a size range, deduplicated, copied per element and scale.

Geometries are built once with unit bond length (element-independent), deduplicated, then scaled to
2 r scale [Angstrom] for every element and lattice scale. Metals never duplicate one another (the element is part
of a cluster's identity), so the library is (unique geometries) x (elements) x (scales).
"""
from __future__ import annotations

import itertools
import math

import ase

from . import motifs, stacking
from .dedupe import DEFAULT_TOL, unique_indices
from .motifs import CENTRES, MOTIFS, retarget
from .radii import D_BLOCK_28, METALS, bond_length

#: All 30 d-block metals of periods 4-6 (Sc-Zn, Y-Cd, La and Hf-Hg; the radii table's first 30 rows).
D_BLOCK_30: tuple[str, ...] = METALS[:30]

#: Presets reproducing the published libraries over our 28 d-block metals, tuned to their sizes: DeepStruc (about
#: 3,750 unique clusters, 5-200 atoms, ~134 per metal: site-centred cuts, square-based hcp blocks, regular
#: octahedra) and CbLDM (about 13,200, 5-256 atoms, ~470 per metal: every cut centre, hcp blocks and faceted cuts,
#: truncated octahedra). Both keep decahedra no longer along the 5-fold axis than wide (q <= p; the p = 1 rods
#: otherwise outnumber everything) and stacking-faulted close-packed cuts (faulted sequences only; pure fcc/hcp
#: are the lattice cuts). Measured (unique geometries per metal, x 28 metals):
#:   deepstruc: 142 per metal, 3,976 clusters (+6 %): fcc 11, bcc 28, sc 19, hcp 37, icosahedral 3,
#:              decahedral 20, octahedral 5, faulted 19.
#:   cbldm:     501 per metal, 14,028 clusters (+6 %): fcc 65, bcc 150, sc 61, hcp 85, icosahedral 3,
#:              decahedral 23, octahedral 15, faulted 99 (+6 small stacking cuts labelled fcc/hcp).
#: (Before tuning: deepstruc 534 and cbldm 650 per metal, 277 / 358 of them decahedra, no stacking faults.)
#: anker2020 (Anker, Kjaer et al., MLG 2020): site-centred fcc cuts of 2-8 layers per {100}, {110}, {111} family
#: (ase.cluster.FaceCenteredCubic), under 100 atoms, the 30 d-block metals of periods 4-6, 10 lattice scales evenly
#: spaced over 0.99-1.01. Measured: 199 layer triples give 8 distinct geometries (19, 43, 55, 63, 79, 85, 87 and 93
#: atoms), so 8 x 30 x 10 = 2,400 clusters against the study's 3,137 (its duplicate criterion is not published).
#: The study split its clusters at random, so every cluster of this preset is its own split group (``info``
#: "split_unit"): test clusters share their geometry with training clusters of other metals and scales.
PRESETS = {
    "deepstruc": dict(elements=D_BLOCK_28, min_atoms=5, max_atoms=200, centres=("site",), stacking=4,
                      stacking_motifs=("faulted",), hcp=("square_block",), truncated_octahedra=False,
                      decahedron_aspect=1.0),
    "cbldm": dict(elements=D_BLOCK_28, min_atoms=5, max_atoms=256, centres="all", stacking=5,
                  stacking_motifs=("faulted",), hcp=("square_block", "cut"), truncated_octahedra=True,
                  decahedron_aspect=1.0),
    "anker2020": dict(elements=D_BLOCK_30, min_atoms=2, max_atoms=99, centres=("site",), stacking=0,
                      motif_list=("fcc",), layers=(2, 8), scales=tuple(0.99 + 0.02 * k / 9 for k in range(10)),
                      split_per_cluster=True),
}
#: Sphere radii / prism sizes of the close-packed stacking cuts, in bond lengths.
STACKING_SIZES = tuple(1.0 + 0.5 * k for k in range(40))
#: hcp blocks of up to 8 unit cells per axis (DeepStruc's examples reach 7); ase's faceted hcp cuts to 5 layers
#: per surface family (ase's builder is slow: ~20 ms a cluster).
HCP_BLOCK_MAX, HCP_CUT_MAX = 8, 5


def _layer_caps(lattice: str, max_atoms: int) -> tuple[int, int, int]:
    """Largest useful layer count per family: beyond it the cut is either too big or saturated."""
    l0 = 1
    while len(motifs.cubic_cut(lattice, (l0, l0, l0))) <= max_atoms:
        l0 += 1  # every cut with all layers >= l0 holds > max_atoms
    spacing = motifs._PLANE_SPACING[lattice]
    reach = math.sqrt(3.0) * max(spacing) * (l0 + 0.1)  # any polytope with some family <= l0 lies inside
    return tuple(max(l0, math.ceil(reach / d)) for d in spacing)


def _cubic(lattice: str, centre: str, hi: int, layers=(1, None)):
    """Cubic cuts about ``centre`` (a key of ``motifs.CENTRES[lattice]``) over layer counts (h, k, l), each in
    ``layers`` = (lowest, highest or None), skipping counts past saturation (a plane outside the polytope the other
    families already bound: the {100} cube reaches sqrt(2) W along <110> and sqrt(3) W along <111>, the {110}
    dodecahedron sqrt(3/2) D along <111>)."""
    lo, top = layers
    caps = tuple(c if top is None else min(c, top) for c in _layer_caps(lattice, hi))
    d100, d110, d111 = motifs._PLANE_SPACING[lattice]
    for h in range(lo, caps[0] + 1):
        k_sat = math.ceil(math.sqrt(2.0) * d100 * (h + 0.1) / d110)
        for k in range(lo, min(caps[1], k_sat) + 1):
            l_sat = math.ceil(min(math.sqrt(3.0) * d100 * (h + 0.1), math.sqrt(1.5) * d110 * (k + 0.1)) / d111)
            previous = -1
            for l in range(lo, min(caps[2], l_sat) + 1):
                atoms = motifs.cubic_cut(lattice, (h, k, l), centre)
                if len(atoms) > hi:
                    break
                if len(atoms) != previous:  # counts grow with l: an equal count is the same cut
                    previous = len(atoms)
                    yield atoms
            if l == lo and len(atoms) > hi:
                break


def _pieces(motif_list, centres, max_layers: int) -> list[tuple]:
    """The independent pieces of :func:`unit_geometries`, in its order: ("icosahedral",), ("decahedral",),
    ("octahedral",), (lattice, centre) per cubic lattice and cut centre, ("hcp",), ("stacking", n_layers) per
    layer count."""
    pieces = [(m,) for m in ("icosahedral", "decahedral", "octahedral") if m in motif_list]
    for lattice in ("fcc", "bcc", "sc"):
        if lattice in motif_list:
            pieces += [(lattice, c) for c in CENTRES[lattice] if centres == "all" or c in centres]
    if "hcp" in motif_list:
        pieces.append(("hcp",))
    return pieces + [("stacking", n) for n in range(3, max_layers + 1)]


def _piece_geometries(piece: tuple, min_atoms: int, max_atoms: int, hcp, truncated_octahedra: bool,
                      decahedron_aspect: float | None, stacking_motifs, layers) -> list[ase.Atoms]:
    """The geometries of one piece of :func:`_pieces` (options as in :func:`unit_geometries`)."""
    lo, hi = min_atoms, max_atoms
    kind, out = piece[0], []
    if kind == "icosahedral":
        out += list(itertools.takewhile(lambda a: len(a) <= hi, (motifs.icosahedron(n) for n in itertools.count(1))))
    elif kind == "decahedral":
        for p in itertools.count(1):
            if len(motifs.decahedron(p, 1, 0)) > hi:
                break
            for q in itertools.count(1):
                if len(motifs.decahedron(p, q, 0)) > hi or (decahedron_aspect is not None
                                                             and q > decahedron_aspect * p):
                    break
                out += itertools.takewhile(lambda a: len(a) <= hi,
                                           (motifs.decahedron(p, q, r) for r in range(p + 1)))
    elif kind == "octahedral":
        for length in itertools.count(2):
            cutoffs = range((length - 1) // 2 + 1) if truncated_octahedra else range(1)
            sizes = [motifs.octahedron(length, c) for c in cutoffs]
            out += [a for a in sizes if len(a) <= hi]
            if min(len(a) for a in sizes) > hi:
                break
    elif kind in CENTRES:
        out += _cubic(kind, piece[1], hi, layers)
    elif kind == "hcp":
        if "block" in hcp or "square_block" in hcp:
            out += [motifs.hcp_block(s) for s in itertools.product(range(1, HCP_BLOCK_MAX + 1), repeat=3)
                    if 2 * s[0] * s[1] * s[2] <= hi and (s[0] <= s[1] if "block" in hcp else s[0] == s[1])]
        if "cut" in hcp:
            for l1, l2 in itertools.product(range(1, HCP_CUT_MAX + 1), repeat=2):
                for l3 in range(1, HCP_CUT_MAX + 1):
                    atoms = motifs.hcp_cut((l1, l2, l3))
                    if len(atoms) > hi:
                        break
                    out.append(atoms)
    else:  # ("stacking", n_layers)
        kept = [seq for seq in stacking.sequences(piece[1]) if stacking.classify(seq) in stacking_motifs]
        for seq, shape, centre in itertools.product(kept, stacking.SHAPES, stacking.CENTRES):
            out += itertools.takewhile(lambda a: len(a) <= hi, (stacking.close_packed(seq, size, shape, centre)
                                                                for size in STACKING_SIZES))
    return [a for a in out if lo <= len(a) <= hi]


def unit_geometries(min_atoms: int = 5, max_atoms: int = 200, motif_list=MOTIFS, centres="all",
                    max_layers: int = 6, hcp=("block", "cut"), truncated_octahedra: bool = True,
                    decahedron_aspect: float | None = None,
                    stacking_motifs=("fcc", "hcp", "faulted"), layers=(1, None), *, client=None) -> list[ase.Atoms]:
    """Every generated geometry (unit bond length) with min_atoms <= N <= max_atoms, before deduplication.

    centres: "all" or names from ``motifs.CENTRES`` for the cubic cuts. max_layers: stacking sequences of
    3..max_layers layers (0: none) cut as spheres and hexagonal prisms, on a site and on a hollow.
    hcp: "block" (DeepStruc's unit-cell blocks, a x b x c cells with a <= b), "square_block" (only a = b)
    and/or "cut" (ase's faceted hcp).
    Polyhedral motifs come first, so a geometry that is also a cubic cut keeps its polyhedral label when deduped.
    Decahedra: Marks re-entrance r <= p; ``decahedron_aspect`` (None: no limit) keeps q <= aspect * p, i.e.
    bounds the length along the 5-fold axis (q) relative to the (100) edge (p), dropping the long rods.
    stacking_motifs: which stacking cuts to keep, by ``stacking.classify`` ("fcc", "hcp", "faulted").
    layers: (lowest, highest or None) layer count of the cubic cuts per surface family.
    client: a ``distributed.Client``: each piece (a polyhedral motif, a cubic lattice about one cut centre, hcp, a
    stacking layer count; about 18 for every motif) is one task on its cluster; the same list, in the same order.
    """
    pieces = _pieces(motif_list, centres, max_layers)
    options = dict(min_atoms=min_atoms, max_atoms=max_atoms, hcp=hcp, truncated_octahedra=truncated_octahedra,
                   decahedron_aspect=decahedron_aspect, stacking_motifs=stacking_motifs, layers=layers)
    if client is None:
        parts = [_piece_geometries(piece, **options) for piece in pieces]
    else:
        parts = client.gather(client.map(_piece_geometries, pieces, **options))
    return [atoms for part in parts for atoms in part]


def build_library(elements=None, min_atoms: int = 5, max_atoms: int = 200, scales=(1.0,), motif_list=MOTIFS,
                  centres="all", stacking_layers: int = 6, *, preset: str | None = None,
                  tol: float = DEFAULT_TOL, client=None) -> list[ase.Atoms]:
    """The deduplicated cluster library.

    Args:
        elements: metal symbols (default: every metal of the radii table, ``radii.METALS``).
        min_atoms, max_atoms: size range (inclusive); up to a few thousand atoms.
        scales: lattice scales (bond length 2 r scale [Angstrom]), e.g. (0.97, 1.0, 1.03).
        motif_list: subset of ``motifs.MOTIFS``; close-packed stacking cuts are added by ``stacking_layers``.
        centres: "all" or names from ``motifs.CENTRES`` for the fcc/bcc/sc cuts.
        stacking_layers: sequences of 3..stacking_layers layers (0: none).
        preset: a key of ``PRESETS``: replaces elements, size range, centres and stacking (and, where the preset
            names them, motifs, layers and scales) by its values.
        tol: duplicate tolerance [Angstrom] on sorted pair distances (applied at the shortest bond requested).
        client: a ``distributed.Client``: the unit geometries, most of the time (about 17 of the 20 s of one metal
            at 5-200 atoms), are generated on its cluster, one task per piece (see :func:`unit_geometries`);
            deduplication and the copies per element and scale stay here. The same library, in the same order.

    Returns:
        ``ase.Atoms`` ordered by element, scale, then geometry; labels in ``info`` (see ``motifs.label``).
    """
    options = dict(hcp=("block", "cut"), truncated_octahedra=True)
    split_per_cluster = False
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}")
        p = dict(PRESETS[preset])
        elements, min_atoms, max_atoms = p.pop("elements"), p.pop("min_atoms"), p.pop("max_atoms")
        centres, stacking_layers = p.pop("centres"), p.pop("stacking")
        motif_list, scales = p.pop("motif_list", motif_list), p.pop("scales", scales)
        split_per_cluster = p.pop("split_per_cluster", False)
        options.update(p)
    elements = tuple(METALS if elements is None else elements)
    geometries = unit_geometries(min_atoms, max_atoms, motif_list, centres, stacking_layers, **options,
                                 client=client)
    shortest = min(bond_length(e, s) for e in elements for s in scales)
    geometries = [geometries[i] for i in unique_indices(geometries, tol / shortest)]
    clusters = [retarget(g, e, s) for e in elements for s in scales for g in geometries]
    if split_per_cluster:  # a label the split groups keep (see pdfsolve.datasets.splits): one group per cluster
        for atoms in clusters:
            atoms.info["split_unit"] = f"{atoms.info['elements']}@{atoms.info['lattice_scale']:.6f}"
    return clusters
