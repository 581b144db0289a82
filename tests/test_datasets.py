"""Dataset builder: grouped splits, reproducible draws, resume after an interruption."""
import h5py
import numpy as np
import pytest
import torch
from ase.cluster import Icosahedron, Octahedron

from pdfsolve import PDFParameters, simulate_pdf
from pdfsolve.datasets import RANDOMISED, ParameterRanges, assign_splits, build_dataset, group_key, read_split
from pdfsolve.datasets import build as build_module


def library():
    out = []
    for el in ("Au", "Pt", "Pd", "Cu"):
        for scale in (0.98, 1.02):
            for n in (2, 3):
                a = Icosahedron(el, n, latticeconstant=4.0 * scale)
                a.info.update(motif="icosahedron", shells=n, element=el, lattice_scale=scale)
                out.append(a)
                b = Octahedron(el, n + 2, 1, latticeconstant=4.0 * scale)
                b.info.update(motif="octahedron", length=n + 2, cutoff=1, element=el, lattice_scale=scale)
                out.append(b)
    return out


def test_same_cluster_up_to_element_and_scale_never_crosses_splits():
    lib = library()
    keys = [group_key(a) for a in lib]
    assert len(set(keys)) == 4
    splits = assign_splits(keys, (0.5, 0.25, 0.25), seed=3)
    for key in set(keys):
        assert len({int(s) for k, s in zip(keys, splits) if k == key}) == 1
    assert sorted(np.bincount(splits, minlength=3).tolist()) == [8, 8, 16]
    np.testing.assert_array_equal(splits, assign_splits(keys[::-1], (0.5, 0.25, 0.25), seed=3)[::-1])


def test_library_copies_of_one_geometry_for_two_metals_share_a_group():
    from pdfsolve.structures import build_library

    au, pt = (build_library([el], min_atoms=13, max_atoms=13) for el in ("Au", "Pt"))
    assert len(au) == len(pt) > 0
    for a, b in zip(au, pt):  # same construction, another bond length
        assert a.info["bond_length"] != b.info["bond_length"] and group_key(a) == group_key(b)


def test_unlabelled_copies_group_by_shape():
    a = Icosahedron("Au", 2)
    b = Icosahedron("Pt", 2, latticeconstant=3.9)
    assert group_key(a) == group_key(b)
    assert group_key(a) != group_key(Icosahedron("Au", 3))


def test_fixed_parameters_store_the_engine_pdf(tmp_path):
    lib = library()[:4]
    build_dataset(lib, tmp_path, shard_size=3, fractions=(1.0, 0.0, 0.0), progress=False)
    data = read_split(tmp_path, "train")
    assert data["G"].shape == (4, 3000) and data["positions"].shape[2] == 3
    labels = read_split(tmp_path, "train", keys=("labels",))
    assert list(labels) == ["labels"] and list(labels["labels"]) == list(data["labels"])
    k = int(np.nonzero(data["index"] == 2)[0][0])
    atoms = lib[2].copy()
    atoms.positions -= atoms.positions.mean(0)
    expected = simulate_pdf(atoms, PDFParameters(delta2=2.0), mode="exact").G[0].numpy()
    assert np.abs(data["G"][k] - expected).max() < 1e-4 * np.abs(expected).max()
    np.testing.assert_allclose(data["positions"][k, :len(atoms)], atoms.positions, atol=1e-5)


def test_interrupted_build_resumes_to_the_same_dataset(tmp_path, monkeypatch):
    lib = library()
    reference = tmp_path / "reference"
    build_dataset(lib, reference, RANDOMISED, seed=7, shard_size=4, progress=False)

    calls = {"n": 0}
    real_write = build_module._write_shard

    def crash_after_two(*args):
        if calls["n"] == 2:
            raise KeyboardInterrupt("simulated interruption")
        calls["n"] += 1
        real_write(*args)

    resumed = tmp_path / "resumed"
    monkeypatch.setattr(build_module, "_write_shard", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        build_dataset(lib, resumed, RANDOMISED, seed=7, shard_size=4, progress=False)
    monkeypatch.setattr(build_module, "_write_shard", real_write)
    done_before = sorted(p.name for p in resumed.rglob("shard_*.h5"))
    assert len(done_before) == 2
    (resumed / "train" / "shard_00009.h5.tmp").write_bytes(b"partial garbage")  # a half-written file
    build_dataset(lib, resumed, RANDOMISED, seed=7, shard_size=4, progress=False)
    for path in reference.rglob("shard_*.h5"):
        other = resumed / path.relative_to(reference)
        with h5py.File(path) as f, h5py.File(other) as g:
            for key in ("G", "positions", "drawn", "index"):
                np.testing.assert_array_equal(f[key][()], g[key][()])


def test_other_settings_in_an_existing_directory_are_refused(tmp_path):
    lib = library()[:4]
    build_dataset(lib, tmp_path, progress=False)
    with pytest.raises(ValueError, match="new output directory"):
        build_dataset(lib, tmp_path, seed=1, progress=False)


@pytest.mark.parametrize("bad", [dict(qmax=(28.0, 18.0)), dict(noise=-0.1), dict(biso=float("nan"))])
def test_parameter_ranges_are_validated(bad):
    with pytest.raises(ValueError):
        ParameterRanges(**bad)
