"""The distance route's generative models (Anker, Kjaer et al., MLG 2020): a conditional VAE and its deterministic
autoencoder baseline that predict the distances of a cluster on the unit sphere, not its coordinates.

* Representation (:mod:`pdfsolve.models.unit_sphere`): the cluster moved onto the unit sphere, its atoms in a fixed
  order, each described by its distances to all atoms (n_max) and to ``satellites`` fixed points (P).
* Encoder: fully connected layers [F, 384, 256, 128, 2H] on every atom's features (F = n_max + P + 1: the
  distances and a 1 marking a real atom) concatenated with the PDF upsampled by three gated 1-D transposed
  convolutions (8 D values), averaged over the real atoms: q(z | x, y).
* Prior network: three gated 1-D convolutions on the PDF (D points), pooled to lengths 48 and 24, the last one
  24 wide giving 2H values: p(z | y). ``prior_pool`` "avg" averages the windows, "max" keeps their largest value:
  G(r) oscillates about 0 within a window, so at initialisation, when the gates are near-linear, averaging leaves
  the network almost blind to the PDF, and it began to tell the cluster sizes apart only after ~5000 steps fitting
  fixed posterior means; max pooling keeps the peak envelope, which encodes the size, and began after ~1500.
* Decoder: fully connected [H, 128, 256, 384, 512] and a linear output of the upper pair distances, the satellite
  distances and one logit per atom slot saying whether an atom sits there (the atom count).
* Loss: mean squared errors of the pair and satellite distances over the real atoms, the slots' binary
  cross-entropy, and beta times D(q, p): KL(q || p) (:class:`DistanceCVAE`) or the squared distance between the
  encoder's and the prior's latent means (:class:`DistanceDAE`, which never samples).
  In that joint term the prior network's only gradient is beta dD/dp, so with the study's small beta (1e-3) it
  barely learns, and decoding the prior (all the route does) goes wrong. ``prior_weight`` > 0 splits the term with
  stop-gradients (sg): beta D(q, sg(p)) + prior_weight F(sg(q), p), so the encoder still feels beta while the prior
  network fits the posterior at full rate, whatever beta (0: the study's joint term); the loss's value is
  beta D(q, p) either way. For the DAE F = D. For the CVAE, F weights each latent axis's KL by sg(sigma_p^2)
  (beta-NLL with beta = 1, Seitzer et al., ICLR 2022): KL's pull on the prior mean, (mu_p - mu_q) / sigma_p^2,
  fades once the prior is wide, and a prior that started by covering every posterior with one wide Gaussian stayed
  so, its output the same for every PDF (27 epochs with F = KL); with the weight the mean is pulled by
  mu_p - mu_q, and sigma_p^2 still goes to the KL's optimum sigma_q^2 + (mu_q - mu_p)^2.
  With ``pdf_weight`` > 0 the pair distribution of the decoded distances (in Angstrom: scaled by the true cluster's radius) is compared with the
  true cluster's (:func:`pair_distribution`): the PDF-consistency term the study proposed.

The atomic number, a node feature of the study, is left out: the clusters are mono-metallic and decoded in
unit-sphere units, and the element only sets the scale, which the route takes from the metallic radius.
G(r) is read on the model's r grid scaled to max|G| = 1 (:mod:`pdfsolve.models.inputs`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .gated import GatedConv1d
from .inputs import model_grid, resample_pdf
from .layers import gaussian_kl, gaussian_parameters, mlp, reparameterise
from .losses import first_atoms_mask
from .params import ModelParams
from .unit_sphere import distance_features, ordered_unit_sphere, satellites, symmetric_pairs, upper_pairs


#: Initial log sigma^2 of the posterior.
INITIAL_LOGVAR = -4.0
#: The prior network's pooling, by DistanceParams.prior_pool.
POOLS = {"avg": nn.functional.adaptive_avg_pool1d, "max": nn.functional.adaptive_max_pool1d}


@dataclass(frozen=True)
class DistanceParams(ModelParams):
    """Hyper-parameters of :class:`DistanceCVAE` and :class:`DistanceDAE` (the study's values by default).

    Attributes:
        n_max: atom slots decoded (the largest cluster). latent_dim: H. satellites: P.
        pdf_rmin, pdf_rmax, pdf_rstep: the model's r grid of G(r) (D points) [Angstrom].
        channels: channels of the gated convolutions. kernel: their width (odd).
        encoder_hidden, decoder_hidden, prior_lengths: the layer sizes of the module doc.
        prior_pool: "avg" or "max", the prior network's pooling (module doc).
        slot_weight: weight of the slots' cross-entropy.
        prior_weight: weight of the prior network's stop-gradient fit F to the posterior (0: the joint beta term).
        pdf_weight: weight of the PDF-consistency term (0: not computed). pdf_sigma: its peak width [Angstrom].
    """

    n_max: int = 99
    latent_dim: int = 2
    satellites: int = 11
    pdf_rmin: float = 1.0
    pdf_rmax: float = 24.5
    pdf_rstep: float = 0.1
    channels: int = 8
    kernel: int = 5
    encoder_hidden: tuple = (384, 256, 128)
    decoder_hidden: tuple = (128, 256, 384, 512)
    prior_lengths: tuple = (48, 24)
    prior_pool: str = "avg"
    slot_weight: float = 1.0
    prior_weight: float = 0.0
    pdf_weight: float = 0.0
    pdf_sigma: float = 0.1

    def __post_init__(self):
        self._int_tuples("encoder_hidden", "decoder_hidden", "prior_lengths")
        if min(self.n_max - 1, self.latent_dim, self.channels, *self.encoder_hidden, *self.decoder_hidden) < 1:
            raise ValueError("distance model: n_max must be >= 2 and latent_dim, channels and layer sizes >= 1")
        if self.satellites < 2 or self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError(f"distance model: need >= 2 satellites and an odd kernel, got {self.satellites}, "
                             f"{self.kernel}")
        if len(self.prior_lengths) != 2 or min(self.prior_lengths) < 1:
            raise ValueError(f"prior_lengths must be two lengths >= 1, got {self.prior_lengths}")
        if self.prior_pool not in POOLS:
            raise ValueError(f"prior_pool must be one of {sorted(POOLS)}, got {self.prior_pool!r}")
        if min(self.slot_weight, self.prior_weight, self.pdf_weight) < 0 or not self.pdf_sigma > 0:
            raise ValueError("distance model: weights must be >= 0 and pdf_sigma > 0 Angstrom")
        model_grid(self.pdf_rmin, self.pdf_rmax, self.pdf_rstep)



@dataclass
class Decoded:
    """Decoded unit-sphere distances: ``pair`` (S, n_max, n_max) between atoms, ``to_points`` (S, n_max, P) to the
    satellites (both dimensionless, >= 0), ``n_atoms`` (S,) the slots taken (the first n_atoms atoms are the
    cluster), ``widen`` (S,) the factor of the prior's sigma and ``z`` (S, H)."""

    pair: torch.Tensor
    to_points: torch.Tensor
    n_atoms: torch.Tensor
    widen: torch.Tensor
    z: torch.Tensor


def pair_distribution(upper: torch.Tensor, keep: torch.Tensor, n_atoms: torch.Tensor, r: torch.Tensor,
                      sigma: float) -> torch.Tensor:
    """(B, L) sum over pairs of Gaussians of width ``sigma`` at the distances, divided by r and by N.

    upper (B, M) pair distances [Angstrom], keep (B, M) bool pairs counted, n_atoms (B,), r (L,) [Angstrom] > 0.
    This is the peak part of a cluster's G(r) before damping and termination (no baseline); differentiable.
    """
    w = keep.to(upper.dtype)[..., None]
    peaks = torch.exp(-0.5 * ((r - upper[..., None]) / sigma) ** 2) * w / (sigma * math.sqrt(2 * math.pi))
    return peaks.sum(1) / (r * n_atoms[:, None].to(upper.dtype))


class DistanceCVAE(nn.Module):
    """The conditional VAE of the module doc. Inputs are :class:`pdfsolve.training.data.Batch` fields."""

    #: Decode the latent means only and tie encoder and prior means by a squared distance (the DAE baseline).
    deterministic = False
    #: The loss entry of D(q, p).
    divergence_name = "kl"

    def __init__(self, params: DistanceParams):
        super().__init__()
        self.params = p = params
        self.register_buffer("grid", model_grid(p.pdf_rmin, p.pdf_rmax, p.pdf_rstep), persistent=False)
        self.register_buffer("points", satellites(p.satellites), persistent=False)
        d, c, h = len(self.grid), p.channels, p.latent_dim
        if d < p.prior_lengths[0]:
            raise ValueError(f"the model's r grid has {d} points, fewer than the prior's first length")
        self.upsample = nn.Sequential(GatedConv1d(1, c, transposed=True), GatedConv1d(c, c, transposed=True),
                                      GatedConv1d(c, 1, transposed=True), nn.Flatten())
        # the first encoder layer on [atom features, upsampled PDF], split so that the PDF's part is computed once
        # per cluster rather than once per atom (the same linear map)
        width = p.encoder_hidden[0]
        self.encode_atoms = nn.Linear(p.n_max + p.satellites + 1, width)
        self.encode_pdf = nn.Linear(8 * d, width, bias=False)
        self.encoder = mlp([*p.encoder_hidden, 2 * h])
        with torch.no_grad():  # the posterior starts narrow (sigma = exp(-2)): with sigma 1 the noise swamped the
            self.encoder[-1].bias[h:].fill_(INITIAL_LOGVAR)  # encoder's small initial means and the KL collapsed
        self.prior_convs = nn.ModuleList([GatedConv1d(1, c, p.kernel), GatedConv1d(c, c, p.kernel),
                                          GatedConv1d(c, 2 * h, p.prior_lengths[1], same=False)])
        self.n_pairs = p.n_max * (p.n_max - 1) // 2
        self.decoder = mlp([h, *p.decoder_hidden, self.n_pairs + p.n_max * p.satellites + p.n_max])

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def pdf_input(self, r, g: torch.Tensor) -> torch.Tensor:
        """G (B, nr) on ``r`` (nr,) [Angstrom] on the model grid, max|G| = 1: (B, D)."""
        return resample_pdf(r, g.to(self.dtype), self.grid)

    def prior(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of p(z | y), each (B, H), from the model-grid PDF y (B, D)."""
        x = y[:, None, :]
        for conv, length in zip(self.prior_convs[:2], self.params.prior_lengths):
            x = POOLS[self.params.prior_pool](conv(x), length)
        return gaussian_parameters(self.prior_convs[2](x)[..., 0])

    def features(self, pos: torch.Tensor, mask: torch.Tensor):
        """The unit-sphere view of clusters (B, N, 3) [Angstrom] with mask (B, N), N <= n_max.

        Returns node features (B, n_max, F), the target pair distances (B, n_max, n_max) and satellite distances
        (B, n_max, P) (dimensionless, model dtype), n_atoms (B,) and the radius (B,) [Angstrom].
        """
        p = self.params
        if int(mask.sum(1).max()) > p.n_max:
            raise ValueError(f"a cluster of {int(mask.sum(1).max())} atoms exceeds the model's n_max = {p.n_max}")
        x, n, radius = ordered_unit_sphere(pos, mask, self.points)
        x = nn.functional.pad(x, (0, 0, 0, p.n_max - x.shape[1]))
        real = first_atoms_mask(n, p.n_max)
        pair, to_points = (t.to(self.dtype) for t in distance_features(x, real, self.points))
        nodes = torch.cat([pair, to_points, real[..., None].to(self.dtype)], -1)
        return nodes, pair, to_points, n, radius.to(self.dtype)

    def posterior(self, nodes: torch.Tensor, n_atoms: torch.Tensor, y: torch.Tensor):
        """(mu, logvar) of q(z | x, y), each (B, H): the encoder on every real atom's features, averaged."""
        first = self.encode_atoms(nodes) + self.encode_pdf(self.upsample(y[:, None, :]))[:, None, :]
        out = self.encoder(nn.functional.silu(first))
        real = first_atoms_mask(n_atoms, nodes.shape[1])[..., None].to(out.dtype)
        return gaussian_parameters((out * real).sum(1) / n_atoms[:, None].to(out.dtype))

    def decode(self, z: torch.Tensor):
        """(upper pair distances (B, n_max (n_max - 1) / 2), satellite distances (B, n_max, P), slot logits
        (B, n_max)) of latents z (B, H); distances dimensionless (unit sphere), not yet clamped to >= 0."""
        p = self.params
        out = self.decoder(z)
        upper, rest = out[:, :self.n_pairs], out[:, self.n_pairs:]
        return upper, rest[:, :p.n_max * p.satellites].reshape(len(z), p.n_max, p.satellites), rest[:, -p.n_max:]

    def divergence(self, mu_q, logvar_q, mu_p, logvar_p) -> torch.Tensor:
        """(B,) D(q, p) of the latent Gaussians (each (B, H)): KL(q || p), summed over the latent axes."""
        return gaussian_kl(mu_q, logvar_q, mu_p, logvar_p)

    def prior_objective(self, q, p, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(the batch mean of D(q, p), its part of the loss) for q, p = (mu, logvar) pairs: beta D(q, p), or with
        ``prior_weight`` > 0 the stop-gradient split of the module doc. The split's prior part enters as
        w (F - sg(F)): it adds its gradient, not its value, so the loss (and early stopping on it) reads the same
        beta D(q, p) with either setting."""
        value = self.divergence(*q, *p).mean()
        weight = self.params.prior_weight
        if weight == 0:
            return value, beta * value
        detached = [t.detach() for t in (*q, *p)]
        fit = self.prior_fit(*detached[:2], *p).mean()
        return value, beta * self.divergence(*q, *detached[2:]).mean() + weight * (fit - fit.detach())

    def prior_fit(self, mu_q, logvar_q, mu_p, logvar_p) -> torch.Tensor:
        """(B,) F of the module doc: sum over the latent axes of sg(sigma_p^2) KL(q || p) per axis."""
        var_p = logvar_p.exp()
        kl = 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p) ** 2) / var_p - 1)
        return (var_p.detach() * kl).sum(-1)

    def loss(self, batch, beta: float) -> dict:
        """Batch means: ``loss`` = pair + satellite + slot_weight slot + the prior term (:meth:`prior_objective`,
        of ``kl`` or ``l2``) (+ pdf_weight pdf), the distance terms in squared unit-sphere units (module doc)."""
        p = self.params
        nodes, pair, to_points, n, radius = self.features(batch.pos, batch.mask)
        y = self.pdf_input(batch.r, batch.g)
        mu_q, logvar_q = self.posterior(nodes, n, y)
        mu_p, logvar_p = self.prior(y)
        z = reparameterise(mu_q, logvar_q) if self.training and not self.deterministic else mu_q
        value, objective = self.prior_objective((mu_q, logvar_q), (mu_p, logvar_p), beta)
        upper, sat, logits = self.decode(z)
        real = first_atoms_mask(n, p.n_max)
        keep = upper_pairs(real[:, :, None] & real[:, None, :])
        counts = n.to(upper.dtype)
        out = {"pair": (torch.where(keep, upper - upper_pairs(pair), 0.0) ** 2).sum(1) / keep.sum(1).clamp(min=1),
               "satellite": ((sat - to_points) ** 2 * real[..., None]).sum((1, 2)) / (counts * p.satellites),
               "slot": nn.functional.binary_cross_entropy_with_logits(logits, real.to(logits.dtype),
                                                                      reduction="none").mean(1)}
        if p.pdf_weight > 0:
            r = self.grid.to(upper.dtype)
            ours = pair_distribution(upper * radius[:, None], keep, n, r, p.pdf_sigma)
            theirs = pair_distribution(upper_pairs(pair) * radius[:, None], keep, n, r, p.pdf_sigma)
            out["pdf"] = ((ours - theirs) ** 2).mean(1)
        out = {k: v.mean() for k, v in out.items()} | {self.divergence_name: value}
        out["loss"] = (out["pair"] + out["satellite"] + p.slot_weight * out["slot"] + objective
                       + p.pdf_weight * out.get("pdf", 0.0))
        return out

    def decoded(self, z: torch.Tensor, widen: torch.Tensor) -> Decoded:
        """Distances of latents z (S, H): symmetric pair matrices, clamped at 0, and slots with a positive logit
        counted as atoms (the first that many slots are the cluster)."""
        upper, sat, logits = self.decode(z)
        pair = symmetric_pairs(upper.clamp(min=0), self.params.n_max)
        return Decoded(pair, sat.clamp(min=0), (logits > 0).sum(1), widen, z)

    @torch.no_grad()
    def sample(self, r, g: torch.Tensor, k: int, widen=(1.0,)) -> Decoded:
        """``k`` decodings of the prior of one PDF G (nr,) on ``r`` at each widening factor of sigma, in one batch
        (:class:`DistanceDAE`: the prior mean once)."""
        if g.dim() != 1:
            raise ValueError(f"sample takes one PDF G (nr,), got shape {tuple(g.shape)}")
        if k < 1 or not len(widen) or min(widen) <= 0:
            raise ValueError(f"need k >= 1 samples and positive widening factors, got {k} and {list(widen)}")
        mu, logvar = self.prior(self.pdf_input(r, g[None]))
        if self.deterministic:
            return self.decoded(mu, mu.new_zeros(1))
        factors = torch.as_tensor(widen, dtype=mu.dtype, device=mu.device).repeat_interleave(k)
        z = reparameterise(mu.expand(len(factors), -1), logvar.expand(len(factors), -1), factors[:, None])
        return self.decoded(z, factors)


class DistanceDAE(DistanceCVAE):
    """The deterministic autoencoder baseline: the same layers, z the encoder's mean (never sampled), and
    ``l2`` = |mu_q - mu_p|^2 (summed over the latent axes) in place of the KL."""

    deterministic = True
    divergence_name = "l2"

    def divergence(self, mu_q, logvar_q, mu_p, logvar_p) -> torch.Tensor:
        return ((mu_q - mu_p) ** 2).sum(-1)

    prior_fit = divergence
