"""Plots of PDFs G(r) with matplotlib's Agg canvas (no display, no pyplot state)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

#: Figure size [inches] and resolution [dots per inch] of saved plots.
FIGSIZE = (8.0, 4.5)
DPI = 150
R_LABEL = r"$r$ ($\mathrm{\AA}$)"
G_LABEL = r"$G(r)$ ($\mathrm{\AA}^{-2}$)"


def _numpy(values) -> np.ndarray:
    """A 1-D float64 array from a numpy array, list or torch tensor."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=np.float64).reshape(-1)


def new_axes(title: str | None = None):
    """A fresh Agg-backed figure of FIGSIZE with one axes, labelled r [Angstrom] and G(r) [1/Angstrom^2]."""
    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="tight")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_xlabel(R_LABEL)
    ax.set_ylabel(G_LABEL)
    if title:
        ax.set_title(title)
    return ax


def plot_pdf(ax, r, G, label: str | None = None, data=None):
    """Draw G(r) on ``ax`` (a new figure's axes when None) and return the axes.

    Args:
        ax: matplotlib axes, or None.
        r: (n,) r [Angstrom].
        G: (n,) G(r) [1/Angstrom^2] (numpy or torch).
        label: legend entry of the curve.
        data: measured PDF to draw underneath as black points: a :class:`pdfsolve.io.PDFData` or an
            ``(r, G)`` pair.
    """
    ax = ax if ax is not None else new_axes()
    if data is not None:
        r_data, g_data = (data.r, data.G) if hasattr(data, "G") else data
        name = Path(data.source).name if getattr(data, "source", None) else "data"
        ax.plot(_numpy(r_data), _numpy(g_data), "o", ms=2, mfc="none", color="0.2", label=name, zorder=1)
    ax.plot(_numpy(r), _numpy(G), lw=1.2, label=label, zorder=2)
    ax.axhline(0.0, color="0.7", lw=0.6, zorder=0)
    if ax.get_legend_handles_labels()[1]:
        ax.legend(fontsize="small", frameon=False)
    return ax


def save_pdf_plot(path, results, title: str | None = None, data=None) -> Path:
    """Plot several PDFs on one axes and save the figure (format from the extension, e.g. PNG, PDF, SVG).

    Args:
        path: output image file.
        results: a list of ``(r, G, label)`` with r [Angstrom] and G [1/Angstrom^2].
        title: figure title.
        data: optional measured PDF drawn underneath (see :func:`plot_pdf`).

    Returns the path written.
    """
    path = Path(path)
    if not results:
        raise ValueError("save_pdf_plot: nothing to plot")
    ax = new_axes(title)
    for k, (r, g, label) in enumerate(results):
        plot_pdf(ax, r, g, label=label, data=data if k == 0 else None)
    ax.set_xlim(float(min(_numpy(r)[0] for r, _, _ in results)), float(max(_numpy(r)[-1] for r, _, _ in results)))
    ax.figure.savefig(path)
    return path


def save_fit_plot(path, r, g_obs, g_calc, rwp: float, label: str = "fit", title: str | None = None) -> Path:
    """The figure of a refinement, as in the papers: data (points), fit (line), and the difference
    G_obs - G_calc offset below the curves; Rwp in the legend.

    Args:
        path: output image file.
        r: (n,) r [Angstrom]; g_obs, g_calc: (n,) G(r) [1/Angstrom^2].
        rwp: the fit's Rwp (dimensionless), shown in the legend.
        label: name of the fitted model.
    """
    r, g_obs, g_calc = _numpy(r), _numpy(g_obs), _numpy(g_calc)
    ax = new_axes(title)
    diff = g_obs - g_calc
    offset = min(g_obs.min(), g_calc.min()) - 1.2 * np.abs(diff).max() - 0.05 * np.ptp(g_obs)
    ax.plot(r, g_obs, "o", ms=2, mfc="none", color="0.2", label="data", zorder=1)
    ax.plot(r, g_calc, lw=1.2, color="C3", label=f"{label} (Rwp = {rwp:.3f})", zorder=2)
    ax.plot(r, diff + offset, lw=0.9, color="C2", label="difference", zorder=2)
    ax.axhline(offset, color="0.7", lw=0.6, zorder=0)
    ax.set_xlim(r[0], r[-1])
    ax.legend(fontsize="small", frameon=False)
    path = Path(path)
    ax.figure.savefig(path)
    return path
