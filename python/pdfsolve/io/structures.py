"""Read atomic structures (any format ASE reads, every frame) and check them before a PDF calculation."""
from __future__ import annotations

from pathlib import Path

import ase
import ase.io
import numpy as np
from scipy.spatial import cKDTree

from ..engine.scattering import check_symbols

#: Atoms closer than this [Angstrom] are taken for duplicates.
MIN_DISTANCE = 0.1


class StructureFileError(ValueError):
    """A structure file that is missing, unreadable or holds an unusable structure; the message names it."""


def read_structures(paths, *, min_distance: float = MIN_DISTANCE, radiation: str = "xray") -> list[ase.Atoms]:
    """Read every frame of one or more structure files.

    Args:
        paths: a path or a list of paths (any format ``ase.io.read`` knows: xyz, extxyz, cif, pdb, ...).
        min_distance: atoms closer than this [Angstrom] are reported as coincident.
        radiation: every element must have a scattering factor for it ("xray" or "neutron").

    Returns:
        The structures, in file then frame order. Each has ``info["source"]`` (the file) and
        ``info["frame"]`` (its index in the file) set, and ``info["nframes"]`` (frames in the file).

    Raises:
        StructureFileError: a file is missing or unreadable, or a frame has no atoms, non-finite
            positions, elements without scattering factors, or two atoms closer than ``min_distance``.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    structures = []
    for path in map(Path, paths):
        frames = _read_frames(path)
        for k, atoms in enumerate(frames):
            where = f"{path}" if len(frames) == 1 else f"{path} (frame {k})"
            check_structure(atoms, where, min_distance=min_distance, radiation=radiation)
            atoms.info.update(source=str(path), frame=k, nframes=len(frames))
            structures.append(atoms)
    return structures


def check_structure(atoms: ase.Atoms, where: str, *, min_distance: float = MIN_DISTANCE,
                    radiation: str = "xray") -> None:
    """Raise StructureFileError (message starting with ``where``) when ``atoms`` is unusable for a PDF."""
    if len(atoms) == 0:
        raise StructureFileError(f"{where}: the structure has no atoms")
    pos = atoms.get_positions()
    bad = np.nonzero(~np.isfinite(pos).all(axis=1))[0]
    if len(bad):
        raise StructureFileError(f"{where}: atom {bad[0]} has a NaN or infinite position {pos[bad[0]].tolist()} "
                                 f"({len(bad)} atom(s) in all)")
    try:
        check_symbols(atoms.get_chemical_symbols(), radiation)
    except ValueError as exc:
        raise StructureFileError(f"{where}: {exc}") from exc
    pairs = cKDTree(pos).query_pairs(min_distance, output_type="ndarray")
    if len(pairs):
        d = np.linalg.norm(pos[pairs[:, 0]] - pos[pairs[:, 1]], axis=1)
        i, j = pairs[np.argmin(d)]
        raise StructureFileError(f"{where}: atoms {min(i, j)} and {max(i, j)} are {d.min():.4g} Angstrom apart "
                                 f"(coincident: closer than {min_distance} Angstrom; {len(pairs)} such pair(s))")


def _read_frames(path: Path) -> list[ase.Atoms]:
    """All frames of ``path`` via ``ase.io.read(path, index=":")``, errors turned into StructureFileError."""
    if not path.is_file():
        raise StructureFileError(f"{path}: no such file" if not path.exists() else f"{path}: not a regular file")
    if not path.read_bytes().strip():
        raise StructureFileError(f"{path}: the file is empty")
    try:
        frames = ase.io.read(path, index=":")
    except KeyError as exc:
        raise StructureFileError(f"{path}: cannot read it: unknown element symbol {exc.args[0]!r}") from exc
    except Exception as exc:  # ASE raises many types for unreadable or unknown formats
        raise StructureFileError(f"{path}: cannot read it as a structure file ({type(exc).__name__}: {exc})") \
            from exc
    if isinstance(frames, ase.Atoms):
        frames = [frames]
    if not frames:
        raise StructureFileError(f"{path}: the file holds no structure")
    return list(frames)
