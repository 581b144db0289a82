"""Time per PDF of the CbLDM route against the number of sampler steps (1, 20, 50, 900 by default), split into
sampling (U-Net calls and decoding), recovery of coordinates and the shared screen/refine/rank loop.

    python benchmarks/cbldm_steps.py --weights WEIGHTS.pt --data DATA_DIR [--samples 100] [--steps 1 20 50 900]

One PDF of the dataset's test split is solved with ``--samples`` samples at each step count; the published code
needed about 900 sequential calls of a 157-million-parameter U-Net per sample and one PDF at a time.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from pdfsolve.datasets import read_split
from pdfsolve.datasets.parameters import DRAWN
from pdfsolve.models.weights import load_weights
from pdfsolve.routes import cbldm
from pdfsolve.target import Target


def first_test_target(data_dir) -> Target:
    """The first PDF of the test split as a :class:`Target` (its stored Q range and damping)."""
    data = read_split(data_dir, "test")
    qmin, qmax, qdamp = (float(data["drawn"][0, DRAWN.index(k)]) for k in ("qmin", "qmax", "qdamp"))
    return Target.from_arrays(data["r"], data["G"][0].astype(np.float64), qmin, qmax, qdamp)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", help="CbLDM weights (default: the shipped ones)")
    parser.add_argument("--data", required=True, help="dataset directory (its first test PDF is solved)")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 20, 50, 900])
    args = parser.parse_args(argv)
    model, _ = load_weights(args.weights, "cbldm")
    target = first_test_target(args.data)
    rows = []
    for steps in args.steps:
        torch.manual_seed(0)
        start = time.perf_counter()
        result = cbldm.solve(target, model, k=args.samples, steps=steps, n_refine=min(50, args.samples),
                             element="Au")
        total = time.perf_counter() - start
        rows.append({"steps": steps, "seconds": total, **result.seconds,
                     "best_rwp": float(result.refinement.rwp.min())})
        print(json.dumps(rows[-1]), flush=True)
    print(f"{'steps':>6s} {'total s':>8s} " + " ".join(f"{k:>8s}" for k in ("sample", "screen", "refine")))
    for row in rows:
        print(f"{row['steps']:>6d} {row['seconds']:8.2f} " + " ".join(f"{row.get(k, 0.0):8.2f}"
                                                                   for k in ("sample", "screen", "refine")))


if __name__ == "__main__":
    main()
