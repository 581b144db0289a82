"""``pdfsolve interpolate`` and ``pdfsolve latent-map``: the latent spaces of DeepStruc (see
:mod:`pdfsolve.routes.latent`) and of the distance route's CVAE and DAE
(:mod:`pdfsolve.routes.distance_interpolation`)."""
from __future__ import annotations

import argparse
from pathlib import Path

#: Models ``interpolate`` decodes.
INTERPOLATED = ("deepstruc", "cvae", "dae")


def add_parsers(subparsers) -> None:
    """Register ``interpolate`` and ``latent-map`` on the ``pdfsolve`` subparsers."""
    inter = subparsers.add_parser(
        "interpolate", help="decoded structures between the latent means of two PDFs (DeepStruc, CVAE, DAE)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Decode clusters at evenly spaced points of the line between the prior means (and, for "
                    "DeepStruc, PDF embeddings) of two PDFs and write them as frames of one extended-xyz file. "
                    "The distance models' frames are trilaterated and carry their distance residual, shortest "
                    "distance and whether they are physical (Anker, Kjaer et al. 2020, Figure 1).")
    inter.add_argument("inputs", nargs=2, metavar="INPUT.gr", help="the two PDF files G(r)")
    inter.add_argument("--method", choices=INTERPOLATED, default="deepstruc", help="the model")
    inter.add_argument("--weights", metavar="FILE",
                       help="best.pt of 'pdfsolve train METHOD' (default: the shipped weights)")
    inter.add_argument("--steps", type=int, default=8, help="structures along the line, both ends included")
    inter.add_argument("--element", default="Au", help="element of the decoded atoms")
    inter.add_argument("-o", "--out", required=True, metavar="OUT.extxyz", help="output structure file")
    latent = subparsers.add_parser(
        "latent-map", help="DeepStruc: the training set's latent means and the priors of PDFs",
        description="Draw the posterior means of a dataset's training clusters (coloured by motif, sized by N) and "
                    "each input PDF's prior mean with its 1-3 sigma ellipses, in the plane of the first two "
                    "principal axes of the means.")
    latent.add_argument("inputs", nargs="+", metavar="INPUT.gr", help="PDF file(s) G(r)")
    latent.add_argument("--weights", metavar="FILE",
                        help="best.pt of 'pdfsolve train deepstruc' (default: the shipped weights)")
    latent.add_argument("--data", metavar="DATA_DIR", help="dataset (default: the one the weights were trained on)")
    latent.add_argument("-o", "--out", required=True, metavar="MAP.png", help="output image")


def run_interpolate(args: argparse.Namespace) -> None:
    """Run ``pdfsolve interpolate``."""
    import ase.io

    from .models.weights import load_weights
    from .routes import distance_interpolation, latent
    from .structures.radii import METALS
    from .target import Target

    if args.element not in METALS:
        raise ValueError(f"no metallic radius for {args.element!r}; known metals: {' '.join(METALS)}")
    model, _ = load_weights(args.weights, args.method)
    a, b = (Target.from_file(path) for path in args.inputs)
    route = latent if args.method == "deepstruc" else distance_interpolation
    frames = route.interpolate(model, a, b, args.steps, args.element)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    ase.io.write(args.out, frames, format="extxyz")
    print(" ".join(f"t={f.info['t']:.2f}:N={len(f)}" + ("" if f.info.get("physical", True) else "(unphysical)")
                   for f in frames) + f" -> {args.out}")


def run_latent_map(args: argparse.Namespace) -> None:
    """Run ``pdfsolve latent-map``."""
    from .models.weights import load_weights
    from .routes.latent import save_latent_map
    from .target import Target
    from .training import ShardData

    model, config = load_weights(args.weights, "deepstruc")
    data = ShardData(args.data or config["data"], "train")
    targets = [Target.from_file(path) for path in args.inputs]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    save_latent_map(args.out, model, data, targets, [Path(p).stem for p in args.inputs])
    print(f"latent map of {len(data)} training clusters and {len(targets)} PDF(s) -> {args.out}")
