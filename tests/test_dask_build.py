"""Dataset and library builds on a real Dask LocalCluster (2 worker processes): the same data as the serial build,
resume, failed shards named after the others finish, the library prebuilt for `pdfsolve screen`, the CLI options."""
import json
import os

import ase
import h5py
import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import run_cli
from pdfsolve.datasets import RANDOMISED, build_dataset
from pdfsolve.routes.mine import _LOADED
from pdfsolve.screening.campaign import dask_client
from pdfsolve.structures import build_library
from _measured import LIBRARY, write_pt13

#: ``pdfsolve dataset build`` options of a tiny library (Au, 10-20 atoms) in shards of 4.
TINY = ["--element", "Au", "--min-atoms", "10", "--max-atoms", "20", "--shard-size", "4", "--no-progress"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """An empty $PDFSOLVE_CACHE for the module, set before the cluster starts so its workers share it (and no
    MALLOC_TRIM_THRESHOLD_ left in this process's environment by an earlier cluster)."""
    path = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PDFSOLVE_CACHE", str(path))
        patch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
        yield path


@pytest.fixture(scope="module")
def client(cache):
    """A client of the LocalCluster of ``pdfsolve screen --workers 2``: 2 worker processes, 1 thread each."""
    with dask_client(workers=2) as client:
        yield client


def test_local_workers_keep_the_default_allocator(client):
    assert client.run(os.environ.get, "MALLOC_TRIM_THRESHOLD_") == dict.fromkeys(client.nthreads())
    assert list(client.nthreads().values()) == [1, 1]


@pytest.fixture(scope="module")
def clusters():
    """24 small Au clusters (5-20 atoms)."""
    return build_library(["Au"], 5, 20)[:24]


@pytest.fixture(scope="module")
def serial(clusters, tmp_path_factory):
    """The dataset of ``clusters`` built in this process: randomised parameters, 3 clusters per shard."""
    out = tmp_path_factory.mktemp("serial")
    build_dataset(clusters, out, RANDOMISED, seed=5, shard_size=3, progress=False)
    return out


def shards(out) -> dict:
    """{shard path relative to ``out``: modification time [ns]}."""
    return {p.relative_to(out): p.stat().st_mtime_ns for p in sorted(out.rglob("shard_*.h5"))}


def assert_same_dataset(a, b) -> None:
    """Same manifest, same shard files, every dataset and attribute of every shard equal."""
    assert json.loads((a / "manifest.json").read_text()) == json.loads((b / "manifest.json").read_text())
    assert shards(a).keys() == shards(b).keys() and len(shards(a)) > 4
    for name in shards(a):
        with h5py.File(a / name) as f, h5py.File(b / name) as g:
            assert set(f) == set(g) and dict(f.attrs) == dict(g.attrs)
            for key in f:
                np.testing.assert_array_equal(f[key][()], g[key][()], err_msg=f"{name}: {key}")
                assert f[key].dtype == g[key].dtype and dict(f[key].attrs).keys() == dict(g[key].attrs).keys()


def test_dataset_on_the_cluster_equals_the_serial_build_and_resumes(clusters, serial, client, tmp_path):
    out = tmp_path / "dask"
    build_dataset(clusters, out, RANDOMISED, seed=5, shard_size=3, progress=False, client=client)
    assert_same_dataset(serial, out)
    assert not list(out.rglob("*.tmp"))
    before = shards(out)
    lost = sorted(before)[2]
    (out / lost).unlink()
    build_dataset(clusters, out, RANDOMISED, seed=5, shard_size=3, progress=False, client=client)
    after = shards(out)
    assert after.keys() == before.keys()
    assert {k: v for k, v in after.items() if k != lost} == {k: v for k, v in before.items() if k != lost}
    assert_same_dataset(serial, out)


def test_a_failed_shard_is_named_after_the_others_are_written(clusters, client, tmp_path):
    bad = ase.Atoms("Og2", positions=[[0, 0, 0], [0, 0, 2.5]])  # no X-ray scattering factor
    structures = clusters[:12] + [bad]
    out = tmp_path / "ds"
    with pytest.raises(RuntimeError, match="1 of .* shard") as info:
        build_dataset(structures, out, seed=1, shard_size=3, progress=False, client=client)
    manifest = json.loads((out / "manifest.json").read_text())
    written = shards(out)
    for split, plan in manifest["shards"].items():
        for k, index in enumerate(plan):
            path = out / split / f"shard_{k:05d}.h5"
            if 12 in index:
                assert str(path.absolute()) in str(info.value) and "unknown element" in str(info.value)
                assert not path.exists()
            else:
                assert path.relative_to(out) in written
    assert len(written) >= 4


def test_library_on_the_cluster_equals_the_serial_library(client):
    options = dict(min_atoms=5, max_atoms=30, scales=(0.99, 1.01))
    serial = build_library(["Au", "Pt"], **options)
    parallel = build_library(["Au", "Pt"], **options, client=client)
    assert len(parallel) == len(serial) > 600
    for a, b in zip(serial, parallel):
        assert a.get_chemical_symbols() == b.get_chemical_symbols() and a.info == b.info
        np.testing.assert_array_equal(a.positions, b.positions)


def test_screen_builds_the_library_once_before_the_solves(cache, client, tmp_path, capsys):
    inputs = [tmp_path / f"pt_{k}.gr" for k in range(2)]
    for k, path in enumerate(inputs):
        write_pt13(k, path)
    status, stdout, err = run_cli(["screen", *inputs, "-o", tmp_path / "res", "--scheduler", client.scheduler.address,
                                   *LIBRARY], capsys)
    assert status == 0 and "2 solved" in stdout, err
    built = list(cache.glob("library-*.extxyz"))
    assert len(built) == 1 and built[0] in _LOADED  # built by this process, the driver
    rows = pq.read_table(tmp_path / "res" / "results.parquet").to_pylist()
    assert [row["motif"] for row in rows] == ["icosahedral"] * 2


def test_cli_workers_builds_the_same_dataset(tmp_path, capsys):
    status, stdout, err = run_cli(["dataset", "build", "-o", tmp_path / "dask", "--workers", "2", *TINY], capsys)
    assert status == 0 and "2 worker(s)" in stdout, err
    assert run_cli(["dataset", "build", "-o", tmp_path / "serial", *TINY], capsys)[0] == 0
    assert_same_dataset(tmp_path / "serial", tmp_path / "dask")


@pytest.mark.parametrize("extra, message", [
    (["--workers", "0"], "--workers must be >= 1"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "with --scheduler the cluster's own workers"),
])
def test_bad_cluster_options_exit_2(tmp_path, capsys, extra, message):
    status, _, err = run_cli(["dataset", "build", "-o", tmp_path / "ds", *TINY, *extra], capsys)
    assert status == 2 and message in err
    assert not (tmp_path / "ds").exists()
