"""fixed_pair_grid: compiled CPU (and CUDA) kernels against the plain-torch reference (gaussian_pair_grid, U = 0)."""
import math
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from pdfsolve.ops import _fixed_grid, _registry, reference, reference_fixed
from pdfsolve.ops._registry import extension_available, has_kernel
from _ops_helpers import at_least_two_threads, lattice_cluster, rel_err

ROOT = Path(__file__).resolve().parents[1]
needs_ext = pytest.mark.skipif(not (extension_available() and has_kernel("fixed_pair_grid", "cpu")),
                               reason="compiled pdfsolve._C with a CPU fixed_pair_grid kernel is not available")

# n_species, bin_width, nbins, tau0, truncate, rcut
ARGS = (2, 0.05, 300, 0.05, 5.5, 100.0)
CUT = (2, 0.05, 300, 0.05, 5.5, 6.0)  # rcut removes pairs


@pytest.fixture(autouse=True, scope="module")
def _register():
    if extension_available() and has_kernel("fixed_pair_grid", "cpu"):
        assert _fixed_grid.register()


def op(pos, species, *args):
    return torch.ops.pdfsolve.fixed_pair_grid(pos, species, *args)


def op_bwd(grad, pos, species, *args):
    return torch.ops.pdfsolve.fixed_pair_grid_backward(grad, pos, species, *args)


def ref(pos, species, *args):
    return reference_fixed.fixed_pair_grid(pos.double(), species, *args)


