"""Farthest-point sampling: sub-sets that cover a data set evenly in a feature space (Fung et al. 2022 took their
300 / 3,000 / 30,000 training sets from 100,000 Pt10 structures this way, by fingerprint).

The order is greedy: start from one point, then repeatedly take the point farthest (Euclidean) from those taken.
Its prefixes are the sub-sets, so one run of k gives every smaller size too.
"""
from __future__ import annotations

import numpy as np


def farthest_point_order(features, k: int, start: int = 0) -> np.ndarray:
    """Indices (k,) of ``features`` (M, D) in farthest-point order from row ``start`` (ties: the lowest index).

    One pass per point over the M running minimum distances: O(k M D) time, O(M) memory.
    """
    x = np.asarray(features)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"features must have shape (M, D) with M >= 1, got {x.shape}")
    if not 1 <= k <= len(x) or not 0 <= start < len(x):
        raise ValueError(f"need 1 <= k <= {len(x)} and 0 <= start < {len(x)}, got k={k}, start={start}")
    order = np.empty(k, dtype=np.int64)
    order[0] = start
    nearest = ((x - x[start]) ** 2).sum(1)
    for i in range(1, k):
        order[i] = int(np.argmax(nearest))
        np.minimum(nearest, ((x - x[order[i]]) ** 2).sum(1), out=nearest)
    return order


def sampling_features(fingerprints, dims: int = 32, sample: int = 20000, seed: int = 0) -> np.ndarray:
    """(M, dims) float32 features for farthest-point sampling of fingerprints (M, P): log(1 + v / s_e) with s_e
    the median of entry e (the entries span ten orders of magnitude), standardised, then projected on the top
    ``dims`` principal components (fitted on ``sample`` random rows) to make each pass cheap."""
    v = np.asarray(fingerprints, dtype=np.float64)
    if v.ndim != 2 or bool((v < 0).any()) or not np.isfinite(v).all():
        raise ValueError("fingerprints must be a finite (M, P) array >= 0")
    scale = np.median(v, axis=0)
    y = np.log1p(v / np.where(scale > 0, scale, 1.0))
    y = (y - y.mean(0)) / np.where(y.std(0) > 0, y.std(0), 1.0)
    rows = np.random.default_rng(seed).permutation(len(y))[:sample]
    _, _, vt = np.linalg.svd(y[rows], full_matrices=False)
    return (y @ vt[:dims].T).astype(np.float32)
