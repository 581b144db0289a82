"""gaussian_pair_grid: compiled CPU (and CUDA) kernels against the plain-torch reference."""
import math

import numpy as np
import pytest
import torch

from pdfsolve.ops import reference
from pdfsolve.ops import _gridding, _registry
from pdfsolve.ops._registry import extension_available, has_kernel
from _ops_helpers import at_least_two_threads, lattice_cluster, rel_err

needs_ext = pytest.mark.skipif(not (extension_available() and has_kernel("gaussian_pair_grid", "cpu")),
                               reason="compiled pdfsolve._C with a CPU gaussian_pair_grid kernel is not available")
pytestmark = needs_ext

# n_species, bin_width, nbins, tau0, truncate, rcut, delta1, delta2, qbroad
PLAIN = (1, 0.05, 300, 0.05, 5.5, 100.0, 0.0, 0.0, 0.0)
JEONG = (2, 0.05, 300, 0.05, 5.5, 100.0, 0.3, 0.5, 0.02)


@pytest.fixture(autouse=True, scope="module")
def _register():
    assert _gridding.register()


def op(pos, species, uiso, *args):
    return torch.ops.pdfsolve.gaussian_pair_grid(pos, species, uiso, *args)


def op_bwd(grad, pos, species, uiso, *args):
    return torch.ops.pdfsolve.gaussian_pair_grid_backward(grad, pos, species, uiso, *args)


def cluster(b, n, n_species=2, box=8.0, seed=0, dtype=torch.float64, min_dist=1.8):
    """Random clusters with atoms at least ``min_dist`` apart (rejection sampling)."""
    g = torch.Generator().manual_seed(seed)
    pos = torch.empty(b, n, 3, dtype=torch.float64)
    for k in range(b):
        pts = []
        while len(pts) < n:
            p = torch.rand(3, generator=g, dtype=torch.float64) * box
            if all(float((p - q).norm()) >= min_dist for q in pts):
                pts.append(p)
        pos[k] = torch.stack(pts) if n else pos[k]
    species = torch.randint(0, n_species, (b, n), generator=g)
    uiso = 0.003 + 0.01 * torch.rand(b, n, generator=g, dtype=torch.float64)
    return pos.to(dtype), species, uiso.to(dtype)


def ref_grads(grad, pos, species, uiso, *args):
    p = pos.detach().double().clone().requires_grad_()
    u = uiso.detach().double().clone().requires_grad_()
    out = reference.gaussian_pair_grid(p, species, u, *args)
    gp, gu = torch.autograd.grad(out, (p, u), grad.double(), allow_unused=True)
    return (torch.zeros_like(p) if gp is None else gp), (torch.zeros_like(u) if gu is None else gu)


@pytest.mark.parametrize("args", [PLAIN, JEONG], ids=["plain", "jeong"])
def test_forward_float64_matches_reference(args):
    pos, species, uiso = cluster(3, 14, n_species=args[0])
    out = op(pos, species, uiso, *args)
    ref = reference.gaussian_pair_grid(pos, species, uiso, *args)
    assert out.shape == ref.shape == (3, args[0] ** 2, args[2])
    assert out.dtype == torch.float64 and out.is_contiguous()
    assert ref.abs().max() > 0
    assert rel_err(out, ref) < 1e-12


@pytest.mark.parametrize("args", [PLAIN, JEONG], ids=["plain", "jeong"])
def test_forward_float32_matches_reference(args):
    pos, species, uiso = cluster(3, 14, n_species=args[0])
    out = op(pos.float(), species, uiso.float(), *args)
    assert out.dtype == torch.float32
    assert rel_err(out, reference.gaussian_pair_grid(pos, species, uiso, *args)) < 1e-5


def test_two_species_slots_and_wide_jeong_widths():
    pos, species, uiso = cluster(2, 16, n_species=2, seed=3)
    uiso = uiso * 10  # s up to ~0.45 A: windows of ~100 bins exercise the recurrence's re-anchoring
    args = (2, 0.02, 600, 0.05, 5.5, 100.0, 0.5, 1.0, 0.03)
    out = op(pos, species, uiso, *args)
    ref = reference.gaussian_pair_grid(pos, species, uiso, *args)
    assert rel_err(out, ref) < 1e-12
    assert float(out[:, 2].abs().max()) == 0.0  # slot (1, 0) stays empty
    assert rel_err(op(pos.float(), species, uiso.float(), *args), ref) < 1e-5


