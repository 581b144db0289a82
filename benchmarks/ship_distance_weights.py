"""Ship the distance route's weights: a run's best.pt in half precision as pdfsolve/data/weights/NAME.pt, and
NAME.json with its sha256, the commands that made it, the metrics of the shipped file on the dataset's test split
(:func:`distance_route.evaluate`) and what it was trained on.

Half precision: the published layer sizes at n_max = 93 hold 4.0 M parameters, 16 MB in float32 per model; float16
halves that (8 MB each, 16 MB for CVAE and DAE) and keeps the study's architecture, at a relative rounding of the
weights <= 2^-11 (the metrics are those of the rounded weights).

Usage: python benchmarks/ship_distance_weights.py DATA_DIR NAME=RUN_DIR ... --command NAME "COMMAND" ...
"""
from __future__ import annotations

import argparse
import json
import sys
from importlib.resources import files
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from distance_route import evaluate, load_test_split  # noqa: E402

from pdfsolve.models.weights import file_sha256, load_weights, save_half_precision  # noqa: E402
from pdfsolve.training.checkpoint import load  # noqa: E402


def ship(name: str, run: Path, data: str, commands: list[str], folder: Path) -> dict:
    """Write NAME.pt and NAME.json into ``folder`` (see the module doc); returns the record."""
    path = save_half_precision(run / "best.pt", folder / f"{name}.pt")
    model, config = load_weights(path, name)
    best = load(path)
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    manifest = json.loads((Path(data) / "manifest.json").read_text())
    record = {"sha256": file_sha256(path), "command": commands,
              "metrics": {"validation loss": best["val_loss"], **evaluate(model.double(), *load_test_split(data))},
              "trained": {"dataset": {"name": Path(config["data"]).parent.name + "/" + Path(config["data"]).name,
                                      "sha256": config["data_sha256"], "counts": manifest["counts"]},
                          "epochs": len(history), "best epoch": best["epoch"],
                          "model_params": config["model_params"]},
              "precision": "float16 (cast to float32 on loading)"}
    (folder / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data")
    parser.add_argument("runs", nargs="+", metavar="NAME=RUN_DIR")
    parser.add_argument("--command", nargs=2, action="append", default=[], metavar=("NAME", "COMMAND"),
                        help="a command that made NAME's weights (repeat, in order)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    folder = Path(str(files("pdfsolve.data") / "weights"))
    folder.mkdir(exist_ok=True)
    for item in args.runs:
        name, run = item.split("=", 1)
        commands = [c for n, c in args.command if n == name]
        record = ship(name, Path(run), args.data, commands, folder)
        print(name, json.dumps(record["metrics"]), flush=True)


if __name__ == "__main__":
    main()
