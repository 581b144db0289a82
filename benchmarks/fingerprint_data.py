"""Build the EMT cluster set of the fingerprint route (docs/fingerprint_route.md): random Pt_N geometries relaxed
with EMT (every intermediate kept), formation energies per atom, pooled ACSF fingerprints and the farthest-point
order by fingerprint (its prefixes are the 300 / 3,000 / 30,000 training sets).

    OMP_NUM_THREADS=1 python benchmarks/fingerprint_data.py --atoms 10 --structures 60000 --out out/fingerprint/pt10.npz

The npz holds positions (M, N, 3) [Angstrom], energy (M,) [eV/atom], relaxation (M,), minimum (M,) bool,
fingerprint (M, 380) float32, fps_order (K,) and the settings.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from pdfsolve.datasets.emt_clusters import build_clusters, bulk_energy
from pdfsolve.datasets.farthest_point import farthest_point_order, sampling_features
from pdfsolve.geometry import pooled_acsf


def fingerprints(positions: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """(M, 380) float32 pooled ACSF (published parameters, max and min) of clusters (M, N, 3) [Angstrom]."""
    pos = torch.as_tensor(positions, dtype=torch.float64)
    return torch.cat([pooled_acsf(p) for p in pos.split(chunk)]).float().numpy()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--atoms", type=int, default=10)
    parser.add_argument("--element", default="Pt")
    parser.add_argument("--structures", type=int, default=60000, help="structures to keep (whole relaxations)")
    parser.add_argument("--fps", type=int, default=30000, help="length of the farthest-point order")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    started = time.perf_counter()
    bar = tqdm(total=args.structures, unit="structure")
    data = build_clusters(args.atoms, args.structures, args.element, args.seed,
                          progress=lambda kept: bar.update(kept - bar.n))
    bar.close()
    relaxed = time.perf_counter() - started
    fp = fingerprints(data.positions)
    order = farthest_point_order(sampling_features(fp), min(args.fps, len(fp)))
    settings = {"atoms": args.atoms, "element": args.element, "seed": args.seed, "fmax": 0.05, "optimizer": "BFGS",
                "bulk_energy_eV": bulk_energy(args.element)[0], "lattice_constant_A": bulk_energy(args.element)[1],
                "relax_seconds": relaxed, "total_seconds": time.perf_counter() - started}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, positions=data.positions, energy=data.energy, relaxation=data.relaxation,
             minimum=data.minimum, fingerprint=fp, fps_order=order, settings=json.dumps(settings))
    print(json.dumps({**settings, "structures": len(fp), "relaxations": int(data.relaxation.max()) + 1,
                      "minima": int(data.minimum.sum()), "energy_range": [float(data.energy.min()),
                                                                          float(data.energy.max())]}))


if __name__ == "__main__":
    main()
