"""pdfsolve.ops.pair_histogram: compiled CPU op against the plain-torch reference."""
from __future__ import annotations

import warnings

import pytest
import torch

import pdfsolve.ops as ops
from pdfsolve.ops import _registry, reference
from _ops_helpers import random_batch, rel_err

needs_ext = pytest.mark.skipif(not ops.extension_available(), reason="pdfsolve._C not built")

S = 2
BW, NB = 0.05, 200  # distances beyond 9.95 A are dropped


def op(pos, species, bw=BW, nb=NB, n_species=S):
    return torch.ops.pdfsolve.pair_histogram(pos, species, n_species, bw, nb)


def ref(pos, species, bw=BW, nb=NB, n_species=S):
    return reference.pair_histogram(pos, species, n_species, bw, nb)


def ref_grad(pos, species, grad, bw=BW, nb=NB):
    p = pos.detach().double().clone().requires_grad_()
    ref(p, species, bw, nb).backward(grad.double())
    return p.grad


@needs_ext
def test_forward_float64_matches_reference():
    pos, sp, _ = random_batch(5, 30, seed=1)
    expected = ref(pos, sp)
    out = op(pos, sp)
    assert rel_err(out, expected) < 1e-12
    assert (out[:, 2] == 0).all()
    # some pairs fall beyond the last bin and are dropped
    n_valid = ((sp >= 0).sum(1) * ((sp >= 0).sum(1) - 1) // 2).sum().item()
    assert out.sum().item() < n_valid


@needs_ext
def test_forward_float32_matches_reference():
    pos, sp, _ = random_batch(5, 30, seed=2, dtype=torch.float32)
    out = op(pos, sp)
    assert out.dtype == torch.float32
    assert rel_err(out, ref(pos.double(), sp)) < 1e-5


@needs_ext
@pytest.mark.parametrize("n", [0, 1])
def test_fewer_than_two_atoms(n):
    pos, sp, _ = random_batch(3, n, pad=False)
    out = op(pos, sp)
    assert out.shape == (3, S * S, NB) and (out == 0).all()
    assert (torch.ops.pdfsolve.pair_histogram_backward(torch.ones_like(out), pos, sp, S, BW, NB) == 0).all()


@needs_ext
@pytest.mark.parametrize("nb", [0, 1])
def test_fewer_than_two_bins(nb):
    pos, sp, _ = random_batch(2, 6)
    out = op(pos, sp, nb=nb)
    assert out.shape == (2, S * S, nb)


@needs_ext
def test_two_atoms_splat():
    pos = torch.tensor([[[0.0, 0.0, 0.0], [0.0, 0.0, 1.2345]]], dtype=torch.float64)
    sp = torch.tensor([[1, 1]])
    out = op(pos, sp, 0.1, 20)
    assert out[0, 3, 12].item() == pytest.approx(1 - 0.345, abs=1e-12)
    assert out[0, 3, 13].item() == pytest.approx(0.345, abs=1e-12)
    assert out.sum().item() == pytest.approx(1.0)


@needs_ext
def test_empty_batch():
    pos, sp, _ = random_batch(0, 7)
    out = op(pos, sp)
    assert out.shape == (0, S * S, NB)
    assert torch.ops.pdfsolve.pair_histogram_backward(out, pos, sp, S, BW, NB).shape == (0, 7, 3)


@needs_ext
def test_coincident_atoms():
    pos, sp, _ = random_batch(1, 8, seed=5, pad=False)
    pos[0, 2] = pos[0, 6]
    out = op(pos, sp)
    assert torch.isfinite(out).all() and rel_err(out, ref(pos, sp)) < 1e-12
    grad = torch.randn(out.shape, dtype=torch.float64)
    gp = torch.ops.pdfsolve.pair_histogram_backward(grad, pos, sp, S, BW, NB)
    assert torch.isfinite(gp).all() and rel_err(gp, ref_grad(pos, sp, grad)) < 1e-12
    two = torch.ops.pdfsolve.pair_histogram_backward(grad, pos[:, [2, 6]], sp[:, :2], S, BW, NB)
    assert (two == 0).all()


@needs_ext
def test_padding_equals_unpadded_cluster():
    pos, sp, _ = random_batch(1, 12, seed=6, pad=False)
    ppos = torch.cat([pos[:, :4], torch.full((1, 2, 3), 1.0, dtype=pos.dtype), pos[:, 4:]], 1)
    psp = torch.cat([sp[:, :4], torch.full((1, 2), -1), sp[:, 4:]], 1)
    assert torch.equal(op(ppos, psp), op(pos, sp))
    grad = torch.randn(1, S * S, NB, dtype=torch.float64)
    assert (torch.ops.pdfsolve.pair_histogram_backward(grad, ppos, psp, S, BW, NB)[:, 4:6] == 0).all()


@needs_ext
def test_non_contiguous_inputs():
    pos, sp, _ = random_batch(4, 10, seed=7)
    pos_nc = pos.transpose(1, 2).contiguous().transpose(1, 2)
    sp_nc = torch.stack([sp, sp], -1)[..., 0]
    assert not pos_nc.is_contiguous() and not sp_nc.is_contiguous()
    assert rel_err(op(pos_nc, sp_nc), ref(pos, sp)) < 1e-12
    grad = torch.randn(4, S * S, NB, dtype=torch.float64).transpose(0, 1).contiguous().transpose(0, 1)
    gp = torch.ops.pdfsolve.pair_histogram_backward(grad, pos_nc, sp_nc, S, BW, NB)
    assert rel_err(gp, ref_grad(pos, sp, grad)) < 1e-12


@needs_ext
def test_atom_parallel_path_large_cluster():
    pos, sp, _ = random_batch(1, 600, seed=8, box=20.0, pad=False)
    sp[0, -50:] = -1
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        out = op(pos, sp, 0.01, 3000)
        grad = torch.randn(out.shape, dtype=torch.float64)
        gp = torch.ops.pdfsolve.pair_histogram_backward(grad, pos, sp, S, 0.01, 3000)
    finally:
        torch.set_num_threads(old)
    assert rel_err(out, ref(pos, sp, 0.01, 3000)) < 1e-12
    assert rel_err(gp, ref_grad(pos, sp, grad, 0.01, 3000)) < 1e-11


@needs_ext
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_backward_matches_autograd_of_reference(dtype, tol):
    pos, sp, _ = random_batch(4, 20, seed=9, dtype=dtype)
    grad = torch.randn(4, S * S, NB, generator=torch.Generator().manual_seed(1)).to(dtype)
    gp = torch.ops.pdfsolve.pair_histogram_backward(grad, pos, sp, S, BW, NB)
    assert gp.dtype == dtype
    assert rel_err(gp, ref_grad(pos, sp, grad)) < tol


@needs_ext
def test_autograd_through_public_function():
    pos, sp, _ = random_batch(3, 9, seed=10)
    p = pos.clone().requires_grad_()
    out = ops.pair_histogram(p, sp, S, BW, NB)
    grad = torch.randn_like(out)
    out.backward(grad)
    assert rel_err(p.grad, ref_grad(pos, sp, grad)) < 1e-12


@needs_ext
def test_gradcheck_away_from_bin_edges():
    # Two atoms per cluster along x at distances well inside a bin, so finite differences stay in one bin.
    pos = torch.zeros(2, 3, 3, dtype=torch.float64)
    pos[0, 1, 0], pos[0, 2, 1] = 1.23, 2.71
    pos[1, 1, 2], pos[1, 2, 0] = 3.37, 0.86
    sp = torch.tensor([[0, 1, 1], [1, 0, -1]])
    i, j = torch.triu_indices(3, 3, 1)
    d = (pos[:, i] - pos[:, j]).norm(dim=-1)
    assert ((d / 0.1 - torch.floor(d / 0.1) - 0.5).abs() < 0.45).all()
    p = pos.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda a: ops.pair_histogram(a, sp, S, 0.1, 60), (p,), eps=1e-7, atol=1e-6)


