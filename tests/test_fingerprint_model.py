"""The fingerprint route's models: the log-standardising scaler against float64 numpy, the cVAE's loss terms
against hand computations (energy and PDF conditions, on-the-fly fingerprints of small clusters only), training on
arrays, the registry, and bad hyper-parameters."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pdfsolve.geometry import pooled_acsf
from pdfsolve.models import build_model
from pdfsolve.models.fingerprint_cvae import (FLOOR, FingerprintBatch, FingerprintCVAE, FingerprintParams,
                                              FingerprintScaler, FingerprintSurrogate)
from pdfsolve.models.inputs import model_grid
from pdfsolve.structures import icosahedron, octahedron
from pdfsolve.training.arrays import ArrayData, fit
from pdfsolve.training.data import Batch
from _models import one_thread  # noqa: F401 (one_thread: autouse fixture)


def fingerprints(n=64, seed=0):
    """(n, 380) pooled ACSF of rattled 13-atom icosahedra of Pt with random expansions."""
    g = torch.Generator().manual_seed(seed)
    base = torch.as_tensor(icosahedron(2, "Pt").positions)
    scale = 1 + 0.05 * torch.randn(n, 1, 1, generator=g, dtype=torch.float64)
    return pooled_acsf(base * scale + 0.1 * torch.randn(n, 13, 3, generator=g, dtype=torch.float64)), scale[:, 0, 0]


def test_scaler_matches_numpy_and_inverts():
    v, _ = fingerprints()
    scaler = FingerprintScaler(v.shape[1])
    scaler.fit(v)
    logs = np.log(v.numpy() + FLOOR)
    std = logs.std(0)
    ref = (logs - logs.mean(0)) / np.where(std > 1e-6, std, 1.0)
    assert np.allclose(scaler(v).numpy(), ref, atol=1e-4)
    back = scaler.inverse(scaler(v))
    assert torch.allclose(back, v, rtol=1e-5, atol=1e-11)
    scaler.update(v[:3] * 5)  # frozen: ignored
    assert torch.allclose(scaler(v), torch.as_tensor(ref, dtype=torch.float32), atol=1e-4)
    with pytest.raises(ValueError, match="seen no data"):
        FingerprintScaler(4)(v[:, :4])


def test_energy_cvae_loss_terms_by_hand():
    v, _ = fingerprints(8)
    energy = torch.linspace(0.8, 2.0, 8)
    model = FingerprintCVAE(FingerprintParams()).eval().requires_grad_(False)
    model.scaler.fit(v)
    out = model.loss(FingerprintBatch(v.float(), energy), beta=0.75)
    y = model.scaler(v)
    c = (energy - 1.5)[:, None]
    raw = model.encoder(torch.cat([y, c], -1)).double()
    mu, logvar = raw[:, :25], 10 * torch.tanh(raw[:, 25:] / 10)
    recon = ((model.decoder(torch.cat([mu.float(), c], -1)).double() - y.double()) ** 2).sum(-1).mean()
    kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(-1).mean()
    assert float(out["recon"]) == pytest.approx(float(recon), rel=1e-4)
    assert float(out["kl"]) == pytest.approx(float(kl), rel=1e-4)
    assert float(out["loss"]) == pytest.approx(float(recon + 0.75 * kl), rel=1e-4)
    samples = model.sample(c[:2], 5, torch.Generator().manual_seed(0))
    assert samples.shape == (2, 5, 380) and samples.dtype == torch.float64 and bool((samples >= 0).all())


def test_pdf_cvae_uses_small_clusters_only():
    small, big = icosahedron(2, "Au"), octahedron(5, 1, "Au")  # 13 and > 20 atoms
    model = FingerprintCVAE(FingerprintParams(condition="pdf", max_atoms=20)).train()
    n = torch.tensor([13, len(big)])
    pos = torch.zeros(2, len(big), 3)
    pos[0, :13], pos[1] = torch.as_tensor(small.positions), torch.as_tensor(big.positions)
    r = model_grid(0.0, 25.0, 0.05)
    g = torch.sin(r.float())[None].expand(2, -1) * torch.tensor([[1.0], [2.0]])
    batch = Batch(pos, torch.arange(len(big))[None] < n[:, None], n, r, g, torch.arange(2))
    out = model.loss(batch, beta=1.0)
    assert int(model.scaler.count) == 1  # one usable cluster seen
    expected = pooled_acsf(torch.as_tensor(small.positions)[None])
    assert torch.allclose(model.scaler.sum, torch.log(expected[0] + FLOOR))
    c = model.embed_pdf(r, g[:1])
    ce = -torch.log_softmax(model.count_logits(c), -1)[0, 12]
    assert float(out["count"].detach()) == pytest.approx(float(ce.detach()), rel=1e-5)
    empty = model.loss(Batch(pos[1:], batch.mask[1:], n[1:], r, g[1:], torch.arange(1)), beta=1.0)
    assert float(empty["loss"].detach()) == 0.0 and empty["loss"].requires_grad


def test_surrogate_learns_expansion_from_fingerprints():
    v, scale = fingerprints(600)
    target = (scale - 1).float() * 20  # a smooth property of the fingerprint, about +-1
    train, val = ArrayData(v[:500].float(), target[:500]), ArrayData(v[500:].float(), target[500:])
    model = FingerprintSurrogate(FingerprintParams(energy_centre=0.0, surrogate_hidden=(64, 64)))
    history = fit(model, train, val, epochs=30, lr=1e-3)
    with torch.no_grad():
        err = model.eval()(val.fingerprint) - val.energy
    assert float(err.abs().mean()) < 0.25 * float((val.energy - val.energy.mean()).abs().mean())
    assert min(h["val_loss"] for h in history) == pytest.approx(float((err**2).mean()), rel=1e-4)  # best kept


def test_registry_and_bad_params():
    assert isinstance(build_model("fingerprint", {"condition": "pdf"}), FingerprintCVAE)
    with pytest.raises(ValueError, match="condition must be"):
        FingerprintParams(condition="size")
    with pytest.raises(ValueError, match="kernel must be odd"):
        FingerprintParams(kernel=4)
    with pytest.raises(ValueError, match="need fingerprints"):
        ArrayData(np.zeros((3, 4)), np.zeros(2))
