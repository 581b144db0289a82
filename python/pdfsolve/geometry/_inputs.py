"""Validation of the position/mask inputs shared by the geometry functions."""
from __future__ import annotations

import torch


def as_batch(pos, mask=None, name: str = "pos") -> tuple[torch.Tensor, torch.Tensor, bool]:
    """(B, N, 3) positions and (B, N) bool mask from ``pos`` of shape (N, 3) or (B, N, 3).

    Returns ``(pos, mask, single)`` with padding positions set to zero; ``single`` says the input had no batch axis
    (squeeze the result).
    Integer or numpy positions become float64. Raises ValueError naming the problem for a wrong shape, a
    non-finite real position or a mask that does not match.
    """
    pos = torch.as_tensor(pos)
    if not pos.is_floating_point():
        pos = pos.to(torch.float64)
    single = pos.dim() == 2
    if single:
        pos = pos.unsqueeze(0)
    if pos.dim() != 3 or pos.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (N, 3) or (B, N, 3), got {tuple(pos.shape)}")
    if mask is None:
        mask = torch.ones(pos.shape[:2], dtype=torch.bool, device=pos.device)
    else:
        mask = torch.as_tensor(mask, device=pos.device)
        if single and mask.dim() == 1:
            mask = mask.unsqueeze(0)
        if mask.shape != pos.shape[:2]:
            raise ValueError(f"mask must have shape {tuple(pos.shape[:2])} to match {name}, got {tuple(mask.shape)}")
        mask = mask.to(torch.bool)
    bad = ~torch.isfinite(pos).all(-1) & mask
    if bool(bad.any()):
        b, i = (int(v) for v in bad.nonzero()[0])
        raise ValueError(f"{name} has a non-finite position (NaN or inf) at batch {b}, atom {i}")
    # padding content (possibly NaN) must not reach the reference path's autograd: zero it
    return torch.where(mask[..., None], pos, torch.zeros((), dtype=pos.dtype, device=pos.device)), mask, single
