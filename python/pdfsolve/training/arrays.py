"""Training on in-memory fingerprint sets (the fingerprint route's EMT clusters, which are not PDF datasets).

:class:`ArrayData` batches like :class:`pdfsolve.training.data.ShardData` (the batches of an epoch depend only
on (seed, epoch)), so :func:`pdfsolve.training.loop.validate` serves it too; :func:`fit` is a plain loop (Adam,
as Fung et al. 2022, constant beta) that keeps the weights of the lowest validation loss.
"""
from __future__ import annotations

import copy

import numpy as np
import torch

from ..models.fingerprint_cvae import FingerprintBatch
from .loop import validate


class ArrayData:
    """Fingerprints (M, P) and energies (M,) [eV/atom] as :class:`FingerprintBatch` batches."""

    def __init__(self, fingerprint, energy):
        self.fingerprint = torch.as_tensor(np.asarray(fingerprint), dtype=torch.float32)
        self.energy = torch.as_tensor(np.asarray(energy), dtype=torch.float32)
        if self.fingerprint.dim() != 2 or self.energy.shape != (len(self.fingerprint),):
            raise ValueError(f"need fingerprints (M, P) and energies (M,), got {tuple(self.fingerprint.shape)} "
                             f"and {tuple(self.energy.shape)}")

    def __len__(self) -> int:
        return len(self.fingerprint)

    def batches(self, batch_size: int, seed: int = 0, epoch: int = 0, shuffle: bool = True):
        """Batches of a permutation drawn from ``default_rng([seed, epoch])`` (in order when not shuffled)."""
        rows = np.random.default_rng([seed, epoch]).permutation(len(self)) if shuffle else np.arange(len(self))
        for index in torch.as_tensor(rows).split(batch_size):
            yield FingerprintBatch(self.fingerprint[index], self.energy[index])


def fit(model: torch.nn.Module, train: ArrayData, val: ArrayData, *, epochs: int, batch_size: int = 64,
        lr: float = 1e-3, beta: float = 0.0, seed: int = 0) -> list[dict]:
    """Train ``model`` (``loss(batch, beta) -> dict``) with Adam for ``epochs`` epochs; the model ends with the
    weights of the lowest validation loss. Returns one row per epoch: train and validation losses."""
    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise ValueError(f"need epochs >= 1, batch_size >= 1 and lr > 0, got {epochs}, {batch_size}, {lr}")
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    best, best_state, history = float("inf"), None, []
    for epoch in range(epochs):
        model.train()
        total = 0.0
        for batch in train.batches(batch_size, seed, epoch):
            out = model.loss(batch, beta)
            optimizer.zero_grad(set_to_none=True)
            out["loss"].backward()
            optimizer.step()
            total += float(out["loss"].detach()) * len(batch)
        scores = validate(model, val, batch_size, beta)
        history.append({"epoch": epoch + 1, "train_loss": total / len(train),
                        **{f"val_{k}": v for k, v in scores.items()}})
        if scores["loss"] < best:
            best, best_state = scores["loss"], copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return history
