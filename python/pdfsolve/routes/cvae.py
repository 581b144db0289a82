"""The distance route (Anker, Kjaer et al. 2020): distances decoded from the prior of a CVAE (or the DAE baseline's
prior mean), trilaterated into coordinates, then screened, refined and ranked by the loop every generative route
shares (:mod:`pdfsolve.routes.sampling`).

The model decodes unit-sphere distances, so the cluster's size must come from elsewhere: it is set by the first
shell. The trilaterated cluster is scaled so that its median nearest-neighbour distance equals the element's bond
length 2 r (metallic radius, :func:`pdfsolve.structures.radii.bond_length`); refinement then fits the expansion
(the study's lattice constants span 99-101 % of that value).
"""
from __future__ import annotations

import ase
import torch

from ..geometry import pair_distances
from ..models.distance_cvae import Decoded, DistanceCVAE
from ..models.losses import first_atoms_mask
from ..reconstruct.trilateration import trilaterate
from ..structures.radii import METALS, bond_length
from ..target import Target
from .ranking import RankedCandidates
from .sampling import decoded_clusters, screen_and_rank

#: Widening factors of the prior's sigma (as DeepStruc's route).
WIDEN = (1.0, 3.0, 5.0)


def first_shell_scale(x: torch.Tensor, n_atoms: torch.Tensor, bond) -> torch.Tensor:
    """(B,) factors [Angstrom per unit] taking each cluster x (B, N, 3) (its first ``n_atoms`` atoms) to a median
    nearest-neighbour distance of ``bond`` [Angstrom] (a number or (B,)); 1 for clusters of fewer than two atoms."""
    mask = first_atoms_mask(n_atoms, x.shape[1])
    d = pair_distances(x, mask)
    pair = mask[:, :, None] & mask[:, None, :] & ~torch.eye(x.shape[1], dtype=torch.bool, device=x.device)
    nearest = torch.where(pair, d, torch.full_like(d, torch.inf)).amin(2)
    median = torch.stack([torch.quantile(row[m], 0.5) if int(m.sum()) > 1 else row.new_tensor(torch.nan)
                          for row, m in zip(nearest, mask)])
    bond = torch.as_tensor(bond, dtype=x.dtype, device=x.device)
    return torch.where(n_atoms > 1, bond / median, torch.ones_like(median))


def to_clusters(decoded: Decoded, points: torch.Tensor, bond) -> tuple[torch.Tensor, torch.Tensor]:
    """Coordinates (S, n_max, 3) [Angstrom, 0 past n_atoms] of decoded distances and their scale (S,) [Angstrom
    per unit-sphere unit]: one batched trilateration (L-BFGS-B in C++) against the satellites ``points`` (P, 3),
    then the first-shell scale to ``bond`` [Angstrom] (a number or (S,))."""
    mask = first_atoms_mask(decoded.n_atoms, decoded.pair.shape[1])
    result = trilaterate(decoded.pair.double(), decoded.to_points.double(), points, mask)
    x = torch.where(mask[..., None], result.x, torch.zeros_like(result.x))
    scale = first_shell_scale(x, decoded.n_atoms, bond)
    return x * scale[:, None, None], scale


def propose(model: DistanceCVAE, target: Target, k: int, widen=WIDEN, element: str = "Au",
            method: str = "cvae") -> list[ase.Atoms]:
    """Trilaterated clusters of ``element`` decoded from the prior of the target's PDF (``k`` in all, split over the
    widening factors; the DAE decodes its prior mean once), each with ``info`` of
    :func:`pdfsolve.routes.sampling.decoded_clusters` (``method``, its ``widen``).
    """
    decoded = model.sample(target.r, target.g, -(-k // max(len(widen), 1)), widen)
    pos, _ = to_clusters(decoded, model.points, bond_length(element))
    return decoded_clusters(pos, decoded.n_atoms, element, method, widen=decoded.widen)


def solve(target: Target, model: DistanceCVAE, *, k: int = 100, widen=WIDEN, element: str = "Au",
          **ranking) -> RankedCandidates:
    """Candidates of ``target`` from the model's prior, screened, labelled, refined and ranked (see the module doc);
    the method is "dae" for the deterministic baseline, else "cvae". ``ranking``: options of
    :func:`pdfsolve.routes.sampling.screen_and_rank`.

    Raises:
        ValueError: an unknown metal, ``n_refine`` < 1, or no decoded cluster free of atoms closer than
            MIN_DISTANCE.
    """
    if element not in METALS:
        raise ValueError(f"no metallic radius for {element!r}; known metals: {' '.join(METALS)}")
    method = "dae" if model.deterministic else "cvae"
    return screen_and_rank(target, lambda: propose(model, target, k, widen, element, method), method, **ranking)
