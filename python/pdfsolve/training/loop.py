"""The training loop shared by the generative routes: seeded, validated, checkpointed, resumable.

A model trained here is built by :func:`pdfsolve.models.build_model` from the run's config and implements
``loss(batch, beta) -> dict`` of scalar tensors with a ``"loss"`` entry (the objective; other entries are logged).
In eval mode that loss must be deterministic (e.g. a VAE decodes its posterior mean), so validation draws no
random numbers.

After every step the loop checks for SIGINT (Ctrl-C) and SIGTERM: it then saves the full state and returns.
Rerunning with ``resume=True`` continues from that step; the batch order of an epoch depends only on
(seed, epoch) and the random state is restored, so the result equals an uninterrupted run's.
"""
from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .checkpoint import BEST_NAME, CHECKPOINT_NAME, load, rng_state, save_atomic, set_rng_state
from .config import CONFIG_NAME, TrainConfig, data_hash
from .data import ShardData

HISTORY_NAME = "history.jsonl"


@dataclass
class TrainState:
    """Where a run stands: ``epoch`` epochs and ``step`` batches of the next one done.

    ``sums`` holds the sample-weighted sums of the loss entries over the current epoch's batches (``count``
    samples); ``best`` the lowest validation loss so far and ``bad_epochs`` the epochs since it.
    """

    epoch: int = 0
    step: int = 0
    sums: dict = field(default_factory=dict)
    count: int = 0
    best: float = math.inf
    bad_epochs: int = 0
    history: list = field(default_factory=list)
    status: str = ""

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class TrainResult:
    """Outcome of :func:`train`: ``status`` ("finished", "early_stopped" or "interrupted"), the state and the model."""

    status: str
    state: TrainState
    model: torch.nn.Module
    run_dir: Path


class _StopRequest:
    """Turns SIGINT and SIGTERM into a flag while active (signals can be caught only in the main thread)."""

    def __init__(self):
        self.requested = False
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.requested = True

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _check_run_dir(config: TrainConfig, run_dir: Path, resume: bool) -> None:
    """Refuse to overwrite a run, to resume a missing one, or to resume with another config (but for ``epochs``,
    which a resumed run may raise or lower: the epochs already done do not depend on it)."""
    checkpoint = run_dir / CHECKPOINT_NAME
    if not resume:
        if checkpoint.exists() or (run_dir / CONFIG_NAME).exists():
            raise ValueError(f"{run_dir} already holds a training run; resume it or choose a new directory")
        return
    if not checkpoint.exists():
        raise ValueError(f"nothing to resume in {run_dir} (no {CHECKPOINT_NAME})")
    differences = [d for d in TrainConfig.load(run_dir).differences(config) if not d.startswith("epochs:")]
    if differences:
        raise ValueError(f"the config does not match the run in {run_dir}: " + "; ".join(differences))


def _average(sums: dict, count: int, prefix: str) -> dict:
    return {f"{prefix}_{k}": v / max(count, 1) for k, v in sums.items()}


def _accumulate(sums: dict, out: dict, n: int) -> None:
    for k, v in out.items():
        sums[k] = sums.get(k, 0.0) + float(v.detach()) * n


@torch.no_grad()
def validate(model: torch.nn.Module, data: ShardData, batch_size: int, beta: float) -> dict:
    """Sample-weighted means of the model's loss entries over ``data`` in eval mode (model left in eval mode)."""
    model.eval()
    sums, count = {}, 0
    for batch in data.batches(batch_size, shuffle=False):
        _accumulate(sums, model.loss(batch, beta), len(batch))
        count += len(batch)
    return {k: v / count for k, v in sums.items()}


def _write_history(run_dir: Path, history: list) -> None:
    path = run_dir / HISTORY_NAME
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(row) + "\n" for row in history))
    os.replace(tmp, path)


def _initial_weights(config: TrainConfig) -> dict:
    """The model state in ``config.init_weights``, checked against ``config.init_sha256`` and the run's model.

    Raises ValueError when the file differs from its hash or holds another model or other hyper-parameters."""
    from ..models.weights import file_sha256

    digest = file_sha256(config.init_weights)
    if digest != config.init_sha256:
        raise ValueError(f"{config.init_weights}: sha256 {digest[:12]}... is not the config's "
                         f"{config.init_sha256[:12]}...")
    saved = load(config.init_weights)
    theirs = saved.get("config", {})
    if theirs.get("model") != config.model:
        raise ValueError(f"{config.init_weights} holds a {theirs.get('model')} model, not {config.model}")
    return saved["model"]


