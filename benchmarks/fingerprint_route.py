"""Property-targeted generation in fingerprint space (Fung et al. 2022) with EMT in place of DFT: the study's two
tables for pdfsolve (docs/fingerprint_route.md).

From the set of benchmarks/fingerprint_data.py: a surrogate MLP (5 x 256) trained on 90 % of all structures; for
each training-set size (prefixes of the farthest-point order, 10 % of each held out for validation) an
energy-conditioned cVAE (3 x 128, latent 25, beta 0.75, Adam 1e-3, batch 64). For each target energy:
``--generate`` fingerprints judged by the surrogate (table 1), ``--invert`` of them inverted in one batch
(:func:`pdfsolve.reconstruct.invert_fingerprint`, 8 starts, 3 hops, overlap penalty) and judged by EMT (table 2),
with and without the fingerprints whose inversion loss flags them invalid; and, as the inversion's reference,
real fingerprints of held-out structures near each target.

    OMP_NUM_THREADS=1 python benchmarks/fingerprint_route.py --data out/fingerprint/pt10.npz --out out/fingerprint/route
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase.calculators.emt import EMT

from pdfsolve.datasets.emt_clusters import formation_energy
from pdfsolve.models.fingerprint_cvae import FingerprintCVAE, FingerprintParams, FingerprintSurrogate
from pdfsolve.reconstruct import invert_fingerprint
from pdfsolve.training.arrays import ArrayData, fit

#: Training-set sizes and their epochs (the study: 2000 epochs for every size).
EPOCHS = {300: 1000, 3000: 150, 30000: 25}
SURROGATE_EPOCHS = 20
#: |E - target| counted as a hit [eV/atom]; inversion losses above INVALID flag a fingerprint.
TOLERANCE = 0.1
INVALID = (1e-3, 1e-2)


def split(rows: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """90 % / 10 % random split of ``rows``."""
    rows = np.random.default_rng(seed).permutation(rows)
    n_val = max(len(rows) // 10, 1)
    return rows[n_val:], rows[:n_val]


def arrays(data: dict, rows: np.ndarray) -> ArrayData:
    return ArrayData(data["fingerprint"][rows], data["energy"][rows])


def train(model, data: dict, rows: np.ndarray, epochs: int, beta: float):
    """Fit ``model`` on ``rows`` (scaler frozen on the training rows); returns the history."""
    fit_rows, val_rows = split(rows)
    model.scaler.fit(torch.as_tensor(data["fingerprint"][fit_rows]))
    return fit(model, arrays(data, fit_rows), arrays(data, val_rows), epochs=epochs, beta=beta)


def hits(energy: np.ndarray, target: float) -> dict:
    """MAE [eV/atom] and % within TOLERANCE of ``target`` (NaN when empty)."""
    err = np.abs(np.asarray(energy) - target)
    return {"n": int(err.size), "mae": float(err.mean()) if err.size else float("nan"),
            "within": 100.0 * float((err <= TOLERANCE).mean()) if err.size else float("nan")}


def emt_formation(x: torch.Tensor, element: str) -> np.ndarray:
    """Formation energies [eV/atom] of clusters (B, N, 3) [Angstrom] by EMT (single points)."""
    out = []
    for pos in x.numpy():
        atoms = Atoms(element * len(pos), positions=pos)
        atoms.calc = EMT()
        out.append(atoms.get_potential_energy())
    return formation_energy(np.asarray(out), x.shape[1], element)


def inverted(fingerprints: torch.Tensor, n_atoms: int, element: str) -> tuple[np.ndarray, np.ndarray, float]:
    """(EMT formation energies, inversion losses, seconds) of fingerprints (B, P)."""
    start = time.perf_counter()
    res = invert_fingerprint(fingerprints, n_atoms)
    seconds = time.perf_counter() - start
    return emt_formation(res.x, element), res.loss.numpy(), seconds


def reconstruction_rows(energy: np.ndarray, loss: np.ndarray, target: float) -> dict:
    """Table 2 entries: all reconstructions, the invalid fractions and the kept ones per threshold."""
    row = {"all": hits(energy, target)}
    for limit in INVALID:
        valid = loss <= limit
        row[f"invalid>{limit:g}"] = 100.0 * float((~valid).mean())
        row[f"kept<={limit:g}"] = hits(energy[valid], target)
    return row


def _cell(h: dict) -> str:
    return "-" if not h["n"] else f"{h['mae']:.3f} / {h['within']:.0f} % (n {h['n']})"


def markdown(report: dict) -> str:
    """The report's tables in Markdown: per target and training-set size, the surrogate's and EMT's
    MAE [eV/atom] / % within TOLERANCE, the invalid fractions and the kept fingerprints' scores."""
    sizes = list(report["tables"])
    lines = ["Table 1 (surrogate on generated fingerprints): MAE [eV/atom] / % within +-0.1 eV/atom", "",
             "| target [eV/atom] | " + " | ".join(f"n_train {s}" for s in sizes) + " |",
             "|---" * (len(sizes) + 1) + "|"]
    for t in report["tables"][sizes[0]]["targets"]:
        lines.append(f"| {t} | " + " | ".join(_cell(report["tables"][s]["targets"][t]["surrogate"]) for s in sizes)
                     + " |")
    lines += ["", "Table 2 (EMT of the reconstructed structures): MAE [eV/atom] / % within +-0.1 eV/atom; invalid: "
              "% of fingerprints with an inversion loss above the limit; kept: the others", "",
              "| n_train | target | all | invalid > 1e-3 | kept (loss <= 1e-3) | invalid > 1e-2 "
              "| kept (loss <= 1e-2) |",
              "|---|---|---|---|---|---|---|"]
    for s in sizes:
        for t, row in report["tables"][s]["targets"].items():
            e = row["emt"]
            lines.append(f"| {s} | {t} | {_cell(e['all'])} | {e['invalid>0.001']:.0f} % | {_cell(e['kept<=0.001'])} "
                         f"| {e['invalid>0.01']:.0f} % | {_cell(e['kept<=0.01'])} |")
    lines += ["", "Reference: real fingerprints of held-out structures nearest each target, inverted and EMT-checked",
              "", "| target | true energies | reconstructed | invalid > 1e-3 |", "|---|---|---|---|"]
    for t, row in report["reference"].items():
        lines.append(f"| {t} | {_cell(row['true'])} | {_cell(row['all'])} | {row['invalid>0.001']:.0f} % |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--targets", type=int, default=5, help="targets between the 5 and 95 %% energy quantiles")
    parser.add_argument("--generate", type=int, default=3000, help="fingerprints per target for the surrogate")
    parser.add_argument("--invert", type=int, default=16, help="fingerprints per target inverted and EMT-checked")
    parser.add_argument("--reference", type=int, default=4, help="held-out real fingerprints inverted per target")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(EPOCHS), choices=list(EPOCHS))
    parser.add_argument("--epoch-scale", type=float, default=1.0, help="multiplies every epoch count (smoke runs)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    with np.load(args.data) as z:
        data = {k: z[k] for k in z.files}
    settings = json.loads(str(data["settings"]))
    n_atoms, element = settings["atoms"], settings["element"]
    order = data["fps_order"]
    pool = np.setdiff1d(np.arange(len(data["energy"])), order)  # never in a training set
    targets = np.round(np.linspace(*np.quantile(data["energy"][order], [0.05, 0.95]), args.targets), 2)
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"settings": settings, "targets": targets.tolist(), "epoch_scale": args.epoch_scale,
              "epochs": EPOCHS, "tables": {}}

    surrogate = FingerprintSurrogate(FingerprintParams())
    fit_rows, test_rows = split(np.arange(len(data["energy"])), seed=1)
    train(surrogate, data, fit_rows, max(round(SURROGATE_EPOCHS * args.epoch_scale), 1), beta=0.0)
    with torch.no_grad():
        pred = surrogate.eval()(torch.as_tensor(data["fingerprint"][test_rows])).numpy()
    report["surrogate_test_mae"] = float(np.abs(pred - data["energy"][test_rows]).mean())
    print(json.dumps({"surrogate_test_mae": report["surrogate_test_mae"]}), flush=True)

    reference = {}
    for t in targets:
        near = pool[np.argsort(np.abs(data["energy"][pool] - t))[:args.reference]]
        e, loss, _ = inverted(torch.as_tensor(data["fingerprint"][near], dtype=torch.float64), n_atoms, element)
        reference[f"{t:g}"] = {"true": hits(data["energy"][near], t), **reconstruction_rows(e, loss, t)}
    report["reference"] = reference

    generator = torch.Generator().manual_seed(0)
    for size in args.sizes:
        rows, epochs = order[:size], max(round(EPOCHS[size] * args.epoch_scale), 1)
        cvae = FingerprintCVAE(FingerprintParams())
        started = time.perf_counter()
        history = train(cvae, data, rows, epochs, beta=0.75)
        cvae.eval()
        c = cvae.embed_energy(torch.as_tensor(targets, dtype=torch.float32))
        generated = cvae.sample(c, args.generate, generator)  # (T, n, P)
        with torch.no_grad():
            judged = surrogate(generated.reshape(-1, generated.shape[-1])).reshape(len(targets), -1).numpy()
        e, loss, seconds = inverted(generated[:, :args.invert].reshape(-1, generated.shape[-1]), n_atoms, element)
        e, loss = e.reshape(len(targets), -1), loss.reshape(len(targets), -1)
        table = {f"{t:g}": {"surrogate": hits(judged[i], t), "emt": reconstruction_rows(e[i], loss[i], t)}
                 for i, t in enumerate(targets)}
        report["tables"][str(size)] = {"train_seconds": time.perf_counter() - started - seconds,
                                       "invert_seconds_per_structure": seconds / e.size,
                                       "val_loss": min(h["val_loss"] for h in history), "targets": table}
        torch.save(cvae.state_dict(), args.out / f"cvae_{size}.pt")
        print(json.dumps({"size": size, **report["tables"][str(size)]}), flush=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=1))
    (args.out / "tables.md").write_text(markdown(report))


if __name__ == "__main__":
    main()
