"""Gaussian affinity and graph Laplacian of clusters, and the 4 x 128 x 128 block layout of CbLDM."""
from __future__ import annotations

import math

import torch

from .. import ops
from ..ops.reference_geometry import LAPLACIAN_FORMS
from ._inputs import as_batch

#: sigma in Angstrom of the CbLDM study's affinity exp(-d^2 / 260 A^2) = exp(-d^2 / (2 sigma^2)).
CBLDM_SIGMA = math.sqrt(130.0)


def graph_laplacian(pos, sigma=CBLDM_SIGMA, mask=None, form: str = "laplacian") -> torch.Tensor:
    """Gaussian affinity or graph Laplacian of one cluster (N, 3) -> (N, N) or a padded batch -> (B, N, N).

    W_ij = exp(-d_ij^2 / (2 sigma^2)) with d in Angstrom and ``sigma`` in Angstrom (a number or one per cluster,
    (B,); default the CbLDM value sqrt(130) ~ 11.4 A). ``form``:

    * ``"affinity"``: W with W_ii = 1 for real atoms (CbLDM's representation; the atom count is the number of
      non-zero diagonal entries);
    * ``"laplacian"``: L = D - W, D_ii = sum_{j != i} W_ij;
    * ``"normalized"``: I - D^-1/2 W D^-1/2 (no self-loops; an isolated atom gives a zero row).

    Padding rows and columns (``mask`` False) are zero. Differentiable in ``pos`` and in ``sigma`` when it is a
    tensor that requires grad.
    """
    if form not in LAPLACIAN_FORMS:
        raise ValueError(f"form must be one of {sorted(LAPLACIAN_FORMS)}, got {form!r}")
    pos, mask, single = as_batch(pos, mask)
    sigma = torch.as_tensor(sigma, dtype=pos.dtype, device=pos.device)
    if sigma.dim() == 0:
        sigma = sigma.expand(pos.shape[0])
    if sigma.shape != pos.shape[:1]:
        raise ValueError(f"sigma must be a number or have shape ({pos.shape[0]},), got {tuple(sigma.shape)}")
    if not bool((torch.isfinite(sigma) & (sigma > 0)).all()):
        raise ValueError("sigma must be finite and > 0 (Angstrom)")
    out = ops.graph_laplacian(pos, mask, sigma.contiguous(), LAPLACIAN_FORMS[form])
    return out[0] if single else out


def pad_square(mat: torch.Tensor, size: int = 256) -> torch.Tensor:
    """Zero-pads (..., n, n) matrices to (..., size, size); raises for n > size."""
    n = mat.shape[-1]
    if mat.shape[-2] != n:
        raise ValueError(f"expected square matrices (..., n, n), got {tuple(mat.shape)}")
    if n > size:
        raise ValueError(f"a {n} x {n} matrix does not fit in {size} x {size} (more atoms than the layout holds)")
    return torch.nn.functional.pad(mat, (0, size - n, 0, size - n))


def to_blocks(mat: torch.Tensor, block: int = 128) -> torch.Tensor:
    """Lays (..., 2b, 2b) matrices out as (..., 4, b, b) blocks [top-left, top-right, bottom-left, bottom-right].

    With the default b = 128 a padded 256 x 256 affinity becomes CbLDM's 4 x 128 x 128 image. Inverse:
    :func:`from_blocks`.
    """
    if mat.shape[-2:] != (2 * block, 2 * block):
        raise ValueError(f"expected (..., {2 * block}, {2 * block}) matrices, got {tuple(mat.shape)}")
    lead = mat.shape[:-2]
    grid = mat.reshape(*lead, 2, block, 2, block).transpose(-3, -2)  # (..., row block, col block, b, b)
    return grid.reshape(*lead, 4, block, block)


def from_blocks(blocks: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`to_blocks`: (..., 4, b, b) -> (..., 2b, 2b)."""
    if blocks.dim() < 3 or blocks.shape[-3] != 4 or blocks.shape[-2] != blocks.shape[-1]:
        raise ValueError(f"expected (..., 4, b, b) blocks, got {tuple(blocks.shape)}")
    lead, b = blocks.shape[:-3], blocks.shape[-1]
    grid = blocks.reshape(*lead, 2, 2, b, b).transpose(-3, -2)  # (..., row block, b, col block, b)
    return grid.reshape(*lead, 2 * b, 2 * b)
