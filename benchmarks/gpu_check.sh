#!/usr/bin/env bash
# GPU check, under 8 minutes on a machine with a CUDA GPU, nvcc and a CUDA build of torch (python3): build pdfsolve
# with its CUDA kernels, run every CUDA test (pytest -m cuda tests), record the GPU numbers (benchmarks/gpu_numbers.py:
# Debye batch throughput, ACSF, L-BFGS-B, solve per PDF) and run the benchmark suite with the time that is left.
# Everything lands in $OUT (default ./gpu-check): gpu.txt (the card), build.log, cuda_tests.log, gpu_numbers.md/.json,
# benchmarks.log/.json; copy gpu_numbers.md into benchmarks/RESULTS.md with the card named.
#
# Nothing can be downloaded on the lent GPU machine (the device tool), whose python3 lacks ase: before the call, here,
#   python -m pip download --no-deps -d .whl ase==3.29.0      (.whl/ is git-ignored)
# then run with carry [".whl"]:  bash benchmarks/gpu_check.sh
# The wheels in .whl/ are installed into /tmp/site (PYTHONPATH); the extension is built into python3's environment.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-check}"
PY="${PYTHON:-python3}"
BUDGET="${GPU_CHECK_SECONDS:-450}"  # whole script [s]; steps below get what is left
mkdir -p "$OUT"
SECONDS=0
left() { echo $((BUDGET - SECONDS)); }
step() { echo "== [${SECONDS}s] $*" | tee -a "$OUT/gpu_check.log"; }
export PYTHONUNBUFFERED=1 CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)"

step "card"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt" \
  || { echo "gpu_check: no NVIDIA GPU here" | tee -a "$OUT/gpu_check.log"; exit 1; }

if compgen -G ".whl/*.whl" >/dev/null; then
  step "carried wheels -> /tmp/site"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi

step "build with CUDA (sm_${PDFSOLVE_CUDA_ARCH:-90})"
timeout 240 "$PY" -m pip install --no-build-isolation --no-deps --no-cache-dir -v . \
  -C cmake.define.CMAKE_CUDA_ARCHITECTURES="${PDFSOLVE_CUDA_ARCH:-90}" -C build-dir=build/gpu-check \
  >"$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
grep -m1 "CUDA kernels:" "$OUT/build.log" | tee -a "$OUT/gpu_check.log"
"$PY" -c "import ase, torch, pdfsolve; assert torch.cuda.is_available(); print('pdfsolve', pdfsolve.__file__)" \
  2>&1 | tee -a "$OUT/gpu_check.log" || { echo "gpu_check: carry the ase wheel in .whl (see the header)"; exit 1; }

step "CUDA tests"
timeout 100 "$PY" -m pytest -q -m cuda tests -p no:cacheprovider 2>&1 | tee "$OUT/cuda_tests.log" | tail -15

step "GPU numbers"
timeout 150 "$PY" benchmarks/gpu_numbers.py "$OUT" --rounds 3 2>&1 | tee "$OUT/gpu_numbers.log" | tail -30

step "benchmark suite ($(left) s left; stopped there, results so far kept)"
timeout -s INT "$(( $(left) > 30 ? $(left) - 10 : 20 ))" "$PY" -m pytest -q benchmarks --benchmark-only \
  -p no:cacheprovider --benchmark-json="$OUT/benchmarks.json" --benchmark-group-by=group \
  --benchmark-columns=min,mean,rounds >"$OUT/benchmarks.log" 2>&1
tail -60 "$OUT/benchmarks.log"
step "done in ${SECONDS}s"
