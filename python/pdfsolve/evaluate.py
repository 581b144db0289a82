"""Evaluation of structure solution on simulated data with known answers.

:func:`evaluate_mining` draws clusters (from the library itself, or from separate test clusters such as a
dataset's test split), simulates "measured" PDFs of them with randomised instrument and sample parameters,
rattling and noise, solves each by cluster mining (:func:`pdfsolve.routes.mine.mine`) against the library and
scores the ranking: is a candidate with the right motif and exactly the right atom count at rank 1 (top 5)?
"""
from __future__ import annotations

import time
from collections import Counter, defaultdict

import numpy as np
import torch

from .engine import PDFParameters, simulate_pdf
from .target import Target

#: Uniform ranges of the simulated measurement: qmin, qmax, qdamp [1/Angstrom], biso [Angstrom^2], scale and
#: expansion (isotropic scaling of the cluster about its centroid) [dimensionless].
SIMULATION_RANGES = {"qmin": (0.7, 1.3), "qmax": (20.0, 26.0), "qdamp": (0.02, 0.05), "biso": (0.3, 0.8),
                     "scale": (0.5, 1.2), "expansion": (0.98, 1.02)}
#: r grid of the simulated data [Angstrom] (rmax exclusive).
R_GRID = (0.0, 30.0, 0.01)


def simulate_target(atoms, rng: np.random.Generator, rattle: float = 0.02, noise: float = 0.02,
                    ranges: dict | None = None, mode: str = "exact") -> tuple[Target, dict]:
    """A :class:`Target` from ``atoms`` with drawn parameters, rattling and noise; returns (target, drawn values).

    rattle: standard deviation of Gaussian displacements of every coordinate [Angstrom].
    noise: standard deviation of Gaussian noise added to G(r), relative to max|G| [dimensionless].
    ranges: overrides of :data:`SIMULATION_RANGES` (a number fixes a value).
    """
    spec = dict(SIMULATION_RANGES, **(ranges or {}))
    drawn = {k: float(v) if np.isscalar(v) else float(rng.uniform(*v)) for k, v in spec.items()}
    atoms = atoms.copy()
    atoms.positions = (atoms.positions - atoms.positions.mean(0)) * drawn["expansion"]
    if rattle > 0:
        atoms.positions += rng.normal(scale=rattle, size=atoms.positions.shape)
    rmin, rmax, rstep = R_GRID
    params = PDFParameters(rmin=rmin, rmax=rmax, rstep=rstep, qmin=drawn["qmin"], qmax=drawn["qmax"],
                           qdamp=drawn["qdamp"], biso=drawn["biso"], scale=drawn["scale"])
    result = simulate_pdf(atoms, params, mode=mode, dtype=torch.float64)
    g = result.G[0].double().cpu().numpy().copy()
    if noise > 0:
        g += rng.normal(scale=noise * np.abs(g).max(), size=g.shape)
    target = Target.from_arrays(result.r, g, drawn["qmin"], drawn["qmax"], drawn["qdamp"], rstep=rstep)
    return target, drawn


def _key(atoms) -> tuple[str, int]:
    return str(atoms.info.get("motif", "")), len(atoms)


