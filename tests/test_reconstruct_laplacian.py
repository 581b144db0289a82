"""Laplacian route's reconstruction: atom counting, the eigenmap against scipy's generalized eigensolver, exact
and noisy round trips on clusters of every motif, compiled vs torch objective, bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

import pdfsolve.ops as ops
from pdfsolve.geometry import CBLDM_SIGMA, graph_laplacian, pad_square
from pdfsolve.reconstruct import (affinity_from_matrix, count_atoms, laplacian_eigenmap,
                                  laplacian_to_coordinates)
from _clusters import aligned_errors, motif_clusters, padded

needs_ext = pytest.mark.skipif(not ops.extension_available(), reason="pdfsolve._C not built")


@pytest.fixture(scope="module")
def batch():
    pos, mask = padded(motif_clusters(), rotate_seed=0)
    return pos, mask, graph_laplacian(pos, mask=mask, form="affinity")


def test_counts_atoms_of_w_and_l_padded_and_noisy(batch):
    pos, mask, w = batch
    lap = graph_laplacian(pos, mask=mask, form="laplacian")
    assert count_atoms(w).tolist() == mask.sum(1).tolist()
    assert count_atoms(lap, form="laplacian").tolist() == mask.sum(1).tolist()
    noisy = pad_square(w, 160) + 0.02 * torch.randn(w.shape[0], 160, 160, generator=torch.Generator().manual_seed(1),
                                                    dtype=torch.float64)
    assert count_atoms(noisy).tolist() == mask.sum(1).tolist()
    # from L the affinity comes back exactly, with W_ii = 1
    w_back, m_back = affinity_from_matrix(lap, "laplacian")
    assert torch.equal(m_back, mask) and (w_back - w).abs().max() < 1e-15


def test_eigenmap_is_the_generalized_eigenbasis(batch):
    """v of laplacian_eigenmap solve L v = lambda D v with v^T D v = 1 for the 3 smallest non-zero eigenvalues:
    compared with scipy.linalg.eigh(L, D) on each cluster (eigenvalues, and the spanned subspace)."""
    _, mask, w = batch
    v = laplacian_eigenmap(w, mask)
    for b in range(w.shape[0]):
        n = int(mask[b].sum())
        wb = w[b, :n, :n].numpy()  # with W_ii = 1: D counts the self-loop, L = D - W does not see it
        deg = np.diag(wb.sum(1))
        lam, vec = scipy.linalg.eigh(deg - wb, deg)
        vb = v[b, :n].numpy()
        assert np.allclose(vb.T @ deg @ vb, np.eye(3), atol=1e-10)
        ours = np.diag(vb.T @ (deg - wb) @ vb)
        assert np.allclose(ours, lam[1:4], rtol=1e-9, atol=1e-12)
        if lam[4] - lam[3] > 1e-8:  # a subspace is defined only where the spectrum has a gap after the third
            proj = vec[:, 1:4] @ vec[:, 1:4].T @ deg
            assert np.abs(proj @ vb - vb).max() < 1e-8
        assert (v[b, n:] == 0).all()


@needs_ext
@pytest.mark.parametrize("form", ["affinity", "laplacian"])
@pytest.mark.parametrize("start", ["eigenmap", "mds"])
def test_exact_round_trip_every_motif(batch, form, start):
    pos, mask, _ = batch
    mat = graph_laplacian(pos, mask=mask, form=form)
    res = laplacian_to_coordinates(mat, form, start=start)
    assert (res.status <= 2).all()
    assert aligned_errors(res.x, pos, mask).max() < 1e-3
    assert (res.x[~mask] == 0).all()


@needs_ext
def test_noise_degrades_smoothly(batch):
    """Error grows in proportion to the noise on W (a 1e-3 Angstrom error moves W by ~1e-5)."""
    pos, mask, w = batch
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(w.shape, generator=g, dtype=torch.float64)
    noise = (noise + noise.transpose(1, 2)) / 2 * (mask[:, :, None] & mask[:, None, :])
    levels = [1e-5, 1e-4, 1e-3, 1e-2]
    errors = [aligned_errors(laplacian_to_coordinates(w + lv * noise).x, pos, mask).max() for lv in levels]
    ratios = [b / a for a, b in zip(errors, errors[1:])]
    assert errors[0] < 1e-2 and errors[-1] < 1.0, errors
    assert all(5 < r < 20 for r in ratios), (errors, ratios)  # linear in the noise: x10 per decade


@needs_ext
def test_compiled_and_torch_objectives_agree(batch):
    pos, mask, w = batch
    sub, m = w[[0, 4], :55, :55], mask[[0, 4], :55]
    noisy = sub + 1e-3 * torch.randn(sub.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * (
        m[:, :, None] & m[:, None, :])
    a = laplacian_to_coordinates(noisy, backend="compiled", ftol=1e-12)
    b = laplacian_to_coordinates(noisy, backend="torch", ftol=1e-12)
    assert (a.x - b.x).abs().max() < 1e-6
    assert (a.nit - b.nit).abs().max() <= 2
    assert torch.allclose(a.loss, b.loss, rtol=1e-8)


@needs_ext
def test_explicit_mask_start_and_sigma(batch):
    pos, mask, _ = batch
    sigma = 6.0
    w = graph_laplacian(pos, sigma, mask=mask, form="affinity")
    res = laplacian_to_coordinates(w, sigma=sigma, mask=mask)
    assert aligned_errors(res.x, pos, mask).max() < 1e-3
    # a start at the truth is already optimal
    res0 = laplacian_to_coordinates(w, sigma=sigma, mask=mask, x0=pos)
    assert (res0.nit == 0).all() and (res0.x - pos).abs().max() == 0
    # W depends on d / sigma only: another sigma gives the same cluster scaled by sigma' / sigma
    other = laplacian_to_coordinates(w, sigma=CBLDM_SIGMA, mask=mask)
    assert aligned_errors(other.x * sigma / CBLDM_SIGMA, pos, mask).max() < 1e-3


@needs_ext
def test_single_cluster_and_tiny_clusters():
    pos = torch.tensor([[0.0, 0, 0], [2.5, 0, 0], [0, 2.6, 0], [0, 0, 2.7]], dtype=torch.float64)
    res = laplacian_to_coordinates(graph_laplacian(pos, form="affinity"))  # (N, N): one cluster
    assert res.x.shape == (1, 4, 3)
    assert aligned_errors(res.x, pos[None], torch.ones(1, 4, dtype=torch.bool)).max() < 1e-4
    two = torch.tensor([[0.0, 0, 0], [2.5, 0, 0]], dtype=torch.float64)
    res2 = laplacian_to_coordinates(graph_laplacian(two, form="affinity"))
    assert abs(float((res2.x[0, 0] - res2.x[0, 1]).norm()) - 2.5) < 1e-4


@needs_ext
def test_many_small_clusters_at_once():
    """B = 2000 rattled 13-atom icosahedra, every one recovered."""
    base = torch.tensor(motif_clusters()[-1].positions)
    g = torch.Generator().manual_seed(3)
    pos = base + 0.1 * torch.randn(2000, 13, 3, generator=g, dtype=torch.float64)
    mask = torch.ones(2000, 13, dtype=torch.bool)
    res = laplacian_to_coordinates(graph_laplacian(pos, form="affinity"))
    assert (res.status <= 2).all()
    assert aligned_errors(res.x, pos, mask).max() < 1e-3


def test_bad_input_is_named(batch):
    _, mask, w = batch
    bad = w.clone()
    bad[0, 1, 2] = math.nan
    with pytest.raises(ValueError, match="affinity contains NaN"):
        laplacian_to_coordinates(bad)
    with pytest.raises(ValueError, match="shape"):
        laplacian_to_coordinates(w[:, :3])
    with pytest.raises(ValueError, match="form must be"):
        laplacian_to_coordinates(w, form="normalized")
    with pytest.raises(ValueError, match="sigma must be"):
        laplacian_to_coordinates(w, sigma=-1.0)
    with pytest.raises(ValueError, match="start must be"):
        laplacian_to_coordinates(w, start="random")
    with pytest.raises(ValueError, match="mask must have shape"):
        laplacian_to_coordinates(w, mask=mask[:, :3])
    with pytest.raises(ValueError, match="backend must be"):
        laplacian_to_coordinates(w, backend="gpu")


@needs_ext
def test_opcheck(batch):
    pos, mask, w = batch
    sigma = torch.full((2,), CBLDM_SIGMA, dtype=torch.float64)
    torch.library.opcheck(torch.ops.pdfsolve.fit_affinity.default,
                          (pos[:2, :20] + 0.1, mask[:2, :20], w[:2, :20, :20], sigma, 10, 1e-12, 1e-10, 50))


@pytest.mark.cuda
@pytest.mark.skipif(not (torch.cuda.is_available() and ops.extension_available()
                         and ops.has_kernel("fit_affinity", "cuda")), reason="needs a CUDA device and a CUDA build")
def test_cuda_input_stays_on_the_device_and_matches_cpu(batch):
    pos, mask, w = batch
    res = laplacian_to_coordinates(w.cuda(), ftol=2.2e-9)
    ref = laplacian_to_coordinates(w, ftol=2.2e-9)
    assert res.x.is_cuda
    assert aligned_errors(res.x.cpu(), pos, mask).max() < 1e-3
    assert (res.status.cpu() == ref.status).all()


def test_separation_refit_pulls_crowded_atoms_apart_and_keeps_an_exact_fit():
    from pdfsolve.geometry import pair_distances
    from pdfsolve.reconstruct import separate_atoms
    from pdfsolve.structures import motifs

    ico = torch.as_tensor(motifs.icosahedron(3, element="Au").positions)[None]  # 55 atoms, 2.88 A bonds
    mask = torch.ones(1, 55, dtype=torch.bool)
    w = graph_laplacian(ico, mask=mask, form="affinity")
    crowded = ico.clone()
    crowded[0, 1], crowded[0, 2] = crowded[0, 0] + 0.3, crowded[0, 0] - 0.4
    eye = torch.eye(55) * 99
    assert float((pair_distances(crowded, mask) + eye).min()) < 0.6
    out = separate_atoms(crowded, w, mask, 2.4)
    assert float((pair_distances(out.x, mask) + eye).min()) > 0.99 * 2.4
    assert float(out.loss) < 1e-6  # back on the exact W: the true cluster satisfies the bound
    assert float(aligned_errors(out.x, ico, mask)[0]) < 1e-3
    with pytest.raises(ValueError, match="must be > 0"):
        separate_atoms(crowded, w, mask, 0.0)
