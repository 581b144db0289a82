"""Coordinates from a pooled ACSF fingerprint: the fingerprint route's reconstruction (Fung et al. 2022, "Inverse
design of two-dimensional materials with invertible neural networks"; their StructRepGen code).

A fingerprint is :func:`pdfsolve.geometry.pooled_acsf` of a cluster: the per-atom symmetry functions G_f(i) pooled
over the atoms (by default the maxima, then the minima: 380 numbers with the published parameters). From it and the
atom count N, coordinates are found by minimising

    f(x) = sum_e w_e (v_e(x) - t_e)^2 + penalty sum_{i<j} max(0, min_distance - r_ij)^2

(v the pooled vector of x, t the target, r_ij in Angstrom) over batches of L-BFGS-B runs: random starts, then hops
(perturbations of the best result so far), then a polish of the best. The penalty keeps atoms apart (StructRepGen
has none); it is zero at any structure whose shortest distance is at least ``min_distance``. The loss left after
the polish says how well an N-atom cluster can match the fingerprint: a high one marks an invalid or very noisy
fingerprint.

Two choices were measured on 4-13 atom clusters of the seven motifs (tests/test_reconstruct_fingerprint.py):

* The "bounds" form (:class:`FingerprintObjective`): for max (min) entries, every atom other than the one that
  attains the extremum also pays w_e max(0, G_f(i) - t_e)^2 (max(0, t_e - G_f(i))^2). Same zeros; but the pooled
  vector is a max of smooth functions, and near a symmetric cluster, where many atoms tie, its kinks stall L-BFGS-B
  1e-3 to 1e-2 Angstrom short of the solution (line-search failures), while the bounds form converges to ~1e-5
  Angstrom. From random starts it also reached the right basin as often (193 against 178 of 416 runs) in 2.4
  times fewer iterations.
* Weights: the starts and hops use w_e = 1 / P (P entries: the plain mean squared error), which found the right
  basin from about twice as many starts as weights relative to each entry's size. The polish uses relative weights
  w_e = 1 / (P (|t_e| + floor)^2), floor = ``weight_floor`` max_e |t_e|, so that the small entries (the published
  G5 entries with large eta and zeta are 1e-5 ... 1e-10 of the G2 ones) count too, with m = 30 memory pairs: the
  ill-conditioned last digits converge in a few hundred iterations. The reported loss is the polish objective,
  about the mean squared relative error of the fingerprint (1e-4: about 1 % RMS).

Each L-BFGS-B run is a whole minimisation in C++ (``pdfsolve::invert_fingerprint``: the per-atom ACSF, the pooling,
the gradient through both and the penalty, without Python) or, as reference and fallback, one
:func:`pdfsolve.optim.minimize_batched` call for the batch with the objective by autograd through
:func:`pdfsolve.geometry.pooled_acsf`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

import torch
from tqdm.auto import tqdm

from ..geometry import ACSFParameters, acsf, pooled_acsf
from ._solver import minimize_positions, resolve_backend

#: Pooling names and the op's codes (csrc/optim/fingerprint_objective.h).
POOLING_CODES = {"max": 0, "min": 1, "mean": 2}
#: Default nearest-neighbour distance in Angstrom for sizing the starts (a mid-row d-block metal; Au 2.88, Cu 2.56).
BOND_LENGTH = 2.75


@dataclass(frozen=True)
class FingerprintObjective:
    """The objective of B problems (see the module docstring).

    target, weight : (B, P) float64, P = len(pooling) F; species : (B, N) int64 (-1 = padding); n_species : S;
    params : the ACSF parameters; pooling : names among "max", "min", "mean"; min_distance [Angstrom] and
    penalty [units of f / Angstrom^2] of the overlap penalty; bounds : add, for every max (min) entry e and every
    real atom i, w_e max(0, G_f(i) - t_e)^2 (max(0, t_e - G_f(i))^2) beyond the atom that attains the extremum
    (csrc/optim/fingerprint_objective.h: same zeros, smooth where atoms tie).
    """

    target: torch.Tensor
    weight: torch.Tensor
    species: torch.Tensor
    n_species: int
    params: ACSFParameters
    pooling: tuple[str, ...]
    min_distance: float
    penalty: float
    bounds: bool = False

    def rows(self, index: torch.Tensor) -> "FingerprintObjective":
        """The problems ``index`` (k,) (repeats allowed), as a new objective."""
        return replace(self, target=self.target[index], weight=self.weight[index], species=self.species[index])

    def _op_args(self):
        p = self.params
        return (self.species, self.n_species, self.target, self.weight, p.radial, p.angular, p.rcut,
                [POOLING_CODES[name] for name in self.pooling], self.min_distance, self.penalty, self.bounds)

    def reference(self, x: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        """f (k,) at x (k, N, 3) [Angstrom] for the problems ``index`` (default all), differentiable by autograd
        (:func:`pooled_acsf` and a plain-torch penalty: the reference of the compiled objective)."""
        obj = self if index is None else self.rows(index)
        mask = obj.species >= 0
        species = obj.species.clamp(min=0)
        v = pooled_acsf(x, species, self.params, self.n_species, mask, self.pooling)
        f = (obj.weight * (v - obj.target) ** 2).sum(-1)
        if self.bounds:  # sum_i max(0, s (G_i - t))^2 + max(0, s (t - v))^2 = (v - t)^2 + the other atoms' terms
            g = acsf(x, species, self.params, self.n_species, mask)  # (k, N, F)
            nf = g.shape[-1]
            for p, name in enumerate(self.pooling):
                if name == "mean":
                    continue
                sign = 1.0 if name == "max" else -1.0
                t, w = obj.target[:, p * nf:(p + 1) * nf], obj.weight[:, p * nf:(p + 1) * nf]
                over = torch.relu(sign * (g - t[:, None])) * mask[..., None]
                short = torch.relu(sign * (t - v[:, p * nf:(p + 1) * nf]))
                f = f + (w * ((over**2).sum(1) + short**2 - (v[:, p * nf:(p + 1) * nf] - t) ** 2)).sum(-1)
        diff = x[:, :, None, :] - x[:, None, :, :]
        pair = torch.triu(mask[:, :, None] & mask[:, None, :], 1)
        d = torch.where(pair, diff.pow(2).sum(-1), torch.ones_like(diff[..., 0])).sqrt()
        return f + self.penalty * (torch.relu(self.min_distance - d) ** 2 * pair).sum((1, 2))

    def value_and_grad(self, x: torch.Tensor, backend: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
        """f (B,) and df/dx (B, N, 3) at x (B, N, 3) in Angstrom: ``"compiled"`` (``pdfsolve::fingerprint_loss``)
        or ``"torch"`` (autograd through :meth:`reference`)."""
        x = torch.as_tensor(x, dtype=torch.float64)
        if resolve_backend(backend, "fingerprint_loss") == "compiled":
            return torch.ops.pdfsolve.fingerprint_loss(x, *self._op_args())
        with torch.enable_grad():
            xr = x.detach().requires_grad_(True)
            f = self.reference(xr)
            (g,) = torch.autograd.grad(f.sum(), xr)
        return f.detach(), g


@dataclass
class FingerprintInversion:
    """Result of :func:`invert_fingerprint` for B fingerprints.

    x : (B, N, 3) best coordinates in Angstrom, centred on the centroid of the real atoms (padding rows zero; the
        frame is arbitrary: compare up to rotation, reflection, translation and permutation).
    loss : (B,) the polish objective at x (relative weights: about the mean squared relative error of the
        fingerprint, plus the overlap penalty); a high value marks a fingerprint no N-atom cluster has.
    start_losses : (B, R) final objective (weights 1 / P) of every start and hop, R = K + n_hops n_starts (runs
        skipped once a cluster was solved hold inf).
    status, nit : (B,) L-BFGS-B status code (:data:`pdfsolve.optim.STATUS`) and iterations of the polish.
    mask : (B, N) bool, real atoms.
    """

    x: torch.Tensor
    loss: torch.Tensor
    start_losses: torch.Tensor
    status: torch.Tensor
    nit: torch.Tensor
    mask: torch.Tensor


def fingerprint_weights(target: torch.Tensor, floor: float = 0.1) -> torch.Tensor:
    """Relative weights (B, P) for targets (B, P): 1 / (P (|t| + floor max|t|)^2), the mean squared relative error
    with a floor (module docstring). A target of zeros gets weights 1 / P."""
    scale = target.abs() + floor * target.abs().amax(-1, keepdim=True)
    return 1.0 / (target.shape[-1] * torch.where(scale > 0, scale, torch.ones_like(scale)) ** 2)


def start_radius(n_atoms: torch.Tensor, bond_length: float = BOND_LENGTH) -> torch.Tensor:
    """Radius (B,) in Angstrom of the sphere the random starts fill: a sphere holding N atoms at the density of a
    close-packed solid of nearest-neighbour distance ``bond_length``, (3 N / (4 pi sqrt 2))^(1/3) bond_length."""
    return (3.0 * n_atoms.to(torch.float64) / (4.0 * math.pi * math.sqrt(2.0))) ** (1.0 / 3.0) * bond_length


def random_starts(mask: torch.Tensor, radius: torch.Tensor, n_starts: int, generator: torch.Generator) -> torch.Tensor:
    """(B, K, N, 3) points drawn uniformly in a ball of radius (B,) Angstrom around the origin for the real atoms
    of mask (B, N); padding rows zero."""
    B, N = mask.shape
    u = torch.randn(B, n_starts, N, 3, generator=generator, dtype=torch.float64)
    u = u / u.norm(dim=-1, keepdim=True).clamp(min=1e-300)
    r = radius[:, None, None, None] * torch.rand(B, n_starts, N, 1, generator=generator, dtype=torch.float64) ** (1 / 3)
    return u * r * mask[:, None, :, None]


def _as_rows(value, B: int, name: str, dtype) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=dtype)
    if t.dim() == 1:
        t = t[None].expand(B, -1)
    if t.dim() != 2 or t.shape[0] != B:
        raise ValueError(f"{name} must have shape ({B}, n) or (n,), got {tuple(t.shape)}")
    return t.contiguous()


@dataclass(frozen=True)
class _Stage:
    """L-BFGS-B options of one stage."""

    m: int
    ftol: float
    gtol: float
    maxiter: int


#: Starts and hops: loose tolerances (a run only has to reach its basin); polish: to the last digits.
EXPLORE = _Stage(m=10, ftol=1e-10, gtol=1e-6, maxiter=1000)
POLISH = _Stage(m=30, ftol=0.0, gtol=1e-15, maxiter=3000)


def invert_fingerprint(target, n_atoms, *, species=None, n_species: int | None = None,
                       params: ACSFParameters | None = None, pooling: Sequence[str] = ("max", "min"),
                       n_starts: int = 8, n_hops: int = 3, hop_size: float = 0.3, starts=None,
                       bond_length: float = BOND_LENGTH, radius=None, min_distance: float | None = None,
                       penalty: float = 1.0, weights=None, weight_floor: float = 0.1, solved_loss: float = 1e-6,
                       seed: int = 0, backend: str = "auto", progress: bool = False) -> FingerprintInversion:
    """Coordinates of B clusters from their pooled ACSF fingerprints (module docstring).

    Parameters
    ----------
    target : (P,) or (B, P) fingerprints, P = len(pooling) F (:func:`pdfsolve.geometry.pooled_acsf` with the same
        params, species and pooling). A 1-D target gives results without the batch dimension.
    n_atoms : int or (B,) ints, atoms per cluster (clusters are padded to the largest).
    species : (N,) or (B, N) element indices in [0, n_species) of the first n_atoms slots (default all 0);
        n_species : S (default species.max() + 1).
    params : ACSF parameters (default :meth:`ACSFParameters.published`); pooling : as in ``pooled_acsf``.
    n_starts : runs per cluster and round. Round 0 starts from random points (or ``starts``, (B, K, N, 3) or
        (K, N, 3) Angstrom, e.g. library clusters); each of the ``n_hops`` further rounds from the best result so far
        with every coordinate displaced by N(0, hop_size^2) [Angstrom]. A cluster whose best loss in these rounds
        (plain weights 1 / P) is below ``solved_loss`` skips the remaining rounds.
    bond_length : typical nearest-neighbour distance [Angstrom]: random starts fill a ball of
        :func:`start_radius` (``radius``, (B,) or a float in Angstrom, overrides it) and ``min_distance`` defaults
        to 0.75 bond_length.
    penalty : weight of the overlap penalty [1 / Angstrom^2].
    weights, weight_floor : the polish's weights: (P,) or (B, P), default :func:`fingerprint_weights`.
    seed : random starts and hops are reproducible for a given seed.
    backend : ``"compiled"``, ``"torch"`` (autograd reference, slow) or ``"auto"``; progress : a tqdm bar over
        the rounds.
    """
    params = ACSFParameters.published() if params is None else params
    for name in pooling:
        if name not in POOLING_CODES:
            raise ValueError(f"pooling must be among {tuple(POOLING_CODES)}, got {name!r}")
    target = torch.as_tensor(target, dtype=torch.float64)
    squeeze = target.dim() == 1
    target = target[None] if squeeze else target
    if target.dim() != 2:
        raise ValueError(f"target must have shape (P,) or (B, P), got {tuple(target.shape)}")
    if not bool(torch.isfinite(target).all()):
        raise ValueError("target contains NaN or inf")
    B = target.shape[0]
    counts = torch.as_tensor(n_atoms, dtype=torch.long).reshape(-1)
    counts = counts.expand(B).clone() if counts.numel() == 1 else counts
    if counts.shape != (B,):
        raise ValueError(f"n_atoms must be an int or have shape ({B},), got {tuple(counts.shape)}")
    if bool((counts < 1).any()):
        raise ValueError("n_atoms must be >= 1")
    N = int(counts.max())
    mask = torch.arange(N)[None] < counts[:, None]
    if species is None:
        sp = torch.zeros(B, N, dtype=torch.long)
    else:
        sp = _as_rows(species, B, "species", torch.long)
        if sp.shape[1] < N:
            raise ValueError(f"species must give at least {N} atoms per cluster, got {sp.shape[1]}")
        sp = sp[:, :N]
        if bool((sp[mask] < 0).any()):
            raise ValueError("species of real atoms must be >= 0")
    sp = torch.where(mask, sp, -1)
    S = int(sp.max()) + 1 if n_species is None else int(n_species)
    if int(sp.max()) >= S:
        raise ValueError(f"species values must be < n_species ({S})")
    P = len(pooling) * params.n_features(S)
    if target.shape[1] != P:
        raise ValueError(f"target must have {P} entries (len(pooling) x {params.n_features(S)} features), "
                         f"got {target.shape[1]}")
    polish_w = fingerprint_weights(target, weight_floor) if weights is None else \
        _as_rows(weights, B, "weights", torch.float64)
    if polish_w.shape != target.shape or not bool(torch.isfinite(polish_w).all()) or bool((polish_w < 0).any()):
        raise ValueError(f"weights must be finite, >= 0 and of shape ({P},) or ({B}, {P})")
    if n_starts < 1 or n_hops < 0:
        raise ValueError(f"n_starts must be >= 1 and n_hops >= 0, got {n_starts} and {n_hops}")
    if not (math.isfinite(bond_length) and bond_length > 0):
        raise ValueError(f"bond_length must be finite and > 0 (Angstrom), got {bond_length}")
    if starts is not None:
        starts = torch.as_tensor(starts, dtype=torch.float64)
        starts = starts[None].expand(B, -1, -1, -1) if starts.dim() == 3 else starts
        if starts.dim() != 4 or starts.shape[0] != B or starts.shape[2:] != (N, 3):
            raise ValueError(f"starts must have shape ({B}, K, {N}, 3) or (K, {N}, 3), got {tuple(starts.shape)}")
        if not bool(torch.isfinite(starts).all()):
            raise ValueError("starts contains NaN or inf")
    min_distance = 0.75 * bond_length if min_distance is None else float(min_distance)
    rad = start_radius(counts, bond_length) if radius is None else \
        torch.as_tensor(radius, dtype=torch.float64).expand(B).clone()
    explore = FingerprintObjective(target, torch.full_like(target, 1.0 / P), sp, S, params, tuple(pooling),
                                   min_distance, float(penalty), bounds=True)
    backend = resolve_backend(backend, "invert_fingerprint")
    gen = torch.Generator().manual_seed(int(seed))

    rounds = 1 + n_hops
    k0 = n_starts if starts is None else starts.shape[1]
    best_x = torch.zeros(B, N, 3, dtype=torch.float64)
    best_f = torch.full((B,), math.inf, dtype=torch.float64)
    start_losses = torch.full((B, k0 + n_hops * n_starts), math.inf, dtype=torch.float64)
    done = 0
    with tqdm(total=rounds + 1, desc="fingerprint inversion", unit="round", disable=not progress) as bar:
        for r in range(rounds):
            bar.update()
            active = torch.nonzero(best_f >= solved_loss).flatten()
            if len(active) == 0:
                continue
            if r == 0:
                x0 = random_starts(mask, rad, n_starts, gen) if starts is None else starts * mask[:, None, :, None]
            else:
                kick = hop_size * torch.randn(len(active), n_starts, N, 3, generator=gen, dtype=torch.float64)
                x0 = (best_x[active][:, None] + kick) * mask[active][:, None, :, None]
            k = x0.shape[1]
            xr, f, _, _ = _solve(explore.rows(active.repeat_interleave(k)), x0.reshape(-1, N, 3), backend, EXPLORE)
            f = torch.where(torch.isfinite(f), f, math.inf).reshape(len(active), k)
            start_losses[active, done:done + k] = f
            done += k
            fmin, kmin = f.min(1)
            better = fmin < best_f[active]
            best_f[active[better]] = fmin[better]
            best_x[active[better]] = xr.reshape(len(active), k, N, 3)[better, kmin[better]]
        x, loss, nit, status = _solve(replace(explore, weight=polish_w), best_x, backend, POLISH)
        bar.update()
    w = mask[..., None].to(torch.float64)
    centred = (x - (x * w).sum(1, keepdim=True) / w.sum(1, keepdim=True)) * w
    out = FingerprintInversion(centred, loss, start_losses, status, nit, mask)
    if squeeze:
        out = FingerprintInversion(*(getattr(out, name)[0] for name in out.__dataclass_fields__))
    return out


def _solve(objective: FingerprintObjective, x0: torch.Tensor, backend: str, stage: _Stage):
    """One L-BFGS-B run per row of x0 (M, N, 3): (x, f, nit, status)."""
    if backend == "compiled":
        return torch.ops.pdfsolve.invert_fingerprint(x0, *objective._op_args(), stage.m, stage.ftol, stage.gtol,
                                                     stage.maxiter)
    res = minimize_positions(lambda x, mask, index: objective.reference(x, index), x0, objective.species >= 0,
                             m=stage.m, ftol=stage.ftol, gtol=stage.gtol, maxiter=stage.maxiter)
    return res.x, res.loss, res.nit, res.status
