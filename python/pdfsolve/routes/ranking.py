"""What every route ends with: refine its candidate clusters against the target, rank them by Rwp, write the results.

A route (cluster mining, DeepStruc, ...) only proposes candidates (``ase.Atoms`` with labels in ``info``, at least
``"motif"``); :func:`rank_candidates` refines scale, expansion and U_iso of all of them with
:func:`pdfsolve.refine.refine`, polishes the best few by refining delta2 as well, and :func:`write_outputs` writes
the same files for every route.

Why the polish: correlated motion (delta2) sharpens the near-neighbour peaks of a measured PDF. Without it, a
cluster a few atoms smaller or larger than the true one (whose peak heights differ a little) often fits better; with
it, the true size wins (docs/refinement.md). Refining delta2 costs engine calls in every iteration, one per distinct
delta2 value (so about one per candidate), so only the ``polish`` best candidates of the first refinement get it.
"""
from __future__ import annotations

import csv
import json
import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import ase
import ase.io
import numpy as np
import torch

from ..plotting import save_fit_plot
from ..refine import RefinementResult, refine
from ..target import Target

#: Columns of ``candidates.csv``.
CSV_COLUMNS = ("rank", "method", "motif", "n_atoms", "element", "rwp", "scale", "expansion", "uiso", "delta2", "file")
#: Candidates of the first refinement (scale, expansion, U_iso) refined again with delta2 free too.
POLISH = 10
#: Levenberg-Marquardt iterations and relative tolerance of the polish: it decides a ranking, not the last digit
#: of a fit (on 40 test PDFs the same atom counts as 40 iterations and 1e-8, in 55 % of the time).
POLISH_MAX_ITER, POLISH_TOL = 15, 1e-5
#: Names of the refined parameters kept in a ranked structure's ``info`` and written to ``candidates.csv``.
REFINED = ("rwp", "scale", "expansion", "uiso", "delta2")


@dataclass
class RankedCandidates:
    """Candidates of one target, refined and ranked.

    Attributes:
        target: the :class:`Target` fitted.
        candidates: the proposed clusters, in the route's order.
        refinement: per-candidate refined parameters (:class:`pdfsolve.refine.RefinementResult`).
        order: (B,) candidate indices by increasing Rwp.
        method: the route that proposed the candidates ("mine", "deepstruc", ...; "all" for a merged ranking, where
            each candidate's ``info["method"]`` names its route).
        seconds: wall time of each stage [s] (the route's own stages, then "refine" and "polish").
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
        for name in REFINED:
            atoms.info[name] = float(getattr(self.refinement, name)[k])
        return atoms


def rank_candidates(target: Target, candidates, method: str, *, polish: int = POLISH, chunk_size: int = 512,
                    callback=None, seconds: dict | None = None) -> RankedCandidates:
    """Refine scale, expansion and U_iso of every candidate against ``target``, then refine the ``polish`` best again
    with delta2 [Angstrom^2] free too (0: no polish); rank by Rwp.

    A polished fit replaces the first one only where its Rwp is lower (both start afresh, so the polish could land
    in a worse local minimum). ``seconds``: the route's stage times [s], to which "refine" and "polish" are added.
    """
    candidates = list(candidates)
    if not candidates:
        raise ValueError(f"{method}: there are no candidate structures to refine")
    if polish < 0:
        raise ValueError(f"polish must be >= 0, got {polish}")
    seconds = dict(seconds or {})
    start = time.perf_counter()
    result = refine(candidates, target, chunk_size=chunk_size, callback=callback)
    seconds["refine"] = time.perf_counter() - start
    if polish:
        start = time.perf_counter()
        best = np.argsort(result.rwp.cpu().numpy(), kind="stable")[:polish]
        polished = refine([candidates[k] for k in best], target, refine_delta2=True, max_iter=POLISH_MAX_ITER,
                          tol=POLISH_TOL, chunk_size=chunk_size)
        result = _with_rows(result, torch.as_tensor(best), polished)
        seconds["polish"] = time.perf_counter() - start
    order = np.argsort(result.rwp.cpu().numpy(), kind="stable")
    return RankedCandidates(target, candidates, result, order, method, seconds)


def _padded(positions: torch.Tensor, width: int) -> torch.Tensor:
    """(B, N, 3) refined positions padded with zero atoms to (B, width, 3)."""
    return torch.nn.functional.pad(positions, (0, 0, 0, width - positions.shape[1]))


def _with_rows(result: RefinementResult, index: torch.Tensor, other: RefinementResult) -> RefinementResult:
    """``result`` with row ``index[j]`` replaced by row j of ``other`` where that row's Rwp is lower."""
    better = other.rwp < result.rwp[index]
    rows, index = torch.nonzero(better).flatten(), index[better.cpu()].to(result.rwp.device)
    values = {"r": result.r, "engine_calls": result.engine_calls + other.engine_calls}
    for item in dataclasses.fields(RefinementResult):
        if item.name in values:
            continue
        column, replacement = getattr(result, item.name).clone(), getattr(other, item.name)[rows]
        if item.name == "positions":  # other's clusters are padded to its own widest
            replacement = _padded(replacement, column.shape[1])
        column[index] = replacement.to(column.dtype)
        values[item.name] = column
    return RefinementResult(**values)


def _concatenated(refinements: list[RefinementResult]) -> RefinementResult:
    """The refinements of several candidate sets as one (positions padded to the widest)."""
    width = max(ref.positions.shape[1] for ref in refinements)
    values = {}
    for item in dataclasses.fields(RefinementResult):
        parts = [getattr(ref, item.name) for ref in refinements]
        if item.name == "positions":
            parts = [_padded(p, width) for p in parts]
        values[item.name] = (sum(parts) if item.name == "engine_calls" else parts[0] if item.name == "r"
                             else torch.cat(parts))
    return RefinementResult(**values)


def merge_ranked(results: list[RankedCandidates]) -> RankedCandidates:
    """One ranking by Rwp of the candidates of several routes, each refined against the same target; every
    candidate (a copy) names its route in ``info["method"]``; stage times are keyed "route/stage"."""
    if not results:
        raise ValueError("no rankings to merge")
    candidates, seconds = [], {}
    for result in results:
        for atoms in result.candidates:
            atoms = atoms.copy()
            atoms.info.setdefault("method", result.method)
            candidates.append(atoms)
        seconds.update({f"{result.method}/{stage}": t for stage, t in result.seconds.items()})
    refinement = _concatenated([result.refinement for result in results])
    order = np.argsort(refinement.rwp.cpu().numpy(), kind="stable")
    return RankedCandidates(results[0].target, candidates, refinement, order, "all", seconds)


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
            "rank": rank, "method": atoms.info.get("method", result.method), "motif": atoms.info.get("motif", ""), "n_atoms": len(atoms),
            "element": "".join(sorted(set(atoms.get_chemical_symbols()))), "rwp": f"{float(ref.rwp[k]):.6f}",
            "scale": f"{float(ref.scale[k]):.6g}", "expansion": f"{float(ref.expansion[k]):.6f}",
            "uiso": f"{float(ref.uiso[k]):.6g}", "delta2": f"{float(ref.delta2[k]):.6g}",
            "file": f"rank_{rank:02d}.xyz" if rank <= top else "",
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
