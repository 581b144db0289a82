# Sourced by scripts/example.sh and scripts/test.sh: creates the virtual environment (./.venv, or
# $PDFSOLVE_VENV) on first use and installs pdfsolve into it, built against the torch installed there.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv="${PDFSOLVE_VENV:-.venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
# shellcheck disable=SC1091
. "$venv/bin/activate"
pip() { python -m pip --disable-pip-version-check -q "$@"; }
# torch first and alone: the CPU build pinned here (override with PDFSOLVE_TORCH="torch==X.Y.Z").
# The extension is then built against it without build isolation, so pip never fetches another torch.
python -c "import torch" 2>/dev/null || pip install "${PDFSOLVE_TORCH:-torch==2.13.0}"
pip install "scikit-build-core>=0.10" ninja cmake numpy scipy ase matplotlib h5py tqdm "pytest>=7" "pytest-benchmark>=4"
pip install --no-build-isolation ".[test]"
