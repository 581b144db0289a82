"""Solvers: each route turns a measured PDF into ranked candidate structures."""
from .mine import MiningResult, cached_library, mine, write_mining_outputs

__all__ = ["MiningResult", "cached_library", "mine", "write_mining_outputs"]