def evaluate_mining(library, n_targets: int = 40, seed: int = 0, rattle: float = 0.02, noise: float = 0.02, *,
                    targets=None, top: int = 5, mode: str = "exact", ranges: dict | None = None,
                    chunk_size: int = 512, progress: bool = False) -> dict:
    """Score cluster mining on simulated PDFs of known clusters.

    Args:
        library: the candidate clusters (``ase.Atoms`` with ``info["motif"]``, e.g. from ``build_library``).
        n_targets: how many test clusters to draw (without replacement; all when fewer are available).
        seed: seeds the draw of the clusters and of every parameter, rattle and noise.
        rattle: [Angstrom] and noise [relative to max|G|]: see :func:`simulate_target`.
        targets: the clusters to draw from (e.g. a test split); default: the library itself.
        top: the "top k" of the ranking scored besides rank 1.
        mode: engine mode of the simulated data ("exact" pair sum, or "fast").
        ranges: overrides of :data:`SIMULATION_RANGES`.
        progress: print one line per target.

    Returns a dict: ``n_targets``; ``top1`` and ``top{top}``, the fractions with a candidate of the right motif
    and exactly the right atom count at rank 1 / within the first ``top`` ranks; ``top1_motif`` (right motif
    at rank 1, any size); ``mean_rwp`` and ``median_rwp`` of the best fit; ``per_motif`` ({motif: [n, top1
    hits]}); ``seconds`` (wall time) and ``results``, one dict per target (true motif, N and construction,
    drawn parameters, rank of the first right candidate (1-based; None when absent), best motif, N and Rwp).
    """
    from .routes.mine import mine

    library = list(library)
    pool = library if targets is None else list(targets)
    if not library or not pool:
        raise ValueError("the library and the test clusters must not be empty")
    if n_targets < 1:
        raise ValueError(f"n_targets must be >= 1, got {n_targets}")
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(pool), size=min(n_targets, len(pool)), replace=False)
    keys = [_key(a) for a in library]
    start = time.perf_counter()
    results = []
    for k, i in enumerate(picks):
        truth = pool[int(i)]
        target, drawn = simulate_target(truth, np.random.default_rng([seed, k]), rattle, noise, ranges, mode)
        mined = mine(target, library, chunk_size=chunk_size)
        order = [int(j) for j in mined.order]
        ranked_keys = [keys[j] for j in order]
        rank = next((r + 1 for r, key in enumerate(ranked_keys) if key == _key(truth)), None)
        best = library[order[0]]
        row = {"motif": _key(truth)[0], "n_atoms": len(truth), "construction": truth.info.get("construction"),
               "drawn": drawn, "rank": rank, "best_motif": _key(best)[0], "best_n_atoms": len(best),
               "best_construction": best.info.get("construction"),
               "rwp": float(mined.refinement.rwp[order[0]])}
        results.append(row)
        if progress:
            print(f"[{k + 1}/{len(picks)}] {row['motif']} N={row['n_atoms']}: rank {rank}, best {row['best_motif']} "
                  f"N={row['best_n_atoms']}, Rwp {row['rwp']:.3f} ({time.perf_counter() - start:.0f} s)", flush=True)
    ranks = [r["rank"] for r in results]
    per_motif: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in results:
        per_motif[r["motif"]][0] += 1
        per_motif[r["motif"]][1] += int(r["rank"] == 1)
    rwps = np.array([r["rwp"] for r in results])
    n = len(results)
    return {
        "n_targets": n,
        "top1": sum(r == 1 for r in ranks) / n,
        f"top{top}": sum(r is not None and r <= top for r in ranks) / n,
        "top1_motif": sum(r["best_motif"] == r["motif"] for r in results) / n,
        "mean_rwp": float(rwps.mean()),
        "median_rwp": float(np.median(rwps)),
        "per_motif": {m: v for m, v in sorted(per_motif.items())},
        "motifs_drawn": dict(Counter(r["motif"] for r in results)),
        "n_candidates": len(library),
        "rattle": rattle,
        "noise": noise,
        "seed": seed,
        "seconds": time.perf_counter() - start,
        "results": results,
    }


#: Atom-count bins of the per-size scores (CbLDM's table): (lo, hi] pairs, the first from lo = 5 inclusive.
SIZE_BINS = ((5, 80), (80, 170), (170, 256))


def size_bin(n_atoms: int) -> str:
    """The label "lo-hi" of the :data:`SIZE_BINS` bin holding ``n_atoms`` ("other" outside them all)."""
    for lo, hi in SIZE_BINS:
        if lo < n_atoms <= hi or n_atoms == lo == SIZE_BINS[0][0]:
            return f"{lo}-{hi}"
    return "other"


def _median(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.median(values)) if values else None


def summarise(rows: list[dict]) -> dict:
    """Scores of :func:`evaluate_split` rows: n, motif top-1, exact-N rate, median Rwp after refinement, median aligned
    MAE [Angstrom] (over the exact-N cases), failures (the solver raised) and mean seconds per PDF."""
    return {"n": len(rows), "motif_top1": float(np.mean([r["best_motif"] == r["motif"] for r in rows])),
            "exact_n": float(np.mean([r["best_n_atoms"] == r["n_atoms"] for r in rows])),
            "median_rwp": _median([r["rwp"] for r in rows]), "median_mae": _median([r["mae"] for r in rows]),
            "failed": sum(r["error"] is not None for r in rows),
            "seconds_per_pdf": float(np.mean([r["seconds"] for r in rows]))}


