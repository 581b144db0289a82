"""Reconstruction solvers: batched pdfsolve runs against a scipy L-BFGS-B loop on the same problems, same run.

Trilateration of 100-atom clusters with 11 satellites from distances with 1 % noise (unit-sphere units): pdfsolve
solves all 1000 in one call; scipy (the published codes' approach: one ``scipy.optimize.minimize`` per structure,
numpy objective with analytic gradient) solves the first 20. Compare ms per structure (extra_info).
"""
import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from conftest import make_clusters
from pdfsolve.geometry import pair_distances, point_distances, sphere_points
from pdfsolve.reconstruct import to_unit_sphere, trilaterate
from pdfsolve.reconstruct.trilateration import trilateration_start

N_CLUSTERS, N_ATOMS, N_SCIPY = 1000, 100, 20


@pytest.fixture(scope="module")
def problems():
    clusters = make_clusters([N_ATOMS] * N_CLUSTERS, seed=5)
    pos = torch.tensor(np.stack([c.positions for c in clusters]))
    mask = torch.ones(N_CLUSTERS, N_ATOMS, dtype=torch.bool)
    unit, _ = to_unit_sphere(pos, mask)
    sats = sphere_points(11)
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(N_CLUSTERS, N_ATOMS, N_ATOMS, generator=g, dtype=torch.float64)
    pair = pair_distances(unit, mask) + 0.01 * (noise + noise.transpose(1, 2)) / 2
    pair = pair * (1 - torch.eye(N_ATOMS, dtype=torch.float64))
    to_sat = point_distances(unit, sats, mask)
    return pair, to_sat, sats, mask


def _scipy_objective(pair, to_sat, sats):
    iu = np.triu_indices(pair.shape[0], 1)

    def f_and_g(flat):
        x = flat.reshape(-1, 3)
        diff = x[:, None] - x[None]
        d = np.linalg.norm(diff, axis=-1)
        r = np.where(np.eye(len(x), dtype=bool), 0.0, d - pair)
        ds = x[:, None] - sats[None]
        e = np.linalg.norm(ds, axis=-1)
        rs = e - to_sat
        with np.errstate(invalid="ignore", divide="ignore"):
            gp = np.where(d[..., None] > 0, 2 * (r / np.where(d > 0, d, 1))[..., None] * diff, 0.0).sum(1)
        gs = (2 * (rs / e)[..., None] * ds).sum(1)
        return float((r[iu] ** 2).sum() + (rs**2).sum()), (gp + gs).ravel()

    return f_and_g


@pytest.mark.parametrize("impl", ["pdfsolve-compiled", "scipy-loop"])
def test_trilateration_100_atoms_11_satellites(benchmark, problems, impl):
    benchmark.group = "trilateration, 100 atoms, 11 satellites"
    pair, to_sat, sats, mask = problems
    if impl == "pdfsolve-compiled":
        n = N_CLUSTERS

        def run():
            return trilaterate(pair, to_sat, sats, mask, backend="compiled")
    else:
        n = N_SCIPY
        x0 = trilateration_start(pair[:n], to_sat[:n], sats, mask[:n]).numpy()

        def run():
            return [minimize(_scipy_objective(pair[k].numpy(), to_sat[k].numpy(), sats.numpy()), x0[k].ravel(),
                             jac=True, method="L-BFGS-B", options=dict(gtol=1e-8)) for k in range(n)]

    benchmark.extra_info["structures"] = n
    benchmark.extra_info["torch_threads"] = torch.get_num_threads()
    benchmark.pedantic(run, rounds=2, warmup_rounds=0)
    benchmark.extra_info["ms_per_structure"] = 1e3 * benchmark.stats.stats.mean / n
