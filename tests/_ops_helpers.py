"""Shared helpers of the ops tests (random padded cluster batches)."""
from __future__ import annotations

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
    """Max abs difference relative to the max magnitude of ``b``."""
    a = a.double()
    b = b.double()
    scale = b.abs().max().item() if b.numel() else 0.0
    diff = (a - b).abs().max().item() if b.numel() else 0.0
    return diff / scale if scale > 0 else diff
