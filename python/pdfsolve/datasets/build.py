"""Build a dataset of simulated PDFs into HDF5 shards: resumable, reproducible, grouped splits.

Layout of ``OUT``::

    manifest.json                 parameters, seed, split fractions, counts, shard plan
    train/shard_00000.h5 ...      one file per ``shard_size`` clusters of a split
    validation/..., test/...

Each shard holds ``positions`` (n, N_max, 3) float32 [Angstrom, centred, after rattling], ``numbers``
(n, N_max) int16 atomic numbers (0 on padding), ``n_atoms`` (n,), ``r`` (nr,) [Angstrom], ``G`` (n, nr)
float32 [1/Angstrom^2], ``drawn`` (n, 8) float32 (columns :data:`DRAWN`), ``labels`` (JSON of each
cluster's ``atoms.info``), ``group`` (split group keys) and ``index`` (position in the input list).
A shard is written to a temporary file and renamed when complete, so an interrupted build loses at most
the shard in progress and a rerun with the same arguments resumes after the last complete shard.
Every random draw of cluster ``i`` comes from ``numpy.random.default_rng([seed, i])``: the result does
not depend on where a build was interrupted, nor on whether the shards were built here or as tasks on a Dask
cluster (``client``), each sent only its own clusters and written by its worker.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np
import torch
from ase.data import atomic_numbers
from tqdm.auto import tqdm

from ..engine.debye import simulate_pdf
from .parameters import DRAWN, ParameterRanges
from .splits import SPLITS, assign_splits, group_key

FORMAT_VERSION = 1


def _plan(structures, ranges: ParameterRanges, seed: int, fractions, shard_size: int) -> dict:
    keys = [group_key(a) for a in structures]
    split_of = assign_splits(keys, fractions, seed)
    shards = {}
    for k, name in enumerate(SPLITS):
        members = np.nonzero(split_of == k)[0].tolist()
        shards[name] = [members[i:i + shard_size] for i in range(0, len(members), shard_size)]
    return {"format_version": FORMAT_VERSION, "seed": seed, "fractions": list(fractions), "ranges": ranges.to_dict(),
            "n_structures": len(structures), "counts": {s: int((split_of == k).sum()) for k, s in enumerate(SPLITS)},
            "shards": shards, "keys": keys}


def _simulate(structures, index, ranges: ParameterRanges, seed: int, mode: str, dtype):
    """Positions after rattling, G with noise, and the drawn values of the clusters at ``index``."""
    draws, atoms_list = [], []
    for i in index:
        rng = np.random.default_rng([seed, i])
        drawn = ranges.draw(rng)
        atoms = structures[i].copy()
        atoms.positions -= atoms.positions.mean(0)
        if drawn["rattle"] > 0:
            atoms.positions += rng.normal(scale=drawn["rattle"], size=atoms.positions.shape)
        draws.append((drawn, rng))
        atoms_list.append(atoms)
    if ranges.is_fixed:  # one parameter set: the whole shard in one batched call
        res = simulate_pdf(atoms_list, ranges.pdf_parameters(draws[0][0]), mode=mode, dtype=dtype)
        r, g = res.r, res.G.double().numpy()
    else:
        rows = []
        for atoms, (drawn, _) in zip(atoms_list, draws):
            res = simulate_pdf(atoms, ranges.pdf_parameters(drawn), mode=mode, dtype=dtype)
            rows.append(res.G[0].double().numpy())
        r, g = res.r, np.stack(rows)
    for k, (drawn, rng) in enumerate(draws):
        if drawn["noise"] > 0:
            g[k] += rng.normal(scale=drawn["noise"] * np.abs(g[k]).max(), size=g.shape[1])
    return atoms_list, r, g, np.array([[d[n] for n in DRAWN] for d, _ in draws], dtype=np.float32)


def _write_shard(path: Path, atoms_list, index, keys, r, g, drawn) -> None:
    n_max = max(len(a) for a in atoms_list)
    positions = np.zeros((len(atoms_list), n_max, 3), dtype=np.float32)
    numbers = np.zeros((len(atoms_list), n_max), dtype=np.int16)
    for k, atoms in enumerate(atoms_list):
        positions[k, :len(atoms)] = atoms.positions
        numbers[k, :len(atoms)] = [atomic_numbers[s] for s in atoms.get_chemical_symbols()]
    tmp = path.with_suffix(".h5.tmp")
    with h5py.File(tmp, "w") as f:
        f["positions"] = positions
        f["numbers"] = numbers
        f["n_atoms"] = np.array([len(a) for a in atoms_list], dtype=np.int32)
        f["r"] = r
        f["G"] = g.astype(np.float32)
        f["drawn"] = drawn
        f["drawn"].attrs["columns"] = list(DRAWN)
        f["labels"] = [json.dumps(a.info, default=str) for a in atoms_list]
        f["group"] = [keys[i] for i in index]
        f["index"] = np.asarray(index, dtype=np.int64)
        f.attrs["complete"] = True
    os.replace(tmp, path)


def _shard_complete(path: Path, size: int) -> bool:
    if not path.exists():
        return False
    try:
        with h5py.File(path, "r") as f:
            return bool(f.attrs.get("complete", False)) and len(f["index"]) == size
    except OSError:
        return False


def _build_shard(path: Path, structures, keys, index, ranges: ParameterRanges, seed: int, mode: str, dtype) -> int:
    """Simulate the clusters at ``index`` and write their shard to ``path``; returns the number of clusters.

    ``structures`` and ``keys`` (split group keys) are indexed by cluster index: the whole lists, or dicts holding
    this shard's clusters only (what a Dask task is sent)."""
    atoms_list, r, g, drawn = _simulate(structures, index, ranges, seed, mode, dtype)
    _write_shard(path, atoms_list, index, keys, r, g, drawn)
    return len(index)


