"""`pdfsolve screen` on a real Dask LocalCluster (2 worker processes): one row per input, errors recorded, resume
without recomputation, the same result as `pdfsolve solve`, every result exactly once when a worker is killed."""
import csv
import os
import signal
import threading
import time

import pyarrow.parquet as pq
import pytest
from conftest import run_cli
from distributed import Client, LocalCluster

from pdfsolve.routes.mine import cached_library
from _measured import LIBRARY, write_pt13


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """$PDFSOLVE_CACHE for the module (set before the cluster starts, so its workers share it), library built."""
    path = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PDFSOLVE_CACHE", str(path))
        cached_library(["Pt"], 10, 16)
        yield path


@pytest.fixture(scope="module")
def client(cache):
    """A client of a LocalCluster of 2 worker processes, 1 thread each, pdfsolve imported on each."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        client.run(exec, "import pdfsolve.screening.task")
        yield client


def pdfs(directory, n: int) -> list:
    """``n`` Pt13 PDF files in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"pt_{k:02d}.gr" for k in range(n)]
    for k, path in enumerate(paths):
        write_pt13(k, path)
    return paths


def screen(inputs, out, client, capsys, *options):
    """Run `pdfsolve screen` on the client's cluster; (status, stdout, results table as a list of rows)."""
    status, stdout, _ = run_cli(["screen", *inputs, "-o", out, "--scheduler", client.scheduler.address, *LIBRARY,
                                 *options], capsys)
    rows = pq.read_table(out / "results.parquet").to_pylist() if status == 0 else None
    return status, stdout, rows


def test_screen_records_every_input_once_and_matches_solve(tmp_path, client, capsys):
    good = pdfs(tmp_path / "in", 3)
    bad = tmp_path / "in" / "bad.gr"
    bad.write_text("# not a PDF\nno numbers here\n")
    missing = tmp_path / "in" / "missing.gr"
    status, stdout, rows = screen([*good, bad, missing], tmp_path / "res", client, capsys, "--top", "2")
    assert status == 0 and "3 solved, 2 failed, 0 already done" in stdout
    by_input = {row["input"]: row for row in rows}
    assert len(rows) == 5 and set(by_input) == {str(p) for p in [*good, bad, missing]}
    assert by_input[str(bad)]["status"] == "error" and "PDFFileError" in by_input[str(bad)]["error"]
    assert by_input[str(missing)]["error"].startswith("FileNotFoundError")
    for path in good:
        row = by_input[str(path)]
        assert (row["status"], row["motif"], row["n_atoms"], row["element"]) == ("ok", "icosahedral", 13, "Pt")
        assert row["out_dir"] == str(tmp_path / "res" / path.stem) and row["seconds"] > 0
    # the same ranking and files as `pdfsolve solve` of that file with the same options
    assert run_cli(["solve", good[0], "-o", tmp_path / "solve", *LIBRARY, "--top", "2"], capsys)[0] == 0
    screened, solved = ((d / good[0].stem / "candidates.csv").read_text() for d in (tmp_path / "res",
                                                                                   tmp_path / "solve"))
    assert screened == solved
    best = next(csv.DictReader(open(tmp_path / "solve" / good[0].stem / "candidates.csv")))
    assert by_input[str(good[0])]["rwp"] == float(best["rwp"])


def test_rerun_computes_nothing_and_recomputes_changed_inputs(tmp_path, client, capsys):
    inputs = pdfs(tmp_path / "in", 3)
    out = tmp_path / "res"
    _, _, first = screen(inputs, out, client, capsys)
    stamps = {row["input"]: row["finished"] for row in first}
    # a crash after the rows were kept but before the table was rewritten loses nothing
    (out / "results.parquet").unlink()
    status, stdout, rows = screen(inputs, out, client, capsys)
    assert status == 0 and "0 solved, 0 failed, 3 already done" in stdout
    assert {row["input"]: row["finished"] for row in rows} == stamps
    # a changed input is solved again, the others are not
    write_pt13(99, inputs[1])
    status, stdout, rows = screen(inputs, out, client, capsys)
    assert "1 solved, 0 failed, 2 already done" in stdout
    changed = {row["input"] for row in rows if row["finished"] != stamps[row["input"]]}
    assert changed == {str(inputs[1])} and len(rows) == 3


def test_killed_worker_loses_and_repeats_no_result(tmp_path, client, capsys):
    inputs = pdfs(tmp_path / "in", 6)
    out = tmp_path / "res"
    pids = client.run(os.getpid)
    killed = {}

    def kill_a_worker_mid_run():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = len(list((out / ".rows").glob("*.json"))) if (out / ".rows").exists() else 0
            if done >= 1:
                address, pid = sorted(pids.items())[0]
                os.kill(pid, signal.SIGKILL)
                killed.update(address=address, rows_before=done)
                return
            time.sleep(0.02)

    thread = threading.Thread(target=kill_a_worker_mid_run)
    thread.start()
    status, stdout, rows = screen(inputs, out, client, capsys)
    thread.join()
    assert killed and killed["rows_before"] < len(inputs), "the worker was not killed mid-run"
    assert pids[killed["address"]] not in client.run(os.getpid).values()
    assert status == 0 and "6 solved, 0 failed, 0 already done" in stdout
    assert sorted(row["input"] for row in rows) == sorted(str(p) for p in inputs)
    assert all(row["status"] == "ok" and row["n_atoms"] == 13 for row in rows)
    assert len(list((out / ".rows").glob("*.json"))) == len(inputs)


@pytest.mark.parametrize("options, message", [(["--workers", "0"], "--workers must be >= 1"),
                                              (["--workers", "2", "--scheduler", "tcp://x:1"], "--workers sets"),
                                              (["--top", "0"], "--top must be >= 1")])
def test_screen_rejects_bad_options(tmp_path, options, message, capsys):
    status, _, err = run_cli(["screen", tmp_path / "a.gr", "-o", tmp_path / "res", *options], capsys)
    assert status == 2 and message in err


@pytest.mark.slow
def test_screen_starts_its_own_local_cluster(tmp_path, cache, capsys):
    inputs = pdfs(tmp_path / "in", 2)
    status, stdout, _ = run_cli(["screen", *inputs, "-o", tmp_path / "res", "--workers", "1", *LIBRARY], capsys)
    assert status == 0 and "2 solved, 0 failed" in stdout
    assert len(pq.read_table(tmp_path / "res" / "results.parquet")) == 2
