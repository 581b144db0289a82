"""Watch mode: poll a directory and solve each new or changed PDF file once it has been written completely.

A file is taken when its size and modification time are the same in two consecutive polls (a writer still
appending changes one of them) and it is not empty; it is solved unless the results table already holds an ``ok``
row for its path and content. Latency from the end of a write to the file's row is one to two polls plus the
solve (docs/screening.md).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..models.weights import file_sha256
from .live_summary import write_live_summary
from .results import ResultsTable
from .task import solve_to_row


def _signatures(directory: Path, pattern: str) -> dict[Path, tuple[int, int]]:
    """(size [bytes], mtime [ns]) of each non-hidden regular file in ``directory`` matching ``pattern``."""
    found = {}
    for path in directory.glob(pattern):
        if path.name.startswith("."):
            continue
        try:
            stat = path.stat()
        except FileNotFoundError:  # removed since the listing
            continue
        if path.is_file():
            found[path] = (stat.st_size, stat.st_mtime_ns)
    return found


def watch(directory, table: ResultsTable, args: argparse.Namespace, solve, *, pattern: str = "*.gr",
          interval: float = 0.5, max_files: int | None = None, timeout: float | None = None, log=print) -> int:
    """Solve the files of ``directory`` matching ``pattern`` as they arrive or change, with
    ``solve(target, elements)`` and the solve options ``args`` (see :func:`pdfsolve.solve_file.solve_file`).

    After each file its row is recorded in ``table``, ``results.parquet`` rewritten and the live summary
    (:func:`.live_summary.write_live_summary`) refreshed; ``log`` gets one line per file. Polls every ``interval``
    seconds; returns the number of files solved (or failed) once ``max_files`` were, after ``timeout`` seconds,
    or at Ctrl-C.

    Raises:
        ValueError: ``directory`` is not a directory.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"watch: {directory} is not a directory")
    deadline = None if timeout is None else time.monotonic() + timeout
    previous, taken, done = {}, {}, 0
    try:
        while deadline is None or time.monotonic() < deadline:
            current = _signatures(directory, pattern)
            for path, signature in sorted(current.items()):
                if signature[0] == 0 or previous.get(path) != signature or taken.get(path) == signature:
                    continue
                taken[path] = signature
                row = _solve_new(path.resolve(), table, args, solve)
                if row is None:
                    continue
                log(f"{path.name}: {row['status']} "
                    + (f"{row['motif']} {row['element']}{row['n_atoms']}, Rwp {row['rwp']:.3f}"
                       if row["status"] == "ok" else row["error"])
                    + f" ({row['seconds']:.2f} s)")
                done += 1
                if max_files is not None and done >= max_files:
                    return done
            previous = current
            time.sleep(interval)
    except KeyboardInterrupt:
        log("watch: stopped")
    return done


def _solve_new(path: Path, table: ResultsTable, args: argparse.Namespace, solve) -> dict | None:
    """Solve ``path`` unless ``table`` has it solved from the same content; record the row, rewrite the table and
    the live summary; returns the row, or None when skipped (or removed before it could be read)."""
    try:
        digest = file_sha256(path)
    except FileNotFoundError:
        return None
    if table.is_done(str(path), digest):
        return None
    row = solve_to_row(str(path), digest, table.out_dir(str(path)), args, solve)
    table.record(row)
    table.flush()
    write_live_summary(table)
    return row
