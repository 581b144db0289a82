"""Shared helpers of the ops tests (random padded cluster batches)."""
from __future__ import annotations

import contextlib

import torch


def random_batch(b: int, n: int, n_species: int = 2, dtype=torch.float64, box: float = 9.0, seed: int = 0,
                 pad: bool = True):
    """Positions (b, n, 3) in a cube of side ``box``, species with trailing padding in some clusters, U_iso."""
    g = torch.Generator().manual_seed(seed)
    pos = torch.rand(b, n, 3, generator=g, dtype=torch.float64) * box
    species = torch.randint(0, n_species, (b, n), generator=g)
    if pad and n > 2:
        for k in range(b):
            npad = int(torch.randint(0, n // 3 + 1, (1,), generator=g))
            if npad:
                species[k, n - npad:] = -1
                pos[k, n - npad:] = 0.0
    uiso = 0.002 + 0.01 * torch.rand(b, n, generator=g, dtype=torch.float64)
    return pos.to(dtype), species, uiso.to(dtype)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """Max abs difference relative to the max magnitude of ``b`` (inf when b is all zero and a is not)."""
    a = a.double()
    b = b.double()
    scale = b.abs().max().item() if b.numel() else 0.0
    diff = (a - b).abs().max().item() if b.numel() else 0.0
    if scale > 0:
        return diff / scale
    return float("inf") if diff > 0 else 0.0


def lattice_cluster(n: int = 600, seed: int = 7):
    """One cluster (1, n, 3) of n atoms on a rattled 2.5 A cubic lattice with two species, and the generator that
    drew it (for further draws from the same stream)."""
    g = torch.Generator().manual_seed(seed)
    lattice = torch.stack(torch.meshgrid(*[torch.arange(9.0, dtype=torch.float64)] * 3, indexing="ij"), -1)
    pos = (2.5 * lattice.reshape(-1, 3)[:n] + 0.2 * torch.randn(n, 3, generator=g, dtype=torch.float64))[None]
    species = torch.randint(0, 2, (1, n), generator=g)
    return pos, species, g


@contextlib.contextmanager
def at_least_two_threads():
    """Runs the block with torch on at least two threads (the atom-parallel paths need them)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(max(2, threads))
    try:
        yield
    finally:
        torch.set_num_threads(threads)
