"""`pdfsolve watch`: files solved as they arrive, never while being written, changed files again, one results
table with `pdfsolve screen`'s rows, a live summary."""
import threading
import time

import pyarrow.parquet as pq
import pytest
from conftest import run_cli

from pdfsolve.models.weights import file_sha256
from _measured import LIBRARY, write_pt13

INTERVAL = 0.2  # seconds between polls


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PDFSOLVE_CACHE", str(tmp_path / "cache"))


def write_slowly(path, text: str, pieces: int = 8, pause: float = INTERVAL / 2) -> None:
    """Write ``text`` to ``path`` in ``pieces`` appends, ``pause`` seconds apart (a detector writing a file)."""
    step = -(-len(text) // pieces)
    with open(path, "w") as f:
        for start in range(0, len(text), step):
            f.write(text[start:start + step])
            f.flush()
            time.sleep(pause)


def test_watch_solves_arriving_and_changed_files(tmp_path, cache, capsys):
    incoming, out = tmp_path / "incoming", tmp_path / "out"
    incoming.mkdir()
    texts = []
    for seed in range(3):
        write_pt13(seed, tmp_path / f"{seed}.gr")
        texts.append((tmp_path / f"{seed}.gr").read_text())

    def beamline():
        time.sleep(1.0)
        write_slowly(incoming / "a.gr", texts[0])  # still being written across several polls
        (incoming / "notes.txt").write_text("not matching the pattern")
        (incoming / "bad.gr").write_text("garbage\n")
        time.sleep(2.0)
        write_slowly(incoming / "a.gr", texts[1])  # changed: solved again

    thread = threading.Thread(target=beamline)
    thread.start()
    status, stdout, _ = run_cli(["watch", incoming, "-o", out, *LIBRARY, "--interval", INTERVAL, "--max-files", 3,
                                 "--timeout", 90], capsys)
    thread.join()
    assert status == 0 and "3 files solved" in stdout
    lines = [line for line in stdout.splitlines() if line.startswith(("a.gr", "bad.gr"))]
    assert len(lines) == 3 and lines[0].startswith("a.gr: ok icosahedral Pt13") and "PDFFileError" in lines[1]
    rows = {row["input"]: row for row in pq.read_table(out / "results.parquet").to_pylist()}
    assert set(rows) == {str(incoming / "a.gr"), str(incoming / "bad.gr")}
    # the last solve read the whole changed file
    assert rows[str(incoming / "a.gr")]["sha256"] == file_sha256(incoming / "a.gr")
    assert rows[str(incoming / "a.gr")]["status"] == "ok" and rows[str(incoming / "bad.gr")]["status"] == "error"
    page = (out / "summary.html").read_text()
    assert 'src="a/fit.png' in page and "bad.gr" in page and (out / "summary.png").stat().st_size > 0


def test_watch_resumes_without_solving_again(tmp_path, cache, capsys):
    incoming, out = tmp_path / "incoming", tmp_path / "out"
    incoming.mkdir()
    write_pt13(0, incoming / "a.gr")
    # `screen` and `watch` share the table: a file `screen` solved is not solved again
    from pdfsolve.screening.results import ResultsTable
    from pdfsolve.screening.task import solve_on_worker
    from pdfsolve.cli import build_parser

    args = build_parser().parse_args(["watch", str(incoming), "-o", str(out), *LIBRARY])
    table = ResultsTable(out)
    path = str(incoming / "a.gr")
    table.record(solve_on_worker(path, file_sha256(path), table.out_dir(path), args))
    write_pt13(1, incoming / "b.gr")
    status, stdout, _ = run_cli(["watch", incoming, "-o", out, *LIBRARY, "--interval", INTERVAL, "--max-files", 2,
                                 "--timeout", 4], capsys)
    assert status == 0 and "1 files solved" in stdout
    assert "b.gr: ok" in stdout and "a.gr" not in stdout


def test_watch_rejects_a_missing_directory(tmp_path, capsys):
    status, _, err = run_cli(["watch", tmp_path / "nowhere", "-o", tmp_path / "out"], capsys)
    assert status == 2 and "is not a directory" in err
