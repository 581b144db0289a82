"""Ship a training run's weights as pdfsolve/data/weights/NAME.pt (the run's best.pt, float32) with NAME.json: the
file's sha256, the commands that made it, what it was trained on and the scores of ``pdfsolve evaluate --json``
files (total, per motif, per size).

    python benchmarks/ship_weights.py NAME RUN_DIR --command "pdfsolve train ..." [--command ...] \
        [--scores LABEL=EVAL.json ...]
"""
from __future__ import annotations

import argparse
import json
import shutil
from importlib.resources import files
from pathlib import Path

from pdfsolve.models.weights import file_sha256, load_weights
from pdfsolve.training.checkpoint import load


def record(name: str, run: Path, commands: list[str], scores: dict) -> dict:
    """The NAME.json record of the weights copied from ``run/best.pt``."""
    best = load(run / "best.pt")
    config = best["config"]
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    return {"command": commands,
            "metrics": {"validation loss": best["val_loss"],
                        **{label: {k: data[k] for k in ("total", "per_motif", "per_size") if k in data}
                           for label, data in scores.items()}},
            "trained": {"dataset": {"name": Path(config["data"]).parent.name + "/" + Path(config["data"]).name,
                                    "sha256": config["data_sha256"]},
                        "epochs": len(history), "best epoch": best["epoch"], "init_weights": config.get("init_weights"),
                        "model_params": config["model_params"]},
            "precision": "float32"}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name")
    parser.add_argument("run", type=Path)
    parser.add_argument("--command", action="append", default=[], help="a command that made the weights, in order")
    parser.add_argument("--scores", action="append", default=[], metavar="LABEL=EVAL.json")
    args = parser.parse_args(argv)
    folder = Path(str(files("pdfsolve.data") / "weights"))
    target = folder / f"{args.name}.pt"
    shutil.copyfile(args.run / "best.pt", target)
    scores = {label: json.loads(Path(path).read_text()) for label, path in (s.split("=", 1) for s in args.scores)}
    entry = {"sha256": file_sha256(target), **record(args.name, args.run, args.command, scores)}
    (folder / f"{args.name}.json").write_text(json.dumps(entry, indent=1) + "\n")
    load_weights(None, args.name)  # the shipped file loads and matches its record
    print(f"{target}: {target.stat().st_size / 1e6:.1f} MB, sha256 {entry['sha256'][:12]}...")


if __name__ == "__main__":
    main()
