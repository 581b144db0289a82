"""Training infrastructure: config round trip, batches of the HDF5 shards, atomic checkpoints, and a run that is
interrupted (SIGINT) and resumed ending exactly where an uninterrupted run ends."""
import dataclasses
import json
import signal

import pytest
import torch
from conftest import run_cli

from pdfsolve.models.weights import load_model
from pdfsolve.training import (BEST_NAME, CHECKPOINT_NAME, BetaSchedule, ShardData, TrainConfig, data_hash, train)
from pdfsolve.training.checkpoint import load, save_atomic
from pdfsolve.training.data import max_atoms
from _models import au_dataset, one_thread  # noqa: F401 (one_thread: autouse fixture)

#: A model of a few thousand weights: a step takes milliseconds.
TINY = dict(n_max=14, latent_dim=2, hidden=8, graph_layers=1, n_rbf=6, pdf_channels=[4, 4], pdf_dim=8,
            decoder_hidden=[16])


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Au clusters of 5-14 atoms (51: 31 train, 10 validation, 10 test) with DeepStruc's fixed parameters."""
    out = tmp_path_factory.mktemp("data")
    return au_dataset(out, 5, 14, (0.6, 0.2, 0.2), seed=0, shard_size=8)


def tiny_config(data_dir, **changes) -> TrainConfig:
    config = TrainConfig(model="deepstruc", model_params=dict(TINY), data=str(data_dir),
                         data_sha256=data_hash(data_dir), epochs=3, batch_size=8, patience=0,
                         beta=BetaSchedule(0.0, 1.0, 2.0))
    return dataclasses.replace(config, **changes)


def test_config_round_trip_and_differences(tmp_path, data_dir):
    config = tiny_config(data_dir, versions={"torch": torch.__version__})
    config.save(tmp_path)
    loaded = TrainConfig.load(tmp_path)
    assert loaded == config and TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert dataclasses.replace(config, model_params={**TINY, "pdf_channels": (4, 4)}) == config  # tuples as JSON lists
    other = dataclasses.replace(config, batch_size=4, versions={})
    assert config.differences(other) == ["batch_size: 8 != 4"]  # versions are recorded, not compared
    assert config.beta(0.0) == 0.0 and config.beta(1.0) == 0.5 and config.beta(7.0) == 1.0
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['batchsize'\]"):
        TrainConfig.from_dict({**config.to_dict(), "batchsize": 3})
    with pytest.raises(ValueError, match="config optimizer has unknown"):
        TrainConfig.from_dict({**config.to_dict(), "optimizer": {"learning_rate": 1.0}})
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        dataclasses.replace(config, batch_size=0)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a JSON training config"):
        TrainConfig.load(tmp_path)


def test_batches_cover_the_split_in_a_seeded_order(data_dir):
    data = ShardData(data_dir, "train")
    assert len(data) == 31 and data.n_max <= 14 and max_atoms(data_dir) == 14
    batches = list(data.batches(8, seed=1, epoch=2))
    assert sorted(len(b) for b in batches) == [7, 8, 8, 8]
    rows = torch.cat([b.index for b in batches])
    assert sorted(rows.tolist()) == list(range(31))
    assert torch.equal(rows, torch.cat([b.index for b in data.batches(8, seed=1, epoch=2)]))
    assert not torch.equal(rows, torch.cat([b.index for b in data.batches(8, seed=1, epoch=3)]))
    assert torch.equal(torch.cat([b.index for b in data.batches(8, seed=1, epoch=2, start=2)]),
                       torch.cat([b.index for b in batches[2:]]))
    assert torch.equal(torch.cat([b.index for b in data.batches(8, shuffle=False)]), torch.arange(31))
    b = batches[0]
    assert b.pos.shape == (8, int(b.n_atoms.max()), 3) and b.g.shape == (8, 3000) and b.r.shape == (3000,)
    assert torch.equal(b.mask.sum(1), b.n_atoms)
    centroid = b.pos.sum(1) / b.n_atoms[:, None]
    assert float(centroid.abs().max()) < 1e-5 and float(b.pos[~b.mask].abs().sum()) == 0.0


