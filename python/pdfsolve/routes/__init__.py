"""Solvers: each route turns a measured PDF into candidate structures, refined and ranked by :mod:`.ranking`."""
from .mine import cached_library, mine
from .ranking import RankedCandidates, rank_candidates, write_outputs

__all__ = ["RankedCandidates", "cached_library", "mine", "rank_candidates", "write_outputs"]
