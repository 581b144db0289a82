"""The raw CUDA kernels compile with nvcc alone; on a CUDA machine the CUDA ops match the reference."""
from __future__ import annotations

import pathlib
import shutil
import subprocess

import pytest
import torch

import pdfsolve.ops as ops
from pdfsolve.ops import reference
from _ops_helpers import random_batch, rel_err

ROOT = pathlib.Path(__file__).resolve().parents[1]
CU_FILES = sorted((ROOT / "csrc" / "cuda").glob("*.cu"))
GLUE_FILES = sorted((ROOT / "csrc" / "cuda").glob("*.cpp"))
# The torch here is a CPU build: its ATen/cuda headers include CUDA library headers that the toolkit may lack. Stubs
# declaring only the handle types they name let the glue be syntax-checked without a CUDA torch.
CUDA_LIBRARY_STUBS = {
    "cublas_v2.h": "typedef struct cublasContext* cublasHandle_t;\ntypedef int cublasStatus_t;\n",
    "cublasLt.h": "typedef struct cublasLtContext* cublasLtHandle_t;\n",
    "cusparse.h": "typedef struct cusparseContext* cusparseHandle_t;\ntypedef int cusparseStatus_t;\n",
    "cusolver_common.h": "typedef int cusolverStatus_t;\n",
    "cusolverDn.h": "#include \"cusolver_common.h\"\ntypedef struct cusolverDnContext* cusolverDnHandle_t;\n",
    "c10/cuda/impl/cuda_cmake_macros.h": "",
}


def _cuda_include_dir() -> pathlib.Path | None:
    """The CUDA toolkit's include folder (holding cuda_runtime_api.h), or None."""
    import glob
    import os
    candidates = [os.environ.get("CUDA_HOME", ""), "/usr/local/cuda"] + sorted(glob.glob("/usr/local/cuda-*"))
    nvcc = shutil.which("nvcc")
    if nvcc:
        candidates.append(str(pathlib.Path(nvcc).resolve().parents[1]))
    for c in candidates:
        if c and (pathlib.Path(c) / "include" / "cuda_runtime_api.h").is_file():
            return pathlib.Path(c) / "include"
    return None


@pytest.mark.parametrize("src", CU_FILES, ids=[p.name for p in CU_FILES])
def test_cu_file_compiles_without_torch(src, tmp_path):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc is not on PATH")
    # the flags CMakeLists.txt compiles CUDA sources with
    cmd = [nvcc, "-c", "-std=c++17", "-arch=sm_90", "-O3", "--use_fast_math", f"-I{ROOT / 'csrc'}", str(src),
           "-o", str(tmp_path / "k.o")]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "k.o").stat().st_size > 0


@pytest.mark.parametrize("src", GLUE_FILES, ids=[p.name for p in GLUE_FILES])
def test_cuda_glue_passes_a_syntax_check(src, tmp_path):
    """The torch-side CUDA glue (csrc/cuda/*.cpp) against torch's headers, the CUDA runtime headers and stubs."""
    cxx = shutil.which("g++") or shutil.which("c++")
    cuda_inc = _cuda_include_dir()
    if cxx is None or cuda_inc is None:
        pytest.skip("needs a C++ compiler and the CUDA toolkit headers")
    from torch.utils.cpp_extension import include_paths
    for name, text in CUDA_LIBRARY_STUBS.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    cmd = [cxx, "-std=c++17", "-fsyntax-only", f"-I{ROOT / 'csrc'}", *[f"-I{p}" for p in include_paths()],
           f"-I{cuda_inc}", f"-I{tmp_path}", "-DPDFSOLVE_WITH_CUDA", str(src)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-4000:]


def _cuda_ops_available() -> bool:
    return (torch.cuda.is_available() and ops.extension_available()
            and ops.has_kernel("debye_partials", "cuda") and ops.has_kernel("pair_histogram", "cuda"))


cuda = pytest.mark.skipif(not _cuda_ops_available(), reason="needs a CUDA device and a CUDA build of pdfsolve._C")

