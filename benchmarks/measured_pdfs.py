"""Solve the five measured PDFs bundled in ``pdfsolve/data/examples`` (Au144(PET)60, Au144(p-MBA)60, Pt
nanocrystals of 1.8, 2.2 and 3.4 nm; provenance in that folder's README) and print one table: the best candidate
(motif, N, Rwp) of each route of ``pdfsolve solve --method all`` (the models' own clusters), then of
``pdfsolve solve --method deepstruc`` with its default snap to the library, next to what is known of each sample.

    python benchmarks/measured_pdfs.py [--weights WEIGHTS.pt] [-o OUT_DIR] [--table FILE.md]

Every run's files (candidates.csv with a method column, ranked xyz, fit.png) stay in OUT_DIR/all/<sample>/ and
OUT_DIR/deepstruc/<sample>/.
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


ROUTES = ("mine", "deepstruc", "cvae", "dae", "cbldm", "fingerprint")


def cell(row: dict | None) -> str:
    """'motif N, Rwp' of a candidates.csv row, or 'no cluster' (the route gave no candidate)."""
    return "no cluster" if row is None else f"{row['motif']} {row['n_atoms']}, {float(row['rwp']):.3f}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", help="DeepStruc weights (default: the shipped ones)")
    parser.add_argument("-o", "--out", default="out/measured", help="output folder")
    parser.add_argument("--table", help="also write the table (Markdown) to this file")
    args = parser.parse_args(argv)
    lines = ["| sample (known) | " + " | ".join(ROUTES) + " | deepstruc, snap |", "|---" * (len(ROUTES) + 2) + "|"]
    for name, known in SAMPLES.items():
        best = {}
        for method in ("all", "deepstruc"):
            out = Path(args.out) / method
            with as_file(files("pdfsolve.data") / "examples" / name) as path:
                command = [sys.executable, "-m", "pdfsolve", "solve", str(path), "-o", str(out), "--method", method]
                command += ["--weights", args.weights] if args.weights else []
                if subprocess.run(command).returncode != 0:  # e.g. DeepStruc found no candidate
                    continue
            ranked = best_per_method(out / Path(name).stem / "candidates.csv")
            best.update(ranked if method == "all" else {"snap": next(iter(ranked.values()))})
        lines.append(f"| {name} ({known}) | " + " | ".join(cell(best.get(m)) for m in (*ROUTES, "snap")) + " |")
    table = "\n".join(lines)
    print(table)
    if args.table:
        Path(args.table).write_text(table + "\n")


if __name__ == "__main__":
    main()
