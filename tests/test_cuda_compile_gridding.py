"""The raw CUDA kernels of gaussian_pair_grid compile with nvcc alone (no torch headers, no GPU needed)."""
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CU_FILES = ["csrc/cuda/gridding_kernels.cu"]


@pytest.mark.parametrize("arch", ["sm_90"])
@pytest.mark.parametrize("cu", CU_FILES)
def test_nvcc_compiles(cu, arch, tmp_path):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc not found")
    cmd = [nvcc, "-c", "-std=c++17", f"-arch={arch}", "-O3", "--use_fast_math", f"-I{ROOT / 'csrc'}",
           str(ROOT / cu), "-o", str(tmp_path / "k.o")]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "warning" not in res.stderr.lower(), res.stderr
    assert (tmp_path / "k.o").stat().st_size > 0
