"""Trained weights: the ``best.pt`` a training run writes (model state, run config, epoch, validation loss), loaded
with ``torch.load(weights_only=True)`` and, when a hash is given, checked against its sha256 first.

Weights shipped with pdfsolve lie in ``pdfsolve/data/weights``: ``NAME.pt`` and ``NAME.json`` (its sha256, the
command that trained it and the metrics it reached). Large ones may be shipped in half precision
(:func:`save_half_precision`); loading casts them back to the model's float32."""
from __future__ import annotations

import hashlib
import json
from importlib.resources import files
from pathlib import Path

from torch import nn

from ..training.checkpoint import load, save_atomic
from . import build_model


def file_sha256(path) -> str:
    """sha256 hex digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def load_model(path, sha256: str | None = None) -> tuple[nn.Module, dict]:
    """The model stored in ``path`` (in eval mode) and the config of the run that trained it.

    Raises:
        ValueError: the file is missing, its sha256 differs from ``sha256``, or it holds no model of a known kind.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no model weights at {path}")
    if sha256 is not None and file_sha256(path) != sha256:
        raise ValueError(f"{path}: sha256 {file_sha256(path)[:12]}... does not match the expected {sha256[:12]}...")
    saved = load(path)
    try:
        config = saved["config"]
        model = build_model(config["model"], config["model_params"])
        model.load_state_dict(saved["model"])
    except (KeyError, TypeError, RuntimeError) as exc:
        raise ValueError(f"{path}: not the weights of a pdfsolve training run ({exc})") from None
    return model.eval(), config


def save_half_precision(src, dst) -> Path:
    """Write the weights file ``src`` (a run's best.pt) to ``dst`` with the model's floating-point tensors in
    float16: half the bytes, each weight rounded to 11 significant bits (relative error <= 2^-11). ValueError as
    :func:`load_model` when ``src`` holds no model."""
    load_model(src)
    saved = load(src)
    saved["model"] = {k: v.half() if v.is_floating_point() else v for k, v in saved["model"].items()}
    return save_atomic(saved, dst)


def shipped_weights(name: str) -> tuple[Path, dict] | None:
    """``(path, record)`` of the weights shipped as ``name`` (e.g. "deepstruc"), or None when none are."""
    folder = Path(str(files("pdfsolve.data") / "weights"))
    path, record = folder / f"{name}.pt", folder / f"{name}.json"
    if not (path.is_file() and record.is_file()):
        return None
    return path, json.loads(record.read_text())


def load_weights(path, model: str) -> tuple[nn.Module, dict]:
    """The ``model`` at ``path``, or the shipped ``model`` (checked against its recorded sha256) when ``path`` is
    None. Raises ValueError when there are none, or the file holds another model."""
    if path is None:
        shipped = shipped_weights(model)
        if shipped is None:
            raise ValueError(f"no {model} weights are shipped with this pdfsolve; train some with 'pdfsolve train "
                             f"{model}' and pass --weights RUN_DIR/best.pt")
        path, record = shipped
        loaded, config = load_model(path, record["sha256"])
    else:
        loaded, config = load_model(path)
    if config["model"] != model:
        raise ValueError(f"{path} holds a {config['model']} model, not {model}")
    return loaded, config
