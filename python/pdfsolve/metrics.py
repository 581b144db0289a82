"""Agreement metrics shared by every solver: Rwp and Pearson correlation of PDFs, aligned structure error.

``rwp`` and ``pearson`` are torch, batched over leading dimensions and differentiable; ``aligned_mae`` and
``aligned_deviations`` compare a predicted cluster with a known one up to permutation, rotation (and reflection).
"""
from __future__ import annotations

import itertools

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

#: Default r range of Rwp [Angstrom].
RWP_RMIN, RWP_RMAX = 1.5, 30.0


def _as_tensor(x, like: torch.Tensor | None = None) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x if like is None else x.to(dtype=like.dtype, device=like.device)
    if like is None:
        return torch.as_tensor(np.asarray(x, dtype=np.float64))
    return torch.as_tensor(np.asarray(x), dtype=like.dtype, device=like.device)


def rwp(g_obs, g_calc, r=None, rmin: float = RWP_RMIN, rmax: float = RWP_RMAX, weights=None) -> torch.Tensor:
    """Weighted profile residual Rwp = sqrt(sum w (G_obs - G_calc)^2 / sum w G_obs^2) (dimensionless).

    Args:
        g_obs: (..., nr) observed G(r) [1/Angstrom^2], e.g. (nr,) or (B, nr).
        g_calc: (..., nr) calculated G(r), broadcast against ``g_obs`` (e.g. (B, nr) against (nr,)).
        r: (nr,) r grid [Angstrom]; when given only points with rmin <= r <= rmax count, else all points do.
        rmin, rmax: r range of the sum [Angstrom] (default 1.5-30), used only with ``r``.
        weights: optional weights w broadcastable to (..., nr) (e.g. 1 / dG^2); default 1.

    Returns:
        Rwp with the broadcast leading shape (a 0-d tensor for two 1-D inputs); differentiable.
    """
    g_calc = _as_tensor(g_calc)
    g_obs = _as_tensor(g_obs, g_calc)
    if g_obs.shape[-1] != g_calc.shape[-1]:
        raise ValueError(f"G_obs has {g_obs.shape[-1]} points but G_calc has {g_calc.shape[-1]}")
    w = torch.ones_like(g_obs) if weights is None else _as_tensor(weights, g_calc).expand_as(g_obs)
    if r is not None:
        r = _as_tensor(r, g_calc)
        if r.shape[-1] != g_obs.shape[-1]:
            raise ValueError(f"r has {r.shape[-1]} points but G has {g_obs.shape[-1]}")
        keep = (r >= rmin - 1e-9) & (r <= rmax + 1e-9)
        if not bool(keep.any()):
            raise ValueError(f"no r point in the Rwp range {rmin}-{rmax} Angstrom "
                             f"(data: {float(r[0]):.4g}-{float(r[-1]):.4g} Angstrom)")
        w = w * keep.to(w.dtype)
    num = (w * (g_obs - g_calc) ** 2).sum(-1)
    den = (w * g_obs**2).sum(-1)
    if bool((den <= 0).any()):
        raise ValueError("G_obs is zero over the Rwp range: Rwp is undefined")
    return torch.sqrt(num / den)


def pearson(a, b, dim: int = -1) -> torch.Tensor:
    """Pearson correlation coefficient of ``a`` and ``b`` along ``dim``, broadcast over other dims.

    E.g. a (B, nr) against b (nr,) gives (B,). Differentiable; 0 where either input is constant.
    """
    b = _as_tensor(b)
    a = _as_tensor(a, b)
    a = a - a.mean(dim, keepdim=True)
    b = b - b.mean(dim, keepdim=True)
    num = (a * b).sum(dim)
    den = torch.sqrt((a * a).sum(dim) * (b * b).sum(dim))
    return torch.where(den > 0, num / torch.where(den > 0, den, torch.ones_like(den)), torch.zeros_like(num))


def kabsch(p: np.ndarray, q: np.ndarray, allow_reflection: bool = True) -> np.ndarray:
    """Orthogonal 3x3 matrix R minimising sum |p_i R - q_i|^2 (p, q centred (N, 3))."""
    u, _, vt = np.linalg.svd(p.T @ q)
    if not allow_reflection and np.linalg.det(u @ vt) < 0:
        u[:, -1] = -u[:, -1]
    return u @ vt


def _as_xyz(x) -> np.ndarray:
    return np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=np.float64)


def assigned_deviations(pred_xyz, true_xyz, allow_reflection: bool = True) -> np.ndarray:
    """Per-atom distances (N,) [Angstrom] between two clusters (N, 3) [Angstrom] whose atoms correspond in order,
    after the best translation and rotation (and reflection; Kabsch)."""
    p, q = _as_xyz(pred_xyz), _as_xyz(true_xyz)
    if p.ndim != 2 or p.shape[1] != 3 or q.shape != p.shape:
        raise ValueError(f"positions must both have shape (N, 3), got {p.shape} and {q.shape}")
    if len(p) == 0:
        return np.zeros(0)
    p, q = p - p.mean(0), q - q.mean(0)
    return np.linalg.norm(p @ kabsch(p, q, allow_reflection) - q, axis=1)


def _principal_axes(x: np.ndarray) -> np.ndarray:
    """(3, 3) columns: eigenvectors of the centred coordinates' covariance, largest variance first."""
    _, vecs = np.linalg.eigh(x.T @ x)
    return vecs[:, ::-1]


