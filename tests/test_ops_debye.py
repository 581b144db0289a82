"""pdfsolve.ops.debye_partials: compiled CPU op against the plain-torch reference."""
from __future__ import annotations

import warnings

import pytest
import torch

import pdfsolve.ops as ops
from pdfsolve.ops import _registry, reference
from _ops_helpers import random_batch, rel_err

needs_ext = pytest.mark.skipif(not ops.extension_available(), reason="pdfsolve._C not built")

S = 2
# q0, qstep, nq, rcut, delta1, delta2, qbroad
PARAMS = (0.4, 0.11, 150, 7.5, 0.35, 0.6, 0.03)


def op(pos, species, uiso, params=PARAMS, n_species=S):
    return torch.ops.pdfsolve.debye_partials(pos, species, uiso, n_species, *params)


def ref(pos, species, uiso, params=PARAMS, n_species=S):
    return reference.debye_partials(pos, species, uiso, n_species, *params)


def ref_grads(pos, species, uiso, grad, params=PARAMS):
    p = pos.detach().double().clone().requires_grad_()
    u = uiso.detach().double().clone().requires_grad_()
    ref(p, species, u, params).backward(grad.double())
    return p.grad, u.grad


@needs_ext
def test_forward_float64_matches_reference():
    pos, sp, u = random_batch(5, 30, seed=1)
    expected = ref(pos, sp, u)
    assert (expected[:, 2] == 0).all()  # slot s > t stays zero
    assert rel_err(op(pos, sp, u), expected) < 1e-12
    # the cut-off removed some pairs
    assert rel_err(ref(pos, sp, u, PARAMS[:3] + (100.0,) + PARAMS[4:]), expected) > 1e-3


@needs_ext
def test_forward_float32_matches_reference():
    pos, sp, u = random_batch(5, 30, seed=2, dtype=torch.float32)
    out = op(pos, sp, u)
    assert out.dtype == torch.float32
    assert rel_err(out, ref(pos.double(), sp, u.double())) < 1e-5


@needs_ext
def test_long_q_range_no_uiso():
    pos, sp, u = random_batch(2, 25, seed=3)
    params = (0.0, 0.05, 600, 50.0, 0.0, 0.0, 0.0)
    assert rel_err(op(pos, sp, torch.zeros_like(u), params), ref(pos, sp, torch.zeros_like(u), params)) < 1e-12
    p32, u32 = pos.float(), torch.zeros_like(u).float()
    assert rel_err(op(p32, sp, u32, params), ref(p32.double(), sp, u32.double(), params)) < 1e-5


@needs_ext
@pytest.mark.parametrize("n", [0, 1])
def test_fewer_than_two_atoms(n):
    pos, sp, u = random_batch(3, n, seed=4, pad=False)
    out = op(pos, sp, u)
    assert out.shape == (3, S * S, PARAMS[2]) and (out == 0).all()
    gp, gu = torch.ops.pdfsolve.debye_partials_backward(torch.ones_like(out), pos, sp, u, S, *PARAMS)
    assert gp.shape == pos.shape and gu.shape == u.shape and (gp == 0).all() and (gu == 0).all()


@needs_ext
def test_two_atoms_closed_form():
    pos = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 2.0, 2.0]]], dtype=torch.float64)  # r = 3
    sp = torch.tensor([[1, 0]])
    u = torch.tensor([[0.01, 0.02]], dtype=torch.float64)
    q = PARAMS[0] + PARAMS[1] * torch.arange(PARAMS[2], dtype=torch.float64)
    c = 1 - PARAMS[4] / 3 - PARAMS[5] / 9 + (PARAMS[6] * 3) ** 2
    expected = torch.exp(-0.5 * 0.03 * c * q**2) * torch.sin(3 * q) / 3
    out = op(pos, sp, u)
    torch.testing.assert_close(out[0, 1], expected, rtol=1e-12, atol=1e-14)
    assert (out[0, [0, 2, 3]] == 0).all()


