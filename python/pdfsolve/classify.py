"""Motif labels of any cluster: the motif of the nearest library cluster by a fingerprint that ignores orientation,
atom order and scale, or "unknown" when no library cluster is near.

The fingerprint is the pair-distance distribution on a log scale: every distance d_ij is divided by the cluster's
bond length d1 (the mean first-shell distance, robust to rattling), and log(d_ij / d1) is histogrammed from
0.7 to 10 bond lengths, smoothed by a Gaussian of width 0.03 (a relative width, so that a small error of d1 moves
far peaks no more than near ones) and counted per atom. Fingerprints are compared by their relative L2 distance.
On the 501 unit geometries of the cbldm preset, copies rattled by 0.05 Angstrom (at a 2.8 Angstrom bond) were
all labelled with their own motif (largest distance 0.38), while random clusters of 20-150 atoms stayed at 0.52 or
more from every library cluster: hence :data:`MAX_DISTANCE`.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.spatial.distance import pdist, squareform

UNKNOWN = "unknown"
#: Histogram of log(d / d1): range (in bond lengths), bin width and smoothing width (dimensionless).
LOG_RANGE = (0.7, 10.0)
LOG_STEP = 0.005
LOG_SIGMA = 0.03
#: Largest relative fingerprint distance to the nearest library cluster that still gives its motif.
MAX_DISTANCE = 0.45
_EDGES = np.arange(math.log(LOG_RANGE[0]), math.log(LOG_RANGE[1]) + LOG_STEP, LOG_STEP)


def bond_length(positions) -> float:
    """Mean of the interatomic distances within 0.8-1.2 times the median nearest-neighbour distance [Angstrom]."""
    d = squareform(pdist(np.asarray(positions, dtype=np.float64)))
    np.fill_diagonal(d, np.inf)
    nearest = np.median(d.min(1))
    return float(d[(d > 0.8 * nearest) & (d < 1.2 * nearest)].mean())


def fingerprint(positions) -> np.ndarray:
    """The scale-free pair-distance fingerprint (see the module doc) of one cluster (N, 3) [Angstrom], N >= 2.

    Raises ValueError for fewer than two atoms, non-finite or coincident positions.
    """
    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[1] != 3 or len(pos) < 2:
        raise ValueError(f"a fingerprint needs positions of shape (N, 3) with N >= 2, got {pos.shape}")
    if not np.isfinite(pos).all():
        raise ValueError("positions contain NaN or inf")
    d = pdist(pos)
    if d.min() <= 0:
        raise ValueError("a cluster has coincident atoms")
    counts, _ = np.histogram(np.log(d / bond_length(pos)), bins=_EDGES)
    return gaussian_filter1d(counts * (2.0 / len(pos)), LOG_SIGMA / LOG_STEP)


class MotifClassifier:
    """Nearest-neighbour motif labels against ``library`` (``ase.Atoms`` with ``info["motif"]``, any element/scale)."""

    def __init__(self, library, max_distance: float = MAX_DISTANCE):
        library = list(library)
        if not library:
            raise ValueError("the classifier's library is empty")
        if not max_distance > 0:
            raise ValueError(f"max_distance must be > 0, got {max_distance}")
        self.library = library
        self.motifs = [str(a.info.get("motif", UNKNOWN)) for a in library]
        self.constructions = [str(a.info.get("construction", "")) for a in library]
        self.fingerprints = np.stack([fingerprint(a.positions) for a in library])
        self.max_distance = max_distance

    def nearest(self, positions) -> tuple[int, float]:
        """Index of the nearest library cluster and its relative fingerprint distance (dimensionless)."""
        f = fingerprint(positions)
        distance = np.linalg.norm(self.fingerprints - f, axis=1) / max(np.linalg.norm(f), 1e-300)
        k = int(np.argmin(distance))
        return k, float(distance[k])

    def label(self, clusters) -> list[str]:
        """Motif of each cluster (``ase.Atoms``), also stored in its ``info`` with ``motif_distance``, ``nearest``
        (the library cluster's construction) and ``nearest_index``; "unknown" beyond ``max_distance``."""
        out = []
        for atoms in clusters:
            k, distance = self.nearest(atoms.positions)
            motif = self.motifs[k] if distance <= self.max_distance else UNKNOWN
            atoms.info.update(motif=motif, motif_distance=distance, nearest=self.constructions[k], nearest_index=k)
            out.append(motif)
        return out

    def snap_clusters(self, clusters, sizes=()) -> list:
        """Copies of the distinct library clusters nearest to each of ``clusters`` (labelled by :meth:`label`
        first), then of every library cluster whose atom count is in ``sizes``, in that order. A nearest one carries
        ``info["motif_distance"]``, that of the cluster that chose it.
        """
        chosen = {}
        for atoms in clusters:
            k = atoms.info["nearest_index"]
            if k not in chosen:
                chosen[k] = self.library[k].copy()
                chosen[k].info["motif_distance"] = atoms.info["motif_distance"]
        for k, atoms in enumerate(self.library):
            if len(atoms) in sizes and k not in chosen:
                chosen[k] = atoms.copy()
        return list(chosen.values())
