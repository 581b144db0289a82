"""Debye PDF throughput: pdfsolve (exact and fast modes) against debyecalculator, same run, same clusters.

Run with ``pytest benchmarks/`` (add ``--benchmark-group-by=group``); compare the per-cluster ratios
within one group. debyecalculator (PyPI, float32, CPU) is a benchmark-only dependency:
``pip install debyecalculator==1.1.1``; its benchmarks are skipped without it.
Threads follow torch's default; run once with ``OMP_NUM_THREADS=1`` and once without for both numbers.
"""
import numpy as np
import pytest
import torch

from conftest import make_clusters
from pdfsolve import ClusterBatch, PDFParameters, simulate_pdf

PARAMS = PDFParameters()


def _pdfsolve(clusters, mode, dtype):
    batch = ClusterBatch.from_atoms(clusters, biso=PARAMS.biso, dtype=dtype)

    def run():
        return simulate_pdf(batch, PARAMS, mode=mode).G

    return run


def _debyecalculator(clusters):
    dc = pytest.importorskip("debyecalculator")
    calc = dc.DebyeCalculator(qmin=PARAMS.qmin, qmax=PARAMS.qmax, qdamp=PARAMS.qdamp, rmin=PARAMS.rmin,
                              rmax=PARAMS.rmax, rstep=PARAMS.rstep, biso=PARAMS.biso, device="cpu",
                              dtype=torch.float32)

    def run():
        return [calc.gr(atoms) for atoms in clusters]

    return run


CASES = [
    ("pdfsolve-fast-float32", lambda c: _pdfsolve(c, "fast", torch.float32)),
    ("pdfsolve-fast-float64", lambda c: _pdfsolve(c, "fast", torch.float64)),
    ("pdfsolve-exact-float64", lambda c: _pdfsolve(c, "exact", torch.float64)),
    ("debyecalculator-float32", _debyecalculator),
]


@pytest.mark.parametrize("name,factory", CASES, ids=[c[0] for c in CASES])
def test_batch_1000_clusters_50_150_atoms(benchmark, batch_1000, name, factory):
    benchmark.group = "1000 clusters, 50-150 atoms"
    run = factory(batch_1000)
    benchmark.extra_info["clusters"] = len(batch_1000)
    benchmark.extra_info["torch_threads"] = torch.get_num_threads()
    benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    benchmark.extra_info["ms_per_cluster"] = 1e3 * benchmark.stats.stats.mean / len(batch_1000)


SIZES = {10: 200, 500: 10, 2000: 2}  # atoms per cluster: clusters per call


@pytest.mark.parametrize("natoms", list(SIZES))
@pytest.mark.parametrize("name,factory", CASES, ids=[c[0] for c in CASES])
def test_cluster_size(benchmark, natoms, name, factory):
    benchmark.group = f"{SIZES[natoms]} clusters of {natoms} atoms"
    clusters = make_clusters([natoms] * SIZES[natoms], seed=natoms)
    run = factory(clusters)
    benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    benchmark.extra_info["ms_per_cluster"] = 1e3 * benchmark.stats.stats.mean / len(clusters)