@needs_ext
def test_opcheck():
    pos, sp, _ = random_batch(2, 7, seed=12)
    p = pos.clone().requires_grad_()
    torch.library.opcheck(torch.ops.pdfsolve.pair_histogram.default, (p, sp, S, BW, NB))
    grad = torch.randn(2, S * S, NB, dtype=torch.float64)
    torch.library.opcheck(torch.ops.pdfsolve.pair_histogram_backward.default, (grad, pos, sp, S, BW, NB))


@needs_ext
def test_argument_checks_name_the_argument():
    pos, sp, _ = random_batch(2, 5)
    with pytest.raises(RuntimeError, match="species must be int64"):
        op(pos, sp.int())
    with pytest.raises(RuntimeError, match="bin_width must be finite and > 0"):
        op(pos, sp, 0.0)
    with pytest.raises(RuntimeError, match="nbins must be >= 0"):
        op(pos, sp, BW, -3)
    with pytest.raises(RuntimeError, match=r"species must have shape \(B, N\)"):
        op(pos, sp[:, :3])
    with pytest.raises(RuntimeError, match="grad must have pos's dtype"):
        torch.ops.pdfsolve.pair_histogram_backward(torch.zeros(2, S * S, NB), pos, sp, S, BW, NB)


def test_force_reference_switch(monkeypatch):
    pos, sp, _ = random_batch(2, 8, seed=13)
    monkeypatch.setenv("PDFSOLVE_FORCE_REFERENCE", "1")
    monkeypatch.setattr(_registry, "_warned", set())
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        a = ops.pair_histogram(pos, sp, S, BW, NB)
        b = ops.pair_histogram(pos, sp, S, BW, NB)
    assert len([w for w in rec if "PDFSOLVE_FORCE_REFERENCE" in str(w.message)]) == 1
    assert torch.equal(a, ref(pos, sp)) and torch.equal(b, ref(pos, sp))


def test_missing_device_kernel_falls_back(monkeypatch):
    pos, sp, _ = random_batch(1, 5, seed=14)
    monkeypatch.delenv("PDFSOLVE_FORCE_REFERENCE", raising=False)
    monkeypatch.setattr(_registry, "_warned", set())
    monkeypatch.setattr(_registry, "has_kernel", lambda op, device: False)
    with pytest.warns(RuntimeWarning, match="no compiled kernel"):
        out = ops.pair_histogram(pos, sp, S, BW, NB)
    assert torch.equal(out, ref(pos, sp))
