"""CbLDM route (Cao, Zhang, Wang et al. 2025): affinities sampled by latent diffusion, turned into coordinates,
refined and ranked by Rwp.

``k`` affinities W are sampled for the PDF in one batch (:meth:`pdfsolve.models.CbLDM.sample`: the conditional
prior's latent, the accelerated start and ``steps`` sampler steps); the atoms are counted from W's diagonal test and
their coordinates fitted to W by the batched L-BFGS-B of :func:`pdfsolve.reconstruct.laplacian_to_coordinates`
(MDS start), then refitted with atoms kept :data:`SEPARATION` bond lengths apart
(:func:`pdfsolve.reconstruct.separate_atoms`: a sampled W is too blurred to place the first shell, and the plain
fit crowded atoms within 1.5 Angstrom in every sample of the first test PDFs). Then the loop shared by every
generative route (:mod:`pdfsolve.routes.sampling`).
"""
from __future__ import annotations

import ase
import torch

from ..models import CbLDM
from ..reconstruct.laplacian import affinity_from_matrix, laplacian_to_coordinates, separate_atoms
from ..structures.radii import METALS, bond_length
from ..target import Target
from .ranking import RankedCandidates
from .sampling import decoded_clusters, screen_and_rank

#: Smallest interatomic distance of the refit, in bond lengths of the element (2 metallic radii).
SEPARATION = 0.85
#: L-BFGS-B iterations of that refit (it removes the clashes within tens; the rest only polishes a blurred W's fit).
SEPARATION_ITERATIONS = 60


def propose(model: CbLDM, target: Target, k: int, steps: int = 20, element: str = "Au", eta: float = 1.0,
            start: str = "prior") -> list[ase.Atoms]:
    """Clusters of ``element`` recovered from ``k`` sampled affinities (fit, then refit with atoms apart), each with
    ``info`` of :func:`pdfsolve.routes.sampling.decoded_clusters` (method "cbldm", the fit's ``misfit``)."""
    w = model.sample(target.r, target.g[None], k, steps=steps, start=start, eta=eta).double().cpu()
    _, mask = affinity_from_matrix(w, "affinity", model.params.sigma)
    fit = laplacian_to_coordinates(w, "affinity", model.params.sigma, mask=mask)
    fit = separate_atoms(fit.x, w, mask, SEPARATION * bond_length(element), sigma=model.params.sigma,
                         maxiter=SEPARATION_ITERATIONS)
    first = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)  # real atoms first, in their order
    pos, n_atoms = fit.x.gather(1, first[..., None].expand(-1, -1, 3)), mask.sum(1)
    return decoded_clusters(pos, n_atoms, element, "cbldm", misfit=fit.loss)


def solve(target: Target, model: CbLDM, *, k: int = 50, steps: int = 20, start: str = "prior", element: str = "Au",
          **ranking) -> RankedCandidates:
    """Candidates of ``target`` from ``k`` CbLDM samples (``start`` "prior": the accelerated start, else from noise;
    :meth:`pdfsolve.models.CbLDM.sample`), screened, labelled, refined and ranked (module doc); ``ranking``: options
    of :func:`pdfsolve.routes.sampling.screen_and_rank`.

    Raises:
        ValueError: an unknown metal, ``n_refine`` < 1, or no recovered cluster free of close atoms.
    """
    if element not in METALS:
        raise ValueError(f"no metallic radius for {element!r}; known metals: {' '.join(METALS)}")
    return screen_and_rank(target, lambda: propose(model, target, k, steps, element, start=start), "cbldm",
                           **ranking)
