"""The distance route's latent interpolation (Anker, Kjaer et al. 2020, Figure 1): clusters decoded along the line
between two latents (the prior means of two PDFs, or the posterior means of two clusters), each trilaterated and
judged.

The DAE's latent space is only tied to the prior at its encoder's points, so decodings between them need not be
distances of any cluster; the CVAE's KL term fills the space between. A decoded intermediate is judged by
``residual``: the RMS difference [Angstrom] between the decoded pair distances and those of its trilaterated
coordinates, both at the first-shell scale of :func:`pdfsolve.routes.cvae.to_clusters` (0 for distances that some
cluster has), and ``physical``: two or more atoms, none closer than
:data:`pdfsolve.routes.sampling.MIN_DISTANCE`.
"""
from __future__ import annotations

import ase
import torch

from ..geometry import pair_distances
from ..models.distance_cvae import DistanceCVAE
from ..models.losses import first_atoms_mask
from ..structures.radii import bond_length
from ..target import Target
from .cvae import to_clusters
from .sampling import MIN_DISTANCE, closest_distance


@torch.no_grad()
def interpolate(model: DistanceCVAE, a: Target, b: Target, steps: int = 8, element: str = "Au") -> list[ase.Atoms]:
    """:func:`decode_line` between the prior means of the PDFs of ``a`` and ``b``."""
    model.eval()
    mu = [model.prior(model.pdf_input(target.r, target.g[None]))[0][0] for target in (a, b)]
    return decode_line(model, *mu, steps, element)


@torch.no_grad()
def decode_line(model: DistanceCVAE, start: torch.Tensor, end: torch.Tensor, steps: int = 8,
                element: str = "Au") -> list[ase.Atoms]:
    """Clusters of ``element`` decoded at ``steps`` evenly spaced points t in [0, 1] of the line between the latents
    ``start`` and ``end`` (H,), trilaterated in one batch. ``info``: t, n_atoms, residual [Angstrom], closest
    [Angstrom] (the shortest distance; inf below two atoms) and physical (see the module doc)."""
    if steps < 2:
        raise ValueError(f"steps must be >= 2, got {steps}")
    model.eval()
    t = torch.linspace(0.0, 1.0, steps, dtype=start.dtype)[:, None]
    decoded = model.decoded((1 - t) * start + t * end, t.new_zeros(steps))
    pos, scale = to_clusters(decoded, model.points, bond_length(element))
    mask = first_atoms_mask(decoded.n_atoms, pos.shape[1])
    pairs = mask[:, :, None] & mask[:, None, :] & ~torch.eye(pos.shape[1], dtype=torch.bool)
    error = (pair_distances(pos, mask) - decoded.pair.double() * scale[:, None, None]) ** 2
    residual = torch.sqrt((error * pairs).sum((1, 2)) / pairs.sum((1, 2)).clamp(min=1))
    closest = closest_distance(pos, mask)
    out = []
    for k in range(steps):
        n = int(decoded.n_atoms[k])
        atoms = ase.Atoms([element] * n, positions=pos[k, :n].numpy())
        atoms.info.update(t=float(t[k]), n_atoms=n, residual=float(residual[k]), closest=float(closest[k]),
                          physical=bool(n >= 2 and float(closest[k]) >= MIN_DISTANCE))
        out.append(atoms)
    return out
