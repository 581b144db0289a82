"""Reconstruction solvers: batched pdfsolve runs against a scipy loop on the same problems, same run.

Trilateration of 100-atom clusters with 4, 11 and 100 satellites from distances with 1 % noise (unit-sphere
units): pdfsolve solves all 1000 in one call; scipy (the published codes' approach: one ``scipy.optimize.minimize``
per structure, numpy objective with analytic gradient) solves the first 20. The Laplacian route: 1000 clusters of
50-256 atoms against scipy's trust-constr (the CbLDM code's solver) on 5 of them. Compare ms per structure and the
errors (extra_info).
"""
import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from conftest import make_clusters
from pdfsolve.metrics import assigned_deviations
from pdfsolve.geometry import CBLDM_SIGMA, graph_laplacian, pair_distances, point_distances, sphere_points
from pdfsolve.reconstruct import laplacian_to_coordinates, to_unit_sphere, trilaterate
from pdfsolve.reconstruct.laplacian import laplacian_start
from pdfsolve.reconstruct.trilateration import trilateration_start

N_CLUSTERS, N_ATOMS, N_SCIPY = 1000, 100, 20


@pytest.fixture(scope="module")
def clusters_100():
    """1000 clusters of 100 atoms in Angstrom, their unit-sphere coordinates and frames, and 1 % distance noise."""
    clusters = make_clusters([N_ATOMS] * N_CLUSTERS, seed=5)
    pos = torch.tensor(np.stack([c.positions for c in clusters]))
    mask = torch.ones(N_CLUSTERS, N_ATOMS, dtype=torch.bool)
    unit, frame = to_unit_sphere(pos, mask)
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(N_CLUSTERS, N_ATOMS, N_ATOMS, generator=g, dtype=torch.float64)
    pair = pair_distances(unit, mask) + 0.01 * (noise + noise.transpose(1, 2)) / 2
    pair = pair * (1 - torch.eye(N_ATOMS, dtype=torch.float64))
    return pos, mask, unit, frame, pair


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


@pytest.mark.parametrize("n_sat", [4, 11, 100])
@pytest.mark.parametrize("impl", ["pdfsolve-compiled", "scipy-loop"])
def test_trilateration_100_atoms(benchmark, clusters_100, impl, n_sat):
    """The satellite trade-off: time per structure and mean atom position error (Angstrom, extra_info)."""
    benchmark.group = f"trilateration, 100 atoms, {n_sat} satellites"
    pos, mask, unit, frame, pair = clusters_100
    sats = sphere_points(n_sat)
    to_sat = point_distances(unit, sats, mask)
    if impl == "pdfsolve-compiled":
        n = N_CLUSTERS

        def run():
            return trilaterate(pair, to_sat, sats, mask, backend="compiled").x
    else:
        n = N_SCIPY
        x0 = trilateration_start(pair[:n], to_sat[:n], sats, mask[:n]).numpy()

        def run():
            return torch.tensor(np.stack([
                minimize(_scipy_objective(pair[k].numpy(), to_sat[k].numpy(), sats.numpy()), x0[k].ravel(), jac=True,
                         method="L-BFGS-B", options=dict(gtol=1e-8)).x.reshape(-1, 3) for k in range(n)]))

    benchmark.extra_info["structures"] = n
    benchmark.extra_info["torch_threads"] = torch.get_num_threads()
    x = benchmark.pedantic(run, rounds=2, warmup_rounds=0)
    benchmark.extra_info["ms_per_structure"] = 1e3 * benchmark.stats.stats.mean / n
    frame_n = type(frame)(frame.origin[:n], frame.scale[:n])
    benchmark.extra_info["mean_error_A"] = float((frame_n.to_angstrom(x) - pos[:n]).norm(dim=-1).mean())


# ---- Laplacian route: 1000 recoveries of 50-256-atom clusters from their affinity (noise 1e-4) ----------------
N_LAPLACIAN, LAPLACIAN_SCIPY_STRIDE = 1000, 200  # scipy takes every 200th: 5 clusters spanning the sizes


@pytest.fixture(scope="module")
def affinities():
    sizes = np.linspace(50, 256, N_LAPLACIAN).round().astype(int)
    clusters = make_clusters(sizes, seed=6)
    pos = torch.zeros(N_LAPLACIAN, 256, 3, dtype=torch.float64)
    mask = torch.zeros(N_LAPLACIAN, 256, dtype=torch.bool)
    for k, c in enumerate(clusters):
        pos[k, : len(c)] = torch.tensor(c.positions)
        mask[k, : len(c)] = True
    w = graph_laplacian(pos, mask=mask, form="affinity")
    noise = torch.randn(w.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    w = w + 1e-4 * (noise + noise.transpose(1, 2)) / 2 * (mask[:, :, None] & mask[:, None, :])
    return w, mask, pos


def _scipy_affinity_objective(target):
    """CbLDM's fit: sum_{i<j} (exp(-d_ij^2 / (2 sigma^2)) - W_ij)^2, numpy with analytic gradient."""
    iu = np.triu_indices(target.shape[0], 1)
    c = 1.0 / (2 * CBLDM_SIGMA**2)

    def f_and_g(flat):
        x = flat.reshape(-1, 3)
        diff = x[:, None] - x[None]
        w = np.exp(-c * (diff**2).sum(-1))
        r = np.triu(w - target, 1)
        g = (-4 * c * (r * w)[..., None] * diff).sum(1) - (-4 * c * (r * w)[..., None] * diff).sum(0)
        return float((r[iu] ** 2).sum()), g.ravel()

    return f_and_g


@pytest.mark.parametrize("impl", ["pdfsolve-eigenmap-start", "pdfsolve-mds-start", "scipy-trust-constr-loop"])
def test_laplacian_recovery_50_to_256_atoms(benchmark, affinities, impl):
    """Whole recovery (atom count, start, fit) of all 1000. scipy: trust-constr per structure as the CbLDM code,
    from the eigenmap start (computed outside the timing), on every 200th cluster. extra_info: largest error
    after alignment (Angstrom)."""
    benchmark.group = "Laplacian -> coordinates, 50-256 atoms"
    w, mask, pos = affinities
    if impl.startswith("pdfsolve"):
        picked = list(range(N_LAPLACIAN))

        def run():
            return laplacian_to_coordinates(w, start=impl.split("-")[1], backend="compiled").x
    else:
        picked = list(range(0, N_LAPLACIAN, LAPLACIAN_SCIPY_STRIDE))
        starts = laplacian_start(w[picked], mask[picked], CBLDM_SIGMA, "eigenmap")

        def run():
            x = torch.zeros(len(picked), 256, 3, dtype=torch.float64)
            for k, b in enumerate(picked):
                na = int(mask[b].sum())
                res = minimize(_scipy_affinity_objective(w[b, :na, :na].numpy()), starts[k, :na].numpy().ravel(),
                               jac=True, method="trust-constr")
                x[k, :na] = torch.tensor(res.x.reshape(-1, 3))
            return x

    benchmark.extra_info["structures"] = len(picked)
    benchmark.extra_info["torch_threads"] = torch.get_num_threads()
    x = benchmark.pedantic(run, rounds=1, warmup_rounds=0)
    benchmark.extra_info["ms_per_structure"] = 1e3 * benchmark.stats.stats.mean / len(picked)
    benchmark.extra_info["max_error_A"] = max(float(assigned_deviations(x[k][mask[b]], pos[b][mask[b]]).max())
                                              for k, b in enumerate(picked))
