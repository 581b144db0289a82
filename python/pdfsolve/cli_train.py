"""``pdfsolve train MODEL``: train a generative model on a dataset written by ``pdfsolve dataset build``.

The run's settings come from the defaults, then a JSON config file (``--config``, any keys of
:class:`pdfsolve.training.TrainConfig`, e.g. ``{"model_params": {"latent_dim": 8}, "beta": {"end": 0.5}}``), then
the command-line options. Everything lands in ``RUN_DIR/config.json``; ``--resume`` continues the run there
(only ``--epochs`` may change), and Ctrl-C saves the state and exits, so rerunning with ``--resume`` goes on.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

#: Options that map onto top-level TrainConfig fields.
_FIELDS = ("epochs", "batch_size", "seed")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``train`` (with one subcommand per model) on the ``pdfsolve`` subparsers."""
    from .models import MODELS

    train = subparsers.add_parser("train", help="train a generative model (DeepStruc, ...) on a dataset",
                                  description="Train a generative model on the HDF5 dataset of 'pdfsolve dataset "
                                              "build', with validation each epoch, early stopping and resumable, "
                                              "atomic checkpoints.")
    sub = train.add_subparsers(dest="model", required=True, metavar="MODEL")
    for name in MODELS:
        p = sub.add_parser(name, help=f"train {name}",
                           description=f"Train {name}; run files: RUN_DIR/config.json, checkpoint.pt (full state), "
                                       "best.pt (best validation weights), history.jsonl (losses per epoch).")
        p.add_argument("--data", metavar="DATA_DIR", help="dataset directory (required unless --resume)")
        p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory")
        p.add_argument("--epochs", type=int, help="most epochs (default: 100)")
        p.add_argument("--batch-size", type=int, metavar="N", help="clusters per step (default: 64)")
        p.add_argument("--seed", type=int, help="seed of weights, batch order and sampling (default: 0)")
        p.add_argument("--lr", type=float, help="initial learning rate of AdamW (default: 1e-3)")
        p.add_argument("--config", metavar="FILE", help="JSON file with config keys (model_params, optimizer, "
                                                        "beta, patience, ...); options given here override it")
        p.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR")
        p.add_argument("--init", metavar="WEIGHTS", help="start from the weights of an earlier run (its best.pt; "
                                                         "same model, same shapes): fine-tuning")
        p.add_argument("--threads", type=int, metavar="N", help="torch CPU threads (default: torch's choice)")
        p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bars")
    return train


def _read_json(path) -> dict:
    try:
        values = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path}: a config file must hold a JSON object")
    return values


def _overrides(args: argparse.Namespace) -> dict:
    """Config keys from --config and the options (options win)."""
    values = _read_json(args.config) if args.config else {}
    for name in _FIELDS:
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    if args.lr is not None:
        values["optimizer"] = dict(values.get("optimizer", {}), lr=args.lr)
    if getattr(args, "init", None):
        from .models.weights import file_sha256

        if not Path(args.init).is_file():
            raise ValueError(f"--init: no weights at {args.init}")
        values.update(init_weights=str(Path(args.init).resolve()), init_sha256=file_sha256(args.init))
    return values


def _new_config(args: argparse.Namespace, overrides: dict):
    """The config of a new run: defaults, the overrides, the data's hash and the versions."""
    from .models import MODELS, model_params
    from .training import TrainConfig, data_hash
    from .training.config import versions
    from .training.data import max_atoms

    if args.data is None:
        raise ValueError("--data is required for a new run")
    data = Path(args.data).resolve()
    digest = data_hash(data)
    for key, value in (("data", str(data)), ("data_sha256", digest), ("model", args.model)):
        given = overrides.pop(key, value)
        if (str(Path(given).resolve()) if key == "data" else given) != value:
            raise ValueError(f"the config file's {key} ({given}) does not match this run's ({value})")
    params = dict(overrides.pop("model_params", {}))
    if "n_max" in {f.name for f in dataclasses.fields(MODELS[args.model][0])}:  # sized to the data
        params.setdefault("n_max", max_atoms(data))
    params = model_params(args.model, params).to_dict()
    return TrainConfig.from_dict({**overrides, "model": args.model, "model_params": params, "data": str(data),
                                  "data_sha256": digest, "versions": versions()})


def _resumed_config(args: argparse.Namespace, overrides: dict):
    """The stored config of the run to resume, with a new --epochs; other options must agree with it."""
    from .training import TrainConfig

    stored = TrainConfig.load(args.out)
    if stored.model != args.model:
        raise ValueError(f"{args.out} holds a {stored.model} run, not {args.model}")
    if args.data is not None and Path(args.data).resolve() != Path(stored.data):
        raise ValueError(f"{args.out} was trained on {stored.data}, not {Path(args.data).resolve()}")
    values = stored.to_dict()
    epochs = overrides.pop("epochs", stored.epochs)
    merged = {**values, **overrides}
    for key in ("model_params", "optimizer", "beta"):
        merged[key] = {**values[key], **overrides.get(key, {})}
    given = TrainConfig.from_dict(merged)
    differences = stored.differences(given)
    if differences:
        raise ValueError(f"options differ from the run in {args.out}: " + "; ".join(differences))
    return TrainConfig.from_dict({**values, "epochs": epochs})


def run(args: argparse.Namespace) -> None:
    """Run ``pdfsolve train MODEL``."""
    import torch

    from .training import train

    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    overrides = _overrides(args)
    config = _resumed_config(args, overrides) if args.resume else _new_config(args, overrides)
    what = "resuming" if args.resume else "training"
    print(f"{what} {config.model} on {config.data} -> {args.out} (epochs {config.epochs}, batch {config.batch_size}, "
          f"seed {config.seed})", flush=True)
    result = train(config, args.out, resume=args.resume, progress=args.progress)
    state = result.state
    print(f"{result.status} after {state.epoch} epoch(s)" + (f" and {state.step} step(s)" if state.step else "")
          + f"; best validation loss {state.best:.6g}; run files in {args.out}", flush=True)
