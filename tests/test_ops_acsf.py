"""pdfsolve::acsf: compiled CPU (and CUDA) kernels against the float64 plain-torch reference and independent sums."""
import itertools
import math

import numpy as np
import pytest
import torch

from pdfsolve.ops import _acsf, reference_acsf
from pdfsolve.ops._registry import extension_available, has_kernel
from _ops_helpers import rel_err

pytestmark = pytest.mark.skipif(not (extension_available() and has_kernel("acsf", "cpu")),
                                reason="compiled pdfsolve._C with a CPU acsf kernel is not available")

RCUT = 6.0
RADIAL = torch.tensor([[0.05, 0.0], [0.5, 2.0], [1.2, 3.5]], dtype=torch.float64)
# zeta 1, 2 (integer fast path), 2.5 (exp/log path), 16; both lambdas; two etas (one shared)
ANGULAR = torch.tensor([[0.05, 1.0, 1.0], [0.2, 2.0, -1.0], [0.05, 2.5, 1.0], [0.2, 16.0, -1.0]],
                       dtype=torch.float64)


@pytest.fixture(autouse=True, scope="module")
def _register():
    assert _acsf.register()


def op(pos, species, S, radial=RADIAL, angular=ANGULAR, rcut=RCUT):
    return torch.ops.pdfsolve.acsf(pos, species, S, radial, angular, rcut)


def ref(pos, species, S, radial=RADIAL, angular=ANGULAR, rcut=RCUT):
    return reference_acsf.acsf(pos.double(), species, S, radial, angular, rcut)


def ref_grad(grad, pos, species, S, radial=RADIAL, angular=ANGULAR, rcut=RCUT):
    p = pos.detach().double().clone().requires_grad_()
    (gp,) = torch.autograd.grad(ref(p, species, S, radial, angular, rcut), p, grad.double())
    return gp


def clusters(b, n, S, seed=0, box=6.0, pad=True):
    g = torch.Generator().manual_seed(seed)
    pos = torch.rand(b, n, 3, generator=g, dtype=torch.float64) * box
    species = torch.randint(0, S, (b, n), generator=g)
    if pad and n > 2:
        species[0, -2:] = -1
        pos[0, -2:] = pos[0, 0]  # padding on top of a real atom must not matter
    return pos, species


def check_both(pos, species, S, tol64=1e-12, tol32=2e-5, **kw):
    expected = ref(pos, species, S, **kw)
    assert expected.abs().max() > 0
    g = torch.randn(expected.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    g_ref = ref_grad(g, pos, species, S, **kw)
    for dtype, tol in ((torch.float64, tol64), (torch.float32, tol32)):
        out = op(pos.to(dtype), species, S, **kw)
        assert out.dtype == dtype and out.shape == expected.shape
        assert rel_err(out, expected) < tol
        gp = torch.ops.pdfsolve.acsf_backward(g.to(dtype), pos.to(dtype), species, S,
                                              kw.get("radial", RADIAL), kw.get("angular", ANGULAR),
                                              kw.get("rcut", RCUT))
        assert rel_err(gp, g_ref) < tol


@pytest.mark.parametrize("S", [1, 2, 3])
def test_matches_reference_padded_multi_species(S):
    pos, species = clusters(4, 11, S, seed=S)
    check_both(pos, species, S)
    out = op(pos, species, S)
    assert float(out[0, -2:].abs().max()) == 0.0  # padding rows


def test_published_parameters_match_reference():
    from pdfsolve.geometry import ACSFParameters
    p = ACSFParameters.published()
    pos, species = clusters(2, 12, 1, seed=5, box=8.0)
    check_both(pos, species, 1, radial=p.radial, angular=p.angular, rcut=p.rcut)


def test_empty_batch_one_atom_and_zero_atoms():
    for b, n in [(0, 5), (2, 1), (3, 0)]:
        pos = torch.rand(b, n, 3, dtype=torch.float64)
        species = torch.zeros(b, n, dtype=torch.long)
        out = op(pos, species, 2)
        assert out.shape == (b, n, reference_acsf.n_features(2, 3, 4)) and float(out.abs().sum()) == 0.0
        gp = torch.ops.pdfsolve.acsf_backward(torch.ones_like(out), pos, species, 2, RADIAL, ANGULAR, RCUT)
        assert gp.shape == pos.shape and float(gp.abs().sum()) == 0.0


def test_coincident_and_distant_atoms():
    pos = torch.tensor([[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [2.1, 0.3, 0.0], [0.4, 1.9, 0.5],
                         [30.0, 0.0, 0.0], [0.0, -2.2, 0.1]]], dtype=torch.float64)
    species = torch.tensor([[0, 1, 0, 1, 0, 0]])
    out = op(pos, species, 2)
    assert torch.isfinite(out).all()
    check_both(pos, species, 2)
    # atom 4 is beyond rcut of everything: zero features; atom 1 sees the others as atom 0 does, minus atom 0
    assert float(out[0, 4].abs().max()) == 0.0
    gp = torch.ops.pdfsolve.acsf_backward(torch.ones_like(out), pos, species, 2, RADIAL, ANGULAR, RCUT)
    assert torch.isfinite(gp).all() and float(gp[0, 4].abs().max()) == 0.0


def test_non_contiguous_pos():
    pos, species = clusters(3, 9, 2, seed=7)
    pos_nc = pos.transpose(1, 2).contiguous().transpose(1, 2)
    assert not pos_nc.is_contiguous()
    assert torch.equal(op(pos_nc, species, 2), op(pos, species, 2))
    g = torch.randn(3, 9, reference_acsf.n_features(2, 3, 4), dtype=torch.float64)
    a = torch.ops.pdfsolve.acsf_backward(g, pos, species, 2, RADIAL, ANGULAR, RCUT)
    b = torch.ops.pdfsolve.acsf_backward(g.transpose(0, 1).contiguous().transpose(0, 1), pos_nc, species, 2,
                                         RADIAL, ANGULAR, RCUT)
    assert torch.equal(a, b)


def test_single_cluster_atom_parallel_backward():
    threads = torch.get_num_threads()
    torch.set_num_threads(max(2, threads))
    try:
        pos, species = clusters(1, 40, 2, seed=8, box=9.0, pad=False)
        check_both(pos, species, 2)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("n,pad", [(4, False), (8, True), (12, False)])
def test_gradcheck(n, pad):
    pos, species = clusters(2, n, 2, seed=n, box=4.0, pad=pad)
    pos[1, 1] = pos[1, 0] + 0.25  # close pair (0.25 A along each axis)
    pos[1, 2] = pos[1, 0] + torch.tensor([20.0, 0.0, 0.0], dtype=torch.float64)  # beyond rcut
    p = pos.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda x: _acsf.acsf(x, species, 2, RADIAL, ANGULAR, RCUT), (p,),
                                    eps=1e-6, atol=1e-6, rtol=1e-5)


