"""``pdfsolve screen`` (many PDF files on a Dask cluster) and ``pdfsolve watch`` (a directory, as files arrive):
the solve options of ``pdfsolve solve``, one results table (see :mod:`pdfsolve.screening.results`)."""
from __future__ import annotations

import argparse

from . import cli_methods
from .solve_file import check_options


def add_parsers(subparsers, solve_options: argparse.ArgumentParser) -> None:
    """Register ``screen`` and ``watch``; ``solve_options``: the parent parser of the solve options."""
    screen = subparsers.add_parser(
        "screen", help="solve many PDFs on a Dask cluster, resumable, into one results table",
        parents=[solve_options], formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Solve every input PDF with --method on a Dask cluster: a local one (one worker process per "
                    "CPU core, or --workers) or the scheduler at --scheduler (workers must see the same files, "
                    "e.g. on a shared file system; see docs/screening.md for SLURM via dask-jobqueue). One row per "
                    "input goes to RESULTS/results.parquet (status, error, best motif, N, Rwp, seconds) and each "
                    "input's outputs to RESULTS/<stem>/. Cluster libraries missing from the cache ($PDFSOLVE_CACHE) "
                    "are built once, on the cluster, before the solves. Rerunning skips inputs already solved from "
                    "the same content, so an interrupted campaign resumes; a failing input is recorded with its "
                    "error.")
    screen.add_argument("inputs", nargs="+", metavar="INPUT.gr", help="measured PDF file(s) G(r)")
    screen.add_argument("-o", "--out", required=True, metavar="RESULTS", help="results directory")
    screen.add_argument("--scheduler", metavar="ADDRESS",
                        help="address of a running Dask scheduler (tcp://host:port); default: a local cluster")
    screen.add_argument("--workers", type=int, metavar="N",
                        help="worker processes of the local cluster (default: one per CPU core)")

    watch = subparsers.add_parser(
        "watch", help="solve each new or changed PDF file in a directory as it arrives",
        parents=[solve_options], formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Poll DIR and solve every new or changed file matching --pattern once its size and "
                    "modification time held still for one poll (so files still being written are skipped), with "
                    "the models and libraries loaded once. Rows are added to OUT/results.parquet (as for "
                    "'screen'), each input's outputs go to OUT/<stem>/, and OUT/summary.html with OUT/summary.png "
                    "(latest fit, Rwp and motif over time) is refreshed after each file. Stops at --max-files, "
                    "--timeout or Ctrl-C.")
    watch.add_argument("directory", metavar="DIR", help="directory to watch (not its subdirectories)")
    watch.add_argument("-o", "--out", required=True, metavar="OUT", help="results directory")
    watch.add_argument("--pattern", default="*.gr", help="file name pattern (hidden files are ignored)")
    watch.add_argument("--interval", type=float, default=0.5, metavar="S", help="seconds between polls")
    watch.add_argument("--max-files", type=int, metavar="N", help="stop after solving N files")
    watch.add_argument("--timeout", type=float, metavar="S", help="stop after S seconds")


def run_screen(args: argparse.Namespace) -> None:
    """``pdfsolve screen``: see :func:`pdfsolve.screening.campaign.run_campaign`."""
    from .screening.campaign import check_cluster, dask_client, plan_campaign, prebuild_libraries, run_campaign
    from .screening.results import ResultsTable

    check_options(args)
    check_cluster(args.scheduler, args.workers)
    table = ResultsTable(args.out)
    pending, counts = plan_campaign(args.inputs, table, args.method)
    if pending:
        with dask_client(args.scheduler, args.workers) as client:
            prebuild_libraries(pending, args, client)
            run_campaign(pending, table, args, client, counts)
    table.flush()
    print(f"screen: {counts.solved} solved, {counts.failed} failed, {counts.skipped} already done "
          f"-> {table.table_path}")


def run_watch(args: argparse.Namespace) -> None:
    """``pdfsolve watch``: see :func:`pdfsolve.screening.watch.watch`."""
    from .screening.results import ResultsTable
    from .screening.watch import watch

    check_options(args)
    if args.interval <= 0:
        raise ValueError(f"--interval must be > 0 seconds, got {args.interval}")
    table = ResultsTable(args.out)
    solve = cli_methods.solver(args)
    print(f"watch: {args.directory} ({args.pattern}) -> {table.table_path}; {args.method}; Ctrl-C stops")
    solved = watch(args.directory, table, args, solve, pattern=args.pattern, interval=args.interval,
                   max_files=args.max_files, timeout=args.timeout, log=print)
    print(f"watch: {solved} files solved -> {table.table_path}")
