"""DeepStruc's latent space: the map of a training set's latent means and a PDF's prior, and decoded structures
along the line between the latent means of two PDFs.

The map shows the posterior means of the training clusters (coloured by motif, sized by N) and, for each input
PDF, its prior mean with the 1, 2 and 3 sigma ellipses. A latent space of more than two dimensions is drawn in
the plane of its first two principal axes (of the training means); the ellipses are the prior's covariance
projected onto that plane.
"""
from __future__ import annotations

from pathlib import Path

import ase
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse

from ..models import DeepStruc
from ..models.layers import centred
from ..models.losses import first_atoms_mask
from ..target import Target
from ..training.data import ShardData


@torch.no_grad()
def posterior_means(model: DeepStruc, data: ShardData, batch_size: int = 256) -> np.ndarray:
    """(n, latent_dim) posterior means of every cluster of ``data``, in its order (model in eval mode)."""
    model.eval()
    means = []
    for batch in data.batches(batch_size, shuffle=False):
        means.append(model.posterior(batch.pos, batch.mask, model.embed_pdf(batch.r, batch.g))[0])
    return torch.cat(means).double().numpy()


def principal_plane(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(centre (D,), axes (D, 2)) of the plane of the two largest principal axes of ``points`` (n, D), D >= 2."""
    if points.ndim != 2 or points.shape[1] < 2:
        raise ValueError(f"a latent map needs a latent space of 2 or more dimensions, got points {points.shape}")
    centre = points.mean(0)
    _, _, vt = np.linalg.svd(points - centre, full_matrices=False)
    return centre, vt[:2].T


@torch.no_grad()
def prior(model: DeepStruc, target: Target) -> tuple[np.ndarray, np.ndarray]:
    """(mu (D,), sigma (D,)) of the model's prior for the PDF of ``target``."""
    model.eval()
    mu, logvar = model.prior(model.embed_pdf(target.r, target.g[None]))
    return mu[0].double().numpy(), torch.exp(0.5 * logvar[0]).double().numpy()


def save_latent_map(path, model: DeepStruc, data: ShardData, targets, names) -> Path:
    """Draw the latent map (see the module doc) of ``data`` with the priors of ``targets`` (labelled ``names``)."""
    means = posterior_means(model, data)
    centre, axes = principal_plane(means)
    xy = (means - centre) @ axes
    fig = Figure(figsize=(7.0, 6.0), dpi=150, layout="tight")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    sizes = 4.0 + 40.0 * data.n_atoms.numpy() / max(int(data.n_atoms.max()), 1)
    for k, motif in enumerate(sorted(set(data.motifs))):
        rows = [i for i, m in enumerate(data.motifs) if m == motif]
        ax.scatter(xy[rows, 0], xy[rows, 1], s=sizes[rows], color=f"C{k % 10}", alpha=0.5, lw=0, label=motif)
    for target, name in zip(targets, names):
        mu, sigma = prior(model, target)
        cov = axes.T @ np.diag(sigma**2) @ axes  # the prior's covariance in the plane
        values, vectors = np.linalg.eigh(cov)
        angle = float(np.degrees(np.arctan2(vectors[1, -1], vectors[0, -1])))
        x, y = (mu - centre) @ axes
        for level in (1, 2, 3):
            ax.add_patch(Ellipse((x, y), 2 * level * np.sqrt(values[-1]), 2 * level * np.sqrt(values[0]),
                                 angle=angle, fill=False, color="k", lw=0.8, alpha=1.0 / level))
        ax.plot([x], [y], "k*", ms=12)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(6, 6), fontsize="small")
    ax.set_xlabel("latent axis 1" if means.shape[1] == 2 else "principal axis 1 of the latent means")
    ax.set_ylabel("latent axis 2" if means.shape[1] == 2 else "principal axis 2 of the latent means")
    ax.legend(fontsize="small", frameon=False, markerscale=1.5)
    path = Path(path)
    fig.savefig(path)
    return path


@torch.no_grad()
def interpolate(model: DeepStruc, a: Target, b: Target, steps: int = 8, element: str = "Au") -> list[ase.Atoms]:
    """Clusters decoded at ``steps`` evenly spaced points t in [0, 1] of the line between (prior mean, PDF
    embedding) of ``a`` and of ``b``; each takes the count head's most likely N there. ``info``: t and n_atoms."""
    if steps < 2:
        raise ValueError(f"steps must be >= 2, got {steps}")
    model.eval()
    ends = []
    for target in (a, b):
        y = model.embed_pdf(target.r, target.g[None])
        ends.append((model.prior(y)[0], y))
    t = torch.linspace(0.0, 1.0, steps, dtype=ends[0][1].dtype)[:, None]
    z = (1 - t) * ends[0][0] + t * ends[1][0]
    y = (1 - t) * ends[0][1] + t * ends[1][1]
    n = model.count_logits(z, y).argmax(-1) + 1
    pos = centred(model.decode(z, y), first_atoms_mask(n, model.params.n_max)).double()
    out = []
    for k in range(steps):
        atoms = ase.Atoms([element] * int(n[k]), positions=pos[k, :int(n[k])].numpy())
        atoms.info.update(t=float(t[k]), n_atoms=int(n[k]))
        out.append(atoms)
    return out
