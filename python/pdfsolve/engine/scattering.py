"""Scattering factors: Waasmaier-Kirfel X-ray form factors and neutron coherent scattering lengths.

The table (``pdfsolve/data/scattering_factors.csv``) names its sources in its header.
"""
from __future__ import annotations

import csv
import functools
import math
from importlib import resources

import torch


@functools.lru_cache(maxsize=1)
def _table() -> dict[str, tuple[list[float], list[float], float, float | None]]:
    """symbol -> (a[5], b[5], c, b_coh in fm or None)."""
    rows = {}
    text = resources.files("pdfsolve.data").joinpath("scattering_factors.csv").read_text()
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    for rec in csv.DictReader(lines):
        a = [float(rec[f"a{i}"]) for i in range(1, 6)]
        b = [float(rec[f"b{i}"]) for i in range(1, 6)]
        bcoh = float(rec["b_coh_fm"]) if rec["b_coh_fm"] else None
        rows[rec["symbol"]] = (a, b, float(rec["c"]), bcoh)
    return rows


def known_symbols() -> list[str]:
    """Every element (and ion) symbol that has an X-ray form factor."""
    return list(_table())


def check_symbols(symbols, radiation: str = "xray") -> None:
    """Raise ValueError naming any symbol without a scattering factor for ``radiation``."""
    table = _table()
    unknown = sorted({s for s in symbols if s not in table})
    if unknown:
        raise ValueError(f"unknown element symbol(s) {unknown}: no {radiation} scattering factor")
    if radiation == "neutron":
        missing = sorted({s for s in symbols if table[s][3] is None})
        if missing:
            raise ValueError(f"no neutron scattering length for {missing}")


def xray_form_factors(symbols, q: torch.Tensor) -> torch.Tensor:
    """X-ray form factors f0(Q) in electrons, shape (len(symbols), len(q)); q in 1/Angstrom.

    f0(Q) = c + sum_i a_i exp(-b_i (Q / 4 pi)^2)  (Waasmaier & Kirfel 1995).
    """
    check_symbols(symbols, "xray")
    table = _table()
    k2 = (q / (4.0 * math.pi)) ** 2
    out = []
    for s in symbols:
        a, b, c, _ = table[s]
        f = torch.full_like(q, c)
        for ai, bi in zip(a, b):
            f = f + ai * torch.exp(-bi * k2)
        out.append(f)
    return torch.stack(out) if out else q.new_zeros((0, q.numel()))


def neutron_lengths(symbols, q: torch.Tensor) -> torch.Tensor:
    """Coherent neutron scattering lengths in fm, constant in Q, shape (len(symbols), len(q))."""
    check_symbols(symbols, "neutron")
    table = _table()
    vals = torch.tensor([table[s][3] for s in symbols], dtype=q.dtype, device=q.device)
    return vals[:, None].expand(len(symbols), q.numel()).clone()


def scattering_factors(symbols, q: torch.Tensor, radiation: str = "xray") -> torch.Tensor:
    """Form factors (xray, electrons) or scattering lengths (neutron, fm), shape (S, len(q))."""
    if radiation == "xray":
        return xray_form_factors(symbols, q)
    if radiation == "neutron":
        return neutron_lengths(symbols, q)
    raise ValueError(f"unknown radiation {radiation!r}; use 'xray' or 'neutron'")
