"""Error of the reconstruction solvers against noise on their input: ``python benchmarks/reconstruction_noise.py``.

Clusters of every motif (fcc, bcc, sc, hcp, icosahedral, decahedral, octahedral; 13-146 atoms, Au bond length)
are turned into each representation, Gaussian noise of a given relative level is added (symmetrised for
matrices), and the solver recovers coordinates. The error is the largest atom position error in Angstrom after the
best rotation, reflection and translation (trilateration: after mapping back from the unit sphere, no alignment),
worst over the clusters. Prints a Markdown table and writes docs/reconstruction_noise.png.

* trilateration: noise on the unit-sphere atom-atom and atom-satellite distances (4, 11, 100 satellites);
* Laplacian: noise on W (entries in [0, 1]) with sigma = sqrt(130) Angstrom, from both starts.
"""
import pathlib
import sys

import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from _clusters import aligned_errors, motif_clusters, padded  # noqa: E402

from pdfsolve.geometry import graph_laplacian, pair_distances, point_distances, sphere_points  # noqa: E402
from pdfsolve.reconstruct import laplacian_to_coordinates, to_unit_sphere, trilaterate  # noqa: E402

LEVELS = [0.0, 1e-4, 1e-3, 3e-3, 1e-2, 3e-2]


def symmetric_noise(shape, seed):
    n = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return (n + n.transpose(-1, -2)) / 2 if shape[-1] == shape[-2] else n


def curves():
    pos, mask = padded(motif_clusters(), rotate_seed=0)
    pair_mask = mask[:, :, None] & mask[:, None, :]
    unit, frame = to_unit_sphere(pos, mask)
    out = {}
    for n_sat in (4, 11, 100):
        sats = sphere_points(n_sat)
        pair, to_sat = pair_distances(unit, mask), point_distances(unit, sats, mask)
        row = []
        for k, lv in enumerate(LEVELS):
            res = trilaterate(pair + lv * symmetric_noise(pair.shape, k) * pair_mask,
                              to_sat + lv * symmetric_noise(to_sat.shape, 100 + k) * mask[..., None], sats, mask)
            row.append(float(((frame.to_angstrom(res.x) - pos).norm(dim=-1) * mask).max()))
        out[f"trilateration, {n_sat} satellites"] = row
    w = graph_laplacian(pos, mask=mask, form="affinity")
    for start in ("eigenmap", "mds"):
        row = []
        for k, lv in enumerate(LEVELS):
            res = laplacian_to_coordinates(w + lv * symmetric_noise(w.shape, k) * pair_mask, mask=mask, start=start)
            row.append(float(aligned_errors(res.x, pos, mask).max()))
        out[f"Laplacian, {start} start"] = row
    return out


def main():
    results = curves()
    print("| solver | " + " | ".join(f"noise {lv:g}" for lv in LEVELS) + " |")
    print("|---" * (len(LEVELS) + 1) + "|")
    for name, row in results.items():
        print(f"| {name} | " + " | ".join(f"{e:.2g}" for e in row) + " |")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, row in results.items():
        ax.loglog(LEVELS[1:], row[1:], marker="o", label=name)
    ax.set_xlabel("relative noise on the representation")
    ax.set_ylabel("largest atom position error (Angstrom)")
    ax.set_title("Reconstruction error against input noise (7 motifs, 13-146 atoms)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = ROOT / "docs" / "reconstruction_noise.png"
    fig.savefig(path, dpi=120)
    print(f"plot: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
