"""``pdfsolve dataset build``: the cluster library and its simulated PDFs, written as a resumable HDF5 dataset.

The library comes from :func:`pdfsolve.structures.build_library` (a preset or elements and a size range), the
PDFs from :func:`pdfsolve.datasets.build_dataset` (see there for the file layout). Rerunning the same command in
the same directory resumes an interrupted build (complete shards are kept); other settings there are refused.
With ``--scheduler`` or ``--workers`` both run on a Dask cluster (see docs/screening.md); the dataset is the same.
"""
from __future__ import annotations

import argparse
import contextlib

import numpy as np

#: --params choices: name -> (ParameterRanges attribute of pdfsolve.datasets, help text).
PARAMS = {
    "fixed": ("DEEPSTRUC_FIXED", "DeepStruc's fixed set: qmin 0.7, qmax 25, qdamp 0.04 [1/Angstrom], "
                                 "biso 0.3, delta2 2 [Angstrom^2], no rattling or noise"),
    "randomised": ("RANDOMISED", "drawn per cluster: qmin 0.5-1.5, qmax 18-28, qdamp 0.01-0.06 [1/Angstrom], "
                                 "biso 0.1-1.2, delta2 0-4 [Angstrom^2], scale 0.5-1.5, rattle 0-0.05 "
                                 "[Angstrom], noise 0-2 %% of max|G|"),
}
DEFAULT_MIN_ATOMS, DEFAULT_MAX_ATOMS = 5, 200


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``dataset`` (with its ``build`` subcommand) on the ``pdfsolve`` subparsers."""
    dataset = subparsers.add_parser(
        "dataset", help="build datasets of simulated PDFs for training",
        description="Datasets of simulated PDFs G(r) of a cluster library, stored as HDF5 shards with grouped "
                    "train/validation/test splits.")
    sub = dataset.add_subparsers(dest="dataset_command", required=True, metavar="ACTION")
    build = sub.add_parser(
        "build", help="build the library and write its simulated PDFs",
        description="Build the cluster library (fcc, bcc, sc, hcp, icosahedral, decahedral, octahedral and "
                    "stacking-faulted clusters, deduplicated, one copy per metal), simulate the PDF G(r) "
                    "[1/Angstrom^2] of every cluster on r = 0-30 Angstrom (step 0.01 Angstrom) and write "
                    "OUT/manifest.json and OUT/{train,validation,test}/shard_XXXXX.h5. An interrupted build "
                    "resumes when the same command is run again.")
    build.add_argument("-o", "--out", required=True, metavar="DIR", help="output directory")
    build.add_argument("--preset", choices=("deepstruc", "cbldm", "anker2020"),
                       help="the published library: deepstruc (28 metals, 5-200 atoms), cbldm (28 metals, "
                            "5-256 atoms) or anker2020 (fcc cuts of 2-8 layers under 100 atoms, 30 metals, 10 "
                            "lattice scales 0.99-1.01, split cluster by cluster); --element, --min-atoms and "
                            "--max-atoms then select a part of it")
    build.add_argument("--element", nargs="+", action="extend", metavar="EL",
                       help="metal(s) of the library (repeatable); default: every metal (with --preset: the "
                            "preset's 28)")
    build.add_argument("--min-atoms", type=int, metavar="N",
                       help=f"smallest cluster [atoms] (default: {DEFAULT_MIN_ATOMS}, with --preset the preset's)")
    build.add_argument("--max-atoms", type=int, metavar="N",
                       help=f"largest cluster [atoms] (default: {DEFAULT_MAX_ATOMS}, with --preset the preset's)")
    build.add_argument("--params", choices=PARAMS, default="fixed",
                       help="PDF parameters (default: fixed): "
                            + "; ".join(f"{k}: {v[1]}" for k, v in PARAMS.items()))
    build.add_argument("--seed", type=int, default=0,
                       help="seed of the split assignment and of every per-cluster draw (integer >= 0; "
                            "default: 0)")
    build.add_argument("--shard-size", type=int, default=1024, metavar="N",
                       help="clusters per HDF5 file (default: 1024)")
    build.add_argument("--fractions", type=float, nargs=3, default=[0.8, 0.1, 0.1],
                       metavar=("TRAIN", "VALIDATION", "TEST"),
                       help="fractions of the clusters in each split (dimensionless, sum 1; whole groups of the "
                            "same construction at a time; default: 0.8 0.1 0.1)")
    build.add_argument("--mode", choices=("fast", "exact"), default="fast",
                       help="Debye sum: 'fast' Gaussian gridding or the 'exact' pair sum (default: fast)")
    build.add_argument("--scheduler", metavar="ADDRESS",
                       help="address of a running Dask scheduler (tcp://host:port) whose workers generate the "
                            "library and write the shards (they must see OUT, e.g. on a shared file system); "
                            "default: this process alone")
    build.add_argument("--workers", type=int, metavar="N",
                       help="start a local Dask cluster of N worker processes (one thread each) for the build "
                            "(default: none, this process alone)")
    build.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    return dataset


def _check(args: argparse.Namespace) -> None:
    """ValueError for invalid arguments, before any slow work."""
    from .structures.radii import METALS

    for name in ("min_atoms", "max_atoms"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1 atom, got {value}")
    if args.min_atoms is not None and args.max_atoms is not None and args.min_atoms > args.max_atoms:
        raise ValueError(f"need --min-atoms <= --max-atoms, got {args.min_atoms} and {args.max_atoms}")
    unknown = sorted(set(args.element or ()) - set(METALS))
    if unknown:
        raise ValueError(f"no metallic radius for {unknown}; known metals: {' '.join(METALS)}")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    if args.shard_size < 1:
        raise ValueError(f"--shard-size must be >= 1 cluster, got {args.shard_size}")
    fractions = np.asarray(args.fractions, dtype=float)
    if not (np.isfinite(fractions).all() and (fractions >= 0).all() and np.isclose(fractions.sum(), 1.0)):
        raise ValueError(f"--fractions must be three non-negative numbers summing to 1, got {args.fractions}")
    if args.scheduler is not None or args.workers is not None:
        from .screening.campaign import check_cluster

        check_cluster(args.scheduler, args.workers)


def _client(args: argparse.Namespace):
    """A context giving the ``distributed.Client`` of ``--scheduler`` or of a local cluster of ``--workers``
    processes, or None (a serial build) when neither is given."""
    if args.scheduler is None and args.workers is None:
        return contextlib.nullcontext()
    from .screening.campaign import dask_client

    return dask_client(args.scheduler, args.workers)


def library(args: argparse.Namespace, client=None) -> list:
    """The clusters selected by ``--preset``, ``--element``, ``--min-atoms`` and ``--max-atoms`` (geometries generated
    on ``client``'s Dask cluster when given)."""
    from .structures import PRESETS, build_library

    if args.preset is None:
        lo = DEFAULT_MIN_ATOMS if args.min_atoms is None else args.min_atoms
        hi = DEFAULT_MAX_ATOMS if args.max_atoms is None else args.max_atoms
        if lo > hi:
            raise ValueError(f"need --min-atoms <= --max-atoms, got {lo} and {hi}")
        return build_library(args.element, min_atoms=lo, max_atoms=hi, client=client)
    preset = PRESETS[args.preset]
    outside = sorted(set(args.element or ()) - set(preset["elements"]))
    if outside:
        raise ValueError(f"the {args.preset} preset has no {outside}; its metals: {' '.join(preset['elements'])}")
    lo = preset["min_atoms"] if args.min_atoms is None else args.min_atoms
    hi = preset["max_atoms"] if args.max_atoms is None else args.max_atoms
    clusters = build_library(preset=args.preset, client=client)
    keep = set(args.element or preset["elements"])
    return [a for a in clusters if a.info["elements"] in keep and lo <= len(a) <= hi]


def run(args: argparse.Namespace) -> None:
    """Run ``pdfsolve dataset ACTION``."""
    from . import datasets

    _check(args)
    with _client(args) as client:
        if client is not None:
            print(f"dask: scheduler {client.scheduler.address}, {len(client.nthreads())} worker(s)")
        clusters = library(args, client)
        if not clusters:
            raise ValueError("the selection holds no clusters; widen --element, --min-atoms or --max-atoms")
        elements = sorted({a.info["elements"] for a in clusters})
        sizes = [len(a) for a in clusters]
        print(f"library: {len(clusters)} clusters, {len(elements)} metal(s) ({' '.join(elements)}), "
              f"{min(sizes)}-{max(sizes)} atoms" + (f", preset {args.preset}" if args.preset else ""))
        ranges = getattr(datasets, PARAMS[args.params][0])
        manifest = datasets.build_dataset(clusters, args.out, ranges, seed=args.seed,
                                          fractions=tuple(args.fractions), shard_size=args.shard_size,
                                          mode=args.mode, progress=args.progress, client=client)
    counts = ", ".join(f"{split} {n}" for split, n in manifest["counts"].items())
    n_shards = sum(len(s) for s in manifest["shards"].values())
    print(f"dataset: {manifest['n_structures']} PDFs ({counts}) in {n_shards} shard(s) -> {args.out}")
