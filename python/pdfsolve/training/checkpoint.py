"""Atomic checkpoints: written to a temporary file in the same directory, then renamed over the old one.

Everything is stored as tensors, numbers, strings and containers of them, so files load with
``torch.load(..., weights_only=True)``.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

CHECKPOINT_NAME = "checkpoint.pt"
BEST_NAME = "best.pt"


def save_atomic(obj, path) -> Path:
    """``torch.save(obj)`` to ``path`` through ``path.tmp`` and ``os.replace``: a crash leaves the old file whole."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def load(path) -> dict:
    """A checkpoint written by :func:`save_atomic` (``weights_only=True``); ValueError when unreadable."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for truncated or foreign files
        raise ValueError(f"{path}: not a readable pdfsolve checkpoint ({exc})") from None


def rng_state() -> dict:
    """The torch random states (CPU, and every CUDA device when present) that training draws from."""
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
