"""Ship the PDF-conditioned fingerprint cVAE: a run's best.pt as pdfsolve/data/weights/fingerprint.pt (float32,
under 1 MB) and fingerprint.json with its sha256, the commands that made it, its validation loss, the scores of
``pdfsolve evaluate --json`` runs and what it was trained on.

Usage: python benchmarks/ship_fingerprint_weights.py RUN_DIR --command "COMMAND" ... --evaluation NAME=EVAL.json ...
"""
from __future__ import annotations

import argparse
import json
import shutil
from importlib.resources import files
from pathlib import Path

from pdfsolve.models.weights import file_sha256, load_weights
from pdfsolve.training.checkpoint import load


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--command", action="append", default=[], help="a command that made the weights (in order)")
    parser.add_argument("--evaluation", action="append", default=[], metavar="NAME=FILE",
                        help="the total scores of a 'pdfsolve evaluate --json FILE' run, recorded under NAME "
                             "(split at the last '=')")
    args = parser.parse_args(argv)
    folder = Path(str(files("pdfsolve.data") / "weights"))
    folder.mkdir(exist_ok=True)
    path = Path(shutil.copyfile(args.run / "best.pt", folder / "fingerprint.pt"))
    _, config = load_weights(path, "fingerprint")
    best = load(path)
    evaluations = {name: json.loads(Path(file).read_text())["total"]
                   for name, file in (item.rsplit("=", 1) for item in args.evaluation)}
    manifest = json.loads((Path(config["data"]) / "manifest.json").read_text())
    record = {"sha256": file_sha256(path), "command": args.command,
              "metrics": {"validation loss": best["val_loss"], **evaluations},
              "trained": {"dataset": {"name": Path(config["data"]).parent.name + "/" + Path(config["data"]).name,
                                      "sha256": config["data_sha256"], "counts": manifest["counts"]},
                          "best epoch": best["epoch"], "model_params": config["model_params"]},
              "precision": "float32"}
    (folder / "fingerprint.json").write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record["metrics"]))


if __name__ == "__main__":
    main()