def test_bad_data_paths_raise_clear_errors(tmp_path, data_dir):
    with pytest.raises(ValueError, match="not a pdfsolve dataset"):
        ShardData(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="not a pdfsolve dataset"):
        data_hash(tmp_path)
    with pytest.raises(ValueError, match="split must be one of"):
        ShardData(data_dir, "training")
    with pytest.raises(ValueError, match="changed since the run was configured"):
        train(tiny_config(data_dir, data_sha256="0" * 64), tmp_path / "run", progress=False)


def test_checkpoints_are_atomic(tmp_path, monkeypatch):
    path = tmp_path / CHECKPOINT_NAME
    save_atomic({"a": torch.ones(3)}, path)

    def crash(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError):
        save_atomic({"a": torch.zeros(3)}, path)
    assert torch.equal(load(path)["a"], torch.ones(3))  # the old file is whole
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a readable pdfsolve checkpoint"):
        load(tmp_path / "junk.pt")


def _without_times(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(tmp_path, data_dir):
    config = tiny_config(data_dir)
    whole = train(config, tmp_path / "whole", progress=False)
    assert whole.status == "finished" and whole.state.epoch == 3

    def ctrl_c_at_step_6(state):  # the second epoch's second batch (4 batches per epoch)
        if state.epoch == 1 and state.step == 2:
            signal.raise_signal(signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN under nohup
    part = train(config, tmp_path / "part", progress=False, callback=ctrl_c_at_step_6)
    assert part.status == "interrupted" and (part.state.epoch, part.state.step) == (1, 2)
    assert signal.getsignal(signal.SIGINT) is before  # handler restored
    resumed = train(config, tmp_path / "part", resume=True, progress=False)
    assert resumed.status == "finished"
    for key, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    assert _without_times(resumed.state.history) == _without_times(whole.state.history)
    best_whole, best_part = load(tmp_path / "whole" / BEST_NAME), load(tmp_path / "part" / BEST_NAME)
    assert best_whole["epoch"] == best_part["epoch"] and best_whole["val_loss"] == best_part["val_loss"]
    lines = (tmp_path / "part" / "history.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]
    assert not list((tmp_path / "part").glob("*.tmp"))


def test_runs_refuse_overwrites_missing_runs_and_other_configs(tmp_path, data_dir):
    config = tiny_config(data_dir, epochs=1)
    train(config, tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match="already holds a training run"):
        train(config, tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match="nothing to resume"):
        train(config, tmp_path / "other", resume=True, progress=False)
    with pytest.raises(ValueError, match=r"does not match the run .*batch_size: 8 != 4"):
        train(dataclasses.replace(config, batch_size=4), tmp_path / "run", resume=True, progress=False)
    more = train(dataclasses.replace(config, epochs=2), tmp_path / "run", resume=True, progress=False)
    assert more.status == "finished" and more.state.epoch == 2  # epochs may be raised on resume


def test_early_stopping_stops_after_patience_epochs(tmp_path, data_dir):
    config = tiny_config(data_dir, epochs=20, patience=1, min_delta=1e9)  # no epoch improves by 1e9
    result = train(config, tmp_path / "run", progress=False)
    assert result.status == "early_stopped" and result.state.epoch == 2


def test_cli_trains_resumes_and_reports_bad_input(tmp_path, data_dir, capsys):
    settings = tmp_path / "tiny.json"
    settings.write_text(json.dumps({"model_params": TINY, "patience": 0}))
    run = tmp_path / "run"
    base = ["train", "deepstruc", "--out", run, "--config", settings, "--batch-size", "16", "--no-progress"]
    status, out, err = run_cli([*base, "--data", data_dir, "--epochs", "1", "--seed", "3"], capsys)
    assert status == 0, err
    assert "finished after 1 epoch(s)" in out
    config = TrainConfig.load(run)
    assert (config.seed, config.batch_size, config.model_params["n_max"]) == (3, 16, 14)
    assert config.data_sha256 == data_hash(data_dir) and config.versions["torch"] == torch.__version__
    model, stored = load_model(run / BEST_NAME)  # weights_only=True: the recorded versions are plain strings
    assert stored["versions"] == config.versions and model.params.n_max == 14
    status, out, err = run_cli([*base, "--resume", "--epochs", "2"], capsys)
    assert status == 0 and "finished after 2 epoch(s)" in out, err
    status, _, err = run_cli([*base, "--resume", "--batch-size", "8"], capsys)
    assert status == 2 and "batch_size: 16 != 8" in err
    status, _, err = run_cli(["train", "deepstruc", "--data", tmp_path / "missing", "--out", tmp_path / "r2"], capsys)
    assert status == 2 and "not a pdfsolve dataset" in err
    status, _, err = run_cli(["train", "deepstruc", "--out", tmp_path / "r3"], capsys)
    assert status == 2 and "--data is required" in err
    settings.write_text(json.dumps({"data_sha256": "0" * 64}))
    status, _, err = run_cli(["train", "deepstruc", "--data", data_dir, "--out", tmp_path / "r4", "--config",
                              settings], capsys)
    assert status == 2 and "data_sha256" in err and "does not match" in err


def test_a_run_can_start_from_the_weights_of_another(tmp_path, data_dir, capsys):
    first = train(tiny_config(data_dir, epochs=1), tmp_path / "first", progress=False)
    settings = tmp_path / "tiny.json"
    settings.write_text(json.dumps({"model_params": {**TINY, "match_weight": 1.0}, "patience": 0}))
    status, _, err = run_cli(["train", "deepstruc", "--data", data_dir, "--out", tmp_path / "tuned", "--config",
                              settings, "--epochs", "1", "--init", tmp_path / "first" / BEST_NAME,
                              "--lr", "1e-12", "--no-progress"], capsys)
    assert status == 0, err
    config = TrainConfig.load(tmp_path / "tuned")
    assert config.init_weights == str((tmp_path / "first" / BEST_NAME).resolve()) and len(config.init_sha256) == 64
    tuned, _ = load_model(tmp_path / "tuned" / BEST_NAME)
    for key, value in first.model.state_dict().items():  # a learning rate of 1e-12 leaves the weights as they were
        torch.testing.assert_close(tuned.state_dict()[key], value, rtol=0, atol=1e-9)
    history = [json.loads(line) for line in (tmp_path / "tuned" / "history.jsonl").read_text().splitlines()]
    assert history[0]["train_match"] > 0
    bad = dataclasses.replace(config, init_sha256="0" * 64)
    with pytest.raises(ValueError, match="sha256"):
        train(bad, tmp_path / "bad", progress=False)
    status, _, err = run_cli(["train", "deepstruc", "--data", data_dir, "--out", tmp_path / "r5", "--init",
                              tmp_path / "missing.pt"], capsys)
    assert status == 2 and "--init: no weights" in err


def test_a_non_finite_loss_stops_the_run_with_a_clear_error(tmp_path, data_dir, monkeypatch):
    from pdfsolve.models import DeepStruc

    real_loss = DeepStruc.loss
    steps = []

    def nan_in_second_epoch(self, batch, beta):
        out = real_loss(self, batch, beta)
        steps.append(self.training)
        if sum(steps) == 5:  # 4 training batches per epoch: the second epoch's first
            out["kl"] = out["kl"] * float("nan")
            out["loss"] = out["loss"] + out["kl"]
        return out

    monkeypatch.setattr(DeepStruc, "loss", nan_in_second_epoch)
    with pytest.raises(FloatingPointError, match=r"epoch 2, step 1 \(terms: kl, loss\)"):
        train(tiny_config(data_dir), tmp_path / "run", progress=False)
    assert load(tmp_path / "run" / CHECKPOINT_NAME)["state"]["epoch"] == 1  # the first epoch is kept