def aligned_mae(pred_xyz, true_xyz, allow_reflection: bool = True, n_iter: int = 10) -> float:
    """Mean absolute distance [Angstrom] between two clusters after optimal superposition.

    Both (N, 3) clusters [Angstrom] are centred; then atom assignment (Hungarian, on squared distances)
    and rotation (Kabsch; improper rotations too with ``allow_reflection``) are alternated up to
    ``n_iter`` times from several starts: the identity and every principal-axis alignment with axis
    sign flips (the assignment depends on the rotation). Returns the smallest mean |p_i R - q_sigma(i)|.

    Raises:
        ValueError: the clusters hold different numbers of atoms, or positions are not (N, 3).
    """
    p, q = _as_xyz(pred_xyz), _as_xyz(true_xyz)
    for name, x in (("predicted", p), ("true", q)):
        if x.ndim != 2 or x.shape[1] != 3:
            raise ValueError(f"{name} positions must have shape (N, 3), got {x.shape}")
    if len(p) != len(q):
        raise ValueError(f"cannot align clusters of different sizes: predicted has {len(p)} atoms, "
                         f"true has {len(q)}")
    if len(p) == 0:
        return 0.0
    p = p - p.mean(0)
    q = q - q.mean(0)
    ap, aq = _principal_axes(p), _principal_axes(q)
    starts = [np.eye(3)]
    for signs in itertools.product((1.0, -1.0), repeat=3):
        rot = ap @ np.diag(signs) @ aq.T
        if allow_reflection or np.linalg.det(rot) > 0:
            starts.append(rot)
    best = np.inf
    for rot in starts:
        perm = None
        for _ in range(n_iter):
            pr = p @ rot
            cost = ((pr[:, None, :] - q[None, :, :]) ** 2).sum(-1)
            _, new_perm = linear_sum_assignment(cost)
            if perm is not None and np.array_equal(new_perm, perm):
                break
            perm = new_perm
            rot = kabsch(p, q[perm], allow_reflection)
        best = min(best, float(np.linalg.norm(p @ rot - q[perm], axis=1).mean()))
    return best


def _triangle(x: np.ndarray) -> list[int]:
    """Three atoms of a centred cluster spanning a large triangle: the farthest from the centroid, the farthest
    from it, and the farthest from the line through both."""
    a = int(np.argmax((x**2).sum(1)))
    b = int(np.argmax(((x - x[a]) ** 2).sum(1)))
    u = (x[b] - x[a]) / max(np.linalg.norm(x[b] - x[a]), 1e-12)
    rel = x - x[a]
    c = int(np.argmax(((rel - np.outer(rel @ u, u)) ** 2).sum(1)))
    return [a, b, c]


def aligned_deviations(pred_xyz, true_xyz, allow_reflection: bool = True, tol: float = 0.3,
                       n_iter: int = 10) -> np.ndarray:
    """Per-atom distances (N,) [Angstrom] between two clusters (N, 3) [Angstrom] after the best superposition
    over translation, rotation (and reflection) and atom permutation; ``.max()`` is the largest atom error.

    Robust for symmetric clusters, whose principal axes are degenerate: every triangle of ``true`` congruent
    (sides within ``tol`` Angstrom, distances to the centroid too) to a large triangle of ``pred`` gives a start
    rotation; from each, assignment (Hungarian) and Kabsch alternate up to ``n_iter`` times; the start with the
    smallest RMSD wins. Clusters of fewer than three atoms are compared after assignment only.
    """
    p, q = _as_xyz(pred_xyz), _as_xyz(true_xyz)
    if p.ndim != 2 or p.shape[1] != 3 or q.shape != p.shape:
        raise ValueError(f"positions must both have shape (N, 3), got {p.shape} and {q.shape}")
    p = p - p.mean(0)
    q = q - q.mean(0)
    if len(p) < 3:
        _, perm = linear_sum_assignment(((p[:, None] - q[None]) ** 2).sum(-1))
        return np.linalg.norm(p - q[perm], axis=1)
    tri = _triangle(p)
    dp = np.linalg.norm(p[:, None] - p[None], axis=-1)
    dq = np.linalg.norm(q[:, None] - q[None], axis=-1)
    rp, rq = np.linalg.norm(p, axis=1), np.linalg.norm(q, axis=1)
    ok = [np.abs(rq - rp[t]) < tol for t in tri]
    a, b, c = tri
    ij = np.argwhere(ok[0][:, None] & ok[1][None, :] & (np.abs(dq - dp[a, b]) < tol))
    starts = []
    for i, j in ij:
        for k in np.flatnonzero(ok[2] & (np.abs(dq[i] - dp[a, c]) < tol) & (np.abs(dq[j] - dp[b, c]) < tol)):
            if len({i, j, k}) == 3:
                starts.append(kabsch(p[tri], q[[i, j, k]], allow_reflection))
    best, best_dev = np.inf, None
    for rot in starts or [np.eye(3)]:
        perm = None
        for _ in range(n_iter):
            _, new_perm = linear_sum_assignment(((p @ rot)[:, None, :] - q[None, :, :]) ** 2 @ np.ones(3))
            if perm is not None and np.array_equal(new_perm, perm):
                break
            perm = new_perm
            rot = kabsch(p, q[perm], allow_reflection)
        dev = np.linalg.norm(p @ rot - q[perm], axis=1)
        if (dev**2).mean() < best:
            best, best_dev = (dev**2).mean(), dev
    return best_dev
