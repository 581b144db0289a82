"""What every model's hyper-parameter dataclass shares: integer tuples that arrive as JSON lists, and a JSON-ready
dict of all fields."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelParams:
    """Base of the frozen hyper-parameter dataclasses of :data:`pdfsolve.models.MODELS`."""

    def _int_tuples(self, *names: str) -> None:
        """Store the fields ``names`` (lists from a JSON config, or tuples) as tuples of ints."""
        for name in names:
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))

    def to_dict(self) -> dict:
        """Every field, tuples as lists (as the run's config.json stores them)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}