S = 2
DEBYE = (0.4, 0.11, 300, 7.5, 0.35, 0.6, 0.03)


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("b,n", [(6, 40), (1, 700), (3, 1)])
def test_cuda_debye_matches_reference(dtype, tol, b, n):
    pos, sp, u = random_batch(b, n, seed=n, dtype=dtype, box=9.0 if n < 100 else 20.0)
    if n > 1:
        pos[0, 1] = pos[0, 0]  # a coincident pair
    dev = torch.device("cuda")
    out = torch.ops.pdfsolve.debye_partials(pos.to(dev), sp.to(dev), u.to(dev), S, *DEBYE)
    expected = reference.debye_partials(pos.double(), sp, u.double(), S, *DEBYE)
    assert rel_err(out.cpu(), expected) < tol
    grad = torch.randn(expected.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    gp, gu = torch.ops.pdfsolve.debye_partials_backward(grad.to(dev, dtype), pos.to(dev), sp.to(dev), u.to(dev), S,
                                                        *DEBYE)
    p = pos.double().clone().requires_grad_()
    uu = u.double().clone().requires_grad_()
    reference.debye_partials(p, sp, uu, S, *DEBYE).backward(grad)
    if n > 1:
        assert rel_err(gp.cpu(), p.grad) < tol and rel_err(gu.cpu(), uu.grad) < tol


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("bw,nb", [(0.05, 200), (0.001, 32000)])
def test_cuda_histogram_matches_reference(dtype, tol, bw, nb):
    pos, sp, _ = random_batch(5, 60, seed=3, dtype=dtype)
    dev = torch.device("cuda")
    out = torch.ops.pdfsolve.pair_histogram(pos.to(dev), sp.to(dev), S, bw, nb)
    expected = reference.pair_histogram(pos.double(), sp, S, bw, nb)
    assert rel_err(out.cpu(), expected) < tol
    grad = torch.randn(expected.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    gp = torch.ops.pdfsolve.pair_histogram_backward(grad.to(dev, dtype), pos.to(dev), sp.to(dev), S, bw, nb)
    p = pos.double().clone().requires_grad_()
    reference.pair_histogram(p, sp, S, bw, nb).backward(grad)
    assert rel_err(gp.cpu(), p.grad) < tol


@pytest.mark.cuda
@cuda
def test_cuda_opcheck():
    pos, sp, u = random_batch(2, 7, seed=12)
    dev = torch.device("cuda")
    pos, sp, u = pos.to(dev), sp.to(dev), u.to(dev)
    torch.library.opcheck(torch.ops.pdfsolve.debye_partials.default,
                          (pos.clone().requires_grad_(), sp, u.clone().requires_grad_(), S, *DEBYE))
    torch.library.opcheck(torch.ops.pdfsolve.pair_histogram.default, (pos.clone().requires_grad_(), sp, S, 0.05, 200))


def _trilateration_problems(b=12, n=30, p=9, seed=0, noise=0.01):
    """Random clusters (b, n, 3) with trailing padding in every other one, targets from the true positions with
    noise, fixed points (p, 3), a perturbed start x0 with two coincident atoms: (x0, mask, pair, to_points, points)."""
    g = torch.Generator().manual_seed(seed)
    pos = 0.5 * torch.randn(b, n, 3, generator=g, dtype=torch.float64)
    mask = torch.ones(b, n, dtype=torch.bool)
    for k in range(1, b, 2):
        mask[k, n - 1 - k % 7:] = False
    points = torch.randn(p, 3, generator=g, dtype=torch.float64)
    pair = (pos[:, :, None] - pos[:, None]).norm(dim=-1)
    e = torch.randn(pair.shape, generator=g, dtype=torch.float64)
    pair = pair + noise * (e + e.transpose(1, 2)) / 2
    to_points = (pos[:, :, None] - points[None, None]).norm(dim=-1)
    x0 = pos + 0.05 * torch.randn(pos.shape, generator=g, dtype=torch.float64)
    x0[0, 1] = x0[0, 0]
    x0[~mask] = 0.0
    return x0, mask, pair, to_points, points


cuda_trilaterate = pytest.mark.skipif(
    not (torch.cuda.is_available() and ops.has_kernel("trilaterate", "cuda")),
    reason="needs a CUDA device and a CUDA build of pdfsolve._C")


@pytest.mark.cuda
@cuda_trilaterate
def test_cuda_trilaterate_matches_cpu():
    args = _trilateration_problems()
    x0, mask = args[0], args[1]
    opts = (10, 2.2204460492503131e-09, 1e-8, 500)
    x_c, f_c, nit_c, st_c = torch.ops.pdfsolve.trilaterate(*args, *opts)
    out = torch.ops.pdfsolve.trilaterate(*(t.cuda() for t in args), *opts)
    assert all(t.is_cuda for t in out)
    x, f, nit, st = (t.cpu() for t in out)
    assert x.dtype == torch.float64 and nit.dtype == st.dtype == torch.long
    assert (st_c <= 2).all() and (st <= 2).all()  # converged on both
    assert (x - x_c).abs().max() < 1e-6
    assert ((f - f_c).abs() <= 1e-8 * (1 + f_c.abs())).all()
    assert (nit - nit_c).abs().max() <= 2
    assert torch.equal(x[~mask], x0[~mask])  # padding atoms stay fixed


@pytest.mark.cuda
@cuda_trilaterate
def test_cuda_trilaterate_statuses_dtype_and_opcheck():
    x0, mask, pair, to_points, points = _trilateration_problems(b=5, n=12, p=4, seed=1)
    # a few iterations: the same path, stopped by maxiter on both devices
    x_c, f_c, nit_c, st_c = torch.ops.pdfsolve.trilaterate(x0.float(), mask, pair, to_points, points, 5, 0.0, 0.0, 3)
    args = [t.cuda() for t in (x0.float(), mask, pair, to_points, points)]
    x, f, nit, st = (t.cpu() for t in torch.ops.pdfsolve.trilaterate(*args, 5, 0.0, 0.0, 3))
    assert x.dtype == torch.float32 and f.dtype == torch.float64
    assert (st == 3).all() and torch.equal(st, st_c) and torch.equal(nit, nit_c)
    assert (x - x_c).abs().max() < 1e-6 and rel_err(f, f_c) < 1e-10
    torch.library.opcheck(torch.ops.pdfsolve.trilaterate.default, (*args, 10, 1e-9, 1e-8, 50))


def _affinity_problems(b=12, n=30, seed=0, noise=0.01):
    """Random clusters (b, n, 3) with trailing padding in every other one, their Gaussian affinities with noise for
    per-cluster sigma, a perturbed start x0 with two coincident atoms: (x0, mask, target, sigma)."""
    g = torch.Generator().manual_seed(seed)
    pos = 2.0 * torch.randn(b, n, 3, generator=g, dtype=torch.float64)
    mask = torch.ones(b, n, dtype=torch.bool)
    for k in range(1, b, 2):
        mask[k, n - 1 - k % 7:] = False
    sigma = 2.0 + 2.0 * torch.rand(b, generator=g, dtype=torch.float64)
    d2 = ((pos[:, :, None] - pos[:, None]) ** 2).sum(-1)
    target = torch.exp(-d2 / (2 * sigma[:, None, None] ** 2))
    e = torch.randn(target.shape, generator=g, dtype=torch.float64)
    target = target + noise * (e + e.transpose(1, 2)) / 2
    x0 = pos + 0.1 * torch.randn(pos.shape, generator=g, dtype=torch.float64)
    x0[0, 1] = x0[0, 0]
    x0[~mask] = 0.0
    return x0, mask, target, sigma


def _real_distances(x, mask):
    return (x[:, :, None] - x[:, None]).norm(dim=-1) * (mask[:, :, None] & mask[:, None])


cuda_fit_affinity = pytest.mark.skipif(
    not (torch.cuda.is_available() and ops.has_kernel("fit_affinity", "cuda")),
    reason="needs a CUDA device and a CUDA build of pdfsolve._C")


@pytest.mark.cuda
@cuda_fit_affinity
def test_cuda_fit_affinity_matches_cpu():
    args = _affinity_problems()
    x0, mask = args[0], args[1]
    opts = (10, 2.2204460492503131e-09, 1e-8, 500)
    x_c, f_c, nit_c, st_c = torch.ops.pdfsolve.fit_affinity(*args, *opts)
    out = torch.ops.pdfsolve.fit_affinity(*(t.cuda() for t in args), *opts)
    assert all(t.is_cuda for t in out)
    x, f, nit, st = (t.cpu() for t in out)
    assert x.dtype == torch.float64 and nit.dtype == st.dtype == torch.long
    assert (st_c <= 2).all() and (st <= 2).all()  # converged on both
    # the affinity fixes no frame: compare the geometry tightly, the coordinates (same start, same path) loosely
    assert (_real_distances(x, mask) - _real_distances(x_c, mask)).abs().max() < 1e-5
    assert (x - x_c).abs().max() < 1e-4
    assert ((f - f_c).abs() <= 1e-8 * (1 + f_c.abs())).all()
    assert (nit - nit_c).abs().max() <= 3
    assert torch.equal(x[~mask], x0[~mask])  # padding atoms stay fixed


@pytest.mark.cuda
@cuda_fit_affinity
def test_cuda_fit_affinity_statuses_dtype_and_opcheck():
    x0, mask, target, sigma = _affinity_problems(b=5, n=12, seed=3)
    # a few iterations: the same path, stopped by maxiter on both devices
    x_c, f_c, nit_c, st_c = torch.ops.pdfsolve.fit_affinity(x0.float(), mask, target, sigma.float(), 5, 0.0, 0.0, 3)
    args = [t.cuda() for t in (x0.float(), mask, target, sigma.float())]
    x, f, nit, st = (t.cpu() for t in torch.ops.pdfsolve.fit_affinity(*args, 5, 0.0, 0.0, 3))
    assert x.dtype == torch.float32 and f.dtype == torch.float64
    assert (st == 3).all() and torch.equal(st, st_c) and torch.equal(nit, nit_c)
    assert (x - x_c).abs().max() < 1e-6 and rel_err(f, f_c) < 1e-10
    torch.library.opcheck(torch.ops.pdfsolve.fit_affinity.default, (*args, 10, 1e-9, 1e-8, 50))
    with pytest.raises(RuntimeError, match="sigma must be finite and > 0"):
        torch.ops.pdfsolve.fit_affinity(args[0], args[1], args[2], torch.zeros_like(args[3]), 5, 0.0, 0.0, 3)
