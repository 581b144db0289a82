"""Batched optimisation: :func:`minimize_batched` runs L-BFGS-B on many bound-constrained problems at once."""
from .lbfgsb import SCIPY_FTOL, STATUS, LbfgsbResult, minimize_batched, value_and_grad

__all__ = ["SCIPY_FTOL", "STATUS", "LbfgsbResult", "minimize_batched", "value_and_grad"]
