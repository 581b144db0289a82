"""The distance route's reproduction table (Anker, Kjaer et al. 2020) on a dataset's test split.

For every test PDF the model decodes its prior mean, the distances are trilaterated in one batch and scaled by the
first shell (:mod:`pdfsolve.routes.cvae`, with each cluster's own element). The PDF of the reconstruction is
simulated with the dataset's parameters and compared with the input PDF, both on the model's r grid and each
scaled to max|G| = 1: MSE (mean over the grid of the squared difference) and Pearson r, mean +- standard deviation
over the clusters, the fraction with the true atom count and the fraction physical (no atoms closer than 1.5
Angstrom); also the MSE of the PDFs standardised to zero mean and unit variance, the normalisation the study's
values fit (their MSE is close to 2 (1 - Pearson), which only standardised curves obey). "Refined": the same after
pdfsolve's refinement (scale, expansion, U_iso) against the input.

The satellite trade-off: the test clusters' exact unit-sphere distances plus Gaussian noise of the model's RMS
distance error, trilaterated with 4, 11 and 100 satellites: aligned MAE [Angstrom] and seconds per structure.

Usage: python benchmarks/distance_route.py DATA_DIR cvae=RUN/best.pt dae=RUN/best.pt [--noise 0.02] [--json OUT.json]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import ase
import numpy as np
import torch

from pdfsolve.datasets import read_split
from pdfsolve.datasets.parameters import ParameterRanges
from pdfsolve.engine import simulate_pdf
from pdfsolve.metrics import aligned_mae, pearson
from pdfsolve.models.inputs import resample_pdf
from pdfsolve.models.losses import first_atoms_mask
from pdfsolve.models.unit_sphere import distance_features, ordered_unit_sphere, satellites
from pdfsolve.models.weights import load_model
from pdfsolve.reconstruct.trilateration import trilaterate
from pdfsolve.refine import refine
from pdfsolve.routes.cvae import to_clusters
from pdfsolve.routes.sampling import MIN_DISTANCE, closest_distance
from pdfsolve.structures.radii import bond_length
from pdfsolve.target import Target
from pdfsolve.training import ShardData


def standardised(g: torch.Tensor) -> torch.Tensor:
    """(B, n) PDFs moved to zero mean and unit variance (population variance) along the grid."""
    return (g - g.mean(1, keepdim=True)) / g.std(1, correction=0, keepdim=True)


def scores(r, g_obs, g_calc, grid) -> dict:
    """MSE and Pearson of (B, nr) PDFs on ``grid``, both at max|G| = 1 ("mse") and both standardised ("mse
    standardised" = 2 (1 - Pearson) per cluster): mean and std over the clusters."""
    a, b = resample_pdf(r, g_obs.double(), grid), resample_pdf(r, g_calc.double(), grid)
    values = {"mse": ((a - b) ** 2).mean(1), "mse standardised": ((standardised(a) - standardised(b)) ** 2).mean(1),
              "pearson": pearson(a, b)}
    return {k: [float(v.mean()), float(v.std())] for k, v in values.items()}


def reconstruct(model, decoded, elements):
    """(ase clusters, coordinates (B, n_max, 3) [Angstrom], trilateration seconds per structure) of decodings."""
    started = time.perf_counter()
    pos, _ = to_clusters(decoded, model.points, torch.tensor([bond_length(el) for el in elements]))
    seconds = (time.perf_counter() - started) / len(elements)
    atoms = [ase.Atoms([el] * int(n), positions=p[:int(n)].numpy())
             for el, n, p in zip(elements, decoded.n_atoms, pos)]
    return atoms, pos, seconds


@torch.no_grad()
def evaluate(model, data: ShardData, elements, ranges: ParameterRanges) -> dict:
    """The table's row of one model (see the module doc); "from the encoder": the same for the posterior means of
    the true clusters (the decoder's own error, no prior)."""
    y = model.pdf_input(data.r, data.g)
    decoded = model.decoded(model.prior(y)[0], torch.zeros(len(y)))
    atoms, pos, seconds = reconstruct(model, decoded, elements)
    params = ranges.pdf_parameters(ranges.draw(np.random.default_rng(0)))
    targets = [Target.from_arrays(data.r, row.double().numpy(), params.qmin, params.qmax, params.qdamp)
               for row in data.g]
    refined = refine(atoms, targets)
    nodes, _, _, n, _ = model.features(data.pos, first_atoms_mask(data.n_atoms, data.pos.shape[1]))
    encoded = model.decoded(model.posterior(nodes, n, y)[0], torch.zeros(len(y)))
    closest = closest_distance(pos, first_atoms_mask(decoded.n_atoms, pos.shape[1]))
    return {"as decoded": scores(data.r, data.g, simulate_pdf(atoms, params, mode="fast").G, model.grid),
            "refined": scores(torch.as_tensor(targets[0].r), torch.stack([t.g for t in targets]), refined.g_calc,
                              model.grid),
            "from the encoder": scores(data.r, data.g, simulate_pdf(reconstruct(model, encoded, elements)[0], params,
                                                                    mode="fast").G, model.grid),
            "exact atom count": float((decoded.n_atoms == data.n_atoms).double().mean()),
            "exact atom count from the encoder": float((encoded.n_atoms == data.n_atoms).double().mean()),
            "physical": float((closest >= MIN_DISTANCE).double().mean()),
            "trilateration seconds per structure": seconds}


def load_test_split(path) -> tuple[ShardData, list[str], ParameterRanges]:
    """The test split of the dataset at ``path``, each cluster's element and the dataset's PDF parameters."""
    elements = [json.loads(label)["elements"] for label in read_split(path, "test")["labels"]]
    ranges = json.loads((Path(path) / "manifest.json").read_text())["ranges"]
    return ShardData(path, "test"), elements, ParameterRanges(**ranges)


def satellite_tradeoff(data: ShardData, noise: float, counts=(4, 11, 100), seed: int = 0) -> dict:
    """Aligned MAE [Angstrom] and seconds per structure of trilaterating noisy exact distances (module doc)."""
    out = {}
    for p in counts:
        points = satellites(p)
        x, n, radius = ordered_unit_sphere(data.pos, first_atoms_mask(data.n_atoms, data.pos.shape[1]), points)
        mask = first_atoms_mask(n, x.shape[1])
        pair, to_points = distance_features(x, mask, points)
        gen = torch.Generator().manual_seed(seed)
        pair = (pair + noise * torch.randn(pair.shape, generator=gen, dtype=pair.dtype)).clamp(min=0)
        pair = torch.triu(pair, 1) + torch.triu(pair, 1).transpose(1, 2)
        to_points = (to_points + noise * torch.randn(to_points.shape, generator=gen, dtype=pair.dtype)).clamp(min=0)
        started = time.perf_counter()
        result = trilaterate(pair, to_points, points, mask)
        seconds = (time.perf_counter() - started) / len(n)
        mae = [aligned_mae((result.x[b, :int(n[b])] * radius[b]).numpy(), (x[b, :int(n[b])] * radius[b]).numpy())
               for b in range(len(n))]
        out[str(p)] = {"aligned MAE": [float(np.mean(mae)), float(np.std(mae))], "seconds per structure": seconds}
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data")
    parser.add_argument("models", nargs="+", metavar="NAME=WEIGHTS")
    parser.add_argument("--noise", type=float, default=0.0, help="unit-sphere distance noise of the trade-off")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    data, elements, ranges = load_test_split(args.data)
    table = {}
    for item in args.models:
        name, path = item.split("=", 1)
        model, _ = load_model(path)
        table[name] = evaluate(model.double(), data, elements, ranges)
        print(name, json.dumps(table[name]), flush=True)
    table["satellites"] = satellite_tradeoff(data, args.noise)
    print("satellites", json.dumps(table["satellites"]), flush=True)
    if args.json:
        open(args.json, "w").write(json.dumps(table, indent=2))
    return table


if __name__ == "__main__":
    main()
