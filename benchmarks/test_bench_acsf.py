"""ACSF forward + backward: the compiled op against torch autograd through the float64/float32 reference.

Same clusters in every case of a group (benchmarks/conftest.py's make_clusters), the published 380-feature
parameter set (190 per atom). Run ``pytest benchmarks/test_bench_acsf.py --benchmark-group-by=group``; threads
follow torch's default, run once more with ``OMP_NUM_THREADS=1``. extra_info holds ms per structure (the
published Python implementation takes 28 ms at 10 atoms and 4.7 s at 55 atoms per optimiser step).
"""
import numpy as np
import pytest
import torch

from conftest import make_clusters
from pdfsolve.geometry import ACSFParameters
from pdfsolve.ops import _acsf, reference_acsf

PARAMS = ACSFParameters.published()
SIZES = {10: 64, 55: 16, 147: 4}  # atoms per cluster: clusters per call


def _step(fn, pos, species):
    def run():
        p = pos.detach().requires_grad_()
        fn(p, species, 1, PARAMS.radial, PARAMS.angular, PARAMS.rcut).sum().backward()
        return p.grad

    return run


CASES = [
    ("compiled-float64", _acsf.acsf, torch.float64),
    ("compiled-float32", _acsf.acsf, torch.float32),
    ("reference-float64", reference_acsf.acsf, torch.float64),
    ("reference-float32", reference_acsf.acsf, torch.float32),
]


@pytest.mark.parametrize("natoms", list(SIZES))
@pytest.mark.parametrize("name,fn,dtype", CASES, ids=[c[0] for c in CASES])
def test_acsf_forward_backward(benchmark, natoms, name, fn, dtype):
    benchmark.group = f"acsf fwd+bwd, {SIZES[natoms]} clusters of {natoms} atoms"
    clusters = make_clusters([natoms] * SIZES[natoms], seed=natoms)
    pos = torch.tensor(np.stack([c.positions for c in clusters]), dtype=dtype)
    species = torch.zeros(pos.shape[:2], dtype=torch.long)
    rounds = 1 if name.startswith("reference") and natoms == 147 else 3
    benchmark.pedantic(_step(fn, pos, species), rounds=rounds, warmup_rounds=1)
    benchmark.extra_info["torch_threads"] = torch.get_num_threads()
    benchmark.extra_info["ms_per_structure"] = 1e3 * benchmark.stats.stats.mean / len(clusters)