@needs_ext
def test_empty_batch():
    pos, sp, u = random_batch(0, 7)
    out = op(pos, sp, u)
    assert out.shape == (0, S * S, PARAMS[2])
    gp, gu = torch.ops.pdfsolve.debye_partials_backward(out, pos, sp, u, S, *PARAMS)
    assert gp.shape == (0, 7, 3) and gu.shape == (0, 7)


@needs_ext
def test_nq_zero():
    pos, sp, u = random_batch(2, 6)
    params = PARAMS[:2] + (0,) + PARAMS[3:]
    assert op(pos, sp, u, params).shape == (2, S * S, 0)


@needs_ext
def test_coincident_atoms_finite_and_zero_gradient():
    pos, sp, u = random_batch(1, 8, seed=5, pad=False)
    pos[0, 3] = pos[0, 5]
    out = op(pos, sp, u)
    assert torch.isfinite(out).all()
    assert rel_err(out, ref(pos, sp, u)) < 1e-12
    grad = torch.randn(out.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    gp, gu = torch.ops.pdfsolve.debye_partials_backward(grad, pos, sp, u, S, *PARAMS)
    assert torch.isfinite(gp).all() and torch.isfinite(gu).all()
    rp, ru = ref_grads(pos, sp, u, grad)
    assert rel_err(gp, rp) < 1e-12 and rel_err(gu, ru) < 1e-12
    # only two coincident atoms: no gradient at all
    two = pos[:, [3, 5]].clone()
    gp2, gu2 = torch.ops.pdfsolve.debye_partials_backward(grad, two, sp[:, :2], u[:, :2], S, *PARAMS)
    assert (gp2 == 0).all() and (gu2 == 0).all()


@needs_ext
def test_padding_equals_unpadded_cluster():
    pos, sp, u = random_batch(1, 12, seed=6, pad=False)
    padded_pos = torch.cat([pos[:, :5], torch.full((1, 3, 3), 0.5, dtype=pos.dtype), pos[:, 5:]], 1)
    padded_sp = torch.cat([sp[:, :5], torch.full((1, 3), -1), sp[:, 5:]], 1)
    padded_u = torch.cat([u[:, :5], torch.full((1, 3), 0.3, dtype=u.dtype), u[:, 5:]], 1)
    torch.testing.assert_close(op(padded_pos, padded_sp, padded_u), op(pos, sp, u), rtol=1e-13, atol=1e-13)
    grad = torch.randn(1, S * S, PARAMS[2], dtype=torch.float64)
    gp, gu = torch.ops.pdfsolve.debye_partials_backward(grad, padded_pos, padded_sp, padded_u, S, *PARAMS)
    assert (gp[:, 5:8] == 0).all() and (gu[:, 5:8] == 0).all()


@needs_ext
def test_non_contiguous_inputs():
    pos, sp, u = random_batch(4, 10, seed=7)
    pos_nc = pos.transpose(1, 2).contiguous().transpose(1, 2)  # (B, N, 3) with strides of (B, 3, N)
    sp_nc = torch.stack([sp, sp], -1)[..., 0]
    u_nc = torch.stack([u, u], -1)[..., 1]
    assert not pos_nc.is_contiguous() and not sp_nc.is_contiguous() and not u_nc.is_contiguous()
    torch.testing.assert_close(op(pos_nc, sp_nc, u_nc), ref(pos, sp, u), rtol=0, atol=1e-12 * ref(pos, sp, u).abs().max().item())
    grad = torch.randn(4, S * S, PARAMS[2], dtype=torch.float64).transpose(0, 1).contiguous().transpose(0, 1)
    gp, gu = torch.ops.pdfsolve.debye_partials_backward(grad, pos_nc, sp_nc, u_nc, S, *PARAMS)
    rp, ru = ref_grads(pos, sp, u, grad)
    assert rel_err(gp, rp) < 1e-12 and rel_err(gu, ru) < 1e-12


@needs_ext
def test_atom_parallel_path_large_cluster():
    pos, sp, u = random_batch(1, 600, seed=8, box=22.0, pad=False)
    sp[0, -40:] = -1
    params = (0.5, 0.3, 6, 30.0, 0.2, 0.1, 0.01)
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        out = op(pos, sp, u, params)
        grad = torch.randn(out.shape, dtype=torch.float64)
        gp, gu = torch.ops.pdfsolve.debye_partials_backward(grad, pos, sp, u, S, *params)
    finally:
        torch.set_num_threads(old)
    assert rel_err(out, ref(pos, sp, u, params)) < 1e-12
    rp, ru = ref_grads(pos, sp, u, grad, params)
    assert rel_err(gp, rp) < 1e-11 and rel_err(gu, ru) < 1e-11


@needs_ext
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_backward_matches_autograd_of_reference(dtype, tol):
    pos, sp, u = random_batch(4, 20, seed=9, dtype=dtype)
    grad = torch.randn(4, S * S, PARAMS[2], generator=torch.Generator().manual_seed(1)).to(dtype)
    gp, gu = torch.ops.pdfsolve.debye_partials_backward(grad, pos, sp, u, S, *PARAMS)
    assert gp.dtype == dtype and gu.dtype == dtype
    rp, ru = ref_grads(pos, sp, u, grad)
    assert rel_err(gp, rp) < tol
    assert rel_err(gu, ru) < tol


@needs_ext
def test_autograd_through_public_function():
    pos, sp, u = random_batch(3, 9, seed=10)
    p = pos.clone().requires_grad_()
    uu = u.clone().requires_grad_()
    out = ops.debye_partials(p, sp, uu, S, *PARAMS)
    grad = torch.randn_like(out)
    out.backward(grad)
    rp, ru = ref_grads(pos, sp, u, grad)
    assert rel_err(p.grad, rp) < 1e-12 and rel_err(uu.grad, ru) < 1e-12


@needs_ext
def test_gradcheck():
    pos, sp, u = random_batch(2, 6, seed=11, box=5.0, pad=False)
    sp[1, -1] = -1
    params = (0.3, 0.17, 23, 6.0, 0.3, 0.4, 0.05)
    p = pos.clone().requires_grad_()
    uu = u.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: ops.debye_partials(a, sp, b, S, *params), (p, uu))