def test_rcut_removes_pairs():
    pos, species, uiso = cluster(2, 12, n_species=1, seed=4)
    full = (1, 0.05, 300, 0.05, 5.5, 100.0, 0.0, 0.0, 0.0)
    cut = (1, 0.05, 300, 0.05, 5.5, 4.0, 0.0, 0.0, 0.0)
    a = op(pos, species, uiso, *cut)
    assert rel_err(a, reference.gaussian_pair_grid(pos, species, uiso, *cut)) < 1e-12
    assert float((op(pos, species, uiso, *full) - a).abs().max()) > 0  # some pairs were removed
    g = torch.randn_like(a)
    gp, gu = op_bwd(g, pos, species, uiso, *cut)
    rp, ru = ref_grads(g, pos, species, uiso, *cut)
    assert rel_err(gp, rp) < 1e-10 and rel_err(gu, ru) < 1e-10


def test_one_atom_zero_atoms_and_empty_batch():
    for b, n in [(2, 1), (3, 0), (0, 5), (0, 0)]:
        pos = torch.rand(b, n, 3, dtype=torch.float64)
        species = torch.zeros(b, n, dtype=torch.long)
        uiso = torch.full((b, n), 0.005, dtype=torch.float64)
        out = op(pos, species, uiso, *JEONG)
        assert out.shape == (b, 4, JEONG[2]) and float(out.abs().sum()) == 0.0
        gp, gu = op_bwd(torch.ones(b, 4, JEONG[2], dtype=torch.float64), pos, species, uiso, *JEONG)
        assert gp.shape == (b, n, 3) and gu.shape == (b, n)
        assert float(gp.abs().sum()) == 0.0 and float(gu.abs().sum()) == 0.0


def test_two_atoms_closed_form():
    r, u, tau0, h = 2.5, 0.004, 0.05, 0.05
    pos = torch.tensor([[[0.0, 0.0, 0.0], [r, 0.0, 0.0]]], dtype=torch.float64)
    species = torch.tensor([[0, 0]])
    uiso = torch.full((1, 2), u, dtype=torch.float64)
    out = op(pos, species, uiso, 1, h, 100, tau0, 5.5, 10.0, 0.0, 0.0, 0.0)[0, 0]
    s = math.sqrt(tau0**2 + 2 * u)
    rm = h * torch.arange(100, dtype=torch.float64)
    expect = torch.exp(-((rm - r) ** 2) / (2 * s * s)) / (math.sqrt(2 * math.pi) * s * r)
    expect[(rm - r).abs() > 5.5 * s] = 0
    assert rel_err(out, expect) < 1e-13
    assert int((out != 0).sum()) == int((expect != 0).sum())


def test_coincident_atoms_are_skipped_with_zero_gradient():
    pos = torch.tensor([[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [2.4, 0.3, 0.1]]], dtype=torch.float64)
    species = torch.tensor([[0, 0, 0]])
    uiso = torch.tensor([[0.004, 0.005, 0.006]], dtype=torch.float64)
    args = PLAIN
    out = op(pos, species, uiso, *args)
    assert torch.isfinite(out).all()
    assert rel_err(out, reference.gaussian_pair_grid(pos, species, uiso, *args)) < 1e-12
    g = torch.randn_like(out)
    gp, gu = op_bwd(g, pos, species, uiso, *args)
    assert torch.isfinite(gp).all() and torch.isfinite(gu).all()
    # Atom 0's gradient comes from the pair (0, 2) alone: the coincident pair (0, 1) adds nothing.
    gp02, gu02 = op_bwd(g, pos[:, [0, 2]], species[:, [0, 2]], uiso[:, [0, 2]], *args)
    assert torch.allclose(gp[0, 0], gp02[0, 0], rtol=1e-13, atol=0)
    assert torch.allclose(gu[0, 0], gu02[0, 0], rtol=1e-13, atol=0)
    rp, ru = ref_grads(g, pos, species, uiso, *args)
    assert rel_err(gp, rp) < 1e-10 and rel_err(gu, ru) < 1e-10
    # Two coincident atoms only: nothing at all.
    out2 = op(pos[:, :2], species[:, :2], uiso[:, :2], *args)
    assert float(out2.abs().sum()) == 0.0


