"""Time per PDF of the CbLDM route against the number of sampler steps: 1, 20 and 50 from the accelerated start
(at most t1 = 400 steps remain after it) and 900 from pure noise (the published sampler's count), split into
sampling + recovery of coordinates ("sample"), screening and refinement.

    python benchmarks/cbldm_steps.py --data DATA_DIR [--weights WEIGHTS.pt] [--samples 50]

One PDF of the dataset's test split is solved with ``--samples`` samples at each setting; the published code needed
about 900 sequential calls of a 157-million-parameter U-Net per sample and one PDF at a time.
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

#: (start, sampler steps) timed.
SETTINGS = (("prior", 1), ("prior", 20), ("prior", 50), ("noise", 900))


def first_test_target(data_dir) -> Target:
    """The first PDF of the test split as a :class:`Target` (its stored Q range and damping)."""
    data = read_split(data_dir, "test")
    qmin, qmax, qdamp = (float(data["drawn"][0, DRAWN.index(k)]) for k in ("qmin", "qmax", "qdamp"))
    return Target.from_arrays(data["r"], data["G"][0].astype(np.float64), qmin, qmax, qdamp)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", help="CbLDM weights (default: the shipped ones)")
    parser.add_argument("--data", required=True, help="dataset directory (its first test PDF is solved)")
    parser.add_argument("--samples", type=int, default=50)
    args = parser.parse_args(argv)
    model, _ = load_weights(args.weights, "cbldm")
    target = first_test_target(args.data)
    rows = []
    for start, steps in SETTINGS:
        torch.manual_seed(0)
        begin = time.perf_counter()
        result = cbldm.solve(target, model, k=args.samples, steps=steps, start=start,
                             n_refine=min(50, args.samples), element="Au")
        total = time.perf_counter() - begin
        rows.append({"start": start, "steps": steps, "seconds": total, **result.seconds,
                     "best_rwp": float(result.refinement.rwp.min())})
        print(json.dumps(rows[-1]), flush=True)
    print(f"{'start':>6s} {'steps':>6s} {'total s':>8s} " + " ".join(f"{k:>8s}" for k in ("sample", "screen", "refine")))
    for row in rows:
        print(f"{row['start']:>6s} {row['steps']:>6d} {row['seconds']:8.2f} "
              + " ".join(f"{row.get(k, 0.0):8.2f}" for k in ("sample", "screen", "refine")))


if __name__ == "__main__":
    main()
