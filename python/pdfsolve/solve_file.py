"""Solve one measured PDF file and write its outputs: the step that ``pdfsolve solve``, ``screen`` and ``watch``
share, so that each gives the same ranking and files for the same input and options."""
from __future__ import annotations

import argparse
from pathlib import Path

from . import cli_methods
from .io import read_pdf

#: Options of the solve commands that shape the target (fitted r range [Angstrom], Q range and damping
#: [1/Angstrom] when the file's header lacks them).
TARGET_OPTIONS = ("qmin", "qmax", "qdamp", "rmin", "rmax")


def check_options(args: argparse.Namespace) -> None:
    """ValueError naming the first invalid solve option."""
    if args.top < 1:
        raise ValueError(f"--top must be >= 1, got {args.top}")
    cli_methods.check(args)


def solve_file(path, out_dir, args: argparse.Namespace, solve, log=print) -> dict:
    """Solve the PDF file ``path`` with ``solve(target, elements)`` (from :func:`pdfsolve.cli_methods.solver`) and
    write ``candidates.csv``, ``rank_XX.xyz``, ``fit.png`` and ``summary.json`` into ``out_dir``.

    ``args``: the solve options (``--top``, :data:`TARGET_OPTIONS`, and those of
    :func:`pdfsolve.cli_methods.add_arguments`). ``log``: called with one line naming the file's Q range, fitted
    range and method. Returns the summary of :func:`pdfsolve.routes.write_outputs`.

    Raises:
        PDFFileError: the file is missing or malformed.
        ValueError: the data cannot make a target (see :meth:`pdfsolve.target.Target.from_file`).
    """
    from .routes import write_outputs
    from .target import Target

    target = Target.from_file(path, **{name: getattr(args, name) for name in TARGET_OPTIONS})
    elements = cli_methods.default_elements(args, read_pdf(path).composition)
    log(f"{path}: Qmin {target.params.qmin:g}, Qmax {target.params.qmax:g} 1/Angstrom, fit "
        f"{target.rmin:g}-{target.rmax:g} Angstrom; {cli_methods.describe(args, elements)}")
    return write_outputs(solve(target, elements), Path(out_dir), top=args.top)
