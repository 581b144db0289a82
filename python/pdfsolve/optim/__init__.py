"""Batched optimisation: :func:`minimize_batched` runs L-BFGS-B on many bound-constrained problems at once."""
from .lbfgsb import STATUS, LbfgsbResult, minimize_batched, value_and_grad

__all__ = ["STATUS", "LbfgsbResult", "minimize_batched", "value_and_grad"]
