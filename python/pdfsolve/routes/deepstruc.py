"""DeepStruc route (Kjaer, Anker et al. 2023): sample clusters from the CVAE's prior, refine them, rank by Rwp.

``k`` latents, split evenly over the widening factors of the prior's sigma (the paper's 3, 5, 7), are decoded in
one batch; each cluster takes the count head's most likely atom count (:meth:`pdfsolve.models.DeepStruc.sample`).
Then the loop shared by every generative route (:mod:`pdfsolve.routes.sampling`): clusters with atoms closer than
MIN_DISTANCE are set aside, the rest screened, labelled, refined and ranked.
"""
from __future__ import annotations

import ase

from ..models import DeepStruc
from ..structures.radii import METALS
from ..target import Target
from .ranking import RankedCandidates
from .sampling import decoded_clusters, screen_and_rank

#: Widening factors of the prior's sigma used by the paper.
WIDEN = (3.0, 5.0, 7.0)


def propose(model: DeepStruc, target: Target, k: int, widen=WIDEN, element: str = "Au") -> list[ase.Atoms]:
    """Decoded clusters of ``element`` (``k`` in all, ceil(k / len(widen)) per widening factor), each with ``info``
    of :func:`pdfsolve.routes.sampling.decoded_clusters` (method "deepstruc", its ``widen``)."""
    samples = model.sample(target.r, target.g, -(-k // max(len(widen), 1)), widen)
    return decoded_clusters(samples.pos, samples.n_atoms, element, "deepstruc", widen=samples.widen)


def solve(target: Target, model: DeepStruc, *, k: int = 1000, widen=WIDEN, element: str = "Au",
          **ranking) -> RankedCandidates:
    """Candidates of ``target`` from the model's prior, screened, labelled, refined and ranked (see the module doc);
    ``ranking``: options of :func:`pdfsolve.routes.sampling.screen_and_rank`.

    Raises:
        ValueError: an unknown metal, ``n_refine`` < 1, or no decoded cluster free of atoms closer than
            MIN_DISTANCE.
    """
    if element not in METALS:
        raise ValueError(f"no metallic radius for {element!r}; known metals: {' '.join(METALS)}")
    return screen_and_rank(target, lambda: propose(model, target, k, widen, element), "deepstruc", **ranking)