def batch(b, n, n_species=2, box=8.0, seed=0, pad=True):
    """Random positions in a cube with trailing padding in some clusters."""
    g = torch.Generator().manual_seed(seed)
    pos = torch.rand(b, n, 3, generator=g, dtype=torch.float64) * box
    species = torch.randint(0, n_species, (b, n), generator=g)
    if pad:
        for k in range(b):
            npad = int(torch.randint(0, n // 3 + 1, (1,), generator=g))
            if npad:
                species[k, n - npad:] = -1
                pos[k, n - npad:] = 0.0
    return pos, species


def ref_grad(grad, pos, species, *args):
    p = pos.detach().double().clone().requires_grad_()
    (gp,) = torch.autograd.grad(ref(p, species, *args), p, grad.double())
    return gp


def test_reference_is_gaussian_pair_grid_with_zero_uiso():
    pos, species = batch(2, 9, seed=1)
    u = torch.zeros(2, 9, dtype=torch.float64)
    assert torch.equal(reference_fixed.fixed_pair_grid(pos, species, *ARGS),
                       reference.gaussian_pair_grid(pos, species, u, *ARGS, 0.0, 0.0, 0.0))


@needs_ext
@pytest.mark.parametrize("args", [ARGS, CUT], ids=["all", "rcut"])
def test_forward_matches_reference(args):
    pos, species = batch(6, 40, seed=2)
    expect = ref(pos, species, *args)
    out = op(pos, species, *args)
    assert out.shape == expect.shape == (6, 4, args[2]) and out.dtype == torch.float64 and out.is_contiguous()
    assert expect.abs().max() > 0
    assert rel_err(out, expect) < 1e-6
    assert float(out[:, 2].abs().max()) == 0.0  # slot (1, 0) stays empty
    p32 = pos.float()
    out32 = op(p32, species, *args)
    assert out32.dtype == torch.float32
    assert rel_err(out32, ref(p32, species, *args)) < 1e-5


@needs_ext
def test_rcut_removes_pairs():
    pos, species = batch(3, 30, seed=3)
    assert float((op(pos, species, *ARGS) - op(pos, species, *CUT)).abs().max()) > 0


@needs_ext
@pytest.mark.parametrize("tau0,truncate,h", [(0.05, 5.5, 0.05), (0.02, 4.0, 0.05), (0.11, 3.0, 0.03),
                                             (0.05, 5.0, 0.05), (0.4, 6.0, 0.05)])
def test_other_widths_and_windows(tau0, truncate, h):
    """Narrow (tau0 < h), wide (48+ taps, run-time width) and integer truncate*tau0/h windows."""
    pos, species = batch(3, 20, seed=4)
    args = (2, h, int(12.0 / h), tau0, truncate, 100.0)
    expect = ref(pos, species, *args)
    assert rel_err(op(pos, species, *args), expect) < 1e-6
    assert rel_err(op(pos.float(), species, *args), ref(pos.float(), species, *args)) < 1e-5


@needs_ext
def test_two_atoms_closed_form_and_window():
    r, h, tau0 = 2.5173, 0.05, 0.05
    pos = torch.tensor([[[0.0, 0.0, 0.0], [r, 0.0, 0.0]]], dtype=torch.float64)
    out = op(pos, torch.tensor([[0, 0]]), 1, h, 100, tau0, 5.5, 10.0)[0, 0]
    rm = h * torch.arange(100, dtype=torch.float64)
    expect = torch.exp(-((rm - r) ** 2) / (2 * tau0 * tau0)) / (math.sqrt(2 * math.pi) * tau0 * r)
    expect[(rm - r).abs() > 5.5 * tau0] = 0
    assert rel_err(out, expect) < 1e-8
    assert torch.equal(out != 0, expect != 0)  # the window is exact


@needs_ext
def test_edges_near_zero_and_last_bin():
    """Pairs whose windows are clipped at r = 0 and at the last bin (and beyond it: dropped)."""
    pos = torch.tensor([[[0.0, 0, 0], [0.08, 0, 0], [0.0, 0.1, 0], [4.96, 0, 0], [5.2, 0, 0], [9.0, 0, 0]]],
                       dtype=torch.float64)
    species = torch.tensor([[0, 1, 0, 1, 0, 1]])
    args = (2, 0.05, 100, 0.05, 5.5, 100.0)  # last bin at 4.95 A
    expect = ref(pos, species, *args)
    assert rel_err(op(pos, species, *args), expect) < 1e-6
    g = torch.randn_like(expect)
    assert rel_err(op_bwd(g, pos, species, *args), ref_grad(g, pos, species, *args)) < 1e-5


@needs_ext
def test_empty_and_degenerate_shapes():
    for b, n in [(0, 5), (2, 0), (2, 1)]:
        pos = torch.randn(b, n, 3, dtype=torch.float64)
        species = torch.zeros(b, n, dtype=torch.long)
        out = op(pos, species, *ARGS)
        assert out.shape == (b, 4, ARGS[2]) and float(out.abs().sum()) == 0.0
        gp = op_bwd(torch.ones(b, 4, ARGS[2], dtype=torch.float64), pos, species, *ARGS)
        assert gp.shape == (b, n, 3) and float(gp.abs().sum()) == 0.0
    out = op(torch.randn(2, 3, 3, dtype=torch.float64), torch.full((2, 3), -1), *ARGS)  # all padding
    assert float(out.abs().sum()) == 0.0


@needs_ext
def test_coincident_atoms_are_skipped_with_zero_gradient():
    pos = torch.tensor([[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [2.4, 0.3, 0.1]]], dtype=torch.float64)
    species = torch.tensor([[0, 0, 0]])
    args = (1, 0.05, 100, 0.05, 5.5, 100.0)
    out = op(pos, species, *args)
    assert torch.isfinite(out).all() and rel_err(out, ref(pos, species, *args)) < 1e-6
    g = torch.randn_like(out)
    gp = op_bwd(g, pos, species, *args)
    assert torch.isfinite(gp).all()
    gp02 = op_bwd(g, pos[:, [0, 2]], species[:, [0, 2]], *args)
    assert torch.allclose(gp[0, 0], gp02[0, 0], rtol=1e-12, atol=0)
    assert float(op(pos[:, :2], species[:, :2], *args).abs().sum()) == 0.0


@needs_ext
def test_padding_equals_unpadded():
    pos, species = batch(1, 9, seed=5, pad=False)
    slots = [0, 2, 3, 5, 6, 9, 10, 11, 12]
    n = 13
    ppos = pos[0, 0].repeat(1, n, 1).clone()  # padding slots sit on atom 0: must be ignored anyway
    pspec = torch.full((1, n), -1, dtype=torch.long)
    ppos[0, slots], pspec[0, slots] = pos[0], species[0]
    a = op(pos, species, *ARGS)
    assert torch.equal(op(ppos, pspec, *ARGS), a)
    g = torch.randn_like(a)
    gp, pgp = op_bwd(g, pos, species, *ARGS), op_bwd(g, ppos, pspec, *ARGS)
    assert rel_err(pgp[0, slots], gp[0]) < 1e-13
    assert float(pgp[0, [k for k in range(n) if k not in slots]].abs().sum()) == 0.0


@needs_ext
def test_non_contiguous_inputs():
    pos, species = batch(3, 10, seed=6)
    pos_nc = pos.transpose(1, 2).contiguous().transpose(1, 2)
    species_nc = torch.stack([species, -torch.ones_like(species)], -1).reshape(3, 20)[:, ::2]
    assert not (pos_nc.is_contiguous() or species_nc.is_contiguous())
    a = op(pos, species, *ARGS)
    assert torch.equal(op(pos_nc, species_nc, *ARGS), a)
    g = torch.randn(3, 1, ARGS[2], dtype=torch.float64).expand(3, 4, ARGS[2])  # stride 0
    assert torch.equal(op_bwd(g.contiguous(), pos, species, *ARGS), op_bwd(g, pos_nc, species_nc, *ARGS))


@needs_ext
def test_large_single_cluster_atom_parallel_path():
    """600 atoms, B = 1: the atom-parallel path (thread-local grids) when torch has 2+ threads."""
    with at_least_two_threads():
        pos, species, _ = lattice_cluster(600, seed=7)
        args = (2, 0.05, 120, 0.05, 5.5, 100.0)  # few bins: the reference stays small
        out = op(pos, species, *args)
        expect = ref(pos, species, *args)
        assert expect.abs().max() > 0 and rel_err(out, expect) < 1e-6
        out4 = op(pos.expand(4, -1, -1), species.expand(4, -1), *args)  # batch-parallel path
        assert rel_err(out4[3], out[0]) < 1e-13
        grad = torch.randn_like(out)
        assert rel_err(op_bwd(grad, pos, species, *args), ref_grad(grad, pos, species, *args)) < 1e-5
        assert rel_err(op(pos.float(), species, *args), ref(pos.float(), species, *args)) < 1e-5


@needs_ext
def test_backward_matches_autograd_through_reference():
    pos, species = batch(4, 24, seed=9)
    for args in (ARGS, CUT):
        g = torch.randn(4, 4, args[2], dtype=torch.float64)
        expect = ref_grad(g, pos, species, *args)
        # Table-interpolated derivative (cubic Hermite, R tau0/h >= 64): ~1e-7 of the largest gradient.
        assert rel_err(op_bwd(g, pos, species, *args), expect) < 1e-6
        gp32 = op_bwd(g.float(), pos.float(), species, *args)
        assert gp32.dtype == torch.float32
        assert rel_err(gp32, ref_grad(g, pos.float(), species, *args)) < 1e-4
    p = pos.clone().requires_grad_()
    out = _fixed_grid.fixed_pair_grid(p, species, *ARGS)
    g = torch.randn_like(out)
    (out * g).sum().backward()
    assert rel_err(p.grad, ref_grad(g, pos, species, *ARGS)) < 1e-6


@needs_ext
def test_gradcheck():
    pos, species = batch(2, 5, box=5.0, seed=8, pad=False)
    args = (2, 0.05, 200, 0.05, 9.0, 100.0)  # truncate 9: window edges negligible
    pos.requires_grad_()
    f = lambda p: op(p, species, *args)  # noqa: E731
    assert torch.autograd.gradcheck(f, (pos,), eps=1e-6, atol=1e-6, rtol=1e-5, fast_mode=True)
    p1 = pos[:1].detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda p: op(p, species[:1], *args)[:, 1], (p1,), eps=1e-6, atol=1e-6,
                                    rtol=1e-5)


@needs_ext
def test_opcheck():
    pos, species = batch(2, 6, seed=10)
    pos.requires_grad_()
    torch.library.opcheck(torch.ops.pdfsolve.fixed_pair_grid.default, (pos, species, *ARGS))
    g = torch.randn(2, 4, ARGS[2], dtype=torch.float64)
    torch.library.opcheck(torch.ops.pdfsolve.fixed_pair_grid_backward.default, (g, pos.detach(), species, *ARGS))


@needs_ext
def test_argument_checks_name_the_argument():
    pos, species = batch(1, 4)
    with pytest.raises(RuntimeError, match="species"):
        op(pos, species + 5, *ARGS)
    with pytest.raises(RuntimeError, match="pos"):
        op(pos[..., :2], species, *ARGS)
    with pytest.raises(RuntimeError, match="tau0"):
        op(pos, species, 2, 0.05, 300, 0.0, 5.5, 100.0)
    with pytest.raises(RuntimeError, match="bin_width"):
        op(pos, species, 2, -0.05, 300, 0.05, 5.5, 100.0)
    with pytest.raises(RuntimeError, match="grad"):
        op_bwd(torch.zeros(1, 3, 300, dtype=torch.float64), pos, species, *ARGS)


def test_public_function_falls_back_to_reference(monkeypatch):
    pos, species = batch(1, 6)
    calls = []
    real = reference_fixed.fixed_pair_grid

    def spy(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(reference_fixed, "fixed_pair_grid", spy)
    monkeypatch.setenv("PDFSOLVE_FORCE_REFERENCE", "1")
    monkeypatch.setattr(_registry, "_warned", set())
    with pytest.warns(RuntimeWarning, match="PDFSOLVE_FORCE_REFERENCE"):
        out = _fixed_grid.fixed_pair_grid(pos, species, *ARGS)
    assert calls and rel_err(out, real(pos, species, *ARGS)) == 0.0


@pytest.mark.cuda
def test_cuda_matches_reference():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    if not has_kernel("fixed_pair_grid", "cuda"):
        pytest.skip("pdfsolve._C was built without CUDA kernels")
    for (b, n), args in [((3, 14), ARGS), ((64, 10), CUT), ((1, 300), (2, 0.1, 80, 0.05, 5.5, 100.0)),
                         ((4, 6), (2, 0.001, 20000, 0.05, 5.5, 100.0))]:
        pos, species = batch(b, n, box=8.0 if n < 100 else 18.0, seed=11)
        expect = ref(pos, species, *args)
        g = torch.randn_like(expect)
        rp = ref_grad(g, pos, species, *args)
        for dtype, tol, gtol in [(torch.float64, 1e-11, 1e-9), (torch.float32, 1e-5, 1e-4)]:
            p = pos.to(dtype)
            out = op(p.cuda(), species.cuda(), *args)
            assert out.is_cuda and out.dtype == dtype
            assert rel_err(out.cpu(), ref(p, species, *args)) < tol
            gp = op_bwd(g.to(dtype).cuda(), p.cuda(), species.cuda(), *args)
            assert rel_err(gp.cpu(), ref_grad(g, p, species, *args) if dtype == torch.float32 else rp) < gtol


def test_nvcc_compiles_cuda_kernels(tmp_path):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc not found")
    cmd = [nvcc, "-c", "-std=c++17", "-arch=sm_90", "-O3", "--use_fast_math", f"-I{ROOT / 'csrc'}",
           str(ROOT / "csrc/cuda/fixed_grid_kernels.cu"), "-o", str(tmp_path / "k.o")]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "warning" not in res.stderr.lower(), res.stderr
    assert (tmp_path / "k.o").stat().st_size > 0
