"""CbLDM (Cao, Zhang, Wang et al. 2025): latent diffusion of a cluster's Gaussian affinity W conditioned on its PDF.

* Representation: W_ij = exp(-d_ij^2 / (2 sigma^2)), sigma^2 = 130 Angstrom^2 (the study's t = 260), of the atoms in
  a canonical order (by distance to the centroid, so that W does not depend on the input's order), zero-padded to
  2 b x 2 b and laid out as 4 x b x b blocks (b = 128: the study's 4 x 128 x 128 image of 256 atoms).
* Condition VAE: G(r) is a 1-D signal on the model's r grid (the study folded one 3000-point G(r) into 6 x 500
  rows, which are not physical channels); 1-D convolutions give the condition c ~ N(mu_c, sigma_c^2), a decoder
  reconstructs G(r) from c, and the last feature map, projected, gives the tokens the denoiser attends to.
* Structure VAE: strided 2-D convolutions encode the blocks to a latent image z (latent_channels x b/16 x b/16); its
  prior p(z | c) is conditioned on the PDF, its decoder (transposed convolutions, sigmoid) is not.
* Latent DDPM: a U-Net (:class:`pdfsolve.models.latent_unet.LatentUNet`) predicts the noise of z_t, T = 1000 steps
  of the cosine schedule, cross-attending to the PDF tokens.

Training has two stages with one shared split, chosen by ``stage``: "vae" trains both VAEs and the prior (ELBO of W
and of G(r)); "diffusion" (started from the "vae" run's weights with ``pdfsolve train --init``) trains the U-Net
(and the projection of the PDF tokens) on the structure VAE's posterior means, the VAEs frozen. :meth:`CbLDM.sample` draws affinities for many PDFs at
once (:mod:`pdfsolve.models.diffusion`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..geometry.laplacian import CBLDM_SIGMA, from_blocks, graph_laplacian, pad_square, to_blocks
from .diffusion import T_STEPS, accelerated_start, cosine_alpha_bar, noised, sample, step_sequence
from .inputs import model_grid, resample_pdf
from .latent_unet import LatentUNet
from .losses import first_atoms_mask
from .layers import PDFEncoder, gaussian_kl, gaussian_parameters, mlp, reparameterise
from .params import ModelParams

STAGES = ("vae", "diffusion")
STARTS = ("prior", "noise")


@dataclass(frozen=True)
class CbLDMParams(ModelParams):
    """Hyper-parameters of :class:`CbLDM`.

    Attributes:
        block: side of the four blocks; the model holds clusters of up to 2 ``block`` atoms.
        sigma: width of the Gaussian affinity [Angstrom].
        vae_channels: channels of the structure VAE's stride-2 convolutions (each halves the image side).
        latent_channels: channels of the latent image z.
        pdf_rmin, pdf_rmax, pdf_rstep: the model's r grid of G(r) [Angstrom].
        pdf_channels, pdf_kernel: the G(r) encoder (:class:`pdfsolve.models.layers.PDFEncoder`).
        cond_dim: size of the condition c and of the tokens.
        unet_width: channels of the U-Net's first level.
        stage: "vae" or "diffusion" (see the module doc).
        pdf_weight: weight of the condition VAE's G(r) reconstruction and KL (dimensionless).
        latent_scale: z is multiplied by this before diffusion (latent diffusion's usual unit-variance scaling).
        t1: step at which the accelerated sampler starts from the conditional prior (0 < t1 <= T).
    """

    block: int = 128
    sigma: float = CBLDM_SIGMA
    vae_channels: tuple = (8, 16, 32)
    latent_channels: int = 4
    pdf_rmin: float = 1.5
    pdf_rmax: float = 30.0
    pdf_rstep: float = 0.02
    pdf_channels: tuple = (16, 32, 64, 64, 64)
    pdf_kernel: int = 9
    cond_dim: int = 64
    unet_width: int = 32
    stage: str = "vae"
    pdf_weight: float = 1.0
    latent_scale: float = 1.0
    t1: int = 400

    def __post_init__(self):
        self._int_tuples("vae_channels", "pdf_channels")
        if self.stage not in STAGES:
            raise ValueError(f"CbLDM stage must be one of {STAGES}, got {self.stage!r}")
        side, remainder = divmod(self.block, 2 ** len(self.vae_channels))
        if remainder or side < 2 or side % 2:
            raise ValueError(f"block {self.block} must be divisible by 2^{len(self.vae_channels)} and leave a latent "
                             "image of even side")
        if min(self.latent_channels, self.cond_dim, self.unet_width, self.pdf_kernel) < 1 or self.sigma <= 0:
            raise ValueError("CbLDM sizes must be >= 1 and sigma > 0")
        if not 0 < self.t1 <= T_STEPS or self.latent_scale <= 0 or self.pdf_weight < 0:
            raise ValueError(f"need 0 < t1 <= {T_STEPS}, latent_scale > 0 and pdf_weight >= 0")
        model_grid(self.pdf_rmin, self.pdf_rmax, self.pdf_rstep)

    @property
    def n_max(self) -> int:
        return 2 * self.block

    @property
    def latent_side(self) -> int:
        return self.block // 2 ** len(self.vae_channels)



def canonical_order(pos: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Atoms (B, N, 3) [Angstrom] and mask (B, N), centred, each cluster's real atoms first, by increasing distance
    to their centroid, ties by x, then y, then z (all compared rounded to 1e-6 Angstrom, so that rounding noise of
    the centroid does not decide), independent of the input order."""
    count = mask.sum(1, keepdim=True).clamp(min=1).to(pos.dtype)
    centred = (pos - (pos * mask[..., None]).sum(1, keepdim=True) / count[..., None]) * mask[..., None]
    key = torch.linalg.vector_norm(centred, dim=-1)
    key = torch.where(mask, key, torch.full_like(key, 1e30))  # padding last
    keys = [np.round(c.detach().cpu().double().numpy(), 6)
            for c in (centred[..., 2], centred[..., 1], centred[..., 0], key)]
    order = torch.from_numpy(np.lexsort(keys, axis=-1)).to(pos.device)
    return centred.gather(1, order[..., None].expand(-1, -1, 3)), mask.gather(1, order)


def affinity_blocks(pos: torch.Tensor, mask: torch.Tensor, block: int, sigma: float) -> torch.Tensor:
    """(B, 4, block, block) blocks of the zero-padded Gaussian affinity of clusters (B, N, 3) [Angstrom] in
    canonical order (:func:`canonical_order`)."""
    pos, mask = canonical_order(pos, mask)
    w = graph_laplacian(pos, sigma, mask, form="affinity")
    return to_blocks(pad_square(w, 2 * block), block)


def _conv_stack(channels, transpose: bool) -> list[nn.Module]:
    """Stride-2 (transposed) 4x4 convolutions between consecutive ``channels``, each followed by a group norm and
    SiLU (but the last)."""
    layers = []
    for k, (c_in, c_out) in enumerate(zip(channels, channels[1:])):
        conv = nn.ConvTranspose2d if transpose else nn.Conv2d
        layers.append(conv(c_in, c_out, 4, stride=2, padding=1))
        if k < len(channels) - 2:
            layers += [nn.GroupNorm(min(4, c_out), c_out), nn.SiLU()]
    return layers


class CbLDM(nn.Module):
    """The latent diffusion model; see the module doc. Inputs are :class:`pdfsolve.training.data.Batch` fields."""

    def __init__(self, params: CbLDMParams):
        super().__init__()
        self.params = p = params
        self.register_buffer("grid", model_grid(p.pdf_rmin, p.pdf_rmax, p.pdf_rstep), persistent=False)
        self.register_buffer("alpha_bar", cosine_alpha_bar(T_STEPS), persistent=False)
        self.pdf_encoder = PDFEncoder(len(self.grid), p.pdf_channels, p.pdf_kernel, 2 * p.cond_dim)
        self.pdf_decoder = mlp([p.cond_dim, 4 * p.cond_dim, len(self.grid)])
        self.token_projection = nn.Linear(p.pdf_channels[-1], p.cond_dim)
        latent_size = p.latent_channels * p.latent_side ** 2
        self.prior_head = mlp([p.cond_dim, 4 * p.cond_dim, 2 * latent_size])
        self.structure_encoder = nn.Sequential(*_conv_stack((4, *p.vae_channels), False), nn.SiLU(),
                                               nn.Conv2d(p.vae_channels[-1], 2 * p.latent_channels, 1))
        self.structure_decoder = nn.Sequential(nn.Conv2d(p.latent_channels, p.vae_channels[-1], 1), nn.SiLU(),
                                               *_conv_stack((*p.vae_channels[::-1], 4), True), nn.Sigmoid())
        self.denoiser = LatentUNet(p.latent_channels, p.unet_width, p.cond_dim)

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def condition(self, r, g: torch.Tensor) -> tuple:
        """The resampled G (B, L) (max|G| = 1), (mu_c, logvar_c) (B, cond_dim) each, and the encoder's last
        feature map (B, C, L') of G (B, nr) on ``r`` [Angstrom]."""
        x = resample_pdf(r, g.to(self.dtype), self.grid)
        features = self.pdf_encoder.convs[:-1](x[:, None, :])  # the last map before the flatten
        mu_c, logvar_c = gaussian_parameters(self.pdf_encoder.head(features.flatten(1)))
        return x, mu_c, logvar_c, features

    def tokens(self, features: torch.Tensor) -> torch.Tensor:
        """Condition tokens (B, L', cond_dim) the denoiser attends to, from the feature map (B, C, L') (trained with
        the denoiser)."""
        return self.token_projection(features.transpose(1, 2))

    def prior(self, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of p(z | c), each (B, latent_channels * side^2)."""
        return gaussian_parameters(self.prior_head(c))

    def encode(self, blocks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q(z | W), each (B, latent_channels * side^2), from blocks (B, 4, b, b)."""
        return gaussian_parameters(self.structure_encoder(blocks).flatten(1).unflatten(1, (2, -1)).transpose(1, 2)
                                   .flatten(1))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Blocks (B, 4, b, b) of W in [0, 1] from z (B, latent_channels * side^2)."""
        p = self.params
        return self.structure_decoder(z.reshape(len(z), p.latent_channels, p.latent_side, p.latent_side))

    def loss(self, batch, beta: float) -> dict:
        """Batch means of the stage's terms. "vae": ``w`` (mean squared error of W over the real N x N entries plus
        that over the padding, so that neither outweighs the other at any N) + beta ``kl`` (KL(q(z | W) || p(z | c)))
        + pdf_weight (``pdf``,
        mean squared error of the resampled G, + beta ``kl_c``, KL(N(mu_c, sigma_c^2) || N(0, 1))).
        "diffusion": ``eps``, the mean squared error of the predicted noise at uniform random steps."""
        p = self.params
        if int(batch.n_atoms.max()) > p.n_max:
            raise ValueError(f"a cluster of {int(batch.n_atoms.max())} atoms exceeds the model's {p.n_max}")
        blocks = affinity_blocks(batch.pos.to(self.dtype), batch.mask, p.block, p.sigma)
        if p.stage == "diffusion":
            return self._diffusion_loss(batch, blocks)
        x, mu_c, logvar_c, _ = self.condition(batch.r, batch.g)
        c = reparameterise(mu_c, logvar_c) if self.training else mu_c
        mu_q, logvar_q = self.encode(blocks)
        mu_p, logvar_p = self.prior(c)
        z = reparameterise(mu_q, logvar_q) if self.training else mu_q
        sq = from_blocks((self.decode(z) - blocks) ** 2)
        real = first_atoms_mask(batch.n_atoms.to(sq.device), p.n_max)
        real = (real[:, :, None] & real[:, None, :]).to(sq.dtype)
        pad = 1 - real  # empty for a cluster of n_max atoms
        w = (sq * real).sum((1, 2)) / real.sum((1, 2)) + (sq * pad).sum((1, 2)) / pad.sum((1, 2)).clamp(min=1)
        zeros = torch.zeros_like(mu_c)
        out = {"w": w.mean(), "kl": gaussian_kl(mu_q, logvar_q, mu_p, logvar_p).mean(),
               "pdf": ((self.pdf_decoder(c) - x) ** 2).mean(), "kl_c": gaussian_kl(mu_c, logvar_c, zeros, zeros).mean()}
        out["loss"] = out["w"] + beta * out["kl"] + p.pdf_weight * (out["pdf"] + beta * out["kl_c"])
        return out

    def _diffusion_loss(self, batch, blocks: torch.Tensor) -> dict:
        with torch.no_grad():
            features = self.condition(batch.r, batch.g)[3]
            z0 = self.encode(blocks)[0] * self.params.latent_scale
        tokens = self.tokens(features)
        z0 = z0.reshape(len(z0), -1, self.params.latent_side, self.params.latent_side)
        t = torch.randint(1, T_STEPS + 1, (len(z0),), device=z0.device)
        noise = torch.randn_like(z0)
        eps = ((self.denoiser(noised(z0, t, noise, self.alpha_bar), t, tokens) - noise) ** 2).mean()
        return {"eps": eps, "loss": eps}

    @torch.no_grad()
    def sample(self, r, g: torch.Tensor, k: int, steps: int = 20, start: str = "prior", eta: float = 1.0,
               widen: float = 1.0) -> torch.Tensor:
        """``k`` affinities (P * k, 2b, 2b) (symmetrised, rows of PDF p at p * k ...) for PDFs G (P, nr) on ``r``.

        ``start`` "prior": z* ~ p(z | mu_c) (sigma widened by ``widen``), then with ``steps`` > 0 the accelerated
        start at t1 (:func:`pdfsolve.models.diffusion.accelerated_start` with a pure-noise x_T) and ``steps`` sampler
        steps from t1 to 0; ``steps`` = 0 decodes z* itself. "noise": ``steps`` sampler steps from x_T ~ N(0, 1).
        ``eta``: 1 DDPM, 0 DDIM.
        """
        p = self.params
        if g.dim() != 2 or k < 1 or steps < 0 or start not in STARTS or widen <= 0:
            raise ValueError(f"need G (P, nr), k >= 1, steps >= 0, start in {STARTS} and widen > 0; got G "
                             f"{tuple(g.shape)}, k={k}, steps={steps}, start={start!r}, widen={widen}")
        if steps == 0 and start == "noise":
            raise ValueError("sampling from noise needs at least one step")
        _, mu_c, _, features = self.condition(r, g)
        mu_c, tokens = mu_c.repeat_interleave(k, 0), self.tokens(features).repeat_interleave(k, 0)
        shape = (len(mu_c), p.latent_channels, p.latent_side, p.latent_side)

        def eps_model(x, t):
            return self.denoiser(x, t, tokens)

        if start == "prior":
            z = reparameterise(*self.prior(mu_c), widen).reshape(shape) * p.latent_scale
            if steps:
                x_t1 = accelerated_start(z, torch.randn(shape, dtype=z.dtype, device=z.device), p.t1, T_STEPS,
                                         self.alpha_bar)
                z = sample(eps_model, x_t1, step_sequence(min(steps, p.t1), p.t1), self.alpha_bar, eta)
        else:
            z = sample(eps_model, torch.randn(shape, dtype=mu_c.dtype, device=mu_c.device),
                       step_sequence(steps, T_STEPS), self.alpha_bar, eta)
        w = from_blocks(self.decode(z.flatten(1) / p.latent_scale))
        return 0.5 * (w + w.transpose(1, 2))
