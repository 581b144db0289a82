"""One input PDF file -> its outputs and its results row, never raising: a failing input becomes an error row, so
it never stops a campaign or a watch."""
from __future__ import annotations

import argparse
import time

from .. import cli_methods
from ..solve_file import solve_file
from .results import error_row, ok_row

#: Solvers built in this process (a Dask worker), by their options: models and libraries load once per worker.
_SOLVERS: dict[str, object] = {}


def solve_to_row(path: str, sha256: str | None, out_dir: str, args: argparse.Namespace, solve) -> dict:
    """Solve ``path`` with ``solve(target, elements)``, write its outputs into ``out_dir`` and return its row
    (:func:`pdfsolve.screening.results.ok_row`, or an ``error_row`` naming the exception of any failure)."""
    start = time.perf_counter()
    try:
        summary = solve_file(path, out_dir, args, solve, log=lambda line: None)
    except Exception as exc:  # noqa: BLE001 - whatever one input raises is its error row
        error = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        return error_row(path, sha256, out_dir, args.method, error, time.perf_counter() - start, time.time())
    return ok_row(path, sha256, out_dir, summary, time.perf_counter() - start, time.time())


def solve_on_worker(path: str, sha256: str | None, out_dir: str, args: argparse.Namespace) -> dict:
    """:func:`solve_to_row` with this process's solver for ``args`` (built at its first use, inside the row's error
    handling, and kept for the process's later inputs)."""
    def solve(target, elements):
        key = repr(sorted(vars(args).items()))
        if key not in _SOLVERS:
            _SOLVERS[key] = cli_methods.solver(args)
        return _SOLVERS[key](target, elements)

    return solve_to_row(path, sha256, out_dir, args, solve)
