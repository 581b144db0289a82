"""The results table of a screening campaign or a watched directory: one row per input PDF file, kept so that a
crash loses no finished row and a rerun can tell what is done.

Layout of a results directory ``RESULTS``:

- ``RESULTS/.rows/<key>.json``: each input's latest row, written atomically the moment it is known (the source of
  truth; ``key`` is a hash of the input's absolute path);
- ``RESULTS/results.parquet``: every row as one table (columns :data:`SCHEMA`), rewritten atomically from the rows
  by :meth:`ResultsTable.flush`;
- ``RESULTS/<name>/``: each input's outputs (``candidates.csv``, ``rank_XX.xyz``, ``fit.png``, ``summary.json``).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

#: Columns of ``results.parquet``: input (absolute path), sha256 (of the file's bytes), status ("ok" or "error"),
#: error (type and message, else null), method, motif / n_atoms / element / rwp of the best candidate (null on
#: error), seconds (wall time of reading, solving and writing the outputs [s]), out_dir (absolute path), finished
#: (Unix time the row was made [s]).
SCHEMA = pa.schema([("input", pa.string()), ("sha256", pa.string()), ("status", pa.string()),
                    ("error", pa.string()), ("method", pa.string()), ("motif", pa.string()),
                    ("n_atoms", pa.int64()), ("element", pa.string()), ("rwp", pa.float64()),
                    ("seconds", pa.float64()), ("out_dir", pa.string()), ("finished", pa.float64())])
TABLE_NAME = "results.parquet"
ROWS_DIR = ".rows"


def ok_row(path: str, sha256: str, out_dir: str, summary: dict, seconds: float, finished: float) -> dict:
    """The row of a solved input from its :func:`pdfsolve.routes.write_outputs` summary."""
    best = summary["top"][0]
    return {"input": path, "sha256": sha256, "status": "ok", "error": None, "method": summary["method"],
            "motif": best["motif"], "n_atoms": int(best["n_atoms"]), "element": best["element"],
            "rwp": float(best["rwp"]), "seconds": seconds, "out_dir": out_dir, "finished": finished}


def error_row(path: str, sha256: str, out_dir: str, method: str, error: str, seconds: float,
              finished: float) -> dict:
    """The row of an input that failed with ``error`` (exception type and message)."""
    return {"input": path, "sha256": sha256, "status": "error", "error": error, "method": method, "motif": None,
            "n_atoms": None, "element": None, "rwp": None, "seconds": seconds, "out_dir": out_dir,
            "finished": finished}


def write_atomic(path: Path, write) -> None:
    """``write(tmp_path)``, then rename onto ``path``, so readers see the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


class ResultsTable:
    """The rows of a results directory (see the module docstring), loaded from its row files.

    Attributes:
        root: the results directory.
        rows: input path -> row (dict with the :data:`SCHEMA` columns).
    """

    def __init__(self, root):
        self.root = Path(root).resolve()
        self._row_dir = self.root / ROWS_DIR
        self._row_dir.mkdir(parents=True, exist_ok=True)
        self.rows = {}
        for file in sorted(self._row_dir.glob("*.json")):
            row = json.loads(file.read_text())
            self.rows[row["input"]] = row
        self._out_dirs = {row["input"]: row["out_dir"] for row in self.rows.values()}

    @property
    def table_path(self) -> Path:
        """``root/results.parquet``."""
        return self.root / TABLE_NAME

    def is_done(self, path: str, sha256: str) -> bool:
        """Whether ``path`` was solved without error from a file of this content hash."""
        row = self.rows.get(path)
        return row is not None and row["status"] == "ok" and row["sha256"] == sha256

    def out_dir(self, path: str) -> str:
        """The output directory of input ``path`` (absolute): that of its earlier row or earlier call, else
        ``root/<stem>``, else, when another input or the table has that name, ``root/<stem>-<hash of path>``."""
        if path not in self._out_dirs:
            taken = set(self._out_dirs.values()) | {str(self.root / n) for n in (ROWS_DIR, TABLE_NAME)}
            out = self.root / Path(path).stem
            if str(out) in taken:
                out = self.root / f"{out.name}-{hashlib.sha1(path.encode()).hexdigest()[:8]}"
            self._out_dirs[path] = str(out)
        return self._out_dirs[path]

    def record(self, row: dict) -> None:
        """Keep ``row`` as its input's row, on disk at once (replacing an earlier row of that input)."""
        key = hashlib.sha1(row["input"].encode()).hexdigest()[:16]
        write_atomic(self._row_dir / f"{key}.json", lambda tmp: tmp.write_text(json.dumps(row)))
        self.rows[row["input"]] = row

    def flush(self) -> Path:
        """Rewrite ``results.parquet`` from the rows (sorted by input path); returns its path."""
        table = pa.Table.from_pylist([self.rows[k] for k in sorted(self.rows)], schema=SCHEMA)
        write_atomic(self.table_path, lambda tmp: pq.write_table(table, tmp))
        return self.table_path
