"""Refinement throughput (issue 3): 2000 Au candidates of 100-256 atoms refined against one simulated PDF.

Goal: 10,000 candidates of up to 256 atoms in <= 60 s on 2 CPU cores. Run with ``pytest benchmarks/
test_bench_refine.py``; extra_info gives ms per candidate, the time extrapolated to 10,000, and the
breakdown: expansion-table build (one engine call per chunk), engine calls of the candidates whose pairs
cross the engine's pair range over the expansion bounds (fallback path), and the rest (Levenberg-Marquardt).
"""
import time

import numpy as np
import pytest
import torch

from pdfsolve import refine as refine_module
from pdfsolve.engine import ClusterBatch, PDFParameters, simulate_pdf
from pdfsolve.engine.grids import DebyeGrid
from pdfsolve.structures import build_library
from pdfsolve.target import Target

N_CANDIDATES = 2000


@pytest.fixture(scope="module")
def problem():
    library = build_library(["Au"], min_atoms=100, max_atoms=256)
    rng = np.random.default_rng(0)
    candidates = []
    for k in range(N_CANDIDATES):
        atoms = library[k % len(library)].copy()
        atoms.positions += rng.normal(scale=0.01, size=atoms.positions.shape)
        candidates.append(atoms)
    truth = library[37].copy()
    truth.positions *= 1.02
    params = PDFParameters.from_uiso(0.006, qmin=0.7, qmax=25.0, qdamp=0.04)
    res = simulate_pdf(truth, params, mode="exact")
    target = Target.from_arrays(res.r, 0.7 * res.G[0].numpy(), 0.7, 25.0, 0.04)
    return ClusterBatch.from_atoms(candidates), target


@pytest.mark.parametrize("threads", [1, 2])
def test_refine_2000_candidates(benchmark, problem, threads, monkeypatch):
    batch, target = problem
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    spent = {"table": 0.0, "engine": 0.0}

    def timed(key, fn):
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            spent[key] += time.perf_counter() - t0
            return out
        return wrapper

    monkeypatch.setattr(refine_module.ExpansionTable, "__init__", timed("table", refine_module.ExpansionTable.__init__))
    monkeypatch.setattr(refine_module._Chunk, "_sf", timed("engine", refine_module._Chunk._sf))
    grid = DebyeGrid.build(target.params.replace(qdamp=0.0, scale=1.0), 0.005)
    fixed, _ = refine_module._fixed_pair_set(refine_module._centred(batch), batch.mask, grid)
    try:
        result = benchmark.pedantic(lambda: refine_module.refine(batch, target), rounds=1, iterations=1,
                                    warmup_rounds=0)
    finally:
        torch.set_num_threads(previous)
    total = benchmark.stats.stats.mean
    info = benchmark.extra_info
    info["torch_threads"] = threads
    info["candidates"] = batch.batch_size
    info["mean_atoms"] = float(batch.n_atoms.float().mean())
    info["table_candidates"] = int(fixed.sum())
    info["ms_per_candidate"] = 1e3 * total / batch.batch_size
    info["extrapolated_10000_s"] = total * 10000 / batch.batch_size
    info["table_build_s"] = spent["table"]
    info["fallback_engine_s"] = spent["engine"]
    info["lm_s"] = total - spent["table"] - spent["engine"]
    info["engine_calls"] = result.engine_calls
    info["best_rwp"] = float(result.rwp.min())
    assert float(result.rwp.min()) < 0.01