def test_opcheck():
    pos, species = clusters(2, 6, 2, seed=9)
    torch.library.opcheck(torch.ops.pdfsolve.acsf.default, (pos.clone().requires_grad_(), species, 2, RADIAL,
                                                             ANGULAR, RCUT))


def test_invalid_parameters_raise():
    pos, species = clusters(1, 4, 1, seed=10)
    bad = [(RADIAL, torch.tensor([[0.1, 0.5, 1.0]], dtype=torch.float64), RCUT, "zeta"),
           (RADIAL, torch.tensor([[0.1, 2.0, 0.5]], dtype=torch.float64), RCUT, "lambda"),
           (torch.tensor([[-0.1, 0.0]], dtype=torch.float64), ANGULAR, RCUT, "eta"),
           (RADIAL, ANGULAR, 0.0, "rcut"),
           (torch.tensor([[math.nan, 0.0]], dtype=torch.float64), ANGULAR, RCUT, "eta"),
           (RADIAL.float(), ANGULAR, RCUT, "float64")]
    for radial, angular, rcut, word in bad:
        with pytest.raises(RuntimeError, match=word):
            op(pos, species, 1, radial, angular, rcut)
    with pytest.raises(RuntimeError, match="species"):
        op(pos, species + 1, 1)


# ---- independent values -------------------------------------------------------------------------------------

def _fc(r, rcut):
    return 0.5 * (math.cos(math.pi * r / rcut) + 1.0) if r < rcut else 0.0


def test_water_like_closed_form():
    """O at the origin, two H at 0.96 A with an angle of 104.5 deg; S = 2 (O = 0, H = 1)."""
    r0, theta = 0.96, math.radians(104.5)
    h1 = [r0, 0.0, 0.0]
    h2 = [r0 * math.cos(theta), r0 * math.sin(theta), 0.0]
    pos = torch.tensor([[[0.0, 0.0, 0.0], h1, h2]], dtype=torch.float64)
    species = torch.tensor([[0, 1, 1]])
    out = op(pos, species, 2)[0]
    d_hh = 2 * r0 * math.sin(theta / 2)
    f_oh, f_hh = _fc(r0, RCUT), _fc(d_hh, RCUT)
    n_r, n_a = RADIAL.shape[0], ANGULAR.shape[0]
    expect = torch.zeros(3, 2 * n_r + 3 * n_a, dtype=torch.float64)
    for q, (eta, rs) in enumerate(RADIAL.tolist()):
        g = lambda r, f: math.exp(-eta * (r - rs) ** 2) * f
        expect[0, 1 * n_r + q] = 2 * g(r0, f_oh)              # O sees two H
        expect[1, 0 * n_r + q] = g(r0, f_oh)                  # H sees O ...
        expect[1, 1 * n_r + q] = g(d_hh, f_hh)                # ... and the other H
        expect[2] = expect[1]
    angle_h = (math.pi - theta) / 2  # angle at each H between O and the other H
    for a, (eta, zeta, lam) in enumerate(ANGULAR.tolist()):
        c = 2 ** (1 - zeta)
        # O: one pair (H, H), slot p(1, 1) = 2
        expect[0, 2 * n_r + 2 * n_a + a] = c * (1 + lam * math.cos(theta)) ** zeta * math.exp(-eta * 2 * r0 ** 2) * f_oh ** 2
        # H: one pair (O, H), slot p(0, 1) = 1
        v = c * (1 + lam * math.cos(angle_h)) ** zeta * math.exp(-eta * (r0 ** 2 + d_hh ** 2)) * f_oh * f_hh
        expect[1, 2 * n_r + 1 * n_a + a] = v
        expect[2, 2 * n_r + 1 * n_a + a] = v
    assert rel_err(out, expect) < 1e-13


