"""Batched least-squares refinement of many candidate clusters against observed PDFs.

Each candidate b has its own parameters: scale a_b, isotropic expansion s_b (positions scaled about the
centroid), one U_iso u_b for all atoms, and optionally qdamp_b and delta2_b. The loss of a candidate is
sum_r (G_obs(r) - a_b G_b(r))^2 over the target's grid; candidates are independent problems, minimised
together by a batched Levenberg-Marquardt with per-candidate normal equations (at most 5x5):

* a is solved in closed form (linear least squares) after every step;
* with no Jeong widths (delta1 = delta2 = qbroad = 0, delta2 not refined) U_iso enters analytically:
  F = F_0 exp(-u Q^2) exactly, F_0 being F(Q) of the expanded cluster with U_iso = 0, so dG/du costs one
  transform and no engine call. Expansion then costs no engine call either (the *expansion table*): all
  distances scale by s, so the Debye partial sums of the expanded cluster are
  A_st^(s)(Q) = sum sin(Q s r) / (s r) = A_st(s Q) / s, and F_0^(s)(Q) = sum_st w_st(Q) A_st(s Q) / s with
  the form-factor weights w_st(Q) = 2 f_s(Q) f_t(Q) / (N <f(Q)>^2) taken at Q itself. One engine call per
  chunk gives A_st of the unexpanded candidates on a fine uniform grid x_j = j h up to 1.1 Q_max; A_st(x)
  is band-limited (a sum of sin(x r) with r <= D, the largest pair distance), so an 8-point Lagrange
  interpolant with h = 0.4 / D reproduces it to ~1e-6 of its amplitude at frequency D (far less below),
  and dF/ds is the interpolant's exact derivative. This holds while no pair distance crosses the engine's
  pair range [extended_rmin, extended_rmax] as s spans the bounds; candidates where one does fall back to:
* otherwise dG/ds is a forward difference (one extra batched engine call per iteration), and u (and
  delta2) are forward differences too unless analytic; delta2 is a scalar of the engine, so candidates
  with different delta2 need separate engine calls;
* qdamp is the envelope exp(-(qdamp r)^2 / 2), differentiated analytically.

Peaks at distance D move by D * ds, so the loss has local minima in s: a scan of ``n_scan`` expansions
over the bounds (through the expansion table, or one batched engine call each) picks each candidate's start.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from .engine.batch import ClusterBatch
from .engine.debye import debye_partials, structure_function
from .engine.grids import DebyeGrid
from .engine.parameters import PDFParameters
from .engine.scattering import scattering_factors
from .metrics import rwp
from .ops import pair_distances
from .target import Target

EXPANSION_BOUNDS = (0.9, 1.1)
#: [Angstrom^2]
UISO_BOUNDS = (0.0005, 0.05)
#: [1/Angstrom]
QDAMP_BOUNDS = (0.0, 0.1)
#: [Angstrom^2]
DELTA2_BOUNDS = (0.0, 5.0)
#: Forward-difference steps of expansion, U_iso [Angstrom^2] and delta2 [Angstrom^2].
_STEP = {"expansion": 2e-5, "uiso": 1e-5, "delta2": 1e-3}
#: Levenberg-Marquardt damping: start, floor, factors on success and failure, ceiling (stop).
_LAMBDA0, _LAMBDA_MIN, _LAMBDA_DOWN, _LAMBDA_UP, _LAMBDA_MAX = 1e-3, 1e-7, 3.0, 10.0, 1e3
#: Expansion table: Lagrange stencil (points) and fine spacing h = _TABLE_THETA / (largest pair distance):
#: relative interpolation error at the largest distance ~7e-7 (see tests/test_refine.py).
_TABLE_POINTS, _TABLE_THETA = 8, 0.4
#: (B, N, N) pair distances measured at once by the pair-range check.
_PAIR_BLOCK = 2**22


def _lagrange(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (n,) of an n-point stencil around [0, 1) and coefficients c (n, n): weight_i(t) = sum_p c[i, p] t^p."""
    offsets = np.arange(-(n // 2 - 1), n // 2 + 1)
    c = np.zeros((n, n))
    for i, a in enumerate(offsets):
        poly = np.poly1d([1.0])
        for b in offsets:
            if b != a:
                poly = poly * np.poly1d([1.0, -float(b)]) / float(a - b)
        c[i, :len(poly.c)] = poly.c[::-1]
    return offsets, c


class ExpansionTable:
    """F_0(Q) (U_iso = 0, no Jeong widths) of B candidates at any expansion in the bounds, from one engine call.

    ``A_p(x)`` (B, P, nf), the Debye partial sums of the unexpanded candidates over the species pairs
    p = {s, t} and pairs with rcut_lo < r <= rcut_hi, is stored on x_j = j h; then
    F_s(Q) = sum_p w_p(Q) A_p(s Q) / s with w_p = 2 f_s f_t / (N <f>^2) at Q (``engine.debye._normalise``).
    A_p is odd in x (sin), which fills the stencil below x = 0.

    Args:
        pos: (B, N, 3) centred positions [Angstrom]; species: (B, N) (-1 padding); symbols: species table.
        q: (nq,) Q grid [1/Angstrom]; radiation: "xray" or "neutron".
        rcut_lo, rcut_hi: pair range of the unexpanded candidates [Angstrom].
        dmax: largest pair distance [Angstrom] (sets h); smax: largest expansion wanted.
    """

    def __init__(self, pos, species, symbols, q: torch.Tensor, radiation: str, rcut_lo: float, rcut_hi: float,
                 dmax: float, mode: str = "fast", smax: float = EXPANSION_BOUNDS[1]):
        dtype, device = pos.dtype, pos.device
        offsets, coef = _lagrange(_TABLE_POINTS)
        self.q = q
        self.h = _TABLE_THETA / max(dmax, 1e-3)
        nx = int(math.floor(smax * float(q[-1]) / self.h)) + 1  # stencil origins j0 = 0 .. nx - 1
        self.j0_max = nx - 1
        nf = nx + int(offsets[-1]) + 1
        self.pad = -int(offsets[0])  # odd reflection A(-x) = -A(x) below x = 0
        self.coef = torch.as_tensor(coef.T, dtype=dtype, device=device)  # (p, i)
        self.dcoef = torch.as_tensor((coef[:, 1:] * np.arange(1, _TABLE_POINTS)).T, dtype=dtype, device=device)
        self.offsets = torch.as_tensor(offsets + self.pad, device=device)
        batch = ClusterBatch(pos, species, torch.zeros(pos.shape[:2], dtype=dtype, device=device), list(symbols))
        params = PDFParameters(radiation=radiation)
        groups = []
        for index, sub in batch.split_by_species():
            s = sub.n_species
            a = debye_partials(sub, self.h, nf, rcut_lo, rcut_hi, params, mode).reshape(len(index), s, s, nf)
            f = scattering_factors(sub.symbols, q, radiation)  # (S, nq)
            counts = sub.species_counts().to(dtype)
            n = counts.sum(1, keepdim=True)
            fsum = counts @ f
            denom = fsum * fsum / n.clamp(min=1)
            inv = torch.where(denom > 0, 2.0 / torch.where(denom > 0, denom, torch.ones_like(denom)),
                              torch.zeros_like(denom))  # (b, nq)
            pairs = [(i, j) for i in range(s) for j in range(i, s)]
            ap = torch.stack([a[:, i, j] + (a[:, j, i] if i != j else 0) for i, j in pairs], 1)
            wp = torch.stack([inv * (f[i] * f[j]) for i, j in pairs], 1)
            groups.append((index, ap, wp))
        npair = max(len(g[1][0]) if len(g[0]) else 1 for g in groups)
        b = len(pos)
        self.npair, self.nfp = npair, nf + self.pad
        table = pos.new_zeros((b, npair, self.nfp))
        self.w = pos.new_zeros((b, npair, len(q)))
        for index, ap, wp in groups:
            table[index, :ap.shape[1], self.pad:] = ap
            self.w[index, :wp.shape[1]] = wp
        table[..., :self.pad] = -table[..., self.pad + 1:2 * self.pad + 1].flip(-1)
        self.table = table.reshape(-1)

    def __call__(self, idx, s, deriv: bool = False):
        """F_s (b, nq) [1/Angstrom] of candidates ``idx`` (b,) at expansions ``s`` (b,); with ``deriv`` also dF_s/ds."""
        u = (s[:, None] * self.q) / self.h
        j0 = torch.floor(u).clamp(0, self.j0_max)
        t = u - j0
        powers = torch.linalg.vander(t, N=_TABLE_POINTS)  # (b, nq, n)
        where = (j0.long()[..., None] + self.offsets).reshape(len(idx), 1, -1)  # (b, 1, nq n)
        rows = (idx[:, None] * self.npair + torch.arange(self.npair, device=idx.device)) * self.nfp
        vals = self.table[rows[..., None] + where].reshape(len(idx), self.npair, len(self.q), _TABLE_POINTS)
        w = self.w[idx] / s[:, None, None]
        f = (w * (vals * (powers @ self.coef)[:, None]).sum(-1)).sum(1)
        if not deriv:
            return f
        dvals = (vals * (powers[..., :-1] @ self.dcoef)[:, None]).sum(-1)  # h dA/dx at s Q
        return f, (w * dvals).sum(1) * (self.q / self.h) - f / s[:, None]


@dataclass
class RefinementResult:
    """Refined parameters of B candidates (all tensors detached, on the candidates' device).

    Attributes:
        scale, expansion: (B,) dimensionless.
        uiso: (B,) U_iso of every atom [Angstrom^2].
        qdamp: (B,) [1/Angstrom] (the target's value unless refined).
        delta2: (B,) [Angstrom^2] (the target's value unless refined).
        rwp: (B,) Rwp on the target's grid.
        g_calc: (B, nr) fitted G(r) = scale * G_calc [1/Angstrom^2] on ``r``.
        positions: (B, N, 3) refined positions: centred on the centroid and expanded [Angstrom]
            (padding slots 0).
        r: (nr,) r grid of the targets [Angstrom].
        n_iter: (B,) Levenberg-Marquardt iterations taken.
        engine_calls: batched structure-function evaluations made (all chunks).
    """

    scale: torch.Tensor
    expansion: torch.Tensor
    uiso: torch.Tensor
    qdamp: torch.Tensor
    delta2: torch.Tensor
    rwp: torch.Tensor
    g_calc: torch.Tensor
    positions: torch.Tensor
    r: np.ndarray
    n_iter: torch.Tensor
    engine_calls: int


class _Chunk:
    """Candidates refined together against targets that share one set of PDF parameters.

    The model of candidate b is scale_b * G_b with G_b = (F_b @ M) * env_b: F_b (nq,) from the engine,
    M the (nq, nr) transform and env_b the qdamp envelope. Every column of the Jacobian but qdamp's is
    such a transform of a Q-space column, so with a fixed qdamp (one env) all inner products over r
    are taken in Q space through K = M' M'^T and v = M' G_obs (M' = M env): nq^2 instead of nq * nr.
    """

    def __init__(self, pos, species, symbols, g_obs, params: PDFParameters, grid_uiso: float, refine_qdamp: bool,
                 refine_delta2: bool, mode: str, table_range: tuple[float, float, float] | None = None):
        self.pos, self.species, self.symbols, self.g_obs, self.mode = pos, species, symbols, g_obs, mode
        self.refine_qdamp = refine_qdamp
        self.base = params.replace(qdamp=0.0, scale=1.0)
        # One grid for the whole fit (diffpy's for U_iso = grid_uiso), so that it never changes during it.
        self.grid = DebyeGrid.build(self.base, grid_uiso)
        self.matrix = self.grid.transform_matrix(pos.dtype, pos.device)
        self.q2 = torch.as_tensor(self.grid.q, dtype=pos.dtype, device=pos.device) ** 2
        self.r2 = torch.as_tensor(self.grid.r, dtype=pos.dtype, device=pos.device) ** 2
        self.analytic_u = not refine_delta2 and (params.delta1, params.delta2, params.qbroad) == (0.0, 0.0, 0.0)
        self.names = ["expansion", "uiso"] + ["delta2"] * refine_delta2 + ["qdamp"] * refine_qdamp
        self.obs2 = (g_obs**2).sum(-1)
        if not refine_qdamp:
            weighted = self.matrix * torch.exp(-0.5 * params.qdamp**2 * self.r2)
            self.gram = weighted @ weighted.T
            self.proj_obs = g_obs @ weighted.T
        self.engine_calls = 0
        # table_range = (rcut_lo, rcut_hi, dmax): use the expansion table (needs analytic U_iso).
        self.table = None
        if table_range is not None and self.analytic_u:
            self.engine_calls += 1
            self.table = ExpansionTable(pos, species, symbols, torch.as_tensor(self.grid.q, dtype=pos.dtype,
                                        device=pos.device), params.radiation, *table_range, mode=mode)

    def _sf(self, idx, pos, uiso, grid) -> torch.Tensor:
        self.engine_calls += 1
        return structure_function(ClusterBatch(pos, self.species[idx], uiso, self.symbols), grid, self.mode)

    def fq(self, idx, theta) -> torch.Tensor:
        """F(Q) (b, nq) [1/Angstrom] of candidates ``idx`` at expansion, uiso and delta2 of ``theta``."""
        if self.table is not None:
            return self.table(idx, theta["expansion"]) * torch.exp(-theta["uiso"][:, None] * self.q2)
        pos = self.pos[idx] * theta["expansion"][:, None, None]
        if self.analytic_u:
            f0 = self._sf(idx, pos, torch.zeros(pos.shape[:2], dtype=pos.dtype, device=pos.device), self.grid)
            return f0 * torch.exp(-theta["uiso"][:, None] * self.q2)
        uiso = theta["uiso"][:, None].expand(pos.shape[:2]).contiguous()
        out = pos.new_empty((len(idx), len(self.q2)))
        for value in torch.unique(theta["delta2"]).tolist():
            sel = torch.nonzero(theta["delta2"] == value).flatten()
            grid = dataclasses.replace(self.grid, params=self.base.replace(delta2=value))
            out[sel] = self._sf(idx[sel], pos[sel], uiso[sel], grid)
        return out

    def g(self, f, qdamp) -> torch.Tensor:
        """Unscaled G(r) (..., nr) from F(Q) (..., nq) with the qdamp envelope (b,) [1/Angstrom]."""
        env = torch.exp(-0.5 * qdamp[:, None] ** 2 * self.r2)
        return (f @ self.matrix) * (env if f.dim() == 2 else env[:, None, :])

    def products(self, idx, cols, theta, scale):
        """Normal-equation products of the model columns: (A (b, k, k), c (b, k)) with A = R R^T, c = R G_obs.

        ``cols`` (b, k, nq) are Q-space columns (the first one F), R their transforms to r; with a refined
        qdamp the column d(scale G)/d(qdamp) = -scale qdamp r^2 G is appended.
        """
        if not self.refine_qdamp:
            kc = cols @ self.gram
            return kc @ cols.transpose(1, 2), (cols @ self.proj_obs[idx, :, None])[..., 0]
        rows = self.g(cols, theta["qdamp"])
        if len(cols[0]) > 1:
            dq = -(scale * theta["qdamp"])[:, None] * self.r2 * rows[:, 0]
            rows = torch.cat([rows, dq[:, None]], 1)
        return rows @ rows.transpose(1, 2), (rows @ self.g_obs[idx, :, None])[..., 0]

    def evaluate(self, idx, theta):
        """F (b, nq), closed-form scale (b,) and loss (b,) of candidates ``idx`` at ``theta`` (dict of (b,))."""
        f = self.fq(idx, theta)
        a, c = self.products(idx, f[:, None], theta, None)
        gg, og = a[:, 0, 0], c[:, 0]
        scale = (og / torch.where(gg > 0, gg, torch.ones_like(gg))).clamp(min=0.0)
        return f, scale, self.obs2[idx] - 2 * scale * og + scale**2 * gg

    def jacobian_columns(self, idx, theta, f, scale) -> torch.Tensor:
        """(b, k, nq) Q-space columns: F, then scale * dF/dp for the parameters p of ``names`` but qdamp."""
        cols = [f]
        for name in self.names:
            if name == "qdamp":
                continue
            if name == "uiso" and self.analytic_u:
                cols.append(-self.q2 * f)
                continue
            if name == "expansion" and self.table is not None:
                cols.append(self.table(idx, theta[name], deriv=True)[1] * torch.exp(-theta["uiso"][:, None] * self.q2))
                continue
            hi = _bounds(name)[1]
            h = torch.where(theta[name] + _STEP[name] <= hi, _STEP[name], -_STEP[name]).to(f.dtype)
            cols.append((self.fq(idx, dict(theta, **{name: theta[name] + h})) - f) / h[:, None])
        return torch.stack([cols[0]] + [scale[:, None] * c for c in cols[1:]], 1)

    def scan(self, theta, n_scan: int):
        """Set each candidate's expansion to the best of ``n_scan`` values over the bounds."""
        idx = torch.arange(len(self.pos), device=self.pos.device)
        best = None
        for s in np.linspace(*EXPANSION_BOUNDS, n_scan):
            trial = dict(theta, expansion=torch.full_like(theta["expansion"], s))
            loss = self.evaluate(idx, trial)[2]
            better = torch.ones_like(loss, dtype=torch.bool) if best is None else loss < best
            best = loss if best is None else torch.where(better, loss, best)
            theta["expansion"] = torch.where(better, trial["expansion"], theta["expansion"])

    def solve(self, theta, max_iter: int, tol: float):
        """Levenberg-Marquardt from ``theta`` (modified in place); returns (F, scale, n_iter)."""
        b = len(self.pos)
        f, scale, loss = self.evaluate(torch.arange(b, device=self.pos.device), theta)
        lam = torch.full((b,), _LAMBDA0, dtype=f.dtype, device=f.device)
        n_iter = torch.zeros(b, dtype=torch.long, device=f.device)
        active = torch.ones(b, dtype=torch.bool, device=f.device)
        for _ in range(max_iter):
            idx = torch.nonzero(active).flatten()
            if len(idx) == 0:
                break
            n_iter[idx] += 1
            sub = {k: v[idx] for k, v in theta.items()}
            cols = self.jacobian_columns(idx, sub, f[idx], scale[idx])
            jtj, jto = self.products(idx, cols, sub, scale[idx])
            rhs = jto - scale[idx, None] * jtj[:, :, 0]  # J^T (G_obs - scale G)
            diag = torch.diagonal(jtj, dim1=1, dim2=2)
            diag = torch.maximum(diag, 1e-12 * diag.amax(1, keepdim=True) + torch.finfo(diag.dtype).tiny)
            step = torch.linalg.solve(jtj + torch.diag_embed(lam[idx, None] * diag), rhs[..., None])[..., 0]
            trial = dict(sub)
            for k, name in enumerate(self.names, start=1):
                trial[name] = (sub[name] + step[:, k]).clamp(*_bounds(name))
            f_t, scale_t, loss_t = self.evaluate(idx, trial)
            accept = loss_t < loss[idx]
            gain = (loss[idx] - loss_t) / loss[idx].clamp(min=torch.finfo(f.dtype).tiny)
            acc = idx[accept]
            for name in self.names:
                theta[name][acc] = trial[name][accept]
            f[acc], scale[acc], loss[acc] = f_t[accept], scale_t[accept], loss_t[accept]
            lam[idx] = torch.where(accept, (lam[idx] / _LAMBDA_DOWN).clamp(min=_LAMBDA_MIN), lam[idx] * _LAMBDA_UP)
            done = (accept & (gain < tol)) | (lam[idx] > _LAMBDA_MAX)
            active[idx[done]] = False
        return f, scale, n_iter


def _bounds(name: str) -> tuple[float, float]:
    return {"expansion": EXPANSION_BOUNDS, "uiso": UISO_BOUNDS, "qdamp": QDAMP_BOUNDS,
            "delta2": DELTA2_BOUNDS}[name]


def _fixed_pair_set(pos: torch.Tensor, mask: torch.Tensor, grid: DebyeGrid) -> tuple[torch.Tensor, torch.Tensor]:
    """(B,) whether no pair distance of a candidate crosses the grid's pair range [extended_rmin,
    extended_rmax] as the expansion spans its bounds, and (B,) an upper bound of its largest pair distance
    [Angstrom] (twice the largest distance from the centre of ``pos``, or exact where that is not enough)."""
    s0, s1 = EXPANSION_BOUNDS
    lo, hi = grid.extended_rmin, grid.extended_rmax
    dmax = 2.0 * (pos.norm(dim=-1) * mask).amax(1) if pos.shape[1] else pos.new_zeros(len(pos))
    fixed = (dmax * s1 <= hi) & (lo <= 0.0)
    todo = torch.nonzero(~fixed).flatten()
    n = pos.shape[1]
    block = max(1, _PAIR_BLOCK // max(n * n, 1))
    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=pos.device)
    for start in range(0, len(todo), block):
        k = todo[start:start + block]
        d = pair_distances(pos[k], mask[k])  # exact differences, 0 off the real pairs
        pair = mask[k][:, :, None] & mask[k][:, None, :] & off_diagonal
        crossing = ((d > lo / s1) & (d <= lo / s0)) | ((d > hi / s1) & (d <= hi / s0))
        fixed[k] = ~(crossing & pair).flatten(1).any(1)
        dmax[k] = torch.where(pair, d, torch.zeros_like(d)).flatten(1).amax(1)
    return fixed, dmax


def _centred(batch: ClusterBatch) -> torch.Tensor:
    """(B, N, 3) positions minus each cluster's centroid, 0 on padding [Angstrom]."""
    mask = batch.mask[..., None].to(batch.pos.dtype)
    centre = (batch.pos * mask).sum(1, keepdim=True) / mask.sum(1, keepdim=True).clamp(min=1)
    return (batch.pos - centre) * mask


def refine(candidates, target: Target | Sequence[Target], target_index=None, *, uiso: float = 0.005,
           refine_qdamp: bool = False, refine_delta2: bool = False, n_scan: int = 21, max_iter: int = 40,
           tol: float = 1e-8, chunk_size: int = 512, mode: str = "fast", dtype=torch.float64,
           callback: Callable[[int, int], None] | None = None) -> RefinementResult:
    """Refine scale, expansion and U_iso (optionally qdamp, delta2) of every candidate against its target.

    Args:
        candidates: a :class:`ClusterBatch` (B clusters, its U_iso ignored) or a list of ``ase.Atoms``.
        target: one :class:`Target` for all candidates, or a sequence of targets sharing one r grid
            (their Q ranges and qdamp may differ).
        target_index: (B,) index into ``target`` of each candidate's target; default: one target per
            candidate when ``len(target) == B``.
        uiso: starting U_iso [Angstrom^2]; qdamp and delta2 start at the target's values. The engine's Q
            grid and pair range are diffpy's for this U_iso throughout the fit (so that the model is
            one smooth function of the parameters).
        refine_qdamp, refine_delta2: refine qdamp [1/Angstrom] in [0, 0.1] and delta2 [Angstrom^2] in
            [0, 5] per candidate (refining delta2 costs one engine call per candidate and evaluation).
        n_scan: expansions scanned over [0.9, 1.1] for the start (1: start at 1).
        max_iter: Levenberg-Marquardt iterations at most; tol: stop when an accepted step lowers the
            loss by less than this fraction.
        chunk_size: candidates refined at once (bounds memory: ~chunk_size * nr * 8 values).
        mode: engine mode, "fast" (default) or "exact".
        dtype: torch dtype of the computation.
        callback: called as ``callback(done, total)`` after each chunk.

    Bounds: expansion [0.9, 1.1], U_iso [0.0005, 0.05] Angstrom^2; scale >= 0 in closed form.
    """
    batch = candidates if isinstance(candidates, ClusterBatch) else ClusterBatch.from_atoms(candidates, dtype=dtype)
    batch = batch.to(dtype=dtype)
    targets = [target] if isinstance(target, Target) else list(target)
    b = batch.batch_size
    if target_index is None:
        if len(targets) not in (1, b):
            raise ValueError(f"{len(targets)} targets for {b} candidates: pass target_index")
        target_index = torch.zeros(b, dtype=torch.long) if len(targets) == 1 else torch.arange(b)
    target_index = torch.as_tensor(target_index, dtype=torch.long).cpu()
    if target_index.shape != (b,) or (b and (target_index.min() < 0 or target_index.max() >= len(targets))):
        raise ValueError(f"target_index must hold {b} indices in [0, {len(targets)})")
    r = targets[0].r
    if any(len(t.r) != len(r) or not np.allclose(t.r, r) for t in targets):
        raise ValueError("all targets must share one r grid (rmin, rmax, rstep)")
    if not 0 < chunk_size:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    device = batch.pos.device
    pos = _centred(batch)
    g_obs = torch.stack([t.g for t in targets]).to(dtype=dtype, device=device)
    out = {k: pos.new_zeros(b) for k in ("scale", "expansion", "uiso", "qdamp", "delta2", "rwp")}
    g_calc = pos.new_zeros((b, len(r)))
    n_iter = torch.zeros(b, dtype=torch.long, device=device)
    calls, done = 0, 0
    groups: dict[PDFParameters, list[int]] = {}
    for k, t in enumerate(targets):
        groups.setdefault(t.params, []).append(k)
    for params, members in groups.items():
        index = torch.nonzero(torch.isin(target_index, torch.tensor(members))).flatten().to(device)
        analytic = not refine_delta2 and (params.delta1, params.delta2, params.qbroad) == (0.0, 0.0, 0.0)
        grid = DebyeGrid.build(params.replace(qdamp=0.0, scale=1.0), uiso)
        # Candidates whose pairs stay in (or out of) the engine's pair range over the expansion bounds use
        # the expansion table; the others (and all with Jeong widths or a refined delta2) engine calls.
        fixed = torch.zeros(len(index), dtype=torch.bool, device=device)
        dmax = pos.new_zeros(b)
        if analytic:
            fixed, dmax[index] = _fixed_pair_set(pos[index], batch.mask[index], grid)
        chunks = [(sub[start:start + chunk_size], table) for sub, table in ((index[fixed], True), (index[~fixed], False))
                  for start in range(0, len(sub), chunk_size)]
        for idx, table in chunks:
            obs = g_obs[target_index[idx.cpu()].to(device)]
            table_range = None
            if table:  # the pair range of the unexpanded candidates, and their largest pair distance
                hi = grid.extended_rmax / EXPANSION_BOUNDS[1]
                d = min(float(dmax[idx].max()), hi)
                table_range = (grid.extended_rmin / EXPANSION_BOUNDS[1], min(hi, d * (1 + 1e-9) + 1e-6), d)
            chunk = _Chunk(pos[idx], batch.species[idx], batch.symbols, obs, params, uiso, refine_qdamp,
                           refine_delta2, mode, table_range)
            theta = {"expansion": pos.new_ones(len(idx)), "uiso": pos.new_full((len(idx),), uiso),
                     "qdamp": pos.new_full((len(idx),), params.qdamp),
                     "delta2": pos.new_full((len(idx),), params.delta2)}
            if n_scan > 1:
                chunk.scan(theta, n_scan)
            f, scale, iters = chunk.solve(theta, max_iter, tol)
            for name in ("expansion", "uiso", "qdamp", "delta2"):
                out[name][idx] = theta[name]
            out["scale"][idx] = scale
            g_calc[idx] = scale[:, None] * chunk.g(f, theta["qdamp"])
            out["rwp"][idx] = rwp(obs, g_calc[idx])
            n_iter[idx] = iters
            calls += chunk.engine_calls
            done += len(idx)
            if callback is not None:
                callback(done, b)
    positions = pos * out["expansion"][:, None, None]
    return RefinementResult(out["scale"], out["expansion"], out["uiso"], out["qdamp"], out["delta2"], out["rwp"],
                            g_calc, positions, r, n_iter, calls)
