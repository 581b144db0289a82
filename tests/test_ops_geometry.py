"""pair_distances, point_distances and graph_laplacian: compiled CPU ops against the float64 reference."""
from __future__ import annotations

import pytest
import torch

import pdfsolve.ops as ops
from pdfsolve.ops import _geometry, reference_geometry as ref
from _ops_helpers import rel_err

needs_ext = pytest.mark.skipif(not ops.extension_available(), reason="pdfsolve._C not built")
pytestmark = needs_ext

OPS = torch.ops.pdfsolve
FORMS = (0, 1, 2)


def batch(b=3, n=9, seed=0, box=6.0, dtype=torch.float64, coincident=True, far=True):
    """Padded clusters: cluster 1 has 3 padding slots, cluster 0 a coincident pair, the last a far-away atom."""
    g = torch.Generator().manual_seed(seed)
    pos = torch.rand(b, n, 3, generator=g, dtype=torch.float64) * box
    mask = torch.ones(b, n, dtype=torch.bool)
    if b > 1 and n > 3:
        mask[1, n - 3:] = False
        pos[1, n - 3:] = 123.0  # padding content must not matter
    if coincident and n > 1:
        pos[0, 1] = pos[0, 0]
    if far and n > 2:
        pos[b - 1, n - 1] += 80.0  # an atom whose affinities underflow
    sigma = 1.0 + torch.rand(b, generator=g, dtype=torch.float64)
    return pos.to(dtype), mask, sigma.to(dtype)


POINTS = torch.tensor([[0.0, 0.0, 1.0], [1.0, 2.0, -3.0], [4.0, 4.0, 4.0], [2.5, 0.5, 1.0]], dtype=torch.float64)


def compiled(name, *args):
    return getattr(OPS, name)(*args)


def reference(name, *args):
    return getattr(ref, name)(*args)


CASES = [
    ("pair_distances", lambda pos, mask, sigma: (pos, mask)),
    ("point_distances", lambda pos, mask, sigma: (pos, mask, POINTS.to(pos.dtype))),
] + [("graph_laplacian", (lambda f: lambda pos, mask, sigma: (pos, mask, sigma, f))(f)) for f in FORMS]
IDS = ["pair", "point", "affinity", "laplacian", "normalized"]


@pytest.mark.parametrize("name,args", CASES, ids=IDS)
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-14), (torch.float32, 1e-6)])
def test_forward_matches_reference(name, args, dtype, tol):
    pos, mask, sigma = batch(dtype=dtype)
    out = compiled(name, *args(pos, mask, sigma))
    expected = reference(name, *args(pos.double(), mask, sigma.double()))
    assert out.dtype == dtype and out.shape == expected.shape
    assert expected.abs().max() > 0 and rel_err(out, expected) < tol
    # padding rows and columns are exactly zero
    assert (out[1, -3:] == 0).all()
    if out.shape[-1] == out.shape[-2]:
        assert (out[1, :, -3:] == 0).all()


@pytest.mark.parametrize("name,args", CASES, ids=IDS)
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_backward_matches_autograd_through_reference(name, args, dtype, tol):
    pos, mask, sigma = batch(seed=1, dtype=dtype)
    p = pos.clone().requires_grad_()
    s = sigma.clone().requires_grad_()
    out = compiled(name, *args(p, mask, s))
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    (out * g.to(dtype)).sum().backward()
    rp = pos.double().clone().requires_grad_()
    rs = sigma.double().clone().requires_grad_()
    (reference(name, *args(rp, mask, rs)) * g).sum().backward()
    assert torch.isfinite(p.grad).all()
    assert rel_err(p.grad, rp.grad) < tol
    assert (p.grad[1, -3:] == 0).all()  # padding gets no gradient
    if name == "graph_laplacian":
        assert rel_err(s.grad, rs.grad) < tol


