"""Duplicate removal by sorted pair-distance lists, bucketed by a hash so that the cost is ~linear in clusters.

Two clusters are duplicates when they hold the same multiset of elements and their sorted pair-distance lists
agree to ``tol`` [Angstrom] element by element (``np.allclose(d1, d2, rtol=0, atol=tol)``): invariant to rotation,
reflection, translation and atom order. Instead of comparing every pair of clusters, each goes into a bucket
keyed by N, its element multiset and two summaries of its sorted distances quantised on a grid of width ``tol``:
the mean and the root mean square. Both move by at most tol when every distance moves by at most tol, so a
duplicate lies in the same or an adjacent cell; the 3 x 3 neighbouring cells are searched, which also covers
clusters on a bin edge. Only clusters sharing those cells are compared exactly.
"""
from __future__ import annotations

import math
from collections import Counter

import ase
import numpy as np
from scipy.spatial.distance import pdist

DEFAULT_TOL = 1e-3  # Angstrom


def sorted_distances(atoms: ase.Atoms) -> np.ndarray:
    """(N (N - 1) / 2,) sorted pair distances [Angstrom]."""
    return np.sort(pdist(atoms.get_positions()))


def _composition(atoms: ase.Atoms) -> tuple:
    return tuple(sorted(Counter(atoms.get_chemical_symbols()).items()))


def unique_indices(clusters, tol: float = DEFAULT_TOL) -> list[int]:
    """Indices of the first occurrence of each distinct cluster, in input order.

    clusters: a sequence of ``ase.Atoms``. tol: largest difference [Angstrom] between matching sorted distances.
    """
    if not tol > 0:
        raise ValueError(f"tol must be > 0 Angstrom, got {tol}")
    buckets: dict[tuple, list[np.ndarray]] = {}
    kept = []
    for index, atoms in enumerate(clusters):
        d = sorted_distances(atoms)
        mean, rms = (float(d.mean()), float(np.sqrt((d * d).mean()))) if len(d) else (0.0, 0.0)
        head = (len(atoms), _composition(atoms))
        cell = (math.floor(mean / tol), math.floor(rms / tol))
        if any(len(other) == len(d) and np.allclose(d, other, rtol=0.0, atol=tol)
               for di in (-1, 0, 1) for dj in (-1, 0, 1)
               for other in buckets.get((head, cell[0] + di, cell[1] + dj), ())):
            continue
        buckets.setdefault((head, *cell), []).append(d)
        kept.append(index)
    return kept


def dedupe(clusters, tol: float = DEFAULT_TOL) -> list[ase.Atoms]:
    """The distinct clusters of ``clusters`` (first occurrences kept, input order)."""
    clusters = list(clusters)
    return [clusters[i] for i in unique_indices(clusters, tol)]
