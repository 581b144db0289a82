"""A dataset directory holding only the small clusters of one split of another, for ``pdfsolve evaluate`` of the
fingerprint route (whose model predicts at most ``max_atoms`` atoms) next to the other routes on the same PDFs.

OUT/SPLIT/shard_00000.h5 holds the split's PDFs of clusters of at most --max-atoms atoms (positions and numbers
trimmed to that width); OUT/manifest.json is the source's, and OUT/train links to the source's train split, so
that the scores' seen/unseen geometry split stays that of the source.

    python benchmarks/small_split.py out/deepstruc/data out/fingerprint/small20 --max-atoms 20
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import h5py
import numpy as np

from pdfsolve.datasets import read_split


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--max-atoms", type=int, default=20)
    parser.add_argument("--split", default="test")
    args = parser.parse_args(argv)
    data = read_split(args.source, args.split)
    keep = np.flatnonzero(data["n_atoms"] <= args.max_atoms)
    if len(keep) == 0:
        raise ValueError(f"no cluster of at most {args.max_atoms} atoms in the {args.split} split")
    (args.out / args.split).mkdir(parents=True, exist_ok=True)
    shutil.copy(args.source / "manifest.json", args.out / "manifest.json")
    if not (args.out / "train").exists():
        (args.out / "train").symlink_to((args.source / "train").resolve())
    with h5py.File(args.out / args.split / "shard_00000.h5", "w") as f:
        for key, value in data.items():
            if key == "r":
                f[key] = value
            elif key in ("positions", "numbers"):
                f[key] = value[keep, :args.max_atoms]
            else:
                f[key] = value[keep]
    print(f"{len(keep)} of {len(data['n_atoms'])} {args.split} PDFs ({args.max_atoms} atoms or fewer) in {args.out}")


if __name__ == "__main__":
    main()