def evaluate_split(data_dir, solve, *, split: str = "test", n_targets: int | None = None, seed: int = 0,
                   progress: bool = False) -> dict:
    """Score a solver on the PDFs of a dataset split (``pdfsolve dataset build``), noise and drawn parameters as stored.

    Args:
        data_dir: dataset directory. solve: ``solve(target, element) -> RankedCandidates`` (any route; element: the
            symbol of the cluster's first atom).
        split: "train", "validation" or "test". n_targets: PDFs drawn (seeded, without replacement); None: all.
        progress: print one line per PDF.

    Returns ``{"total": summarise(rows), "per_motif": {motif: summarise(...)}, "per_size": {bin: summarise(...)}
    (:func:`size_bin`), "per_geometry": {"seen": ..., "unseen": ...}, "results": rows}``; a row holds the
    true motif and N, the best candidate's motif, N and Rwp, its aligned MAE [Angstrom] when N is exact (else None),
    the seconds taken, ``error``: the message when the solver raised ValueError (a miss; no Rwp or MAE), and
    ``seen_geometry``: whether a copy of its geometry (another metal or lattice scale) is in the train split
    (:func:`pdfsolve.datasets.splits.label_key`; datasets built before splits grouped such copies have them).
    """
    import json

    from ase.data import chemical_symbols

    from .datasets import read_split
    from .datasets.parameters import DRAWN
    from .datasets.splits import label_key
    from .metrics import aligned_mae

    data = read_split(data_dir, split)
    if not data:
        raise ValueError(f"{data_dir}: the {split} split holds no PDFs")
    n = len(data["n_atoms"])
    if n_targets is not None and n_targets < 1:
        raise ValueError(f"n_targets must be >= 1, got {n_targets}")
    picks = np.random.default_rng(seed).choice(n, size=min(n_targets or n, n), replace=False)
    q = [DRAWN.index(name) for name in ("qmin", "qmax", "qdamp")]
    trained = read_split(data_dir, "train", keys=("labels",)) if split != "train" else data
    seen = {label_key(json.loads(label)) for label in (trained["labels"] if trained else [])}
    rows = []
    for k, i in enumerate(picks):
        info = json.loads(data["labels"][i])
        element = chemical_symbols[int(data["numbers"][i, 0])]
        qmin, qmax, qdamp = (float(data["drawn"][i, j]) for j in q)
        target = Target.from_arrays(data["r"], data["G"][i].astype(np.float64), qmin, qmax, qdamp)
        n_atoms = int(data["n_atoms"][i])
        row = {"index": int(data["index"][i]), "motif": info.get("motif", ""), "n_atoms": n_atoms,
               "construction": info.get("construction"), "best_motif": None, "best_n_atoms": None, "rwp": None,
               "mae": None, "error": None, "seen_geometry": label_key(info) in seen}
        start = time.perf_counter()
        try:
            best = solve(target, element).ranked_structure(0)
        except ValueError as exc:  # e.g. no usable candidate: scored as a miss
            row["error"] = str(exc)
        else:
            row.update(best_motif=best.info.get("motif", ""), best_n_atoms=len(best), rwp=best.info["rwp"])
            if len(best) == n_atoms:
                row["mae"] = aligned_mae(best.positions, data["positions"][i, :n_atoms])
        row["seconds"] = time.perf_counter() - start
        rows.append(row)
        if progress:
            outcome = (f"failed: {row['error']}" if row["error"] else
                       f"best {row['best_motif']} N={row['best_n_atoms']}, Rwp {row['rwp']:.3f}"
                       + (f", MAE {row['mae']:.3f} Angstrom" if row["mae"] is not None else ""))
            print(f"[{k + 1}/{len(picks)}] {row['motif']} N={n_atoms}: {outcome} ({row['seconds']:.1f} s)", flush=True)
    motifs = sorted({r["motif"] for r in rows})
    bins = sorted({size_bin(r["n_atoms"]) for r in rows}, key=lambda b: int(b.split("-")[0]) if b != "other" else 1e9)
    return {"total": summarise(rows), "per_motif": {m: summarise([r for r in rows if r["motif"] == m]) for m in motifs},
            "per_size": {b: summarise([r for r in rows if size_bin(r["n_atoms"]) == b]) for b in bins},
            "per_geometry": {name: summarise(part) for name, flag in (("seen", True), ("unseen", False))
                             if (part := [r for r in rows if r["seen_geometry"] == flag])},
            "results": rows}
