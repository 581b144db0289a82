"""Solve the five measured PDFs bundled in ``pdfsolve/data/examples`` (Au144(PET)60, Au144(p-MBA)60, Pt
nanocrystals of 1.8, 2.2 and 3.4 nm; provenance in that folder's README) with ``pdfsolve solve --method all`` and
print the best candidate of each route: motif, N and Rwp, next to what is known of each sample.

    python benchmarks/measured_pdfs.py --weights WEIGHTS.pt [--snap] [-o OUT_DIR] [--table docs/measured_pdfs.md]

Every run's files (candidates.csv with a method column, ranked xyz, fit.png) stay in OUT_DIR/<sample>/.
"""
from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from importlib.resources import as_file, files
from pathlib import Path

#: file -> what is known of its structure (../shared/experimental/README.md).
SAMPLES = {
    "Au144pMBA.gr": "decahedral core (Jensen et al. 2016)",
    "Au144PET_100K-00000.gr": "icosahedral Au54 core in a 60-atom shell",
    "JQ_S1.gr": "fcc, ~1.8 nm (~200 atoms)",
    "JQ_S2.gr": "fcc, ~2.2 nm (~370 atoms)",
    "JQ_S3.gr": "fcc, ~3.4 nm (~1400 atoms)",
}


def best_per_method(candidates_csv: Path) -> dict:
    """The first (lowest Rwp) row of each method in a ranked candidates.csv."""
    best = {}
    with open(candidates_csv) as f:
        for row in csv.DictReader(f):
            best.setdefault(row["method"], row)
    return best


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", help="DeepStruc weights (default: the shipped ones)")
    parser.add_argument("--snap", action="store_true", help="also refine the library clusters the samples snap to")
    parser.add_argument("-o", "--out", default="out/measured", help="output folder")
    parser.add_argument("--table", help="also write the table (Markdown) to this file")
    args = parser.parse_args(argv)
    lines = ["| sample | known | method | motif | N | Rwp |", "|---|---|---|---|---|---|"]
    for name, known in SAMPLES.items():
        with as_file(files("pdfsolve.data") / "examples" / name) as path:
            command = [sys.executable, "-m", "pdfsolve", "solve", str(path), "-o", args.out, "--method", "all"]
            command += ["--weights", args.weights] if args.weights else []
            command += ["--snap"] if args.snap else []
            subprocess.run(command, check=True)
        for method, row in best_per_method(Path(args.out) / Path(name).stem / "candidates.csv").items():
            lines.append(f"| {name} | {known} | {method} | {row['motif']} | {row['n_atoms']} | "
                         f"{float(row['rwp']):.3f} |")
    table = "\n".join(lines)
    print(table)
    if args.table:
        Path(args.table).write_text(table + "\n")


if __name__ == "__main__":
    main()
