"""Fingerprint inversion of 13-atom clusters: pdfsolve's batched runs against a scipy L-BFGS-B loop, same run.

Problems: the exact pooled ACSF fingerprints (published parameters, 380 numbers) of the four 13-atom motif clusters
(icosahedron, cuboctahedron, decahedron, hcp cut) of four metals. pdfsolve inverts all 16 in one call
(``invert_fingerprint``: 8 random starts, hops, polish, every run a whole L-BFGS-B minimisation in C++). The scipy
loop is the published codes' approach, one ``scipy.optimize.minimize`` per start and structure, with the same
stages, objective and options, the objective evaluated by the torch reference (autograd through ``pooled_acsf``)
or, to separate the loop from the objective, by the compiled ``fingerprint_loss`` op; it solves the first
structure of each motif, on one torch thread (the loop is serial: more threads only add OpenMP wake-ups to every
evaluation). pdfsolve runs on torch's default threads and on one. extra_info: s per structure, structures solved
to <= 1e-3 Angstrom.

``test_noise_curve`` prints the recovered error against relative Gaussian noise on every fingerprint entry.
Run ``pytest benchmarks/test_bench_fingerprint.py -s --benchmark-group-by=group``.
"""
import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from pdfsolve.geometry import ACSFParameters, pooled_acsf
from pdfsolve.metrics import aligned_deviations
from pdfsolve.reconstruct import FingerprintObjective, fingerprint_weights, invert_fingerprint
from pdfsolve.reconstruct.fingerprint import EXPLORE, POLISH, random_starts, start_radius
from pdfsolve.structures import decahedron, hcp_cut, icosahedron, octahedron

MOTIFS = {"icosahedron": lambda el: icosahedron(2, el), "cuboctahedron": lambda el: octahedron(3, 1, el),
          "decahedron": lambda el: decahedron(2, 2, 0, el), "hcp": lambda el: hcp_cut((1, 2, 2), el)}
ELEMENTS = ("Au", "Pt", "Cu", "Ag")
N_ATOMS, N_STARTS, N_HOPS = 13, 8, 3
PARAMS = ACSFParameters.published()


def motif_problems():
    """(positions (16, 13, 3) [Angstrom], their pooled fingerprints (16, P)) of every motif of every element."""
    clusters = [MOTIFS[m](el) for el in ELEMENTS for m in MOTIFS]  # motif-major within each element
    pos = torch.tensor(np.stack([c.positions for c in clusters]))
    return pos, pooled_acsf(pos)


@pytest.fixture(scope="module")
def problems():
    return motif_problems()


def _solved(x, pos):
    return int(sum(aligned_deviations(x[k], pos[k]).max() <= 1e-3 for k in range(len(pos))))


def scipy_invert(target, seed, evaluate):
    """invert_fingerprint's stages for one fingerprint (P,), each run one scipy.optimize.minimize call with
    f, g = evaluate(objective, x (1, N, 3))."""
    target = target[None]
    species = torch.zeros(1, N_ATOMS, dtype=torch.long)
    P = target.shape[1]
    explore = FingerprintObjective(target, torch.full_like(target, 1.0 / P), species, 1, PARAMS, ("max", "min"),
                                   0.75 * 2.75, 1.0, bounds=True)
    polish = FingerprintObjective(target, fingerprint_weights(target), species, 1, PARAMS, ("max", "min"),
                                  0.75 * 2.75, 1.0, bounds=True)

    def run(obj, x0, stage):
        def fun(flat):
            f, g = evaluate(obj, torch.as_tensor(flat).reshape(1, N_ATOMS, 3))
            return float(f[0]), g.reshape(-1).numpy()

        r = minimize(fun, x0.reshape(-1).numpy(), jac=True, method="L-BFGS-B",
                     options=dict(maxcor=stage.m, ftol=stage.ftol, gtol=stage.gtol, maxiter=stage.maxiter))
        return torch.as_tensor(r.x).reshape(N_ATOMS, 3), r.fun

    gen = torch.Generator().manual_seed(seed)
    mask = torch.ones(1, N_ATOMS, dtype=torch.bool)
    best_x, best_f = None, math.inf
    for r in range(1 + N_HOPS):
        if best_f < 1e-6:
            break
        if r == 0:
            starts = random_starts(mask, start_radius(torch.tensor([N_ATOMS])), N_STARTS, gen)[0]
        else:
            starts = best_x + 0.3 * torch.randn(N_STARTS, N_ATOMS, 3, generator=gen, dtype=torch.float64)
        for x0 in starts:
            x, f = run(explore, x0, EXPLORE)
            if f < best_f:
                best_x, best_f = x, f
    return run(polish, best_x, POLISH)[0]


