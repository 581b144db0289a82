"""DeepStruc route (Kjaer, Anker et al. 2023): sample clusters from the CVAE's prior, refine them, rank by Rwp.

1. ``k`` latents, split evenly over the widening factors of the prior's sigma (the paper's 3, 5, 7), are decoded
   in one batch; each cluster takes the count head's most likely atom count (:meth:`pdfsolve.models.DeepStruc.sample`).
2. Decoded clusters with two atoms closer than :data:`MIN_DISTANCE` are dropped.
3. Screening: the G(r) of every cluster (engine, fast mode, one batch, the target's Q range and r grid) is compared
   with the data after the best scale; the ``n_refine`` lowest Rwp go on.
4. Those are labelled with a motif (:class:`pdfsolve.classify.MotifClassifier`, when given), refined (scale,
   expansion, U_iso) and ranked by :func:`pdfsolve.routes.ranking.rank_candidates`.
"""
from __future__ import annotations

import functools
import time

import ase
import numpy as np
import torch

from ..classify import UNKNOWN, MotifClassifier
from ..engine import ClusterBatch, simulate_pdf
from ..geometry import pair_distances
from ..metrics import rwp
from ..models import DeepStruc
from ..structures.radii import METALS
from ..target import Target
from .mine import cached_library
from .ranking import RankedCandidates, rank_candidates

#: Widening factors of the prior's sigma used by the paper.
WIDEN = (3.0, 5.0, 7.0)
#: Decoded clusters with a pair of atoms closer than this are dropped [Angstrom].
MIN_DISTANCE = 1.5


@functools.lru_cache(maxsize=8)
def library_classifier(element: str, min_atoms: int = 5, max_atoms: int = 200) -> MotifClassifier:
    """A motif classifier against cluster mining's (cached) library of ``element`` (built once per process)."""
    return MotifClassifier(cached_library([element], min_atoms, max_atoms))


def closest_distance(pos: torch.Tensor, mask: torch.Tensor, chunk: int = 128) -> torch.Tensor:
    """(B,) shortest interatomic distance of each cluster (B, N, 3) [Angstrom] (inf below two atoms), computed
    ``chunk`` clusters at a time to bound the (chunk, N, N) distance matrices."""
    out = []
    eye = torch.eye(pos.shape[1], dtype=torch.bool, device=pos.device)
    for p, m in zip(pos.split(chunk), mask.split(chunk)):
        d = pair_distances(p, m)
        pair = m[:, :, None] & m[:, None, :] & ~eye
        out.append(torch.where(pair, d, torch.full_like(d, np.inf)).flatten(1).amin(1))
    return torch.cat(out) if out else pos.new_zeros(0)


def propose(model: DeepStruc, target: Target, k: int, widen=WIDEN, element: str = "Au") -> list[ase.Atoms]:
    """Decoded clusters of ``element`` (``k`` in all, ceil(k / len(widen)) per widening factor) of two or more atoms,
    none closer than MIN_DISTANCE.

    Each carries ``info``: motif "unknown", method "deepstruc", its widening factor and its sample index.
    """
    samples = model.sample(target.r, target.g, -(-k // max(len(widen), 1)), widen)
    pos = samples.pos.detach().cpu()
    closest = closest_distance(pos, samples.mask.cpu())
    out = []
    for s in torch.nonzero((closest >= MIN_DISTANCE) & (samples.n_atoms.cpu() >= 2)).flatten().tolist():
        n = int(samples.n_atoms[s])
        atoms = ase.Atoms([element] * n, positions=pos[s, :n].double().numpy())
        atoms.info.update(motif=UNKNOWN, method="deepstruc", widen=float(samples.widen[s]), sample=s)
        out.append(atoms)
    return out


def screen(candidates: list[ase.Atoms], target: Target, keep: int) -> list[ase.Atoms]:
    """The ``keep`` candidates whose simulated G(r) (fast mode, one batch) best matches the data after the best
    scale (lowest Rwp), best first."""
    if len(candidates) <= keep:
        return list(candidates)
    batch = ClusterBatch.from_atoms(candidates, biso=target.params.biso, dtype=torch.float32)
    g = simulate_pdf(batch, target.params, mode="fast").G.double()
    obs = target.g.to(g.dtype)
    scale = ((g @ obs) / (g * g).sum(1).clamp(min=torch.finfo(g.dtype).tiny)).clamp(min=0)
    order = torch.argsort(rwp(obs, scale[:, None] * g), stable=True)[:keep]
    return [candidates[i] for i in order.tolist()]


class _Clock:
    """Calls functions and keeps their wall times [s] by stage name."""

    def __init__(self):
        self.seconds = {}

    def __call__(self, stage: str, fn, *args):
        start = time.perf_counter()
        out = fn(*args)
        self.seconds[stage] = time.perf_counter() - start
        return out


def solve(target: Target, model: DeepStruc, *, k: int = 1000, widen=WIDEN, n_refine: int = 50,
          element: str = "Au", classifier: MotifClassifier | None = None, chunk_size: int = 512) -> RankedCandidates:
    """Candidates of ``target`` from the model's prior, screened, labelled, refined and ranked (see the module doc).

    Raises:
        ValueError: an unknown metal, ``n_refine`` < 1, or no decoded cluster free of atoms closer than
            MIN_DISTANCE.
    """
    if element not in METALS:
        raise ValueError(f"no metallic radius for {element!r}; known metals: {' '.join(METALS)}")
    if n_refine < 1:
        raise ValueError(f"n_refine must be >= 1, got {n_refine}")
    clock = _Clock()
    proposed = clock("sample", propose, model, target, k, widen, element)
    if not proposed:
        raise ValueError(f"deepstruc: none of the {k} decoded clusters is free of atoms closer than "
                         f"{MIN_DISTANCE} Angstrom")
    kept = clock("screen", screen, proposed, target, n_refine)
    if classifier is not None:
        clock("classify", classifier.label, kept)
    return rank_candidates(target, kept, "deepstruc", chunk_size=chunk_size, seconds=clock.seconds)
