"""Screening campaigns: many PDF files solved on a Dask cluster, each finished row kept at once.

Every input not yet solved from its current content (see :class:`~.results.ResultsTable`) becomes one Dask task
(:func:`.task.solve_on_worker`); the driver records each row the moment its task ends, so an interrupted or crashed
campaign resumes with nothing lost, and a task whose worker died is rerun by Dask on another worker and still
recorded once. A failing input, or one whose workers kept dying, becomes an error row.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from .. import cli_methods
from ..models.weights import file_sha256
from .results import ResultsTable, error_row
from .task import solve_on_worker

#: Longest time [s] between rewrites of ``results.parquet`` while a campaign runs (the row files are immediate).
FLUSH_SECONDS = 5.0
#: Dask configuration of local clusters. Dask starts worker processes with MALLOC_TRIM_THRESHOLD_=65536, which also
#: pins glibc's mmap threshold at 128 KiB: every larger array is then mapped afresh and faulted in, and simulating
#: the PDFs of 346 Au clusters (randomised parameters) took 22 s of CPU instead of 13 s. Local workers keep glibc's
#: defaults (remote workers: see docs/screening.md).
LOCAL_CLUSTER_CONFIG = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


@dataclass
class CampaignCounts:
    """How a campaign's inputs went: skipped (already solved from the same content), solved, failed."""

    skipped: int = 0
    solved: int = 0
    failed: int = 0


def check_cluster(scheduler: str | None, workers: int | None) -> None:
    """ValueError when --scheduler and --workers are both given or --workers is below 1."""
    if scheduler is not None and workers is not None:
        raise ValueError("--workers sets the size of the local cluster; with --scheduler the cluster's own workers "
                         "run the tasks")
    if workers is not None and workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None):
    """A ``distributed.Client`` of the Dask scheduler at ``scheduler`` ("tcp://host:port"), else of a new
    LocalCluster of ``workers`` processes (default: one per CPU core), one thread each, configured by
    :data:`LOCAL_CLUSTER_CONFIG`; the local cluster is closed on exit."""
    import dask
    from distributed import Client, LocalCluster

    check_cluster(scheduler, workers)
    if scheduler is not None:
        with Client(scheduler) as client:
            yield client
        return
    n_workers = workers or os.cpu_count() or 1
    with dask.config.set(LOCAL_CLUSTER_CONFIG), \
            LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=":0") as local, \
            Client(local) as client:
        yield client


def plan_campaign(inputs, table: ResultsTable, method: str) -> tuple[list[tuple[str, str]], CampaignCounts]:
    """The inputs (PDF file paths, resolved, duplicates dropped) still to solve, as (path, sha256) pairs, and
    the counts so far: inputs already solved from the same content are skipped; one that cannot be read gets its
    error row (``method``: the --method) in ``table`` at once."""
    counts = CampaignCounts()
    pending = []
    for path in dict.fromkeys(str(Path(p).resolve()) for p in inputs):
        try:
            digest = file_sha256(path)
        except OSError as exc:
            table.record(error_row(path, None, table.out_dir(path), method, f"{type(exc).__name__}: {exc}", 0.0,
                                   time.time()))
            counts.failed += 1
            continue
        if table.is_done(path, digest):
            counts.skipped += 1
        else:
            pending.append((path, digest))
    return pending, counts


def prebuild_libraries(pending: list[tuple[str, str]], args: argparse.Namespace, client) -> None:
    """Build once, into this process's library cache (:func:`pdfsolve.routes.mine.cached_library`), each cluster
    library the solves of ``pending`` ((path, sha256) pairs) read, its geometries generated on ``client``'s cluster:
    workers sharing the cache ($PDFSOLVE_CACHE on a shared file system) then read it instead of each building it at
    its first task (:func:`pdfsolve.cli_methods.libraries_read`). An input that cannot be read is left to its
    task's error row."""
    from ..io import PDFFileError, read_pdf
    from ..routes.mine import cached_library

    needed = {}
    for path, _ in pending:
        try:
            composition = None if args.element else read_pdf(path).composition
        except PDFFileError:
            continue
        needed.update(dict.fromkeys(cli_methods.libraries_read(args, cli_methods.default_elements(args, composition))))
    for elements in needed:
        cached_library(elements, args.min_atoms, args.max_atoms, client=client)


def run_campaign(pending: list[tuple[str, str]], table: ResultsTable, args: argparse.Namespace, client,
                 counts: CampaignCounts, progress: bool = True) -> None:
    """Solve each (path, sha256) of ``pending`` (from :func:`plan_campaign`) on ``client``'s cluster with the solve
    options ``args`` (see :func:`pdfsolve.solve_file.solve_file`); rows go to ``table`` as they arrive, are
    counted in ``counts``, and ``results.parquet`` is rewritten at least every :data:`FLUSH_SECONDS` and at the
    end.

    ``progress``: a tqdm bar on stderr (PDF files per second, ETA).
    """
    from distributed import as_completed

    tasks = {client.submit(solve_on_worker, path, digest, table.out_dir(path), args, pure=False): (path, digest)
             for path, digest in pending}
    flushed = time.monotonic()
    try:
        with tqdm(total=len(tasks), unit="PDF", desc="screen", disable=not progress, smoothing=0.1) as bar:
            for future in as_completed(list(tasks)):
                row = _row(future, *tasks.pop(future), table.out_dir, args.method)
                table.record(row)
                counts.solved += row["status"] == "ok"
                counts.failed += row["status"] == "error"
                bar.update()
                bar.set_postfix(failed=counts.failed, refresh=False)
                if time.monotonic() - flushed > FLUSH_SECONDS:
                    table.flush()
                    flushed = time.monotonic()
    finally:
        table.flush()


def _row(future, path: str, sha256: str, out_dir, method: str) -> dict:
    """The row the task of ``path`` returned, or an error row when the task itself failed (its workers kept
    dying, say); ``out_dir(path)`` gives the input's output directory."""
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - a lost task is that input's error, not the campaign's
        return error_row(path, sha256, out_dir(path), method, f"{type(exc).__name__}: {exc}", 0.0, time.time())