@pytest.mark.parametrize("impl", ["pdfsolve-compiled", "pdfsolve-compiled-1-thread", "scipy-loop-torch-objective",
                                  "scipy-loop-compiled-objective"])
def test_fingerprint_inversion_13_atoms(benchmark, problems, impl):
    benchmark.group = "fingerprint inversion, 13-atom motif clusters"
    pos, target = problems
    threads = torch.get_num_threads()
    if impl.startswith("pdfsolve"):
        index = list(range(len(pos)))

        def run():
            return invert_fingerprint(target, N_ATOMS, n_starts=N_STARTS, n_hops=N_HOPS, seed=0).x
    else:
        index = list(range(len(MOTIFS)))
        backend = "torch" if "torch" in impl else "compiled"

        def run():
            return torch.stack([scipy_invert(target[k], k, lambda o, x: o.value_and_grad(x, backend)) for k in index])

    if impl != "pdfsolve-compiled":
        torch.set_num_threads(1)
    try:
        x = benchmark.pedantic(run, rounds=1, warmup_rounds=0)
        benchmark.extra_info["torch_threads"] = torch.get_num_threads()
    finally:
        torch.set_num_threads(threads)
    benchmark.extra_info["structures"] = len(index)
    benchmark.extra_info["solved"] = _solved(x, pos[index])
    benchmark.extra_info["s_per_structure"] = benchmark.stats.stats.mean / len(index)


NOISE = (0.0, 1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)


def test_noise_curve(benchmark, problems):
    """Recovered error against relative noise sigma: target (1 + sigma n), n ~ N(0, 1) per entry, 8 clusters
    (4 motifs, Au and Pt), two draws each. Prints median RMSD / median and max largest-atom error [Angstrom]."""
    benchmark.group = "fingerprint inversion, noise curve"
    pos, target = problems
    pos, target = pos[: 2 * len(MOTIFS)], target[: 2 * len(MOTIFS)]
    g = torch.Generator().manual_seed(0)
    noise = torch.randn((2,) + target.shape, generator=g, dtype=torch.float64)

    def run():
        rows = []
        for sigma in NOISE:
            noisy = (target[None] * (1 + sigma * noise)).reshape(-1, target.shape[1])
            res = invert_fingerprint(noisy, N_ATOMS, seed=1)
            dev = [aligned_deviations(res.x[k], pos[k % len(pos)]) for k in range(len(noisy))]
            rmsd = np.array([np.sqrt((d**2).mean()) for d in dev])
            worst = np.array([d.max() for d in dev])
            rows.append((sigma, float(np.median(rmsd)), float(np.median(worst)), float(worst.max()),
                         float(res.loss.median())))
        return rows

    rows = benchmark.pedantic(run, rounds=1, warmup_rounds=0)
    print("\nnoise sigma | median RMSD [A] | median max error [A] | worst max error [A] | median loss")
    for sigma, rmsd, med, worst, loss in rows:
        print(f"{sigma:10.0e} | {rmsd:15.2e} | {med:20.2e} | {worst:19.2e} | {loss:.1e}")
    benchmark.extra_info["noise_curve"] = rows
