"""Peak memory of one PDF batch, per method and cluster size: ``python benchmarks/peak_memory.py``.

Each case runs in a fresh subprocess; the number reported is the peak resident set size of the call
minus that of the same process just before it (after imports and building the clusters), in MiB.
"""
import json
import subprocess
import sys
from pathlib import Path

CASE = r"""
import resource, sys, json, torch
sys.path.insert(0, {bench!r})
from conftest import make_clusters
from pdfsolve import ClusterBatch, PDFParameters, simulate_pdf
method, natoms, count = {method!r}, {natoms}, {count}
clusters = make_clusters([natoms] * count, seed=natoms)
if method.startswith("debyecalculator"):
    import debyecalculator
    calc = debyecalculator.DebyeCalculator(qmin=0.7, qmax=25, qdamp=0.04, rmax=30, biso=0.3, device="cpu")
    run = lambda: [calc.gr(a) for a in clusters]
else:
    mode, dt = method.split("-")[1:]
    batch = ClusterBatch.from_atoms(clusters, dtype=getattr(torch, dt))
    run = lambda: simulate_pdf(batch, PDFParameters(), mode=mode)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
run()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps((peak - base) / 1024))
"""

CASES = [(m, n, c) for n, c in ((100, 1000), (10, 200), (500, 10), (2000, 2))
         for m in ("pdfsolve-fast-float32", "pdfsolve-exact-float64", "debyecalculator-float32")]


def main():
    bench = str(Path(__file__).parent)
    print(f"{'method':28s} {'atoms':>6s} {'clusters':>8s} {'peak MiB':>9s}")
    for method, natoms, count in CASES:
        code = CASE.format(bench=bench, method=method, natoms=natoms, count=count)
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        mib = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else "failed"
        print(f"{method:28s} {natoms:6d} {count:8d} {mib if isinstance(mib, str) else f'{mib:9.1f}'}")


if __name__ == "__main__":
    main()
