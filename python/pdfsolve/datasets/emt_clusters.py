"""Metal clusters relaxed with ASE's EMT potential, with every intermediate structure: the property-targeted data
of the fingerprint route (Fung et al. 2022 built theirs the same way with DFT for Pt10).

Each relaxation starts from a random geometry (atoms drawn one at a time, uniformly in a ball, at least
``min_distance`` from each other) and runs BFGS to a force of ``fmax``; the start, every step and the final local
minimum are kept. Energies are formation energies per atom against bulk fcc of the same element under EMT:

    E_f = E_cluster / N - E_bulk    [eV/atom],

E_bulk the EMT energy per atom of the fcc crystal at its EMT lattice constant (:func:`bulk_energy`).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.optimize import BFGS
from scipy.optimize import minimize_scalar

#: Elements ASE's EMT parametrises.
EMT_ELEMENTS = ("Al", "Cu", "Ag", "Au", "Ni", "Pd", "Pt")


def _check_element(element: str) -> None:
    if element not in EMT_ELEMENTS:
        raise ValueError(f"EMT has no parameters for {element!r}; known: {' '.join(EMT_ELEMENTS)}")


def fcc_energy(element: str, a: float) -> float:
    """EMT energy per atom [eV/atom] of the fcc crystal of ``element`` with cubic lattice constant ``a`` [Angstrom]."""
    crystal = bulk(element, "fcc", a=a)
    crystal.calc = EMT()
    return float(crystal.get_potential_energy()) / len(crystal)


@functools.lru_cache(maxsize=None)
def bulk_energy(element: str = "Pt") -> tuple[float, float]:
    """(E_bulk [eV/atom], a [Angstrom]): the fcc crystal's EMT energy per atom at the lattice constant minimising
    it (bounded scalar search over 0.8-1.2 times ASE's reference lattice constant, to 1e-6 Angstrom)."""
    _check_element(element)
    a0 = bulk(element, "fcc").cell.cellpar()[0] * math.sqrt(2.0)  # primitive cell edge -> cubic constant
    res = minimize_scalar(lambda a: fcc_energy(element, a), bounds=(0.8 * a0, 1.2 * a0), method="bounded",
                          options={"xatol": 1e-6})
    return float(res.fun), float(res.x)


def formation_energy(energy, n_atoms, element: str = "Pt"):
    """E / N - E_bulk [eV/atom] of clusters of total EMT energy ``energy`` [eV] and ``n_atoms`` atoms."""
    return np.asarray(energy, dtype=np.float64) / np.asarray(n_atoms, dtype=np.float64) - bulk_energy(element)[0]


def random_cluster(n_atoms: int, rng: np.random.Generator, radius: float, min_distance: float,
                   max_tries: int = 10000) -> np.ndarray:
    """(n_atoms, 3) positions [Angstrom] drawn one at a time uniformly in a ball of ``radius`` [Angstrom], each
    redrawn until it is at least ``min_distance`` [Angstrom] from those before. ValueError when ``max_tries``
    draws do not place an atom (the ball is too small)."""
    pos = np.zeros((0, 3))
    while len(pos) < n_atoms:
        for _ in range(max_tries):
            u = rng.normal(size=3)
            p = u / np.linalg.norm(u) * radius * rng.random() ** (1.0 / 3.0)
            if len(pos) == 0 or np.linalg.norm(pos - p, axis=1).min() >= min_distance:
                pos = np.vstack([pos, p])
                break
        else:
            raise ValueError(f"could not place {n_atoms} atoms {min_distance} Angstrom apart in a ball of radius "
                             f"{radius} Angstrom")
    return pos


def relax(positions: np.ndarray, element: str = "Pt", fmax: float = 0.05, steps: int = 300):
    """Relax a cluster with EMT and BFGS: (positions (T, N, 3) [Angstrom], energies (T,) [eV], converged) of the
    start and every step, the last the local minimum when ``converged`` (else the structure after ``steps``)."""
    atoms = Atoms(element * len(positions), positions=positions)
    atoms.calc = EMT()
    frames, energies = [], []

    def keep():
        frames.append(atoms.positions.copy())
        energies.append(float(atoms.get_potential_energy()))

    opt = BFGS(atoms, logfile=None)
    opt.attach(keep, interval=1)
    converged = bool(opt.run(fmax=fmax, steps=steps))
    return np.stack(frames), np.asarray(energies), converged


@dataclass
class EMTClusters:
    """Structures of N-atom clusters of one element.

    positions : (M, N, 3) [Angstrom]; energy : (M,) formation energy per atom [eV/atom] (module docstring);
    relaxation : (M,) index of the relaxation each structure comes from; minimum : (M,) bool, True on the last
    structure of a relaxation that converged (a local minimum).
    """

    positions: np.ndarray
    energy: np.ndarray
    relaxation: np.ndarray
    minimum: np.ndarray


def build_clusters(n_atoms: int, n_structures: int, element: str = "Pt", seed: int = 0, fmax: float = 0.05,
                   steps: int = 300, min_distance: float = 2.2, radius: float | None = None,
                   progress=None) -> EMTClusters:
    """Relaxations from random starts until at least ``n_structures`` structures are kept (module docstring).

    radius : of the ball of random starts [Angstrom]; default 1.3 times that of a close-packed ball of N atoms
    at the EMT bulk nearest-neighbour distance. progress : optional callable(kept) after each relaxation.
    """
    _check_element(element)
    if n_atoms < 2 or n_structures < 1:
        raise ValueError(f"need n_atoms >= 2 and n_structures >= 1, got {n_atoms}, {n_structures}")
    if radius is None:
        bond = bulk_energy(element)[1] / math.sqrt(2.0)
        radius = 1.3 * (3.0 * n_atoms / (4.0 * math.pi * math.sqrt(2.0))) ** (1.0 / 3.0) * bond
    rng = np.random.default_rng(seed)
    frames, energies, runs, minima, kept, k = [], [], [], [], 0, 0
    while kept < n_structures:
        pos, e, converged = relax(random_cluster(n_atoms, rng, radius, min_distance), element, fmax, steps)
        frames.append(pos)
        energies.append(e)
        runs.append(np.full(len(e), k))
        minima.append(np.arange(len(e)) == len(e) - 1 if converged else np.zeros(len(e), bool))
        kept, k = kept + len(e), k + 1
        if progress is not None:
            progress(kept)
    return EMTClusters(np.concatenate(frames), formation_energy(np.concatenate(energies), n_atoms, element),
                       np.concatenate(runs), np.concatenate(minima))