def test_padding_equals_unpadded():
    pos, species, uiso = cluster(1, 9, n_species=2, seed=5)
    args = JEONG
    slots = [0, 2, 3, 5, 6, 9, 10, 11, 12]  # real atoms go here in a 13-slot padded cluster
    n = 13
    ppos = pos[0, 0].repeat(1, n, 1).clone()  # padding slots sit on top of atom 0: must be ignored anyway
    pspec = torch.full((1, n), -1, dtype=torch.long)
    puiso = torch.full((1, n), 0.1, dtype=torch.float64)
    ppos[0, slots], pspec[0, slots], puiso[0, slots] = pos[0], species[0], uiso[0]
    a = op(pos, species, uiso, *args)
    b = op(ppos, pspec, puiso, *args)
    assert rel_err(b, a) < 1e-14
    g = torch.randn_like(a)
    gp, gu = op_bwd(g, pos, species, uiso, *args)
    pgp, pgu = op_bwd(g, ppos, pspec, puiso, *args)
    assert rel_err(pgp[0, slots], gp[0]) < 1e-13 and rel_err(pgu[0, slots], gu[0]) < 1e-13
    pad = [k for k in range(n) if k not in slots]
    assert float(pgp[0, pad].abs().sum()) == 0.0 and float(pgu[0, pad].abs().sum()) == 0.0


def test_non_contiguous_inputs():
    pos, species, uiso = cluster(3, 10, n_species=2, seed=6)
    args = JEONG
    pos_nc = pos.transpose(1, 2).contiguous().transpose(1, 2)
    species_nc = torch.stack([species, -torch.ones_like(species)], -1).reshape(3, 20)[:, ::2]
    uiso_nc = torch.stack([uiso, uiso], -1).reshape(3, 20)[:, ::2]
    assert not (pos_nc.is_contiguous() or species_nc.is_contiguous() or uiso_nc.is_contiguous())
    a = op(pos, species, uiso, *args)
    assert torch.equal(op(pos_nc, species_nc, uiso_nc, *args), a)
    g = torch.randn(3, 1, args[2], dtype=torch.float64).expand(3, 4, args[2])  # stride 0
    gp, gu = op_bwd(g.contiguous(), pos, species, uiso, *args)
    gp2, gu2 = op_bwd(g, pos_nc, species_nc, uiso_nc, *args)
    assert torch.equal(gp, gp2) and torch.equal(gu, gu2)


def test_large_single_cluster_atom_parallel_path():
    """600 atoms, B = 1: the atom-parallel path (thread-local grids) when torch has 2+ threads."""
    with at_least_two_threads():
        pos, species, g = lattice_cluster(600, seed=7)
        uiso = 0.003 + 0.01 * torch.rand(1, 600, generator=g, dtype=torch.float64)
        args = (2, 0.2, 30, 0.05, 5.5, 100.0, 0.2, 0.1, 0.01)  # few bins: the reference stays small
        out = op(pos, species, uiso, *args)
        ref = reference.gaussian_pair_grid(pos, species, uiso, *args)
        assert ref.abs().max() > 0 and rel_err(out, ref) < 1e-12
        # The batch-parallel path (B = 4) gives the same per cluster.
        out4 = op(pos.expand(4, -1, -1), species.expand(4, -1), uiso.expand(4, -1), *args)
        assert rel_err(out4[3], out[0]) < 1e-13
        g = torch.randn_like(out)
        gp, gu = op_bwd(g, pos, species, uiso, *args)
        rp, ru = ref_grads(g, pos, species, uiso, *args)
        assert rel_err(gp, rp) < 1e-10 and rel_err(gu, ru) < 1e-10
        out32 = op(pos.float(), species, uiso.float(), *args)
        assert rel_err(out32, ref) < 1e-5


