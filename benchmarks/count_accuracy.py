"""How often a DeepStruc count head gives the right atom count on a dataset split, from the prior-mean latent (what
sampling at widening 0 would use): exact N, |N - N_true| <= 5 % of N_true, and the median |N - N_true| / N_true.

    python benchmarks/count_accuracy.py DATA_DIR SPLIT WEIGHTS.pt [WEIGHTS.pt ...]

WEIGHTS: a run's best.pt, or its checkpoint.pt (the model is then built from the run's config.json).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from pdfsolve.datasets import read_split
from pdfsolve.models import build_model


def load(path: Path) -> torch.nn.Module:
    """The DeepStruc model of a run's best.pt or checkpoint.pt, in eval mode."""
    state = torch.load(path, weights_only=True)
    config = state.get("config") or json.loads((path.parent / "config.json").read_text())
    model = build_model(config["model"], config["model_params"])
    model.load_state_dict(state["model"])
    return model.eval()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("split", choices=("train", "validation", "test"))
    parser.add_argument("weights", type=Path, nargs="+")
    args = parser.parse_args(argv)
    data = read_split(args.data, args.split, keys=("r", "G", "n_atoms"))
    true = data["n_atoms"]
    for path in args.weights:
        model = load(path)
        with torch.no_grad():
            y = model.embed_pdf(torch.as_tensor(data["r"]), torch.as_tensor(data["G"]))
            n = model.count_logits(model.prior(y)[0], y).argmax(-1).numpy() + 1
        error = np.abs(n - true) / true
        print(f"{path}: exact N {np.mean(n == true):.3f}, within 5 % {np.mean(error <= 0.05):.3f}, "
              f"median error {np.median(error):.3f} of N ({len(true)} PDFs)")


if __name__ == "__main__":
    main()
