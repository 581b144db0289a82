"""What every route ends with: refine its candidate clusters against the target, rank them by Rwp, write the results.

A route (cluster mining, DeepStruc, ...) only proposes candidates (``ase.Atoms`` with labels in ``info``, at least
``"motif"``); :func:`rank_candidates` refines scale, expansion and U_iso of all of them with
:func:`pdfsolve.refine.refine` and :func:`write_outputs` writes the same files for every route.
"""
from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import ase
import ase.io
import numpy as np

from ..plotting import save_fit_plot
from ..refine import RefinementResult, refine
from ..target import Target

#: Columns of ``candidates.csv``.
CSV_COLUMNS = ("rank", "motif", "n_atoms", "element", "rwp", "scale", "expansion", "uiso", "file")


@dataclass
class RankedCandidates:
    """Candidates of one target, refined and ranked.

    Attributes:
        target: the :class:`Target` fitted.
        candidates: the proposed clusters, in the route's order.
        refinement: per-candidate refined parameters (:class:`pdfsolve.refine.RefinementResult`).
        order: (B,) candidate indices by increasing Rwp.
        method: the route that proposed the candidates ("mine", "deepstruc", ...).
        seconds: wall time of each stage [s] (the route's own stages, then "refine").
    """

    target: Target
    candidates: list
    refinement: RefinementResult
    order: np.ndarray
    method: str
    seconds: dict = field(default_factory=dict)

    def ranked_structure(self, rank: int) -> ase.Atoms:
        """The candidate at ``rank`` (0 = best) with its refined (centred, expanded) coordinates [Angstrom]."""
        k = int(self.order[rank])
        atoms = self.candidates[k].copy()
        atoms.positions = self.refinement.positions[k, : len(atoms)].cpu().numpy()
        for name in ("rwp", "scale", "expansion", "uiso"):
            atoms.info[name] = float(getattr(self.refinement, name)[k])
        return atoms


def rank_candidates(target: Target, candidates, method: str, *, chunk_size: int = 512, callback=None,
                    seconds: dict | None = None) -> RankedCandidates:
    """Refine scale, expansion and U_iso of every candidate against ``target``; rank by Rwp.

    ``seconds``: the route's stage times [s], to which the refinement's is added.
    """
    candidates = list(candidates)
    if not candidates:
        raise ValueError(f"{method}: there are no candidate structures to refine")
    start = time.perf_counter()
    result = refine(candidates, target, chunk_size=chunk_size, callback=callback)
    order = np.argsort(result.rwp.cpu().numpy(), kind="stable")
    seconds = {**(seconds or {}), "refine": time.perf_counter() - start}
    return RankedCandidates(target, candidates, result, order, method, seconds)


def write_outputs(result: RankedCandidates, out_dir, top: int = 5) -> dict:
    """Write ``candidates.csv`` (every candidate, ranked), ``rank_01.xyz`` ... (the ``top`` best, refined),
    ``fit.png`` (data, best fit, difference) and ``summary.json`` into ``out_dir``; returns the summary."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ref = result.refinement
    rows = []
    for rank, k in enumerate(result.order, start=1):
        atoms = result.candidates[k]
        rows.append({
            "rank": rank, "motif": atoms.info.get("motif", ""), "n_atoms": len(atoms),
            "element": "".join(sorted(set(atoms.get_chemical_symbols()))), "rwp": f"{float(ref.rwp[k]):.6f}",
            "scale": f"{float(ref.scale[k]):.6g}", "expansion": f"{float(ref.expansion[k]):.6f}",
            "uiso": f"{float(ref.uiso[k]):.6g}", "file": f"rank_{rank:02d}.xyz" if rank <= top else "",
        })
    with open(out / "candidates.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    for rank in range(min(top, len(rows))):
        ase.io.write(out / f"rank_{rank + 1:02d}.xyz", result.ranked_structure(rank), format="extxyz")
    best = int(result.order[0])
    label = f"{rows[0]['motif']} {rows[0]['element']}{rows[0]['n_atoms']}"
    source = result.target.source.name if result.target.source else "target"
    save_fit_plot(out / "fit.png", result.target.r, result.target.g, ref.g_calc[best], float(ref.rwp[best]),
                  label=label, title=f"{source} ({result.method})")
    summary = {"input": str(result.target.source) if result.target.source else None, "method": result.method,
               "n_candidates": len(rows), "seconds": result.seconds, "parameters": result.target.params.to_dict(),
               "top": rows[:top]}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
