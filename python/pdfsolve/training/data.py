"""Batches of one split of a dataset written by ``pdfsolve dataset build`` (see :mod:`pdfsolve.datasets.build`).

The split is read once into memory with :func:`pdfsolve.datasets.read_split`; the batches of an epoch are a
function of (seed, epoch) alone, so a run resumed in the middle of an epoch sees the same batches. Batches are
random, not grouped by size: size-sorted batches had slowed a count classifier's training about fourfold (the
graph encoder pads small groups of similar clusters instead, see :class:`pdfsolve.models.layers.GraphEncoder`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch

from ..datasets import read_split
from ..datasets.splits import SPLITS


def check_dataset(root: Path) -> None:
    """ValueError unless ``root`` holds a dataset's ``manifest.json``."""
    if not (root / "manifest.json").is_file():
        raise ValueError(f"{root} is not a pdfsolve dataset (no manifest.json); build one with "
                         "'pdfsolve dataset build'")


def max_atoms(data_dir) -> int:
    """Largest atom count over every split of a dataset directory (reads only the counts)."""
    root = Path(data_dir)
    check_dataset(root)
    counts = [0]
    for path in sorted(root.glob("*/shard_*.h5")):
        with h5py.File(path, "r") as f:
            counts.append(int(f["n_atoms"][()].max(initial=0)))
    return max(counts)


@dataclass
class Batch:
    """Clusters and their PDFs.

    Attributes:
        pos: (B, N, 3) float32 positions [Angstrom], centred on the centroid, 0 on padding; N is the batch's
            largest atom count.
        mask: (B, N) bool, True on real atoms (the first ``n_atoms`` slots).
        n_atoms: (B,) int64 atom counts.
        r: (nr,) float64 r grid of the PDFs [Angstrom].
        g: (B, nr) float32 G(r) [1/Angstrom^2].
        index: (B,) int64 rows of the split.
    """

    pos: torch.Tensor
    mask: torch.Tensor
    n_atoms: torch.Tensor
    r: torch.Tensor
    g: torch.Tensor
    index: torch.Tensor

    def __len__(self) -> int:
        return len(self.n_atoms)


class ShardData:
    """One split of a dataset directory, held in memory: ``pos`` (n, N_max, 3) centred [Angstrom], ``n_atoms`` (n,),
    ``r`` (nr,) [Angstrom], ``g`` (n, nr) [1/Angstrom^2] as tensors and ``motifs`` (the clusters' motif labels).

    Raises:
        ValueError: ``data_dir`` is not a dataset directory, ``split`` is unknown, or the split is empty.
    """

    def __init__(self, data_dir, split: str = "train"):
        root = Path(data_dir)
        check_dataset(root)
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        data = read_split(root, split)
        if not data:
            raise ValueError(f"{root}: the {split} split holds no clusters")
        self.split = split
        self.n_atoms = torch.as_tensor(data["n_atoms"], dtype=torch.int64)
        pos = torch.as_tensor(data["positions"], dtype=torch.float32)
        mask = torch.arange(pos.shape[1])[None, :] < self.n_atoms[:, None]
        centre = (pos * mask[..., None]).sum(1, keepdim=True) / self.n_atoms[:, None, None]
        self.pos = (pos - centre) * mask[..., None]
        self.r = torch.as_tensor(data["r"], dtype=torch.float64)
        self.g = torch.as_tensor(data["G"], dtype=torch.float32)
        self.motifs = [str(json.loads(label).get("motif", "")) for label in data["labels"]]

    def __len__(self) -> int:
        return len(self.n_atoms)

    @property
    def n_max(self) -> int:
        """Largest atom count of the split."""
        return int(self.n_atoms.max())

    def n_batches(self, batch_size: int) -> int:
        return -(-len(self) // batch_size)

    def plan(self, batch_size: int, seed: int = 0, epoch: int = 0, shuffle: bool = True) -> list[torch.Tensor]:
        """The rows of every batch of ``epoch``: a permutation drawn from ``default_rng([seed, epoch])`` cut into
        batches (the last one may be smaller), or the rows in order when not shuffled."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        rows = torch.as_tensor(np.random.default_rng([seed, epoch]).permutation(len(self))) if shuffle else \
            torch.arange(len(self))
        return list(rows.split(batch_size))

    def batch(self, index: torch.Tensor) -> Batch:
        """The clusters at ``index`` (1-D), padding trimmed to their largest atom count."""
        n = self.n_atoms[index]
        width = int(n.max())
        return Batch(self.pos[index, :width], torch.arange(width)[None, :] < n[:, None], n, self.r, self.g[index],
                     index)

    def batches(self, batch_size: int, seed: int = 0, epoch: int = 0, shuffle: bool = True, start: int = 0):
        """Yield the batches of :meth:`plan` from batch number ``start`` on."""
        for index in self.plan(batch_size, seed, epoch, shuffle)[start:]:
            yield self.batch(index)
