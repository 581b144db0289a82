"""DeepStruc (Kjaer, Anker et al., Digital Discovery 2023): a conditional VAE from G(r) to cluster coordinates.

* A prior network reads G(r) (1-D convolutions on the model's r grid) and gives the PDF embedding y and the prior
  p(z | y) = N(mu_p, sigma_p^2).
* A graph encoder (distance-gated message passing, :class:`pdfsolve.models.layers.GraphEncoder`) reads the true
  cluster during training and, with y, gives the posterior q(z | x, y).
* A decoder maps (z, y) to the centred coordinates of ``n_max`` atoms, and an atom-count head classifies
  N in 1..n_max from (z, y), trained on latents of the prior (what it sees at inference); a cluster of N atoms is
  the decoder's first N atoms.

The loss is the beta-weighted ELBO: the order- and orientation-free structure loss of
:mod:`pdfsolve.models.losses` on the first N_true decoded atoms (sorted distance lists, and with ``match_weight``
the positions after the best assignment and superposition), the count head's cross-entropy, and
beta KL(q || p). sigma = exp(logvar / 2) with |logvar| < 10 (the published model's widths could not fall below 1).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .inputs import model_grid, resample_pdf
from .layers import GraphEncoder, PDFEncoder, centred, gaussian_kl, gaussian_parameters, mlp, reparameterise
from .losses import count_targets, first_atoms_mask, matched_loss, structure_loss
from .params import ModelParams


@dataclass(frozen=True)
class DeepStrucParams(ModelParams):
    """Hyper-parameters of :class:`DeepStruc`.

    Attributes:
        n_max: atoms decoded (the largest cluster the model can produce).
        latent_dim: size of z. hidden: width of the graph encoder and the heads.
        graph_layers, n_rbf: message-passing layers and radial basis functions of the graph encoder.
        cutoff: edges join atoms closer than this many times the cluster's shortest bond (dimensionless).
        edge_max, radial_max: ranges of the bases of the edge distances and of each atom's distance to the
            centroid [Angstrom].
        pdf_rmin, pdf_rmax, pdf_rstep: the model's r grid of G(r) [Angstrom].
        pdf_channels, pdf_kernel, pdf_dim: the G(r) encoder (:class:`PDFEncoder`).
        decoder_hidden: widths of the decoder's hidden layers.
        radial_weight, nearest_weight, count_weight: weights of the radial and nearest-neighbour structure terms
            and of the count cross-entropy.
        match_weight: weight of :func:`pdfsolve.models.losses.matched_loss` (0: not computed).
        count_width: relative width of the count head's target, a Gaussian over N about the true count
            (:func:`pdfsolve.models.losses.count_targets`; 0: the true count alone). A near miss then costs less
            than a far one.
    """

    n_max: int = 200
    latent_dim: int = 4
    hidden: int = 64
    graph_layers: int = 3
    n_rbf: int = 32
    cutoff: float = 1.3
    edge_max: float = 6.0
    radial_max: float = 15.0
    pdf_rmin: float = 1.5
    pdf_rmax: float = 30.0
    pdf_rstep: float = 0.02
    pdf_channels: tuple = (16, 32, 64, 64, 64)
    pdf_kernel: int = 9
    pdf_dim: int = 128
    decoder_hidden: tuple = (256, 512)
    radial_weight: float = 1.0
    nearest_weight: float = 1.0
    count_weight: float = 1.0
    match_weight: float = 0.0
    count_width: float = 0.0

    def __post_init__(self):
        self._int_tuples("pdf_channels", "decoder_hidden")
        for name in ("n_max", "latent_dim", "hidden", "graph_layers", "n_rbf", "pdf_kernel", "pdf_dim"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"DeepStruc {name} must be >= 1, got {getattr(self, name)}")
        weights = (self.radial_weight, self.nearest_weight, self.count_weight, self.match_weight, self.count_width)
        if min(self.cutoff, self.edge_max, self.radial_max) <= 0 or min(weights) < 0:
            raise ValueError("DeepStruc cutoff, edge_max and radial_max must be > 0, the weights and count_width >= 0")
        model_grid(self.pdf_rmin, self.pdf_rmax, self.pdf_rstep)



@dataclass
class Samples:
    """Decoded clusters of the prior: ``pos`` (S, n_max, 3) centred [Angstrom] of which the first ``n_atoms``
    (S,) are the cluster, the widening factor (S,) of each, and z (S, latent_dim)."""

    pos: torch.Tensor
    n_atoms: torch.Tensor
    widen: torch.Tensor
    z: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        return first_atoms_mask(self.n_atoms, self.pos.shape[1])


class DeepStruc(nn.Module):
    """The conditional VAE; see the module doc. Inputs are :class:`pdfsolve.training.data.Batch` fields."""

    def __init__(self, params: DeepStrucParams):
        super().__init__()
        self.params = p = params
        self.register_buffer("grid", model_grid(p.pdf_rmin, p.pdf_rmax, p.pdf_rstep), persistent=False)
        self.pdf_encoder = PDFEncoder(len(self.grid), p.pdf_channels, p.pdf_kernel, p.pdf_dim)
        self.prior_head = mlp([p.pdf_dim, p.hidden, 2 * p.latent_dim])
        self.graph_encoder = GraphEncoder(p.hidden, p.hidden, p.graph_layers, p.n_rbf, p.cutoff, p.edge_max,
                                          p.radial_max)
        self.posterior_head = mlp([p.hidden + p.pdf_dim, p.hidden, 2 * p.latent_dim])
        self.decoder = mlp([p.latent_dim + p.pdf_dim, *p.decoder_hidden, 3 * p.n_max])
        self.count_head = mlp([p.latent_dim + p.pdf_dim, p.hidden, p.n_max])

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def embed_pdf(self, r, g: torch.Tensor) -> torch.Tensor:
        """PDF embedding y (B, pdf_dim) of G (B, nr) [1/Angstrom^2] on ``r`` (nr,) [Angstrom] (any scale)."""
        return self.pdf_encoder(resample_pdf(r, g.to(self.dtype), self.grid))

    def prior(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of p(z | y), each (B, latent_dim)."""
        return gaussian_parameters(self.prior_head(y))

    def posterior(self, pos: torch.Tensor, mask: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q(z | x, y) from positions (B, N, 3) [Angstrom], mask (B, N) and y."""
        h = self.graph_encoder(pos.to(self.dtype), mask)
        return gaussian_parameters(self.posterior_head(torch.cat([h, y], -1)))

    def decode(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(B, n_max, 3) decoded positions [Angstrom] (not yet centred on the first N atoms)."""
        return self.decoder(torch.cat([z, y], -1)).reshape(len(z), self.params.n_max, 3)

    def count_logits(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(B, n_max) logits of N = 1..n_max."""
        return self.count_head(torch.cat([z, y], -1))

    def loss(self, batch, beta: float) -> dict:
        """Batch means of the ELBO terms: ``loss`` = pair + radial_weight radial + nearest_weight nearest
        + count_weight count + beta kl (+ match_weight match) (the structure terms of :func:`pdfsolve.models.losses.structure_loss`).

        In training mode z is drawn from the posterior; in eval mode it is the posterior mean (deterministic). The
        count head reads a latent of the prior instead (drawn, or its mean in eval mode), as it does at inference: fed
        the posterior's latent, it learnt N from the graph encoder's view of the true cluster and then failed on
        prior samples (2.8 % exact N on validation against 8.3 % from the posterior, after 13 epochs).
        """
        p = self.params
        largest = int(batch.n_atoms.max())
        if largest > p.n_max:
            raise ValueError(f"a cluster of {largest} atoms exceeds the model's n_max = {p.n_max}")
        y = self.embed_pdf(batch.r, batch.g)
        mu_q, logvar_q = self.posterior(batch.pos, batch.mask, y)
        mu_p, logvar_p = self.prior(y)
        z = reparameterise(mu_q, logvar_q) if self.training else mu_q
        decoded = self.decode(z, y)[:, :largest]  # atoms past N unused
        structure = structure_loss(decoded, batch.pos, batch.mask)
        if p.match_weight > 0:
            structure["match"] = matched_loss(decoded, batch.pos, batch.mask)
        z_prior = reparameterise(mu_p, logvar_p) if self.training else mu_p
        n_atoms = batch.n_atoms.to(y.device)
        target = count_targets(n_atoms, p.n_max, p.count_width).to(y.dtype) if p.count_width > 0 else n_atoms - 1
        count = nn.functional.cross_entropy(self.count_logits(z_prior, y), target)
        out = {**{k: v.mean() for k, v in structure.items()}, "count": count,
               "kl": gaussian_kl(mu_q, logvar_q, mu_p, logvar_p).mean()}
        out["loss"] = (out["pair"] + p.radial_weight * out["radial"] + p.nearest_weight * out["nearest"]
                       + p.count_weight * count + beta * out["kl"] + p.match_weight * out.get("match", 0.0))
        return out

    @torch.no_grad()
    def sample(self, r, g: torch.Tensor, k: int, widen=(1.0,)) -> Samples:
        """``k`` clusters from the prior of one PDF G (nr,) on ``r`` at each widening factor of sigma.

        All len(widen) * k latents are decoded in one batch; each cluster's size is the count head's most likely N.
        """
        if g.dim() != 1:
            raise ValueError(f"sample takes one PDF G (nr,), got shape {tuple(g.shape)}")
        if k < 1 or not len(widen) or min(widen) <= 0:
            raise ValueError(f"need k >= 1 samples and positive widening factors, got {k} and {list(widen)}")
        y = self.embed_pdf(r, g[None])
        mu, logvar = self.prior(y)
        factors = torch.as_tensor(widen, dtype=mu.dtype, device=mu.device).repeat_interleave(k)
        z = reparameterise(mu.expand(len(factors), -1), logvar.expand(len(factors), -1), factors[:, None])
        ys = y.expand(len(factors), -1)
        n = self.count_logits(z, ys).argmax(-1) + 1
        pos = centred(self.decode(z, ys), first_atoms_mask(n, self.params.n_max))
        return Samples(pos, n, factors, z)