class _Run:
    """A model, its optimiser, scheduler and :class:`TrainState`, and the run directory they are saved to."""

    def __init__(self, config: TrainConfig, run_dir: Path, resume: bool):
        from ..models import build_model

        self.config, self.run_dir = config, run_dir
        torch.manual_seed(config.seed)
        self.model = build_model(config.model, config.model_params)
        opt = config.optimizer
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=opt.lr, weight_decay=opt.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(self.optimizer, factor=opt.plateau_factor,
                                                                    patience=opt.plateau_patience)
        self.state = TrainState()
        if resume:
            saved = load(run_dir / CHECKPOINT_NAME)
            self.model.load_state_dict(saved["model"])
            self.optimizer.load_state_dict(saved["optimizer"])
            self.scheduler.load_state_dict(saved["scheduler"])
            set_rng_state(saved["rng"])
            self.state = TrainState(**saved["state"])
        elif config.init_weights:
            self.model.load_state_dict(_initial_weights(config))
        config.save(run_dir)

    def result(self, status: str | None = None) -> TrainResult:
        if status is not None:
            self.state.status = status
        return TrainResult(self.state.status, self.state, self.model, self.run_dir)

    def save(self) -> None:
        save_atomic({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                     "scheduler": self.scheduler.state_dict(), "rng": rng_state(), "state": self.state.to_dict()},
                    self.run_dir / CHECKPOINT_NAME)

    def step(self, batch, beta: float) -> dict:
        """One optimiser step on ``batch``; returns the loss entries.

        Raises FloatingPointError, before the step, when the loss is not finite (the state of the last epoch stays
        in the checkpoint)."""
        out = self.model.loss(batch, beta)
        if not bool(torch.isfinite(out["loss"])):
            bad = ", ".join(k for k, v in out.items() if not bool(torch.isfinite(v)))
            raise FloatingPointError(f"non-finite loss in epoch {self.state.epoch + 1}, step {self.state.step + 1} "
                                     f"(terms: {bad}); the run can be resumed from its last checkpoint")
        self.optimizer.zero_grad(set_to_none=True)
        out["loss"].backward()
        if self.config.optimizer.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.optimizer.grad_clip)
        self.optimizer.step()
        _accumulate(self.state.sums, out, len(batch))
        self.state.count += len(batch)
        self.state.step += 1
        return out

    def end_epoch(self, val: dict, seconds: float) -> dict:
        """Log the epoch, step the scheduler, keep the best weights, save; returns the history row."""
        state, config = self.state, self.config
        row = {"epoch": state.epoch + 1, "beta": config.beta(state.epoch + 1),
               "lr": self.optimizer.param_groups[0]["lr"], **_average(state.sums, state.count, "train"),
               **{f"val_{k}": v for k, v in val.items()}, "seconds": seconds}
        self.scheduler.step(val["loss"])
        if val["loss"] < state.best - config.min_delta:
            state.best, state.bad_epochs = val["loss"], 0
            save_atomic({"model": self.model.state_dict(), "config": config.to_dict(), "epoch": state.epoch + 1,
                         "val_loss": val["loss"]}, self.run_dir / BEST_NAME)
        else:
            state.bad_epochs += 1
        state.history.append(row)
        state.epoch, state.step, state.sums, state.count = state.epoch + 1, 0, {}, 0
        stopping = config.patience > 0 and state.bad_epochs >= config.patience
        state.status = "early_stopped" if stopping else ("finished" if state.epoch >= config.epochs else "")
        self.save()
        _write_history(self.run_dir, state.history)
        return row


def train(config: TrainConfig, run_dir, *, resume: bool = False, progress: bool = True,
          callback=None) -> TrainResult:
    """Train the model named by ``config`` on its data; state, best weights and history go to ``run_dir``.

    Args:
        config: the run (:class:`TrainConfig`); its data hash must match the data directory.
        run_dir: output directory (created); must not hold a run unless ``resume``.
        resume: continue the run in ``run_dir`` (its config must equal ``config``, ``epochs`` aside).
        progress: show tqdm bars (epochs, and the batches of the current epoch).
        callback: called as ``callback(state)`` after every optimiser step.

    Returns:
        :class:`TrainResult`; the model holds the last weights (``run_dir/best.pt`` the best ones).

    Raises:
        ValueError: bad data directory, changed data, a run already there, nothing to resume, or a
            config that differs from the run's.
    """
    run_dir = Path(run_dir)
    _check_run_dir(config, run_dir, resume)
    actual = data_hash(config.data)
    if actual != config.data_sha256:
        raise ValueError(f"the data in {config.data} changed since the run was configured "
                         f"(sha256 {actual[:12]}..., config {config.data_sha256[:12]}...)")
    train_data, val_data = ShardData(config.data, "train"), ShardData(config.data, "validation")
    run = _Run(config, run_dir, resume)
    state = run.state
    if state.status == "early_stopped" or state.epoch >= config.epochs:
        return run.result(state.status or "finished")
    n_batches = train_data.n_batches(config.batch_size)
    with _StopRequest() as stop, tqdm(total=config.epochs, initial=state.epoch, desc="epochs", unit="epoch",
                                      disable=not progress) as epoch_bar:
        while state.epoch < config.epochs:
            started = time.perf_counter()
            run.model.train()
            with tqdm(total=n_batches, initial=state.step, desc=f"epoch {state.epoch + 1}", unit="batch",
                      leave=False, disable=not progress) as bar:
                for batch in train_data.batches(config.batch_size, config.seed, state.epoch, start=state.step):
                    beta = config.beta(state.epoch + state.step / n_batches)
                    out = run.step(batch, beta)
                    bar.update()
                    bar.set_postfix(loss=f"{out['loss'].item():.4g}", beta=f"{beta:.3g}")
                    if callback is not None:
                        callback(state)
                    if stop.requested:
                        run.save()
                        return run.result("interrupted")
            val = validate(run.model, val_data, config.batch_size, config.beta.end)
            row = run.end_epoch(val, time.perf_counter() - started)
            epoch_bar.update()
            epoch_bar.set_postfix(val=f"{val['loss']:.4g}", best=f"{state.best:.4g}")
            tqdm.write(json.dumps(row))
            if state.status == "early_stopped":
                break
            if stop.requested:
                return run.result("interrupted")
    return run.result()