def test_gradcheck():
    pos, species, uiso = cluster(2, 5, n_species=2, box=5.0, seed=8)
    args = (2, 0.1, 90, 0.05, 8.0, 100.0, 0.3, 0.5, 0.02)  # truncate 8: window edges negligible
    pos.requires_grad_()
    uiso.requires_grad_()
    f = lambda p, u: op(p, species, u, *args)  # noqa: E731
    assert torch.autograd.gradcheck(f, (pos, uiso), eps=1e-6, atol=1e-6, rtol=1e-5, fast_mode=True)
    # Full Jacobian on one small cluster, one species pair slot.
    p1, s1, u1 = pos[:1].detach().clone().requires_grad_(), species[:1], uiso[:1].detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda p, u: op(p, s1, u, *args)[:, 1], (p1, u1), eps=1e-6, atol=1e-6,
                                    rtol=1e-5)


def test_backward_matches_autograd_through_reference():
    pos, species, uiso = cluster(3, 12, n_species=2, seed=9)
    for args in ((2,) + PLAIN[1:], JEONG):
        g = torch.randn(3, 4, args[2], dtype=torch.float64)
        gp, gu = op_bwd(g, pos, species, uiso, *args)
        rp, ru = ref_grads(g, pos, species, uiso, *args)
        assert rel_err(gp, rp) < 1e-10 and rel_err(gu, ru) < 1e-10
        gp32, gu32 = op_bwd(g.float(), pos.float(), species, uiso.float(), *args)
        assert gp32.dtype == torch.float32
        assert rel_err(gp32, rp) < 1e-4 and rel_err(gu32, ru) < 1e-4
    # Through autograd of the public function.
    p = pos.clone().requires_grad_()
    u = uiso.clone().requires_grad_()
    out = _gridding.gaussian_pair_grid(p, species, u, *JEONG)
    (out * g).sum().backward()
    rp, ru = ref_grads(g, pos, species, uiso, *JEONG)
    assert rel_err(p.grad, rp) < 1e-10 and rel_err(u.grad, ru) < 1e-10


def test_opcheck():
    pos, species, uiso = cluster(2, 6, n_species=2, seed=10)
    args = (2, 0.1, 120, 0.05, 5.5, 100.0, 0.3, 0.5, 0.02)
    pos.requires_grad_()
    uiso.requires_grad_()
    torch.library.opcheck(torch.ops.pdfsolve.gaussian_pair_grid.default, (pos, species, uiso, *args))
    g = torch.randn(2, 4, args[2], dtype=torch.float64)
    torch.library.opcheck(torch.ops.pdfsolve.gaussian_pair_grid_backward.default,
                          (g, pos.detach(), species, uiso.detach(), *args))


def test_argument_checks_name_the_argument():
    pos, species, uiso = cluster(1, 4, n_species=2)
    with pytest.raises(RuntimeError, match="species"):
        op(pos, species + 5, uiso, *JEONG)
    with pytest.raises(RuntimeError, match="uiso"):
        op(pos, species, uiso.float(), *JEONG)
    with pytest.raises(RuntimeError, match="pos"):
        op(pos[..., :2], species, uiso, *JEONG)
    with pytest.raises(RuntimeError, match="tau0"):
        op(pos, species, uiso, 2, 0.05, 300, 0.0, 5.5, 100.0, 0.0, 0.0, 0.0)
    with pytest.raises(RuntimeError, match="bin_width"):
        op(pos, species, uiso, 2, -0.05, 300, 0.05, 5.5, 100.0, 0.0, 0.0, 0.0)
    with pytest.raises(RuntimeError, match="grad"):
        op_bwd(torch.zeros(1, 3, 300, dtype=torch.float64), pos, species, uiso, *JEONG)


