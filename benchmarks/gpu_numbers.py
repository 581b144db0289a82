"""The numbers benchmarks/RESULTS.md records for a CUDA card, CPU beside GPU in the same run, written as JSON and
as a Markdown table.

- Debye batch: G(r) of the benchmark batch (1000 clusters of 50-150 atoms, benchmarks/conftest.py), fast float32,
  fast float64 and exact float64 modes [clusters/s];
- ACSF: forward + backward of the compiled op, published parameters (190 features per atom) [ms per structure];
- L-BFGS-B: fingerprint inversion of the 16 13-atom motif clusters of benchmarks/test_bench_fingerprint.py (whole
  L-BFGS-B runs in the extension) [s per structure, structures solved];
- solve: ``pdfsolve solve`` of the bundled Pt data (JQ_S1.gr) against the Pt library of 5-200 atoms [s per PDF;
  the routes run on the CPU], after building the library once.

Each measurement is the best of ``--rounds`` after one warm-up; a measurement that fails is recorded with its error
and the others still run. Usage: ``python benchmarks/gpu_numbers.py OUT_DIR``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from conftest import make_clusters  # noqa: E402 (benchmarks/conftest.py: the benchmark clusters)


def _best_seconds(run, device: str, rounds: int) -> float:
    """Shortest wall time [s] of ``rounds`` calls of ``run()`` after one warm-up, synchronising CUDA."""
    run()
    times = []
    for _ in range(rounds):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        run()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def debye(device: str, rounds: int) -> dict:
    """Clusters per second of simulate_pdf on the 1000-cluster batch, per mode and dtype."""
    from pdfsolve import ClusterBatch, PDFParameters, simulate_pdf

    params = PDFParameters()
    clusters = make_clusters(np.random.default_rng(1).integers(50, 151, size=1000))
    out = {}
    for mode, dtype in (("fast", torch.float32), ("fast", torch.float64), ("exact", torch.float64)):
        batch = ClusterBatch.from_atoms(clusters, biso=params.biso, dtype=dtype, device=device)
        seconds = _best_seconds(lambda: simulate_pdf(batch, params, mode=mode).G, device, rounds)
        out[f"{mode}-{str(dtype).split('.')[-1]}"] = len(clusters) / seconds
    return out


def acsf(device: str, rounds: int) -> dict:
    """ms per structure of the compiled ACSF op, forward + backward, float64 and float32, per cluster size."""
    from pdfsolve.geometry import ACSFParameters
    from pdfsolve.ops import _acsf

    params = ACSFParameters.published()
    out = {}
    for natoms, count in ((10, 64), (55, 16), (147, 4)):
        clusters = make_clusters([natoms] * count, seed=natoms)
        for dtype in (torch.float64, torch.float32):
            pos = torch.tensor(np.stack([c.positions for c in clusters]), dtype=dtype, device=device)
            species = torch.zeros(pos.shape[:2], dtype=torch.long, device=device)

            def step():
                p = pos.detach().requires_grad_()
                _acsf.acsf(p, species, 1, params.radial, params.angular, params.rcut).sum().backward()

            out[f"{natoms} atoms {str(dtype).split('.')[-1]}"] = 1e3 * _best_seconds(step, device, rounds) / count
    return out


def lbfgsb(device: str, rounds: int) -> dict:
    """s per structure and structures solved (<= 1e-3 Angstrom) of invert_fingerprint on the 16 motif clusters."""
    from pdfsolve.reconstruct import invert_fingerprint
    from test_bench_fingerprint import N_ATOMS, N_HOPS, N_STARTS, _solved, motif_problems

    pos, target = motif_problems()
    result = {}

    def run():
        result["x"] = invert_fingerprint(target.to(device), N_ATOMS, n_starts=N_STARTS, n_hops=N_HOPS, seed=0).x

    seconds = _best_seconds(run, device, rounds)
    return {"s_per_structure": seconds / len(pos), "solved": _solved(result["x"].cpu(), pos),
            "structures": len(pos)}


def solve_per_pdf(rounds: int) -> dict:
    """Seconds to build the Pt 5-200 library once, then per ``pdfsolve solve`` of JQ_S1.gr (1031 candidates)."""
    from pdfsolve.cli import main
    from pdfsolve.routes.mine import cached_library

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PDFSOLVE_CACHE"] = tmp
        start = time.perf_counter()
        cached_library(["Pt"], 5, 200)
        build = time.perf_counter() - start
        with resources.as_file(resources.files("pdfsolve.data") / "examples" / "JQ_S1.gr") as path:
            argv = ["solve", str(path), "-o", str(Path(tmp) / "out"), "--element", "Pt"]
            seconds = _best_seconds(lambda: main(argv), "cpu", rounds)
    return {"library_build_s": build, "s_per_pdf": seconds}


def markdown(numbers: dict) -> str:
    """The numbers as a Markdown table (one row per measurement)."""
    lines = [f"Card: {numbers['card']}; torch {numbers['torch']}, CUDA {numbers['cuda']}, "
             f"{numbers['cpu_threads']} CPU threads.", "", "| measurement | case | CPU | GPU |",
             "| --- | --- | --- | --- |"]
    for name, unit in (("debye", "clusters/s"), ("acsf", "ms/structure")):
        cpu, gpu = numbers.get(f"{name}_cpu", {}), numbers.get(f"{name}_cuda", {})
        for case in sorted(set(cpu) | set(gpu)):
            cells = [f"{d[case]:.4g} {unit}" if isinstance(d, dict) and case in d else str(d.get("error", "-"))
                     for d in (cpu, gpu)]
            lines.append(f"| {name} | {case} | {cells[0]} | {cells[1]} |")
    for device in ("cpu", "cuda"):
        value = numbers.get(f"lbfgsb_{device}", {})
        lines.append(f"| L-BFGS-B fingerprint inversion ({device}) | 16 x 13 atoms | "
                     + (f"{value['s_per_structure']:.3g} s/structure, {value['solved']}/16 solved" if "solved" in value
                        else str(value.get("error", "-"))) + " | |")
    solve = numbers.get("solve", {})
    lines.append("| pdfsolve solve JQ_S1.gr, Pt 5-200 (CPU routes) | 1031 candidates | "
                 + (f"{solve['s_per_pdf']:.3g} s/PDF (library build {solve['library_build_s']:.3g} s)"
                    if "s_per_pdf" in solve else str(solve.get("error", "-"))) + " | |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="directory for gpu_numbers.json and gpu_numbers.md")
    parser.add_argument("--rounds", type=int, default=3, help="timed calls per measurement (best one kept)")
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available()
    numbers = {"card": torch.cuda.get_device_name() if cuda else "none", "torch": torch.__version__,
               "cuda": torch.version.cuda, "cpu_threads": torch.get_num_threads(), "host": platform.node()}
    runs = [(f"{name}_{device}", lambda f=f, d=device: f(d, args.rounds))
            for name, f in (("debye", debye), ("acsf", acsf), ("lbfgsb", lbfgsb))
            for device in (["cpu", "cuda"] if cuda else ["cpu"])]
    runs.append(("solve", lambda: solve_per_pdf(args.rounds)))
    args.out.mkdir(parents=True, exist_ok=True)
    for key, run in runs:
        start = time.perf_counter()
        try:
            numbers[key] = run()
        except Exception as exc:  # noqa: BLE001 - one failing measurement must not lose the others
            numbers[key] = {"error": f"{type(exc).__name__}: {exc}"}
        print(f"{key} ({time.perf_counter() - start:.1f} s): {numbers[key]}", flush=True)
        (args.out / "gpu_numbers.json").write_text(json.dumps(numbers, indent=2))
    (args.out / "gpu_numbers.md").write_text(markdown(numbers))
    print(markdown(numbers))


if __name__ == "__main__":
    main()
