"""A padded batch of atom clusters: the input of every engine and geometry op."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .parameters import BISO_PER_UISO


def _unique_rows(keys: torch.Tensor, dim=None):
    """Unique keys, the index of one occurrence of each, and the inverse map."""
    values, inverse = torch.unique(keys, dim=dim, return_inverse=True)
    first = torch.empty(len(values), dtype=torch.long, device=keys.device)
    first[inverse] = torch.arange(len(inverse), device=keys.device)
    return values, first, inverse


@dataclass
class ClusterBatch:
    """B clusters of up to N atoms, padded.

    Attributes:
        pos: (B, N, 3) positions [Angstrom].
        species: (B, N) int64 index into ``symbols``; -1 marks a padding slot.
        uiso: (B, N) isotropic mean-square displacements U_iso [Angstrom^2] (0 on padding).
        symbols: element symbol of each species index.
    """

    pos: torch.Tensor
    species: torch.Tensor
    uiso: torch.Tensor
    symbols: list[str]

    def __post_init__(self):
        if self.pos.dim() != 3 or self.pos.shape[-1] != 3:
            raise ValueError(f"pos must have shape (B, N, 3), got {tuple(self.pos.shape)}")
        if self.species.shape != self.pos.shape[:2]:
            raise ValueError(f"species must have shape {tuple(self.pos.shape[:2])}, got {tuple(self.species.shape)}")
        if self.uiso.shape != self.pos.shape[:2]:
            raise ValueError(f"uiso must have shape {tuple(self.pos.shape[:2])}, got {tuple(self.uiso.shape)}")
        if self.species.dtype != torch.int64:
            raise ValueError("species must be an int64 tensor")
        if self.pos.numel() and not torch.isfinite(self.pos).all():
            raise ValueError("atom positions contain NaN or inf")
        if self.uiso.numel() and (not torch.isfinite(self.uiso).all() or (self.uiso < 0).any()):
            raise ValueError("uiso must be finite and >= 0 Angstrom^2")

    @property
    def batch_size(self) -> int:
        return self.pos.shape[0]

    @property
    def n_species(self) -> int:
        return len(self.symbols)

    @property
    def mask(self) -> torch.Tensor:
        """(B, N) bool, True where a slot holds an atom."""
        return self.species >= 0

    @property
    def n_atoms(self) -> torch.Tensor:
        """(B,) number of atoms per cluster."""
        return self.mask.sum(1)

    def species_counts(self) -> torch.Tensor:
        """(B, S) number of atoms of each species per cluster."""
        counts = self.species.new_zeros((self.batch_size, max(self.n_species, 1)))
        return counts.scatter_add_(1, self.species.clamp(min=0), self.mask.long())

    def subset(self, index: torch.Tensor) -> "ClusterBatch":
        """The clusters at ``index`` (a 1-D index tensor), with the same species table."""
        return ClusterBatch(self.pos[index], self.species[index], self.uiso[index], list(self.symbols))

    def split_by_species(self) -> list[tuple[torch.Tensor, "ClusterBatch"]]:
        """Groups of clusters that hold the same set of elements, each with only those in its table.

        Returns ``[(index, sub_batch), ...]``: a batch of mono-metallic Au and Pt clusters becomes two
        one-species batches, so per-species-pair work scales with the elements a cluster really has.
        """
        present = self.species_counts() > 0  # (B, S)
        if self.batch_size == 0 or bool(present.all()):
            return [(torch.arange(self.batch_size, device=self.pos.device), self)]
        if self.n_species <= 62:  # one integer per element set: a 1-D unique is far cheaper than dim=0
            bits = torch.ones(self.n_species, dtype=torch.long, device=present.device) << torch.arange(
                self.n_species, device=present.device)
            _, first, inverse = _unique_rows((present.long() * bits).sum(1))
        else:
            _, first, inverse = _unique_rows(present, dim=0)
        groups = []
        for k in range(len(first)):
            index = torch.nonzero(inverse == k).flatten()
            kept = torch.nonzero(present[first[k]]).flatten()
            local = torch.full((max(self.n_species, 1) + 1,), -1, dtype=torch.long, device=self.pos.device)
            local[kept] = torch.arange(len(kept), device=self.pos.device)
            species = local[self.species[index]]  # index -1 (padding) reads the last entry, -1
            groups.append((index, ClusterBatch(self.pos[index], species, self.uiso[index],
                                               [self.symbols[i] for i in kept.tolist()])))
        return groups

    def to(self, dtype=None, device=None) -> "ClusterBatch":
        return ClusterBatch(self.pos.to(dtype=dtype, device=device), self.species.to(device=device),
                            self.uiso.to(dtype=dtype, device=device), list(self.symbols))

    @classmethod
    def from_atoms(cls, clusters, biso: float = 0.3, dtype=torch.float64, device=None,
                   use_atoms_biso: bool = False) -> "ClusterBatch":
        """Pad a list of ``ase.Atoms`` (or one) into a batch.

        biso: Biso [Angstrom^2] of every atom. With ``use_atoms_biso``, a per-atom array named
        ``"biso"`` or ``"uiso"`` stored on an Atoms object takes precedence.
        """
        if hasattr(clusters, "get_positions"):
            clusters = [clusters]
        clusters = list(clusters)
        symbols = sorted({s for atoms in clusters for s in atoms.get_chemical_symbols()})
        index = {s: k for k, s in enumerate(symbols)}
        b = len(clusters)
        n = max((len(a) for a in clusters), default=0)
        pos = np.zeros((b, n, 3))
        species = np.full((b, n), -1, dtype=np.int64)
        uiso = np.zeros((b, n))
        for k, atoms in enumerate(clusters):
            m = len(atoms)
            pos[k, :m] = atoms.get_positions()
            species[k, :m] = [index[s] for s in atoms.get_chemical_symbols()]
            u = np.full(m, biso / BISO_PER_UISO)
            if use_atoms_biso and "uiso" in atoms.arrays:
                u = np.asarray(atoms.arrays["uiso"], dtype=float)
            elif use_atoms_biso and "biso" in atoms.arrays:
                u = np.asarray(atoms.arrays["biso"], dtype=float) / BISO_PER_UISO
            uiso[k, :m] = u
        return cls(torch.as_tensor(pos, dtype=dtype, device=device),
                   torch.as_tensor(species, device=device),
                   torch.as_tensor(uiso, dtype=dtype, device=device), symbols)
