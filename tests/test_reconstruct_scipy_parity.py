"""The compiled reconstruction solvers against scipy.optimize.minimize(method="L-BFGS-B") row by row, on the same
objectives (written here in plain torch, gradients by autograd) from the same starts: same optimum, similar
iteration counts. And a batch of 2000 trilaterations, every one exact."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

import pdfsolve.ops as ops
from pdfsolve.geometry import graph_laplacian, pair_distances, point_distances, sphere_points
from pdfsolve.reconstruct import laplacian_to_coordinates, to_unit_sphere, trilaterate
from pdfsolve.reconstruct.laplacian import affinity_from_matrix, laplacian_start
from pdfsolve.reconstruct.trilateration import trilateration_start
from _clusters import motif_clusters, padded

pytestmark = pytest.mark.skipif(not ops.extension_available(), reason="pdfsolve._C not built")
M, FTOL, GTOL = 10, 1e-12, 1e-9


def _distances(x):
    return ((x[:, None] - x[None]) ** 2).sum(-1).clamp(min=1e-300).sqrt()


def _scipy(f_torch, x0):
    """scipy L-BFGS-B on f_torch (N, 3) -> scalar from x0 (N, 3) with the solvers' options."""
    def fun(flat):
        x = torch.tensor(flat.reshape(-1, 3), requires_grad=True)
        f = f_torch(x)
        f.backward()
        return float(f.detach()), x.grad.numpy().ravel()

    return minimize(fun, x0.numpy().ravel(), jac=True, method="L-BFGS-B",
                    options=dict(maxcor=M, ftol=FTOL, gtol=GTOL, maxiter=2000, maxls=20))


def _compare(ours, ref, n_atoms):
    for b, r in enumerate(ref):
        x = ours.x[b, : n_atoms[b]].numpy().ravel()
        assert np.abs(x - r.x).max() < 1e-5, b
        assert abs(float(ours.loss[b]) - r.fun) <= 1e-6 * max(r.fun, 1e-12) + 1e-14, b
        assert abs(int(ours.nit[b]) - r.nit) <= max(3, r.nit // 10), (b, int(ours.nit[b]), r.nit)


def noisy(t, level, seed):
    noise = torch.randn(t.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return t + level * (noise + noise.transpose(-1, -2)) / 2 if t.shape[-1] == t.shape[-2] else t + level * noise


def test_trilateration_matches_scipy_row_by_row():
    pos, mask = padded([motif_clusters()[k] for k in (4, 6, 7)])
    unit, _ = to_unit_sphere(pos, mask)
    sats = sphere_points(11)
    pair = noisy(pair_distances(unit, mask), 0.02, 0) * (mask[:, :, None] & mask[:, None, :])
    to_sat = noisy(point_distances(unit, sats, mask), 0.02, 1) * mask[..., None]
    start = trilateration_start(pair, to_sat, sats, mask)
    ours = trilaterate(pair, to_sat, sats, mask, ftol=FTOL, gtol=GTOL, m=M)
    n_atoms = mask.sum(1).tolist()
    ref = []
    for b, n in enumerate(n_atoms):
        iu = torch.triu_indices(n, n, 1)
        p, e = pair[b, :n, :n][iu[0], iu[1]], to_sat[b, :n]
        ref.append(_scipy(lambda x: ((_distances(x)[iu[0], iu[1]] - p) ** 2).sum()
                          + ((((x[:, None] - sats[None]) ** 2).sum(-1).sqrt() - e) ** 2).sum(), start[b, :n]))
    _compare(ours, ref, n_atoms)


def test_affinity_fit_matches_scipy_row_by_row():
    pos, mask = padded([motif_clusters()[k] for k in (4, 6, 7)])
    w, _ = affinity_from_matrix(noisy(graph_laplacian(pos, mask=mask, form="affinity"), 1e-3, 2))
    start = laplacian_start(w, mask, 130**0.5)
    ours = laplacian_to_coordinates(w, mask=mask, x0=start, ftol=FTOL, gtol=GTOL, m=M)
    n_atoms = mask.sum(1).tolist()
    ref = []
    for b, n in enumerate(n_atoms):
        iu = torch.triu_indices(n, n, 1)
        t = w[b, :n, :n][iu[0], iu[1]]
        ref.append(_scipy(lambda x: ((torch.exp(-_distances(x)[iu[0], iu[1]] ** 2 / 260.0) - t) ** 2).sum(),
                          start[b, :n]))
    _compare(ours, ref, n_atoms)


@pytest.mark.parametrize("B", [1, 2000])
def test_trilateration_batch_sizes(B):
    """B = 1 and 2000 rattled 13-atom icosahedra from exact distances: every one exact, padding untouched."""
    base = torch.tensor(motif_clusters()[-1].positions)
    pos = torch.cat([base + 0.1 * torch.randn(B, 13, 3, generator=torch.Generator().manual_seed(B),
                                              dtype=torch.float64), torch.zeros(B, 2, 3, dtype=torch.float64)], 1)
    mask = torch.arange(15) < 13
    mask = mask.expand(B, 15)
    unit, frame = to_unit_sphere(pos, mask)
    sats = sphere_points(11)
    res = trilaterate(pair_distances(unit, mask), point_distances(unit, sats, mask), sats, mask)
    assert res.x.shape == (B, 15, 3) and (res.status <= 2).all()
    assert ((frame.to_angstrom(res.x) - pos).norm(dim=-1)[mask]).max() < 1e-3
    assert (res.x[:, 13:] == 0).all()
