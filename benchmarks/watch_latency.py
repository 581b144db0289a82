"""Latency of ``pdfsolve watch``: seconds from the moment a PDF file is completely written into the watched
directory to the moment its row is in the results table (the row's ``finished`` time).

Starts ``pdfsolve watch`` in a subprocess, copies ``--source`` into the watched directory ``--files`` times (one
copy every ``--gap`` seconds, each written at once), and prints each file's latency and the median over all but
the first (which also pays the first solve's one-time costs: reading the library, first calls). Options after
``--`` go to ``pdfsolve watch`` (method, library). Example, the documented numbers::

    OMP_NUM_THREADS=1 python benchmarks/watch_latency.py -- --element Pt --min-atoms 10 --max-atoms 16
    OMP_NUM_THREADS=1 python benchmarks/watch_latency.py -- --element Pt
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

import pyarrow.parquet as pq


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", help="PDF file copied in (default: the bundled Pt data JQ_S1.gr)")
    parser.add_argument("--files", type=int, default=6, help="files written")
    parser.add_argument("--gap", type=float, default=4.0, help="seconds between files")
    parser.add_argument("--interval", type=float, default=0.5, help="watch's polling interval [s]")
    parser.add_argument("watch_options", nargs="*", help="options of pdfsolve watch (after --)")
    args = parser.parse_args(argv)
    source = Path(args.source or resources.files("pdfsolve.data") / "examples" / "JQ_S1.gr")
    with tempfile.TemporaryDirectory() as tmp:
        incoming, out = Path(tmp) / "incoming", Path(tmp) / "out"
        incoming.mkdir()
        command = [sys.executable, "-m", "pdfsolve", "watch", str(incoming), "-o", str(out), "--interval",
                   str(args.interval), "--max-files", str(args.files), "--timeout", str(args.files * args.gap + 600),
                   *args.watch_options]
        watcher = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        print(watcher.stdout.readline().strip())  # the banner: the solver is built
        written = {}
        for k in range(args.files):
            path = incoming / f"pdf_{k:03d}.gr"
            shutil.copyfile(source, path)
            written[str(path)] = time.time()
            time.sleep(args.gap)
        watcher.communicate(timeout=600)
        rows = sorted(pq.read_table(out / "results.parquet").to_pylist(), key=lambda row: row["input"])
    latencies = [row["finished"] - written[row["input"]] for row in rows]
    for row, latency in zip(rows, latencies):
        print(f"{Path(row['input']).name}: {row['status']} {row['motif']} N={row['n_atoms']}, solve "
              f"{row['seconds']:.2f} s, latency {latency:.2f} s")
    print(f"latency: first file {latencies[0]:.2f} s; later files median {statistics.median(latencies[1:]):.2f} s, "
          f"max {max(latencies[1:]):.2f} s (polling every {args.interval} s)")


if __name__ == "__main__":
    main()
