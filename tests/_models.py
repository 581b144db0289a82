"""Shared pieces of the model tests: one torch thread for tiny models, and small Au datasets."""
from __future__ import annotations

import pytest
import torch

from pdfsolve.datasets import build_dataset
from pdfsolve.structures import build_library


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models on a shared 2-core machine: a second thread only spins (steps up to 30x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def au_dataset(out, min_atoms: int, max_atoms: int, fractions, **options):
    """PDFs of the Au library of min_atoms-max_atoms atoms (DeepStruc's fixed parameters) in HDF5 shards at out."""
    build_dataset(build_library(["Au"], min_atoms=min_atoms, max_atoms=max_atoms), out, fractions=fractions,
                  progress=False, **options)
    return out