@pytest.mark.parametrize("name,args", CASES, ids=IDS)
def test_gradcheck(name, args):
    """float64 finite differences on clusters of 4-12 atoms, padded, with coincident and distant atoms."""
    for n, seed in ((4, 3), (12, 4)):
        pos, mask, sigma = batch(b=2, n=n, seed=seed, box=4.0, coincident=False)
        p = pos.clone().requires_grad_()
        s = sigma.clone().requires_grad_()
        if name == "graph_laplacian":
            f = lambda p, s: compiled(name, *args(p, mask, s))  # noqa: E731
            assert torch.autograd.gradcheck(f, (p, s))
        else:
            f = lambda p: compiled(name, *args(p, mask, sigma))  # noqa: E731
            assert torch.autograd.gradcheck(f, (p,))


def test_coincident_atoms_give_zero_distance_and_finite_zero_gradient():
    pos = torch.tensor([[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 2.0, 2.0]]], dtype=torch.float64,
                       requires_grad=True)
    mask = torch.ones(1, 3, dtype=torch.bool)
    d = OPS.pair_distances(pos, mask)
    assert d[0, 0, 1] == 0 and d[0, 0, 2] == 3.0
    d[0, 0, 1].backward()
    assert torch.equal(pos.grad, torch.zeros_like(pos))
    pts = torch.tensor([[0.0, 0.0, 0.0]], dtype=torch.float64)
    pos.grad = None
    OPS.point_distances(pos, mask, pts).sum().backward()
    assert torch.isfinite(pos.grad).all() and (pos.grad[0, :2] == 0).all()
    assert torch.allclose(pos.grad[0, 2], torch.tensor([1.0, 2.0, 2.0], dtype=torch.float64) / 3)


def test_one_atom_empty_batch_and_no_atoms():
    one = torch.zeros(2, 1, 3, dtype=torch.float64, requires_grad=True)
    m1 = torch.tensor([[True], [False]])
    s2 = torch.ones(2, dtype=torch.float64)
    assert torch.equal(OPS.pair_distances(one, m1), torch.zeros(2, 1, 1, dtype=torch.float64))
    assert torch.equal(OPS.graph_laplacian(one, m1, s2, 0), torch.tensor([[[1.0]], [[0.0]]], dtype=torch.float64))
    assert torch.equal(OPS.graph_laplacian(one, m1, s2, 1), torch.zeros(2, 1, 1, dtype=torch.float64))
    assert torch.equal(OPS.graph_laplacian(one, m1, s2, 2), torch.zeros(2, 1, 1, dtype=torch.float64))  # isolated
    OPS.graph_laplacian(one, m1, s2, 2).sum().backward()
    assert torch.equal(one.grad, torch.zeros_like(one))
    for b, n in ((0, 5), (3, 0)):
        pos = torch.zeros(b, n, 3, dtype=torch.float64, requires_grad=True)
        mask = torch.ones(b, n, dtype=torch.bool)
        sig = torch.ones(b, dtype=torch.float64)
        assert OPS.pair_distances(pos, mask).shape == (b, n, n)
        assert OPS.point_distances(pos, mask, POINTS).shape == (b, n, 4)
        out = OPS.graph_laplacian(pos, mask, sig, 2)
        assert out.shape == (b, n, n)
        out.sum().backward()
        assert pos.grad.shape == (b, n, 3)


def test_non_contiguous_inputs():
    pos, mask, sigma = batch(b=4, n=7, seed=5)
    pos_nc = pos.transpose(0, 1).contiguous().transpose(0, 1)
    mask_nc = mask.t().contiguous().t()
    sigma_nc = torch.stack([sigma, sigma], 1)[:, 0]
    assert not (pos_nc.is_contiguous() or mask_nc.is_contiguous() or sigma_nc.is_contiguous())
    for f in FORMS:
        assert torch.equal(OPS.graph_laplacian(pos_nc, mask_nc, sigma_nc, f), OPS.graph_laplacian(pos, mask, sigma, f))
        g = torch.randn(4, 1, 7, dtype=torch.float64).expand(4, 7, 7)  # stride 0
        a = OPS.graph_laplacian_backward(g, pos_nc, mask_nc, sigma_nc, f)
        b = OPS.graph_laplacian_backward(g.contiguous(), pos, mask, sigma, f)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert torch.equal(OPS.pair_distances(pos_nc, mask_nc), OPS.pair_distances(pos, mask))
    pts_nc = POINTS.t().contiguous().t()
    assert torch.equal(OPS.point_distances(pos_nc, mask_nc, pts_nc), OPS.point_distances(pos, mask, POINTS))


