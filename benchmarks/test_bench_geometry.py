"""Geometry ops, forward + backward: the compiled op against the float64/float32 plain-torch reference, eager and
under ``torch.compile``, on the same batches in the same run.

Run with ``pytest benchmarks/test_bench_geometry.py --benchmark-group-by=group``; compare within a group.
"""
import numpy as np
import pytest
import torch

from conftest import make_clusters
from pdfsolve.ops import _geometry, reference_geometry

CBLDM_SIGMA = float(np.sqrt(130.0))


def _batch(n_clusters, natoms, dtype):
    """Padded batch of clusters with natoms // 2 .. natoms atoms."""
    sizes = np.random.default_rng(3).integers(natoms // 2, natoms + 1, size=n_clusters)
    clusters = make_clusters(sizes, seed=4)
    pos = torch.zeros(n_clusters, natoms, 3, dtype=dtype)
    mask = torch.zeros(n_clusters, natoms, dtype=torch.bool)
    for k, atoms in enumerate(clusters):
        pos[k, : len(atoms)] = torch.tensor(atoms.positions, dtype=dtype)
        mask[k, : len(atoms)] = True
    return pos, mask


def _satellites(dtype):
    from pdfsolve.geometry import sphere_points
    return sphere_points(11, radius=10.0, dtype=dtype)


OPS = {
    "pair_distances": (lambda m, p, mask: m.pair_distances(p, mask)),
    "point_distances": (lambda m, p, mask: m.point_distances(p, mask, _satellites(p.dtype))),
    "laplacian": (lambda m, p, mask: m.graph_laplacian(
        p, mask, torch.full((p.shape[0],), CBLDM_SIGMA, dtype=p.dtype), 1)),
    "normalized_laplacian": (lambda m, p, mask: m.graph_laplacian(
        p, mask, torch.full((p.shape[0],), CBLDM_SIGMA, dtype=p.dtype), 2)),
}
SHAPES = {"pair_distances": (1000, 100), "point_distances": (1000, 100), "laplacian": (100, 256),
          "normalized_laplacian": (100, 256)}
IMPLS = ["compiled-op", "reference", "torch.compile(reference)"]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("op", list(OPS))
def test_forward_backward(benchmark, op, impl, dtype):
    b, n = SHAPES[op]
    benchmark.group = f"{op} fwd+bwd, {b} clusters <= {n} atoms, {str(dtype)[6:]}"
    pos, mask = _batch(b, n, dtype)
    module = _geometry if impl == "compiled-op" else reference_geometry
    fn = OPS[op]
    if impl == "torch.compile(reference)":
        fn = torch.compile(fn)

    def run():
        p = pos.clone().requires_grad_()
        out = fn(module, p, mask)
        out.backward(torch.ones_like(out))
        return p.grad

    benchmark.extra_info["torch_threads"] = torch.get_num_threads()
    benchmark.pedantic(run, rounds=5, warmup_rounds=2)
