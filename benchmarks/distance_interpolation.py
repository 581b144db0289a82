"""The distance route's latent interpolation figure (Anker, Kjaer et al. 2020, Figure 1) for the DAE and the CVAE.

Two test clusters of a dataset are picked and their PDFs written as .gr files. Each model decodes ``--steps``
clusters along two lines (:mod:`pdfsolve.routes.distance_interpolation`): between the prior means of the two PDFs
(what ``pdfsolve interpolate A.gr B.gr --method dae|cvae`` writes) and between the posterior (encoder) means of the
two clusters (the study's figure). One row per model and line shows the clusters (centred, projected on x-y on one
scale, coloured by height; red title: unphysical, atoms closer than 1.5 Angstrom), and a last panel the distance
residual [Angstrom] along each line.

Usage: python benchmarks/distance_interpolation.py DATA_DIR INDEX_A INDEX_B dae=WEIGHTS cvae=WEIGHTS
       [--steps 8] [--gr-dir DIR] [-o docs/distance_interpolation.png] [--json OUT.json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

sys.path.insert(0, str(Path(__file__).parent))
from distance_route import load_test_split  # noqa: E402

from pdfsolve.io import write_pdf  # noqa: E402
from pdfsolve.models.weights import load_model  # noqa: E402
from pdfsolve.models.losses import first_atoms_mask  # noqa: E402
from pdfsolve.routes.distance_interpolation import decode_line, interpolate  # noqa: E402
from pdfsolve.target import Target  # noqa: E402


def write_ends(data_dir, indices, folder: Path) -> tuple[list[Path], str]:
    """The test PDFs ``indices`` of the dataset as .gr files in ``folder`` and their (shared) element."""
    data, elements, ranges = load_test_split(data_dir)
    if len({elements[i] for i in indices}) != 1:
        raise ValueError(f"pick two PDFs of one element, got {[elements[i] for i in indices]}")
    folder.mkdir(parents=True, exist_ok=True)
    params = ranges.pdf_parameters(ranges.draw(np.random.default_rng(0)))
    paths = []
    for i in indices:
        path = folder / f"test{i}_{elements[i]}{int(data.n_atoms[i])}.gr"
        write_pdf(path, data.r.numpy(), data.g[i].double().numpy(), params)
        paths.append(path)
    return paths, elements[indices[0]]


@torch.no_grad()
def posterior_means(model, data, indices) -> list[torch.Tensor]:
    """The encoder's latent means (H,) of the test clusters ``indices``."""
    pos, n = data.pos[list(indices)], data.n_atoms[list(indices)]
    nodes, _, _, n, _ = model.features(pos, first_atoms_mask(n, pos.shape[1]))
    y = model.pdf_input(data.r, data.g[list(indices)])
    return list(model.posterior(nodes, n, y)[0])


def draw(rows: dict, path: Path) -> None:
    """One row of cluster projections per model and a panel of the residuals (module doc)."""
    steps = len(next(iter(rows.values())))
    fig = Figure(figsize=(1.6 * steps, 1.7 * len(rows) + 2.2), dpi=130, layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(len(rows) + 1, steps, height_ratios=[1.0] * len(rows) + [1.2])
    reach = max(float(abs(f.positions - f.positions.mean(0)).max()) for frames in rows.values() for f in frames)
    for row, (name, frames) in enumerate(rows.items()):
        for k, atoms in enumerate(frames):
            ax = fig.add_subplot(grid[row, k])
            xyz = atoms.positions - atoms.positions.mean(0)
            ax.scatter(xyz[:, 0], xyz[:, 1], c=xyz[:, 2], s=8, cmap="viridis", lw=0.3, edgecolors="k")
            ax.set_xlim(-1.05 * reach, 1.05 * reach)
            ax.set_ylim(-1.05 * reach, 1.05 * reach)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            info = atoms.info
            ax.set_title(f"t={info['t']:.2f} N={info['n_atoms']}\nd_min {info['closest']:.2f} A",
                         fontsize=7, color="k" if info["physical"] else "r")
            if k == 0:
                ax.set_ylabel(name, fontsize=8)
    ax = fig.add_subplot(grid[-1, :])
    for name, frames in rows.items():
        t = [f.info["t"] for f in frames]
        ax.plot(t, [f.info["residual"] for f in frames], "o-", label=f"{name} "
                f"({sum(f.info['physical'] for f in frames)}/{len(frames)} physical)")
    ax.set_xlabel("t along the line from A to B")
    ax.set_ylabel("distance residual [A]")
    ax.legend(fontsize=8, frameon=False)
    fig.savefig(path)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data")
    parser.add_argument("ends", nargs=2, type=int, metavar="INDEX", help="test-split indices of the two PDFs")
    parser.add_argument("models", nargs="+", metavar="NAME=WEIGHTS")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--gr-dir", default="out/anker2020/interpolation", help="where the two .gr files go")
    parser.add_argument("-o", "--out", default="docs/distance_interpolation.png")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    paths, element = write_ends(args.data, args.ends, Path(args.gr_dir))
    a, b = (Target.from_file(p) for p in paths)
    data = load_test_split(args.data)[0]
    rows = {}
    for item in args.models:
        name, weights = item.split("=", 1)
        model = load_model(weights)[0]
        rows[f"{name} prior"] = interpolate(model, a, b, args.steps, element)
        rows[f"{name} encoder"] = decode_line(model, *posterior_means(model, data, args.ends), args.steps, element)
    draw(rows, Path(args.out))
    summary = {name: [{k: f.info[k] for k in ("t", "n_atoms", "residual", "closest", "physical")} for f in frames]
               for name, frames in rows.items()} | {"ends": [str(p) for p in paths]}
    print(json.dumps(summary))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    main()
