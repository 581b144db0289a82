"""Cluster mining: refine every cluster of a library against a measured PDF and rank the fits by Rwp.

The published baseline (Banerjee et al. 2020, Kjaer et al. 2023): for each candidate of a motif library
refine scale, expansion and U_iso against the data, then rank by Rwp.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import ase
import ase.io

from ..structures import build_library
from ..structures.radii import METALS
from ..target import Target
from .ranking import POLISH, RankedCandidates, rank_candidates


def _cache_dir() -> Path:
    return Path(os.environ.get("PDFSOLVE_CACHE", Path.home() / ".cache" / "pdfsolve"))


#: Libraries this process has built or read, by cache file: a long-lived process (``pdfsolve watch``, a Dask
#: worker of ``pdfsolve screen``) reads each file once (about 1.2 s for 1000 clusters) instead of once per PDF.
_LOADED: dict[Path, list[ase.Atoms]] = {}


def cached_library(elements, min_atoms: int = 5, max_atoms: int = 200, scales=(1.0,),
                   cache_dir=None, client=None) -> list[ase.Atoms]:
    """:func:`pdfsolve.structures.build_library`, built once and then read from an extended-xyz cache.

    The cache file (in ``$PDFSOLVE_CACHE``, default ``~/.cache/pdfsolve``) is named by a hash of the
    arguments and written atomically (a temporary file per process, so concurrent workers never mix their
    writes), so an interrupted build leaves no partial library behind. The library is kept in memory after the
    first call in a process; every call returns fresh copies of its clusters. ``client``: a
    ``distributed.Client`` whose cluster generates the geometries when the library is built (see
    ``build_library``); the file is written here.
    """
    elements = tuple(sorted(elements))
    key = json.dumps([elements, min_atoms, max_atoms, list(scales)])
    path = Path(cache_dir or _cache_dir()) / f"library-{hashlib.sha256(key.encode()).hexdigest()[:16]}.extxyz"
    if path not in _LOADED:
        _LOADED[path] = ase.io.read(path, index=":") if path.exists() else _build(path, elements, min_atoms,
                                                                                   max_atoms, scales, client)
    return [atoms.copy() for atoms in _LOADED[path]]


def _build(path: Path, elements, min_atoms: int, max_atoms: int, scales, client) -> list[ase.Atoms]:
    """Build the library (on ``client``'s cluster when given) and write it to ``path`` atomically."""
    library = build_library(elements, min_atoms=min_atoms, max_atoms=max_atoms, scales=scales, client=client)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    ase.io.write(tmp, library, format="extxyz")
    os.replace(tmp, path)
    return library


def elements_from_composition(composition: str | None) -> list[str]:
    """The library metals named in a composition string such as ``"Au144S60C480"`` (empty if none)."""
    if not composition:
        return []
    symbols = set(re.findall(r"[A-Z][a-z]?", composition))
    return sorted(s for s in symbols if s in METALS)


def mine(target: Target, library, *, polish: int = POLISH, chunk_size: int = 512, callback=None) -> RankedCandidates:
    """Refine scale, expansion and U_iso of every library cluster against ``target``, delta2 too for the ``polish``
    best (:func:`pdfsolve.routes.ranking.rank_candidates`); rank by Rwp."""
    if not library:
        raise ValueError("the candidate library is empty")
    return rank_candidates(target, library, "mine", polish=polish, chunk_size=chunk_size, callback=callback)
