"""Train/validation/test splits grouped so the same cluster never sits in two splits.

"The same cluster" means the same construction up to element and lattice scale: an Au and a Pt
icosahedron of 55 atoms, or one built at 0.98 and 1.02 of the lattice constant, share a group.
"""
from __future__ import annotations

import hashlib
import json

import numpy as np

SPLITS = ("train", "validation", "test")
#: Labels that do not change a cluster's shape (the group ignores them).
_SHAPE_FREE = ("element", "elements", "symbols", "scale", "lattice_scale", "latticeconstant", "lattice_constant",
               "nn_distance", "bond_length", "source", "frame", "nframes", "name", "composition")


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in sorted(value.items()) if k not in _SHAPE_FREE}
    if isinstance(value, (list, tuple)):
        return [_strip(v) for v in value]
    return value


def label_key(info: dict) -> str:
    """The group key of a cluster's labels (``atoms.info``, or a dataset's stored label): the labels without
    element and scale ones, as sorted JSON ("{}" for no shape label)."""
    return json.dumps(_strip({k: v for k, v in info.items() if isinstance(v, (str, int, float, list, tuple, dict))}),
                      sort_keys=True, default=str)


def group_key(atoms) -> str:
    """A string that equals for clusters of the same construction up to element and lattice scale.

    Built from ``atoms.info`` without element and scale labels (:func:`label_key`); clusters without labels are
    keyed by their atom count and sorted, scale-free distances (rounded), so copies still group.
    """
    key = label_key(atoms.info)
    if key != "{}":
        return key
    pos = atoms.get_positions()
    d = np.sort(np.linalg.norm(pos[:, None] - pos[None], axis=-1)[np.triu_indices(len(pos), 1)])
    shape = np.round(d / d[0], 3).tolist() if len(d) else []
    return json.dumps({"n_atoms": len(pos), "shape": shape})


def assign_splits(keys, fractions=(0.8, 0.1, 0.1), seed: int = 0) -> np.ndarray:
    """Split index (0 train, 1 validation, 2 test) of every item, whole groups at a time.

    Groups are ordered by a seeded hash of their key and cut at the cumulative item fractions, so the
    assignment depends only on the keys, the fractions and the seed (not on the order of the items).
    """
    fractions = np.asarray(fractions, dtype=float)
    if fractions.shape != (3,) or (fractions < 0).any() or not np.isclose(fractions.sum(), 1.0):
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions.tolist()}")
    keys = list(keys)
    groups: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    order = sorted(groups, key=lambda k: hashlib.sha256(f"{seed}:{k}".encode()).hexdigest())
    bounds = np.cumsum(fractions) * len(keys)
    out = np.empty(len(keys), dtype=np.int64)
    done = 0
    for key in order:
        members = groups[key]
        split = int(np.searchsorted(bounds, done + 0.5 * len(members), side="right"))
        out[members] = min(split, 2)
        done += len(members)
    return out
