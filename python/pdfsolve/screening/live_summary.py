"""The live summary of a results directory: ``summary.png`` (best Rwp and motif of each solved file over time) and
``summary.html`` (the latest fit, that plot and the latest rows; the page reloads itself every few seconds)."""
from __future__ import annotations

import html
import time
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..plotting import DPI
from .results import ResultsTable, write_atomic

#: Rows listed on the page, newest first.
PAGE_ROWS = 20
#: Seconds between the page's reloads in a browser.
RELOAD_SECONDS = 2


def write_live_summary(table: ResultsTable) -> Path:
    """Rewrite ``summary.png`` and ``summary.html`` in ``table.root`` (each atomically) from the rows; returns the
    page's path."""
    rows = sorted(table.rows.values(), key=lambda row: row["finished"])
    write_atomic(table.root / "summary.png", lambda tmp: _history_figure(rows).savefig(tmp, format="png"))
    page = table.root / "summary.html"
    write_atomic(page, lambda tmp: tmp.write_text(_page(rows, table.root)))
    return page


def _history_figure(rows: list[dict]) -> Figure:
    """Rwp (top) and motif (bottom) of each row against the time it finished [s since the first row]; failed
    inputs appear as red crosses on a motif line 'error'."""
    fig = Figure(figsize=(8.0, 5.0), dpi=DPI, layout="tight")
    FigureCanvasAgg(fig)
    ax_rwp, ax_motif = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    start = rows[0]["finished"] if rows else 0.0
    ok = [row for row in rows if row["status"] == "ok"]
    t_ok = np.array([row["finished"] - start for row in ok])
    ax_rwp.plot(t_ok, [row["rwp"] for row in ok], "o-", ms=4)
    ax_rwp.set_ylabel("best Rwp")
    ax_rwp.set_title(f"{len(ok)} solved, {len(rows) - len(ok)} failed")
    motifs = sorted({row["motif"] for row in ok}) + ["error"]
    ax_motif.scatter(t_ok, [motifs.index(row["motif"]) for row in ok], s=16)
    failed = [row["finished"] - start for row in rows if row["status"] != "ok"]
    ax_motif.scatter(failed, [len(motifs) - 1] * len(failed), marker="x", color="red", s=24)
    ax_motif.set_yticks(range(len(motifs)), motifs)
    ax_motif.set_xlabel("time since the first result (s)")
    return fig


def _page(rows: list[dict], root: Path) -> str:
    """The HTML page: latest fit, history plot, latest rows."""
    stamp = int(time.time())
    latest = next((row for row in reversed(rows) if row["status"] == "ok"), None)
    fit = ""
    if latest is not None:
        fit_png = Path(latest["out_dir"]).relative_to(root) / "fit.png"
        fit = (f"<h2>Latest fit: {html.escape(Path(latest['input']).name)}</h2>"
               f'<img src="{html.escape(fit_png.as_posix())}?{stamp}" width="640">')
    cells = ("input", "status", "motif", "n_atoms", "element", "rwp", "seconds", "error")
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(row, name))}</td>" for name in cells) + "</tr>"
                   for row in reversed(rows[-PAGE_ROWS:]))
    header = "".join(f"<th>{name}</th>" for name in cells)
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><meta http-equiv="refresh" '
            f'content="{RELOAD_SECONDS}"><title>pdfsolve watch</title></head><body>'
            f"<h1>pdfsolve: {len(rows)} files</h1>{fit}<h2>Rwp and motif over time</h2>"
            f'<img src="summary.png?{stamp}" width="640"><h2>Latest results</h2>'
            f'<table border="1" cellpadding="3"><tr>{header}</tr>{body}</table></body></html>')


def _cell(row: dict, name: str) -> str:
    """A row's value as table text (file name for the input, 3 decimals for Rwp and seconds)."""
    value = row[name]
    if value is None:
        return ""
    if name == "input":
        return Path(value).name
    return f"{value:.3f}" if name in ("rwp", "seconds") else str(value)
