"""Datasets of simulated PDFs: parameter draws, grouped splits, resumable HDF5 shards."""
from .build import build_dataset, read_split
from .parameters import DEEPSTRUC_FIXED, RANDOMISED, ParameterRanges
from .splits import assign_splits, group_key

__all__ = ["DEEPSTRUC_FIXED", "RANDOMISED", "ParameterRanges", "assign_splits", "build_dataset", "group_key",
           "read_split"]