def _build_on_cluster(client, pending, structures, keys, ranges: ParameterRanges, seed: int, mode: str, dtype,
                      bar) -> None:
    """Build each (path, index) shard of ``pending`` as one task on ``client``'s cluster, sent only its own clusters;
    the worker writes the file (workers must see ``path``). ``bar`` advances as shards finish. Once every task has
    ended, a RuntimeError names the shards that failed (a rerun resumes with them)."""
    from distributed import as_completed

    futures = {client.submit(_build_shard, path.absolute(), {i: structures[i] for i in index},
                             {i: keys[i] for i in index}, index, ranges, seed, mode, dtype, pure=False): path
               for path, index in pending}
    failed = []
    for future in as_completed(futures):
        try:
            bar.update(future.result())
        except Exception as exc:  # noqa: BLE001 - every other shard still finishes, then the build fails
            failed.append((futures[future], exc))
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(futures)} shard(s) failed (rerun the build to resume): "
                           + "; ".join(f"{path}: {type(exc).__name__}: {exc}" for path, exc in failed)
                           ) from failed[0][1]


def build_dataset(structures, out_dir, ranges: ParameterRanges | None = None, *, seed: int = 0,
                  fractions=(0.8, 0.1, 0.1), shard_size: int = 1024, mode: str = "fast", dtype=torch.float32,
                  progress: bool = True, client=None) -> dict:
    """Simulate the PDF of every structure and write the dataset to ``out_dir`` (see the module doc).

    Args:
        structures: list of ``ase.Atoms`` (labels in ``atoms.info`` are stored and define split groups).
        ranges: :class:`ParameterRanges` (default: the fixed DeepStruc set).
        seed: seeds the split assignment and every per-cluster draw.
        fractions: train / validation / test fractions of the clusters (whole groups at a time).
        shard_size: clusters per HDF5 file.
        mode, dtype: engine mode and precision of the simulation (stored as float32).
        progress: show a progress bar.
        client: a ``distributed.Client``: each incomplete shard is one task on its cluster, sent its own clusters,
            and written by the worker (workers must see ``out_dir``, e.g. on a shared file system); the same data
            as without. If shards fail, a RuntimeError naming them is raised once the others are written.

    Returns the manifest (also written to ``out_dir/manifest.json``). Rerunning with the same arguments
    skips complete shards; a different plan in an existing directory is refused.
    """
    ranges = ranges or ParameterRanges()
    out = Path(out_dir)
    plan = json.loads(json.dumps(_plan(list(structures), ranges, seed, fractions, shard_size)))  # as stored
    manifest_path = out / "manifest.json"
    if manifest_path.exists():
        old = json.loads(manifest_path.read_text())
        if old != plan:
            raise ValueError(f"{out} holds a dataset built with other structures or settings; "
                             "use a new output directory")
    else:
        out.mkdir(parents=True, exist_ok=True)
        tmp = manifest_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(plan))
        os.replace(tmp, manifest_path)
    total = sum(len(ix) for shards in plan["shards"].values() for ix in shards)
    with tqdm(total=total, desc="simulating PDFs", unit="cluster", disable=not progress) as bar:
        pending = []
        for split, shards in plan["shards"].items():
            (out / split).mkdir(exist_ok=True)
            for k, index in enumerate(shards):
                path = out / split / f"shard_{k:05d}.h5"
                if _shard_complete(path, len(index)):
                    bar.update(len(index))
                else:
                    pending.append((path, index))
        if client is None:
            for path, index in pending:
                bar.update(_build_shard(path, structures, plan["keys"], index, ranges, seed, mode, dtype))
        else:
            _build_on_cluster(client, pending, structures, plan["keys"], ranges, seed, mode, dtype, bar)
    return plan


def read_split(out_dir, split: str = "train", keys=None) -> dict:
    """All shards of one split, concatenated: a dict of numpy arrays (positions padded to the largest N); only the
    datasets named in ``keys`` (e.g. ``("labels",)``) when given."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    paths = sorted((Path(out_dir) / split).glob("shard_*.h5"))
    parts = []
    for path in paths:
        with h5py.File(path, "r") as f:
            parts.append({k: f[k][()] for k in f.keys() if keys is None or k in keys})
    if not parts:
        return {}
    out = {}
    for key in parts[0]:
        if key in ("positions", "numbers"):
            n_max = max(p[key].shape[1] for p in parts)
            padded = []
            for p in parts:
                a = p[key]
                width = [(0, 0), (0, n_max - a.shape[1])] + [(0, 0)] * (a.ndim - 2)
                padded.append(np.pad(a, width))
            out[key] = np.concatenate(padded)
        elif key == "r":
            out[key] = parts[0][key]
        else:
            out[key] = np.concatenate([p[key] for p in parts])
    return out
