"""``pdfsolve evaluate``: score a solver (``--method``) on the PDFs of a dataset split, with their stored noise and
drawn parameters; prints per motif and in total: motif top-1, exact-N rate, median Rwp after refinement, median
aligned MAE and time per PDF (see :func:`pdfsolve.evaluate.evaluate_split`)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from . import cli_methods

_COLUMNS = ("n", "motif_top1", "exact_n", "median_rwp", "median_mae", "failed", "seconds_per_pdf")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``evaluate`` on the ``pdfsolve`` subparsers."""
    parser = subparsers.add_parser(
        "evaluate", help="score a solver on a dataset split", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Solve PDFs of a dataset split ('pdfsolve dataset build') with the chosen method and score the "
                    "best candidate against the true cluster: motif top-1, exact atom count, Rwp after refinement, "
                    "aligned MAE [Angstrom] (exact counts only) and seconds per PDF, per motif and in total.")
    parser.add_argument("--data", required=True, metavar="DATA_DIR", help="dataset directory")
    parser.add_argument("--split", choices=("train", "validation", "test"), default="test", help="split scored")
    parser.add_argument("--targets", type=int, default=50, metavar="N", help="PDFs drawn from the split (0: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draw")
    parser.add_argument("--json", metavar="FILE", help="also write the scores and every PDF's result to FILE")
    cli_methods.add_arguments(parser)
    return parser


def _cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:d}" if isinstance(value, int) else f"{value:.3f}"


def run(args: argparse.Namespace) -> None:
    """Run ``pdfsolve evaluate``."""
    from .evaluate import evaluate_split

    if args.targets < 0:
        raise ValueError(f"--targets must be >= 0, got {args.targets}")
    solve = cli_methods.solver(args)
    scores = evaluate_split(args.data, lambda target, element: solve(target, [element]), split=args.split,
                            n_targets=args.targets or None, seed=args.seed, progress=True)
    sizes = [(f"N {b}", row) for b, row in scores["per_size"].items()]
    seen = [(f"{name} geometry", row) for name, row in scores["per_geometry"].items()]
    rows = [*scores["per_motif"].items(), *sizes, *seen, ("total", scores["total"])]
    width = max(len(name) for name, _ in rows)
    print(f"{'motif':{width}s} " + " ".join(f"{c:>15s}" for c in _COLUMNS))
    for name, row in rows:
        print(f"{name:{width}s} " + " ".join(f"{_cell(row[c]):>15s}" for c in _COLUMNS))
    if args.json:
        Path(args.json).write_text(json.dumps({"method": args.method, **scores}, indent=2))
