"""Cluster mining: refine every cluster of a library against a measured PDF and rank the fits by Rwp.

The published baseline (Banerjee et al. 2020, Kjaer et al. 2023): for each candidate of a motif library
refine scale, expansion and U_iso against the data, then rank by Rwp.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import ase
import ase.io
import numpy as np
import torch

from ..plotting import save_fit_plot
from ..refine import RefinementResult, refine
from ..structures import build_library
from ..structures.radii import METALS
from ..target import Target

#: Columns of ``candidates.csv``.
CSV_COLUMNS = ("rank", "motif", "n_atoms", "element", "rwp", "scale", "expansion", "uiso", "file")


def _cache_dir() -> Path:
    return Path(os.environ.get("PDFSOLVE_CACHE", Path.home() / ".cache" / "pdfsolve"))


def cached_library(elements, min_atoms: int = 5, max_atoms: int = 200, scales=(1.0,),
                   cache_dir=None) -> list[ase.Atoms]:
    """:func:`pdfsolve.structures.build_library`, built once and then read from an extended-xyz cache.

    The cache file (in ``$PDFSOLVE_CACHE``, default ``~/.cache/pdfsolve``) is named by a hash of the
    arguments and written atomically, so an interrupted build leaves no partial library behind.
    """
    elements = tuple(sorted(elements))
    key = json.dumps([elements, min_atoms, max_atoms, list(scales)])
    path = Path(cache_dir or _cache_dir()) / f"library-{hashlib.sha256(key.encode()).hexdigest()[:16]}.extxyz"
    if path.exists():
        return ase.io.read(path, index=":")
    library = build_library(elements, min_atoms=min_atoms, max_atoms=max_atoms, scales=scales)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    ase.io.write(tmp, library, format="extxyz")
    os.replace(tmp, path)
    return library


def elements_from_composition(composition: str | None) -> list[str]:
    """The library metals named in a composition string such as ``"Au144S60C480"`` (empty if none)."""
    if not composition:
        return []
    symbols = set(re.findall(r"[A-Z][a-z]?", composition))
    return sorted(s for s in symbols if s in METALS)


@dataclass
class MiningResult:
    """Candidates of one target, refined and ranked.

    Attributes:
        target: the :class:`Target` fitted.
        candidates: the library clusters, in library order.
        refinement: per-candidate refined parameters (:class:`pdfsolve.refine.RefinementResult`).
        order: (B,) candidate indices by increasing Rwp.
    """

    target: Target
    candidates: list
    refinement: RefinementResult
    order: np.ndarray

    def ranked_structure(self, rank: int) -> ase.Atoms:
        """The candidate at ``rank`` (0 = best) with its refined (centred, expanded) coordinates [Angstrom]."""
        k = int(self.order[rank])
        atoms = self.candidates[k].copy()
        atoms.positions = self.refinement.positions[k, : len(atoms)].cpu().numpy()
        for name in ("rwp", "scale", "expansion", "uiso"):
            atoms.info[name] = float(getattr(self.refinement, name)[k])
        return atoms


def mine(target: Target, library, *, chunk_size: int = 512, callback=None) -> MiningResult:
    """Refine scale, expansion and U_iso of every library cluster against ``target``; rank by Rwp."""
    if not library:
        raise ValueError("the candidate library is empty")
    result = refine(library, target, chunk_size=chunk_size, callback=callback)
    order = np.argsort(result.rwp.cpu().numpy(), kind="stable")
    return MiningResult(target, list(library), result, order)


def write_mining_outputs(result: MiningResult, out_dir, top: int = 5) -> dict:
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
                  label=label, title=source)
    summary = {"input": str(result.target.source) if result.target.source else None,
               "n_candidates": len(rows), "parameters": result.target.params.to_dict(),
               "top": rows[:top]}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
