"""Generative models of the learned routes, their shared layers and losses, and the registry the trainer builds from."""
from __future__ import annotations

import dataclasses

from torch import nn

from .cbldm import CbLDM, CbLDMParams
from .deepstruc import DeepStruc, DeepStrucParams
from .distance_cvae import DistanceCVAE, DistanceDAE, DistanceParams
from .fingerprint_cvae import FingerprintCVAE, FingerprintParams

#: name -> (hyper-parameter dataclass, model class taking an instance of it).
MODELS = {"deepstruc": (DeepStrucParams, DeepStruc), "cvae": (DistanceParams, DistanceCVAE),
          "dae": (DistanceParams, DistanceDAE), "cbldm": (CbLDMParams, CbLDM),
          "fingerprint": (FingerprintParams, FingerprintCVAE)}


def model_params(name: str, values: dict | None = None):
    """The hyper-parameter dataclass of model ``name`` from a dict (defaults for missing keys).

    Raises ValueError naming an unknown model or unknown keys.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {sorted(MODELS)}")
    kind = MODELS[name][0]
    values = dict(values or {})
    unknown = sorted(set(values) - {f.name for f in dataclasses.fields(kind)})
    if unknown:
        raise ValueError(f"{name} has no hyper-parameter(s) {unknown}")
    return kind(**values)


def build_model(name: str, values: dict | None = None) -> nn.Module:
    """A freshly initialised model ``name`` with hyper-parameters ``values`` (see :func:`model_params`)."""
    params = model_params(name, values)
    return MODELS[name][1](params)


__all__ = ["MODELS", "CbLDM", "CbLDMParams", "DeepStruc", "DeepStrucParams", "DistanceCVAE", "DistanceDAE", "DistanceParams", "FingerprintCVAE",
           "FingerprintParams", "build_model",
           "model_params"]