def test_distances_keep_digits_where_the_gram_shortcut_loses_them():
    """Two atoms 1e-6 A apart, 1000 A from the origin: |x|^2 + |y|^2 - 2 x.y cancels catastrophically."""
    pos = torch.tensor([[[1000.0, 0.0, 0.0], [1000.0 + 1e-6, 0.0, 0.0]]], dtype=torch.float64)
    exact = float(pos[0, 1, 0] - pos[0, 0, 0])  # exact in float64 (Sterbenz)
    d = OPS.pair_distances(pos, torch.ones(1, 2, dtype=torch.bool))[0, 0, 1]
    assert float(d) == exact
    gram = (pos[0] ** 2).sum(1)
    shortcut = (gram[0] + gram[1] - 2 * (pos[0, 0] @ pos[0, 1])).clamp(min=0).sqrt()
    assert abs(float(shortcut) - exact) > 1e-8  # what the shortcut would have given


@pytest.mark.parametrize("name,args", CASES, ids=IDS)
def test_opcheck(name, args):
    pos, mask, sigma = batch(b=2, n=6, seed=6)
    inputs = args(pos.clone().requires_grad_(), mask, sigma.clone().requires_grad_())
    torch.library.opcheck(getattr(OPS, name).default, inputs)


def test_argument_checks_name_the_argument():
    pos, mask, sigma = batch(b=2, n=5)
    with pytest.raises(RuntimeError, match="mask must be bool"):
        OPS.pair_distances(pos, mask.long())
    with pytest.raises(RuntimeError, match=r"mask must have shape"):
        OPS.pair_distances(pos, mask[:, :4])
    with pytest.raises(RuntimeError, match=r"pos must have shape"):
        OPS.pair_distances(pos[..., :2], mask)
    with pytest.raises(RuntimeError, match="points must have shape"):
        OPS.point_distances(pos, mask, POINTS[:, :2])
    with pytest.raises(RuntimeError, match="points must have pos's dtype"):
        OPS.point_distances(pos, mask, POINTS.float())
    with pytest.raises(RuntimeError, match="sigma must be finite and > 0"):
        OPS.graph_laplacian(pos, mask, -sigma, 1)
    with pytest.raises(RuntimeError, match="sigma must have shape"):
        OPS.graph_laplacian(pos, mask, sigma[:1], 1)
    with pytest.raises(RuntimeError, match="form must be"):
        OPS.graph_laplacian(pos, mask, sigma, 3)
    with pytest.raises(RuntimeError, match="grad must have shape"):
        OPS.pair_distances_backward(torch.zeros(2, 5, 4, dtype=torch.float64), pos, mask)


def test_public_functions_fall_back_to_reference(monkeypatch):
    pos, mask, sigma = batch(b=2, n=6, seed=7)
    compiled_out = _geometry.graph_laplacian(pos, mask, sigma, 2)
    monkeypatch.setenv("PDFSOLVE_FORCE_REFERENCE", "1")
    monkeypatch.setattr(ops._registry, "_warned", set())  # the warn-once state stays this test's own
    with pytest.warns(RuntimeWarning, match="PDFSOLVE_FORCE_REFERENCE"):
        fallback = _geometry.graph_laplacian(pos, mask, sigma, 2)
    assert rel_err(fallback, compiled_out) < 1e-14
    assert torch.equal(_geometry.pair_distances(pos, mask), ref.pair_distances(pos, mask))