def test_sine_transform_matches_direct_debye_sum():
    """Au55 icosahedron: the grid's sine transform reproduces the Debye sum to 1e-7 of its maximum."""
    ase_cluster = pytest.importorskip("ase.cluster")
    atoms = ase_cluster.Icosahedron("Au", 3)
    assert len(atoms) == 55
    xyz = torch.tensor(atoms.get_positions(), dtype=torch.float64)[None]
    species = torch.zeros(1, 55, dtype=torch.long)
    u = 0.0038
    uiso = torch.full((1, 55), u, dtype=torch.float64)
    h, tau0, rmax = 0.05, 0.05, 31.95
    nbins = int(round(rmax / h)) + 1
    grid = op(xyz, species, uiso, 1, h, nbins, tau0, 5.5, 1e9, 0.0, 0.0, 0.0)[0, 0]
    q = torch.arange(255, dtype=torch.float64) * math.pi / rmax
    rm = h * torch.arange(nbins, dtype=torch.float64)
    fast = h * (torch.sin(q[:, None] * rm[None, :]) @ grid) * torch.exp(tau0**2 * q**2 / 2)
    d = torch.pdist(xyz[0])
    direct = (torch.exp(-u * q[:, None] ** 2) * torch.sin(q[:, None] * d) / d).sum(1)
    assert float((fast - direct).abs().max() / direct.abs().max()) < 1e-7
    assert rel_err(direct, reference.debye_partials(xyz, species, uiso, 1, 0.0, math.pi / rmax, 255, 1e9)[0, 0]) \
        < 1e-12


def test_public_function_falls_back_to_reference(monkeypatch):
    pos, species, uiso = cluster(1, 6, n_species=2)
    compiled = _gridding.gaussian_pair_grid(pos, species, uiso, *JEONG)
    calls = []

    def spy(*a, **k):
        calls.append(1)
        return reference_fn(*a, **k)

    reference_fn = reference.gaussian_pair_grid
    monkeypatch.setattr(reference, "gaussian_pair_grid", spy)
    monkeypatch.setenv("PDFSOLVE_FORCE_REFERENCE", "1")
    monkeypatch.setattr(_registry, "_warned", set())  # the warn-once state stays this test's own
    with pytest.warns(RuntimeWarning, match="PDFSOLVE_FORCE_REFERENCE"):
        fallback = _gridding.gaussian_pair_grid(pos, species, uiso, *JEONG)
    assert calls and rel_err(fallback, compiled) < 1e-12


@pytest.mark.cuda
def test_cuda_matches_reference():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    if not has_kernel("gaussian_pair_grid", "cuda"):
        pytest.skip("pdfsolve._C was built without CUDA kernels")
    for n, b, args in [(14, 3, JEONG), (14, 3, PLAIN), (300, 1, (2, 0.1, 80, 0.05, 5.5, 100.0, 0.2, 0.1, 0.01))]:
        nsp = args[0]
        pos, species, uiso = cluster(b, n, n_species=nsp, box=8.0 if n < 100 else 18.0, seed=11,
                                     min_dist=1.8 if n < 100 else 1.4)
        species[0, 1] = -1
        ref = reference.gaussian_pair_grid(pos, species, uiso, *args)
        g = torch.randn_like(ref)
        rp, ru = ref_grads(g, pos, species, uiso, *args)
        for dtype, tol, gtol in [(torch.float64, 1e-11, 1e-9), (torch.float32, 1e-5, 1e-4)]:
            dev = [t.cuda() for t in (pos.to(dtype), species, uiso.to(dtype))]
            out = op(*dev, *args)
            assert out.is_cuda and out.dtype == dtype
            assert rel_err(out.cpu(), ref) < tol
            gp, gu = op_bwd(g.to(dtype).cuda(), *dev, *args)
            assert rel_err(gp.cpu(), rp) < gtol and rel_err(gu.cpu(), ru) < gtol
    # Many clusters (one block per cluster), then a grid too big for shared memory (global atomics).
    for (b, n), args in [((64, 10), JEONG), ((4, 6), (2, 0.001, 20000, 0.05, 5.5, 100.0, 0.3, 0.5, 0.02))]:
        pos, species, uiso = cluster(b, n, n_species=2, seed=12)
        ref = reference.gaussian_pair_grid(pos, species, uiso, *args)
        out = op(pos.cuda(), species.cuda(), uiso.cuda(), *args)
        assert rel_err(out.cpu(), ref) < 1e-11
