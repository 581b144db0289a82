"""The loop every generative route shares: decoded clusters are filtered, screened, labelled, refined and ranked.

1. A route proposes clusters (``ase.Atoms``, decoded from its model's samples, :func:`decoded_clusters`); those
   with two atoms closer than :data:`MIN_DISTANCE` are set aside (:func:`physical`).
2. Screening: the G(r) of every cluster (engine, fast mode, one batch, the target's Q range and r grid) is compared
   with the data after the best scale; the ``n_refine`` lowest Rwp go on (:func:`screen`).
3. Those are labelled with a motif (:class:`pdfsolve.classify.MotifClassifier`, when given), refined (scale,
   expansion, U_iso; delta2 too for the ``polish`` best) and ranked by :func:`pdfsolve.routes.ranking.rank_candidates`.
4. Optionally (``snap``), library clusters join the refinement and ranking, marked ``method = ROUTE+library``: the
   nearest (by fingerprint) to each screened cluster, and every library cluster whose atom count is within
   ``snap_width`` (a fraction, :data:`SNAP_WIDTH`; at least :data:`SNAP_MIN_ATOMS`) of a screened one's (of the best-fitting set-aside ones, when no
   decoded cluster is physical). The polish of the ranking (delta2) then picks the atom count among them. The model proposes sizes and
   shapes, the library supplies exact geometries of them: a hybrid of the route and cluster mining that refines
   tens of library clusters instead of thousands.

Each stage's wall time is kept in the result's ``seconds`` ("sample" for the route's own proposal step).
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
from ..target import Target
from .mine import cached_library
from .ranking import POLISH, RankedCandidates, rank_candidates

#: Decoded clusters with a pair of atoms closer than this are dropped [Angstrom].
MIN_DISTANCE = 1.5
#: Snapping adds the library clusters whose atom count is within this fraction of a refined sample's ...
SNAP_WIDTH = 0.1
#: ... and at least this many atoms either side of it (one layer of a small close-packed block; 8 lifted exact N
#: from 84 % to 98 % for clusters of 5-80 atoms, docs/deepstruc.md).
SNAP_MIN_ATOMS = 8


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


def physical(pos: torch.Tensor, n_atoms: torch.Tensor) -> torch.Tensor:
    """Indices (1-D) of the clusters (B, N, 3) [Angstrom] whose first ``n_atoms`` (B,) atoms are two or more, all
    finite (a decoder or solver can diverge) and none closer than MIN_DISTANCE."""
    mask = torch.arange(pos.shape[1], device=pos.device)[None, :] < n_atoms[:, None]
    finite = (torch.isfinite(pos).all(-1) | ~mask).all(1)
    ok = torch.zeros_like(finite)
    if bool(finite.any()):
        keep = torch.nonzero(finite).flatten()
        ok[keep] = closest_distance(pos[keep], mask[keep]) >= MIN_DISTANCE
    return torch.nonzero(ok & (n_atoms >= 2)).flatten()


def decoded_clusters(pos: torch.Tensor, n_atoms: torch.Tensor, element: str, method: str,
                     **per_sample) -> list[ase.Atoms]:
    """One ``ase.Atoms`` of ``element`` per cluster of a decoded batch, in batch order: the first ``n_atoms`` (B,)
    positions (B, N, 3) [Angstrom] of each (clusters of no atom are left out).

    Each carries ``info``: motif "unknown", ``method``, ``sample`` (its index in the batch), ``physical``
    (:func:`physical`: finite, two or more atoms, none closer than MIN_DISTANCE) and, for each keyword, its entry of
    that (B,) sequence (e.g. ``widen=`` the widening factors).
    """
    pos, n_atoms = pos.detach().cpu(), n_atoms.detach().cpu()
    usable = set(physical(pos, n_atoms).tolist())
    out = []
    for s, n in enumerate(n_atoms.tolist()):
        if n >= 1:
            atoms = ase.Atoms([element] * n, positions=pos[s, :n].double().numpy())
            atoms.info.update(motif=UNKNOWN, method=method, sample=s, physical=s in usable,
                              **{name: float(values[s]) for name, values in per_sample.items()})
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


class Clock:
    """Calls functions and keeps their wall times [s] by stage name."""

    def __init__(self):
        self.seconds = {}

    def __call__(self, stage: str, fn, *args):
        start = time.perf_counter()
        out = fn(*args)
        self.seconds[stage] = time.perf_counter() - start
        return out


def sizes_within(sizes, width: float) -> set[int]:
    """Every atom count n' >= 1 with |n' - n| <= max(round(width * n), SNAP_MIN_ATOMS) for an n of ``sizes``
    (``width``: a fraction; 0: the counts of ``sizes`` only)."""
    def half(n: int) -> int:
        return max(round(width * n), SNAP_MIN_ATOMS) if width > 0 else 0

    return {m for n in sizes for m in range(max(1, n - half(n)), n + half(n) + 1)}


def screen_and_rank(target: Target, propose, method: str, *, n_refine: int = 50,
                    classifier: MotifClassifier | None = None, snap: bool = False, snap_width: float = SNAP_WIDTH,
                    polish: int = POLISH, chunk_size: int = 512) -> RankedCandidates:
    """Steps 1-4 of the module doc: ``propose()`` returns the route's decoded clusters (:func:`decoded_clusters`);
    the physical ones are screened to ``n_refine``, labelled, refined and ranked (:func:`rank_candidates`, which
    polishes the ``polish`` best), with the library clusters they lead to when ``snap`` (sizes within ``snap_width``,
    a fraction). When none is physical, ``snap`` still refines the library clusters near the atom counts of the
    ``n_refine`` finite decoded clusters that fit best before refinement (a model can get the size right and the
    geometry wrong).

    Raises:
        ValueError: ``n_refine`` < 1, ``snap_width`` < 0, ``snap`` without a classifier, no physical decoded cluster
            (without ``snap``), or nothing to refine.
    """
    if n_refine < 1:
        raise ValueError(f"n_refine must be >= 1, got {n_refine}")
    if not snap_width >= 0:
        raise ValueError(f"snap_width must be >= 0, got {snap_width}")
    if snap and classifier is None:
        raise ValueError("snapping to the library needs a motif classifier")
    clock = Clock()
    proposed = clock("sample", propose)
    usable = [atoms for atoms in proposed if atoms.info["physical"]]
    if usable:
        kept = sized = clock("screen", screen, usable, target, n_refine)
        if classifier is not None:
            clock("classify", classifier.label, kept)
    elif snap and (finite := [atoms for atoms in proposed
                              if len(atoms) >= 2 and np.isfinite(atoms.positions).all()]):
        kept, sized = [], clock("screen", screen, finite, target, n_refine)
    else:
        raise ValueError(f"{method}: none of the decoded clusters is free of atoms closer than {MIN_DISTANCE} "
                         "Angstrom")
    if snap:
        library = classifier.snap_clusters(kept, sizes_within({len(atoms) for atoms in sized}, snap_width))
        for atoms in library:
            atoms.info["method"] = f"{method}+library"
        kept = kept + library
    if not kept:
        raise ValueError(f"{method}: no decoded cluster is free of atoms closer than {MIN_DISTANCE} Angstrom, and no "
                         f"library cluster has an atom count near theirs "
                         f"{sorted({len(a) for a in sized})}")
    return rank_candidates(target, kept, method, polish=polish, chunk_size=chunk_size, seconds=clock.seconds)
