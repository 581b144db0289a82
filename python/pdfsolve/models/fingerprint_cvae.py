"""The fingerprint route's models (Fung et al., Mach. Learn.: Sci. Technol. 3, 045018, 2022): a conditional VAE over
pooled ACSF fingerprints (380 numbers, :func:`pdfsolve.geometry.pooled_acsf`) and a surrogate MLP predicting a
cluster's energy from its fingerprint.

* Fingerprints enter the networks as y = (log(v + FLOOR) - mean) / std per entry (:class:`FingerprintScaler`): the
  entries span ten orders of magnitude (the published G5 rows with large eta and zeta are 1e-5 ... 1e-10 of the
  G2 ones), and the inversion weighs relative errors too. mean and std are running statistics of the training
  fingerprints (updated in training mode unless :meth:`FingerprintScaler.fit` froze them on a whole set).
* cVAE (:class:`FingerprintCVAE`, the study's sizes by default): encoder q(z | y, c) an MLP [P + C, 128, 128,
  128, 2H], decoder an MLP [H + C, 128, 128, 128, P], prior N(0, 1), H = 25. Loss: squared error of y summed over
  entries plus beta KL (the study's beta 0.75), means over the batch. The condition c is
  - ``"energy"``: the formation energy per atom [eV/atom] minus ``energy_centre`` (C = 1), batches of
    :class:`FingerprintBatch`;
  - ``"pdf"``: a :class:`pdfsolve.models.layers.PDFEncoder` embedding of G(r) on the model's r grid (scaled to
    max|G| = 1, :mod:`pdfsolve.models.inputs`), batches of :class:`pdfsolve.training.data.Batch` whose
    fingerprints are computed on the fly; only clusters of at most ``max_atoms`` atoms are used (the inversion
    works for small clusters), and a count head on c predicts N (cross-entropy, weight ``count_weight``).
* Surrogate (:class:`FingerprintSurrogate`): an MLP [P, 256 x 5, 1] on y, squared error of the energy [eV/atom].
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..geometry import ACSFParameters, pooled_acsf
from .inputs import model_grid, resample_pdf
from .layers import PDFEncoder, gaussian_kl, gaussian_parameters, mlp, reparameterise
from .params import ModelParams

#: Fingerprint entries are read as log(v + FLOOR) (v >= 0, dimensionless like the ACSF).
FLOOR = 1e-12
#: Conditions of the cVAE.
CONDITIONS = ("energy", "pdf")


def fingerprint_size() -> int:
    """P = 380: max- and min-pooled published ACSF of one element."""
    return 2 * ACSFParameters.published().n_features(1)


@dataclass
class FingerprintBatch:
    """Fingerprints (B, P) (pooled ACSF, float32) and energies (B,) [eV/atom] of clusters of one size."""

    fingerprint: torch.Tensor
    energy: torch.Tensor

    def __len__(self) -> int:
        return len(self.fingerprint)


class FingerprintScaler(nn.Module):
    """y = (log(v + FLOOR) - mean) / std per entry (module doc), from running sums over the fingerprints seen in
    training mode (:meth:`update`) or frozen on a whole set by :meth:`fit`."""

    def __init__(self, size: int):
        super().__init__()
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("sum", torch.zeros(size, dtype=torch.float64))
        self.register_buffer("sum_sq", torch.zeros(size, dtype=torch.float64))
        self.register_buffer("frozen", torch.zeros((), dtype=torch.bool))

    @staticmethod
    def _log(v: torch.Tensor) -> torch.Tensor:
        return torch.log(v.double().clamp(min=0) + FLOOR)

    def update(self, v: torch.Tensor) -> None:
        """Add fingerprints (B, P) to the running statistics (no-op once frozen)."""
        if bool(self.frozen):
            return
        y = self._log(v.detach())
        self.count += len(y)
        self.sum += y.sum(0)
        self.sum_sq += (y**2).sum(0)

    def fit(self, v: torch.Tensor) -> None:
        """Statistics of the fingerprints (M, P), frozen."""
        for buffer in (self.count, self.sum, self.sum_sq, self.frozen):
            buffer.zero_()
        self.update(v)
        self.frozen.fill_(True)

    def _moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        if not bool(self.count > 0):
            raise ValueError("the fingerprint scaler has seen no data")
        mean = self.sum / self.count
        std = (self.sum_sq / self.count - mean**2).clamp(min=0).sqrt()
        return mean, torch.where(std > 1e-6, std, torch.ones_like(std))

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        """Fingerprints (B, P) -> y (B, P) float32."""
        mean, std = self._moments()
        return ((self._log(v) - mean) / std).float()

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """y (..., P) -> fingerprints (..., P) float64, >= 0."""
        mean, std = self._moments()
        return (torch.exp(y.double() * std + mean) - FLOOR).clamp(min=0)


@dataclass(frozen=True)
class FingerprintParams(ModelParams):
    """Hyper-parameters of :class:`FingerprintCVAE` and :class:`FingerprintSurrogate` (module doc).

    Attributes:
        condition: "energy" or "pdf". hidden: the cVAE's encoder and decoder layers (reversed in the decoder).
        latent_dim: H. energy_centre: subtracted from the energy condition [eV/atom].
        max_atoms: "pdf": largest cluster used and predicted. count_weight: weight of the count cross-entropy.
        pdf_rmin, pdf_rmax, pdf_rstep: the model's r grid [Angstrom]. channels, kernel: the PDF encoder's
        convolutions. condition_dim: C of the PDF embedding. surrogate_hidden: the surrogate's layers.
    """

    condition: str = "energy"
    hidden: tuple = (128, 128, 128)
    latent_dim: int = 25
    energy_centre: float = 1.5
    max_atoms: int = 20
    count_weight: float = 1.0
    pdf_rmin: float = 1.0
    pdf_rmax: float = 20.0
    pdf_rstep: float = 0.1
    channels: tuple = (8, 16, 32)
    kernel: int = 5
    condition_dim: int = 32
    surrogate_hidden: tuple = (256, 256, 256, 256, 256)

    def __post_init__(self):
        self._int_tuples("hidden", "channels", "surrogate_hidden")
        if self.condition not in CONDITIONS:
            raise ValueError(f"condition must be one of {CONDITIONS}, got {self.condition!r}")
        if min(self.latent_dim, self.condition_dim, self.max_atoms - 1, *self.hidden, *self.channels,
               *self.surrogate_hidden) < 1:
            raise ValueError("fingerprint model: latent_dim, condition_dim and layer sizes must be >= 1 and "
                             "max_atoms >= 2")
        if self.kernel < 1 or self.kernel % 2 == 0 or self.count_weight < 0:
            raise ValueError(f"kernel must be odd and count_weight >= 0, got {self.kernel}, {self.count_weight}")
        model_grid(self.pdf_rmin, self.pdf_rmax, self.pdf_rstep)



class FingerprintCVAE(nn.Module):
    """The conditional VAE of the module doc."""

    def __init__(self, params: FingerprintParams):
        super().__init__()
        self.params = p = params
        size, h = fingerprint_size(), p.latent_dim
        self.scaler = FingerprintScaler(size)
        if p.condition == "pdf":
            self.register_buffer("grid", model_grid(p.pdf_rmin, p.pdf_rmax, p.pdf_rstep), persistent=False)
            self.pdf_encoder = PDFEncoder(len(self.grid), p.channels, p.kernel, p.condition_dim)
            self.count_head = mlp([p.condition_dim, 64, p.max_atoms])
            c = p.condition_dim
        else:
            c = 1
        self.encoder = mlp([size + c, *p.hidden, 2 * h])
        self.decoder = mlp([h + c, *reversed(p.hidden), size])

    def embed_energy(self, energy: torch.Tensor) -> torch.Tensor:
        """Condition (B, 1) of energies (B,) [eV/atom]."""
        return (energy.float() - self.params.energy_centre)[:, None]

    def embed_pdf(self, r, g: torch.Tensor) -> torch.Tensor:
        """Condition (B, C) of G(r) (B, nr) on the grid r (nr,) [Angstrom]."""
        return self.pdf_encoder(resample_pdf(r, g.float(), self.grid).float())

    def count_logits(self, c: torch.Tensor) -> torch.Tensor:
        """(B, max_atoms) logits of N = 1 ... max_atoms from a PDF condition c (B, C)."""
        return self.count_head(c)

    def _inputs(self, batch):
        """(fingerprints (B', P), condition (B', C), counts (B',) or None) of the usable rows of a batch."""
        if self.params.condition == "energy":
            return batch.fingerprint, self.embed_energy(batch.energy), None
        keep = batch.n_atoms <= self.params.max_atoms
        width = max(int(batch.n_atoms[keep].max()), 1) if bool(keep.any()) else 1
        pos, mask = batch.pos[keep, :width].double(), batch.mask[keep, :width]
        v = pooled_acsf(pos, mask=mask) if len(pos) else pos.new_zeros(0, fingerprint_size())
        return v, self.embed_pdf(batch.r, batch.g[keep]), batch.n_atoms[keep]

    def loss(self, batch, beta: float) -> dict:
        """{"loss", "recon", "kl"[, "count"]}: means over the usable rows (an all-unusable batch gives 0)."""
        v, c, counts = self._inputs(batch)
        if self.training:
            self.scaler.update(v)
        if len(v) == 0:
            zero = sum(q.sum() for q in self.parameters()) * 0.0
            return {"loss": zero, "recon": zero.detach(), "kl": zero.detach()}
        y = self.scaler(v)
        mu, logvar = gaussian_parameters(self.encoder(torch.cat([y, c], -1)))
        z = reparameterise(mu, logvar) if self.training else mu
        recon = ((self.decoder(torch.cat([z, c], -1)) - y) ** 2).sum(-1).mean()
        kl = gaussian_kl(mu, logvar, torch.zeros_like(mu), torch.zeros_like(logvar)).mean()
        out = {"recon": recon, "kl": kl, "loss": recon + beta * kl}
        if counts is not None:
            out["count"] = nn.functional.cross_entropy(self.count_logits(c), counts - 1)
            out["loss"] = out["loss"] + self.params.count_weight * out["count"]
        return out

    @torch.no_grad()
    def sample(self, c: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Fingerprints (B, k, P) float64 decoded from k prior draws z ~ N(0, 1) for each condition c (B, C)."""
        z = torch.randn(len(c), k, self.params.latent_dim, generator=generator, device=c.device)
        y = self.decoder(torch.cat([z, c[:, None].expand(-1, k, -1)], -1))
        return self.scaler.inverse(y)


class FingerprintSurrogate(nn.Module):
    """Energy [eV/atom] from a fingerprint: an MLP on the scaled fingerprint (module doc)."""

    def __init__(self, params: FingerprintParams):
        super().__init__()
        self.params = params
        self.scaler = FingerprintScaler(fingerprint_size())
        self.net = mlp([fingerprint_size(), *params.surrogate_hidden, 1])

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        """Fingerprints (B, P) -> energies (B,) [eV/atom]."""
        return self.net(self.scaler(v))[:, 0] + self.params.energy_centre

    def loss(self, batch: FingerprintBatch, beta: float = 0.0) -> dict:
        """{"loss"}: mean squared error [eV^2/atom^2] (beta unused: the training loops' interface)."""
        if self.training:
            self.scaler.update(batch.fingerprint)
        return {"loss": ((self(batch.fingerprint) - batch.energy.float()) ** 2).mean()}
