"""Bimetallic decoration of a cluster: random alloy and core-shell. Positions are left unchanged."""
from __future__ import annotations

import ase
import numpy as np
from scipy.spatial import ConvexHull, QhullError


def _relabel(atoms: ase.Atoms, symbols: list[str], arrangement: str) -> ase.Atoms:
    out = atoms.copy()
    out.set_chemical_symbols(symbols)
    out.info.update(elements=",".join(sorted(set(symbols))), arrangement=arrangement)
    return out


def random_alloy(atoms: ase.Atoms, element: str, fraction: float, seed: int = 0) -> ase.Atoms:
    """A copy with round(fraction N) randomly chosen atoms replaced by ``element`` (reproducible by ``seed``)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    symbols = atoms.get_chemical_symbols()
    picked = np.random.default_rng(seed).choice(len(atoms), int(round(fraction * len(atoms))), replace=False)
    for i in picked:
        symbols[i] = element
    return _relabel(atoms, symbols, f"random_alloy_{element}{fraction:g}_seed{seed}")


def surface_shells(positions: np.ndarray, tol: float = 0.1) -> np.ndarray:
    """(N,) shell index of each atom: 0 for the convex-hull surface, 1 for the surface left after removing it, ...

    tol: an atom within tol [Angstrom] of a hull facet plane belongs to that surface.
    """
    shell = np.full(len(positions), -1)
    left = np.arange(len(positions))
    k = 0
    while len(left):
        try:
            hull = ConvexHull(positions[left])
            height = (positions[left] @ hull.equations[:, :3].T + hull.equations[:, 3]).max(1)
            on_surface = height > -tol
        except QhullError:  # fewer than 4 atoms or all coplanar: they are the last shell
            on_surface = np.ones(len(left), dtype=bool)
        shell[left[on_surface]] = k
        left = left[~on_surface]
        k += 1
    return shell


def core_shell(atoms: ase.Atoms, shell_element: str, *, radius: float | None = None,
               n_shells: int | None = None) -> ase.Atoms:
    """A copy whose outer part is ``shell_element``.

    Exactly one of: ``radius`` [Angstrom], atoms farther than it from the centroid are shell; ``n_shells``, the
    outermost n convex-hull layers (see :func:`surface_shells`) are shell.
    """
    if (radius is None) == (n_shells is None):
        raise ValueError("give exactly one of radius and n_shells")
    pos = atoms.get_positions()
    if radius is not None:
        outer = np.linalg.norm(pos - pos.mean(0), axis=1) > radius
        how = f"core_shell_{shell_element}_r{radius:g}"
    else:
        outer = surface_shells(pos) < n_shells
        how = f"core_shell_{shell_element}_n{n_shells}"
    symbols = [shell_element if o else s for o, s in zip(outer, atoms.get_chemical_symbols())]
    return _relabel(atoms, symbols, how)