@needs_ext
def test_opcheck():
    pos, sp, u = random_batch(2, 7, seed=12, pad=True)
    p = pos.clone().requires_grad_()
    uu = u.clone().requires_grad_()
    torch.library.opcheck(torch.ops.pdfsolve.debye_partials.default, (p, sp, uu, S, *PARAMS))
    grad = torch.randn(2, S * S, PARAMS[2], dtype=torch.float64)
    torch.library.opcheck(torch.ops.pdfsolve.debye_partials_backward.default, (grad, pos, sp, u, S, *PARAMS))


@needs_ext
def test_argument_checks_name_the_argument():
    pos, sp, u = random_batch(2, 5)
    with pytest.raises(RuntimeError, match="species must be int64"):
        op(pos, sp.int(), u)
    with pytest.raises(RuntimeError, match="uiso must have pos's dtype"):
        op(pos, sp, u.float())
    with pytest.raises(RuntimeError, match=r"pos must have shape \(B, N, 3\)"):
        op(pos[..., :2], sp, u)
    with pytest.raises(RuntimeError, match="nq must be >= 0"):
        op(pos, sp, u, PARAMS[:2] + (-1,) + PARAMS[3:])
    with pytest.raises(RuntimeError, match="species values must be < n_species"):
        op(pos, sp + 5, u)
    with pytest.raises(RuntimeError, match="grad must have shape"):
        torch.ops.pdfsolve.debye_partials_backward(torch.zeros(2, 3, 4, dtype=pos.dtype), pos, sp, u, S, *PARAMS)


def test_force_reference_switch(monkeypatch):
    pos, sp, u = random_batch(2, 8, seed=13)
    monkeypatch.setenv("PDFSOLVE_FORCE_REFERENCE", "1")
    monkeypatch.setattr(_registry, "_warned", set())
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        a = ops.debye_partials(pos, sp, u, S, *PARAMS)
        b = ops.debye_partials(pos, sp, u, S, *PARAMS)
    msgs = [w for w in rec if "PDFSOLVE_FORCE_REFERENCE" in str(w.message)]
    assert len(msgs) == 1
    expected = ref(pos, sp, u)
    assert torch.equal(a, expected) and torch.equal(b, expected)
