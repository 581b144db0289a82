"""The configuration of a training run: everything needed to reproduce it, stored as ``config.json`` in the run.

A run directory holds ``config.json`` (this), ``checkpoint.pt`` (the full training state, see
:mod:`pdfsolve.training.checkpoint`), ``best.pt`` (the weights with the lowest validation loss) and
``history.jsonl`` (one line of losses per finished epoch).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

from .data import check_dataset

CONFIG_NAME = "config.json"
#: Read in blocks of this many bytes when hashing the data.
_HASH_BLOCK = 1 << 20


@dataclass(frozen=True)
class OptimizerConfig:
    """AdamW with gradient-norm clipping and a learning rate halved on validation plateaus.

    Attributes:
        lr: initial learning rate. weight_decay: AdamW's decoupled weight decay.
        grad_clip: largest gradient norm (0: no clipping).
        plateau_factor, plateau_patience: the rate is multiplied by the factor after this many epochs
            without a better validation loss (``torch.optim.lr_scheduler.ReduceLROnPlateau``).
    """

    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float = 5.0
    plateau_factor: float = 0.5
    plateau_patience: int = 5

    def __post_init__(self):
        if not self.lr > 0:
            raise ValueError(f"optimizer lr must be > 0, got {self.lr}")
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise ValueError("optimizer weight_decay and grad_clip must be >= 0")
        if not 0 < self.plateau_factor < 1:
            raise ValueError(f"optimizer plateau_factor must be in (0, 1), got {self.plateau_factor}")


@dataclass(frozen=True)
class BetaSchedule:
    """Weight beta of the KL term: linear from ``start`` to ``end`` over the first ``warmup_epochs`` (by step).

    Validation and early stopping always use ``end``, so their losses compare across epochs.
    """

    start: float = 0.0
    end: float = 1.0
    warmup_epochs: float = 10.0

    def __post_init__(self):
        if self.start < 0 or self.end < 0 or self.warmup_epochs < 0:
            raise ValueError(f"beta start, end and warmup_epochs must be >= 0, got {dataclasses.asdict(self)}")

    def __call__(self, epoch: float) -> float:
        """Beta at ``epoch`` (fractional: epoch index + fraction of its steps done)."""
        if epoch >= self.warmup_epochs:
            return self.end
        return self.start + (self.end - self.start) * epoch / self.warmup_epochs


@dataclass(frozen=True)
class TrainConfig:
    """A training run.

    Attributes:
        model: name of the model (a key of :data:`pdfsolve.models.MODELS`).
        model_params: the model's hyper-parameters (its parameter dataclass as a dict).
        data: dataset directory written by ``pdfsolve dataset build``.
        data_sha256: hash of the dataset's manifest and shards (:func:`data_hash`).
        seed: seeds the initial weights, the batch order of every epoch and the sampling noise.
        epochs: most epochs; batch_size: clusters per step.
        patience: stop after this many epochs without a validation loss lower by ``min_delta`` (0: never).
        optimizer, beta: see :class:`OptimizerConfig` and :class:`BetaSchedule`.
        init_weights, init_sha256: a ``best.pt`` of an earlier run of the same model whose weights start this
            run (fine-tuning), and its sha256, checked when the run starts ("": random initial weights).
        versions: of Python and the packages that produced the run (recorded, not compared).
    """

    model: str
    model_params: dict
    data: str
    data_sha256: str
    seed: int = 0
    epochs: int = 100
    batch_size: int = 64
    patience: int = 20
    min_delta: float = 0.0
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    beta: BetaSchedule = field(default_factory=BetaSchedule)
    versions: dict = field(default_factory=dict)
    init_weights: str = ""
    init_sha256: str = ""

    def __post_init__(self):
        for name in ("model_params", "versions"):  # as stored in JSON (tuples become lists), so that a loaded
            object.__setattr__(self, name, json.loads(json.dumps(getattr(self, name))))  # config equals this one
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.seed < 0 or self.patience < 0 or self.min_delta < 0:
            raise ValueError("seed, patience and min_delta must be >= 0")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """The config of a dict as :meth:`to_dict` writes it; ValueError naming unknown or missing keys."""
        values = dict(values)
        for name, kind in (("optimizer", OptimizerConfig), ("beta", BetaSchedule)):
            if name in values:
                values[name] = _build(kind, values[name], f"config {name}")
        return _build(cls, values, "config")

    def save(self, run_dir) -> Path:
        """Write ``run_dir/config.json`` atomically; returns its path."""
        path = Path(run_dir) / CONFIG_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True))
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, run_dir) -> "TrainConfig":
        """The config stored in ``run_dir`` (or a config file's path)."""
        path = Path(run_dir)
        path = path / CONFIG_NAME if path.is_dir() else path
        if not path.is_file():
            raise ValueError(f"no training config at {path}")
        try:
            values = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not a JSON training config ({exc})") from None
        return cls.from_dict(values)

    def differences(self, other: "TrainConfig") -> list[str]:
        """Fields (dotted names) whose values differ from ``other``'s, versions aside, each as 'name: a != b'."""
        mine, theirs = _flatten(self.to_dict()), _flatten(other.to_dict())
        names = sorted(k for k in set(mine) | set(theirs) if not k.startswith("versions."))
        return [f"{k}: {mine.get(k)!r} != {theirs.get(k)!r}" for k in names if mine.get(k) != theirs.get(k)]


def _build(kind, values, what: str):
    if not isinstance(values, dict):
        raise ValueError(f"{what} must be a mapping, got {type(values).__name__}")
    names = {f.name for f in dataclasses.fields(kind)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"{what} has unknown key(s) {unknown}; known: {sorted(names)}")
    try:
        return kind(**values)
    except TypeError as exc:
        raise ValueError(f"{what}: {exc}") from None


def _flatten(values: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def data_hash(data_dir) -> str:
    """sha256 of a dataset directory: its ``manifest.json`` and every shard, in sorted path order.

    Raises:
        ValueError: ``data_dir`` is not a dataset written by ``pdfsolve dataset build``.
    """
    root = Path(data_dir)
    check_dataset(root)
    manifest = root / "manifest.json"
    digest = hashlib.sha256()
    for path in [manifest] + sorted(root.glob("*/shard_*.h5")):
        digest.update(str(path.relative_to(root)).encode())
        with open(path, "rb") as f:
            while block := f.read(_HASH_BLOCK):
                digest.update(block)
    return digest.hexdigest()


def versions() -> dict:
    """Versions of Python and of the packages a run depends on."""
    import h5py
    import numpy
    import torch

    from .. import __version__

    return {"python": platform.python_version(), "pdfsolve": __version__, "torch": str(torch.__version__),
            "numpy": numpy.__version__, "h5py": h5py.__version__}  # str: torch's TorchVersion is no weights_only type