def _numpy_triple_loop(pos, radial, angular, rcut):
    """One species: G2 and G5 by explicit loops over j and over j < k."""
    n = len(pos)
    out = np.zeros((n, len(radial) + len(angular)))
    for i in range(n):
        for j in range(n):
            rij = np.linalg.norm(pos[j] - pos[i])
            if j == i or rij >= rcut:
                continue
            for q, (eta, rs) in enumerate(radial):
                out[i, q] += np.exp(-eta * (rij - rs) ** 2) * _fc(rij, rcut)
        for j, k in itertools.combinations(range(n), 2):
            if i in (j, k):
                continue
            vj, vk = pos[j] - pos[i], pos[k] - pos[i]
            rj, rk = np.linalg.norm(vj), np.linalg.norm(vk)
            if rj >= rcut or rk >= rcut:
                continue
            cos = vj @ vk / (rj * rk)
            for a, (eta, zeta, lam) in enumerate(angular):
                out[i, len(radial) + a] += (2 ** (1 - zeta) * (1 + lam * cos) ** zeta * np.exp(-eta * (rj ** 2 + rk ** 2))
                                            * _fc(rj, rcut) * _fc(rk, rcut))
    return out


def test_icosahedron_against_numpy_triple_loop():
    from ase.cluster import Icosahedron
    pos = Icosahedron("Pt", 2).positions  # 13 atoms
    assert len(pos) == 13
    expect = _numpy_triple_loop(pos, RADIAL.numpy(), ANGULAR.numpy(), RCUT)
    out = op(torch.tensor(pos)[None], torch.zeros(1, 13, dtype=torch.long), 1)[0]
    assert rel_err(out, torch.tensor(expect)) < 1e-12


def test_dscribe_acsf():
    """dscribe sums G5 over k < j once with 2 (0.5 (1 + lambda cos))^zeta = 2^(1-zeta) (1 + lambda cos)^zeta: our
    convention. Its layout per atom: for each species s: [G1, G2 rows]; then per species pair (lower-triangle
    index max(s,t)(max(s,t)+1)/2 + min(s,t)) the G5 rows."""
    ds = pytest.importorskip("dscribe.descriptors")
    from ase import Atoms
    pos, species = clusters(1, 9, 3, seed=11, box=5.0, pad=False)
    numbers = np.array([1, 6, 8])[species[0].numpy()]
    desc = ds.ACSF(species=[1, 6, 8], r_cut=RCUT, g2_params=RADIAL.numpy(), g5_params=ANGULAR.numpy()[:, [0, 1, 2]])
    theirs = torch.tensor(desc.create(Atoms(numbers=numbers, positions=pos[0].numpy())))
    S, n_r, n_a = 3, RADIAL.shape[0], ANGULAR.shape[0]
    ours = op(pos, species, S)[0]
    cols = []
    for s in range(S):
        cols += [s * (1 + n_r) + 1 + q for q in range(n_r)]
    slots = {}
    for s in range(S):
        for t in range(s, S):
            slots[(s, t)] = t * (t + 1) // 2 + s
    for p, (s, t) in enumerate(itertools.combinations_with_replacement(range(S), 2)):
        cols += [S * (1 + n_r) + slots[(s, t)] * n_a + a for a in range(n_a)]
    assert rel_err(ours, theirs[:, cols]) < 1e-12


@pytest.mark.cuda
@pytest.mark.skipif(not (torch.cuda.is_available() and has_kernel("acsf", "cuda")),
                    reason="needs a CUDA device and a CUDA build of pdfsolve._C")
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
def test_cuda_matches_reference(dtype, tol):
    pos, species = clusters(3, 14, 2, seed=12)
    pos[1, 1] = pos[1, 0]
    dev = torch.device("cuda")
    out = op(pos.to(dev, dtype), species.to(dev), 2)
    expected = ref(pos, species, 2)
    assert rel_err(out.cpu(), expected) < tol
    g = torch.randn(expected.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    gp = torch.ops.pdfsolve.acsf_backward(g.to(dev, dtype), pos.to(dev, dtype), species.to(dev), 2, RADIAL,
                                          ANGULAR, RCUT)
    assert rel_err(gp.cpu(), ref_grad(g, pos, species, 2)) < tol
