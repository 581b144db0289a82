"""The ``pdfsolve`` command line: ``solve``, ``screen``, ``watch``, ``simulate``, ``info``, ``example``, ``dataset``,
``train``, ``evaluate``, ``interpolate`` and ``latent-map``.

Bad input (missing or malformed files, invalid parameters) prints ``pdfsolve: error: <message>`` to stderr
and exits with status 2.
"""
from __future__ import annotations

import argparse
import re
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from . import __version__, cli_dataset, cli_evaluate, cli_latent, cli_methods, cli_screen, cli_train
from .engine import PDFParameters, simulate_pdf
from .engine.debye import MODES
from .engine.parameters import RADIATIONS
from .io import PDFFileError, StructureFileError, read_pdf, read_structures, write_pdf
from .plotting import save_pdf_plot
from .solve_file import TARGET_OPTIONS, check_options, solve_file

#: Unit and meaning of each numeric PDF parameter, for --help.
PARAMETER_HELP = {
    "rmin": ("Angstrom", "start of the output r grid"),
    "rmax": ("Angstrom", "end of the output r grid (exclusive)"),
    "rstep": ("Angstrom", "step of the output r grid"),
    "qmin": ("1/Angstrom", "lowest Q used in the Fourier transform"),
    "qmax": ("1/Angstrom", "highest Q used in the Fourier transform"),
    "qdamp": ("1/Angstrom", "instrumental damping: G(r) is multiplied by exp(-(qdamp r)^2 / 2)"),
    "qbroad": ("1/Angstrom", "instrumental peak broadening, growing with r"),
    "delta1": ("Angstrom", "correlated-motion peak sharpening, 1/r term"),
    "delta2": ("Angstrom^2", "correlated-motion peak sharpening, 1/r^2 term"),
    "biso": ("Angstrom^2", "isotropic displacement parameter B_iso of every atom"),
    "scale": ("", "overall scale factor of G(r), dimensionless"),
}
DTYPES = {"float64": torch.float64, "float32": torch.float32}
EXAMPLE_DIR = "pdfsolve-example"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``pdfsolve`` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="pdfsolve", description="Nanoparticle structures and X-ray pair distribution functions G(r).")
    parser.add_argument("--version", action="version", version=f"pdfsolve {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sim = sub.add_parser("simulate", help="simulate the PDF G(r) of structure files",
                         description="Simulate the PDF G(r) [1/Angstrom^2] of every structure (every frame of every "
                                     "file, any format ASE reads) in one batch and write one .gr file per structure.")
    sim.add_argument("structures", nargs="+", metavar="STRUCTURE", help="structure file(s): xyz, extxyz, cif, pdb, ...")
    sim.add_argument("-o", "--output", metavar="OUT",
                     help="output .gr file (one structure), file stem OUT_<name>.gr (several structures) or an "
                          "existing directory / path ending in '/' (files <name>.gr in it); default: <name>.gr "
                          "in the current directory")
    sim.add_argument("--plot", metavar="PNG", help="also plot all simulated PDFs into this image file "
                                                   "(format from the extension: png, pdf, svg)")
    _add_simulation_arguments(sim)

    info = sub.add_parser("info", help="print the metadata and r grid of a PDF file",
                          description="Print the header metadata, r grid and G range of a .gr file (PDFgetX3, "
                                      "xPDFsuite, PDFgui, diffpy or plain columns).")
    info.add_argument("file", metavar="FILE", help="PDF file (.gr)")

    example = sub.add_parser("example", help="simulate and plot the bundled example clusters",
                             formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                             description="Simulate the PDFs of the example clusters bundled with pdfsolve "
                                         "(pdfsolve/data/examples) with default parameters, write them as .gr "
                                         "files and plot them; then solve the bundled measured PDF of Pt "
                                         "nanocrystals by cluster mining.")
    example.add_argument("--out", default=EXAMPLE_DIR, metavar="DIR", help="output directory")
    example.add_argument("--mode", choices=MODES, default="exact", help="Debye sum: exact pair sum or fast gridding")
    example.add_argument("--no-solve", dest="solve", action="store_false",
                         help="skip solving the bundled measured PDF (cluster mining, about 30 s the first time)")

    solve_options = _solve_options()
    solve = sub.add_parser("solve", help="find the structure behind measured PDFs (cluster mining, DeepStruc)",
                           parents=[solve_options], formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                           description="Refine every cluster of a motif library (fcc, bcc, sc, hcp, stacking-faulted, "
                                       "icosahedral, decahedral, octahedral) against each measured PDF - scale, "
                                       "expansion and U_iso, then delta2 too for the best few - and rank the fits by "
                                       "Rwp. The library is built once per element set and size range and cached "
                                       "($PDFSOLVE_CACHE, default ~/.cache/pdfsolve).")
    solve.add_argument("inputs", nargs="+", metavar="INPUT.gr", help="measured PDF file(s) G(r)")
    solve.add_argument("-o", "--out", required=True, metavar="OUTDIR",
                       help="output directory; results of each input go to OUTDIR/<input stem>/")
    cli_screen.add_parsers(sub, solve_options)
    cli_dataset.add_parser(sub)
    cli_train.add_parser(sub)
    cli_evaluate.add_parser(sub)
    cli_latent.add_parsers(sub)
    return parser


def _solve_options() -> argparse.ArgumentParser:
    """The options of every solve command (``solve``, ``screen``, ``watch``), as a parent parser: --top, the target's
    Q range and fitted r range, and the method's (:func:`pdfsolve.cli_methods.add_arguments`)."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--top", type=int, default=5, help="number of best candidates written as rank_XX.xyz")
    for name in ("qmin", "qmax", "qdamp"):
        unit, meaning = PARAMETER_HELP[name]
        options.add_argument(f"--{name}", type=float, metavar="X",
                             help=f"{meaning} [{unit}] when the file's header does not record it")
    options.add_argument("--rmin", type=float, metavar="X", help="start of the fitted range [Angstrom] (default 1.5)")
    options.add_argument("--rmax", type=float, metavar="X",
                         help="end of the fitted range [Angstrom] (default 30, or the data's end)")
    cli_methods.add_arguments(options)
    return options


def _add_simulation_arguments(parser: argparse.ArgumentParser) -> None:
    """PDF parameter options (defaults from PDFParameters) and engine options."""
    defaults = PDFParameters()
    group = parser.add_argument_group("PDF parameters")
    for name, (unit, text) in PARAMETER_HELP.items():
        target = group.add_mutually_exclusive_group() if name == "biso" else group
        default = f"{getattr(defaults, name):g} {unit}".strip()
        target.add_argument(f"--{name}", type=float, metavar="X", help=f"{text} (default: {default})")
        if name == "biso":
            target.add_argument("--uiso", type=float, metavar="X",
                                help="isotropic mean-square displacement U_iso = B_iso / (8 pi^2) of every atom, "
                                     f"instead of --biso (default: {defaults.uiso:.4g} Angstrom^2)")
    group.add_argument("--radiation", choices=RADIATIONS, default=defaults.radiation,
                       help=f"X-ray form factors or neutron scattering lengths (default: {defaults.radiation})")
    engine = parser.add_argument_group("engine")
    engine.add_argument("--mode", choices=MODES, default="exact",
                        help="Debye sum: 'exact' pair sum (diffpy-identical) or 'fast' Gaussian gridding "
                             "(default: exact)")
    engine.add_argument("--normalize", action="store_true",
                        help="scale each G(r) to max|G| = 1 (dimensionless, as DeepStruc training data)")
    engine.add_argument("--dtype", choices=DTYPES, default="float64",
                        help="floating-point precision (default: float64)")


def _parameters(args: argparse.Namespace) -> PDFParameters:
    """PDFParameters from the options given (others at their defaults); ValueError when invalid."""
    given = {name: getattr(args, name) for name in PARAMETER_HELP if getattr(args, name) is not None}
    if args.uiso is not None:
        return PDFParameters.from_uiso(args.uiso, radiation=args.radiation, **given)
    return PDFParameters(radiation=args.radiation, **given)


def _structure_names(structures) -> list[str]:
    """A file-name-safe, unique name per structure: its ``info["name"]``, else file stem (+ frame index)."""
    names = []
    for atoms in structures:
        name = atoms.info.get("name")
        if not name:
            name = Path(atoms.info["source"]).stem
            if atoms.info["nframes"] > 1:
                name += f"_{atoms.info['frame']}"
        names.append(re.sub(r"[^\w.+-]+", "_", str(name)).strip("_") or "structure")
    return [f"{n}_{k}" if names.count(n) > 1 else n for k, n in enumerate(names)]


def _output_paths(output: str | None, names: list[str]) -> list[Path]:
    """Where each structure's .gr goes (see ``simulate --output``); parent directories are created."""
    if output is None:
        paths = [Path(f"{n}.gr") for n in names]
    elif output.endswith(("/", "\\")) or Path(output).is_dir():
        paths = [Path(output) / f"{n}.gr" for n in names]
    elif len(names) == 1:
        paths = [Path(output)]
    else:
        out = Path(output)
        paths = [out.with_name(f"{out.stem}_{n}{out.suffix or '.gr'}") for n in names]
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
    return paths


def _simulate_and_write(structures, names: list[str], paths: list[Path], params: PDFParameters, mode: str,
                        normalize: bool, dtype: str, plot: str | None, title: str) -> None:
    """Simulate all structures in one batch, write each to its path (and the plot), print a line each."""
    result = simulate_pdf(structures, params, mode=mode, normalize=normalize, dtype=DTYPES[dtype])
    g_all = result.G.detach().cpu().to(torch.float64).numpy()
    unit = "(normalized)" if normalize else "1/Angstrom^2"
    for atoms, name, path, g in zip(structures, names, paths, g_all):
        metadata = {"name": name, "structure": atoms.info["source"], "composition": atoms.get_chemical_formula(),
                    "natoms": len(atoms), "simulation_mode": mode, "normalized": normalize, "dtype": dtype}
        if atoms.info["nframes"] > 1:
            metadata["frame"] = atoms.info["frame"]
        write_pdf(path, result.r, g, params=params, metadata=metadata)
        print(f"{name}: {len(atoms)} atoms ({atoms.get_chemical_formula()}), "
              f"max|G| = {np.abs(g).max():.4g} {unit} -> {path}")
    if plot:
        Path(plot).parent.mkdir(parents=True, exist_ok=True)
        save_pdf_plot(plot, [(result.r, g, name) for name, g in zip(names, g_all)], title=title)
        print(f"plot -> {plot}")


def _cmd_simulate(args: argparse.Namespace) -> None:
    params = _parameters(args)
    structures = read_structures(args.structures, radiation=params.radiation)
    names = _structure_names(structures)
    title = f"pdfsolve simulate ({args.mode}, Qmax = {params.qmax:g} 1/Angstrom)"
    _simulate_and_write(structures, names, _output_paths(args.output, names), params, args.mode, args.normalize,
                        args.dtype, args.plot, title)


def _cmd_info(args: argparse.Namespace) -> None:
    data = read_pdf(args.file)
    columns = ["r", "G"] + [name for name in ("dr", "dG") if getattr(data, name) is not None]
    print(f"file: {data.source}")
    print(f"columns: {' '.join(columns)}")
    print(f"points: {len(data.r)}, r = {data.r[0]:g} .. {data.r[-1]:g} Angstrom, step {data.rstep:.6g} Angstrom")
    print(f"G: {data.G.min():.6g} .. {data.G.max():.6g} 1/Angstrom^2")
    for name in ("composition", "qmin", "qmax"):
        value = getattr(data, name)
        if value is not None:
            print(f"{name}: {value:g}" if isinstance(value, float) else f"{name}: {value}")
    if data.metadata:
        print("metadata:")
        for key, value in data.metadata.items():
            print(f"  {key} = {value}")


def _cmd_example(args: argparse.Namespace) -> None:
    out = Path(args.out)
    examples = resources.files("pdfsolve.data").joinpath("examples")
    files = sorted((f for f in examples.iterdir() if f.name.endswith(".xyz")), key=lambda f: f.name)
    structures = []
    for f in files:
        with resources.as_file(f) as path:
            structures += read_structures(path)
    params = PDFParameters()
    print(f"pdfsolve example: {len(structures)} bundled clusters, default parameters, {args.mode} mode")
    names = _structure_names(structures)
    out.mkdir(parents=True, exist_ok=True)
    _simulate_and_write(structures, names, [out / f"{n}.gr" for n in names], params, args.mode, False, "float64",
                        str(out / "examples.png"), title="pdfsolve example clusters")
    print(f"wrote {len(structures)} PDF files and a plot to {out}")
    if args.solve:
        print("pdfsolve example: solving the bundled measured PDF of 1.8 nm Pt nanocrystals (JQ_S1.gr)")
        settings = argparse.Namespace(method="mine", element=None, min_atoms=5, max_atoms=200, top=3,
                                      **dict.fromkeys(TARGET_OPTIONS))
        with resources.as_file(examples.joinpath("JQ_S1.gr")) as path:
            _solve_file(path, out, settings, cli_methods.solver(settings))


def _print_summary(summary: dict, out: Path) -> None:
    stages = ", ".join(f"{stage} {t:.2f}" for stage, t in summary["seconds"].items())
    print(f"  {summary['n_candidates']} candidates refined -> {out} (seconds: {stages})")
    print(f"  {'rank':>4s} {'motif':14s} {'N':>5s} {'El':3s} {'Rwp':>7s} {'scale':>8s} {'expansion':>9s} {'uiso':>8s} "
          f"{'delta2':>6s}")
    for row in summary["top"]:
        print(f"  {row['rank']:>4d} {str(row['motif'])[:14]:14s} {row['n_atoms']:>5d} {row['element']:3s} "
              f"{float(row['rwp']):7.3f} {float(row['scale']):8.4g} {float(row['expansion']):9.4f} "
              f"{float(row['uiso']):8.4g} {float(row['delta2']):6.3f}")


def _solve_file(path, out_root: Path, args: argparse.Namespace, solve) -> None:
    """One PDF file: ``solve(target, elements)``, results to ``out_root/<stem>/`` and a table on stdout."""
    out = out_root / Path(path).stem
    _print_summary(solve_file(path, out, args, solve), out)


def _cmd_solve(args: argparse.Namespace) -> None:
    check_options(args)
    solve = cli_methods.solver(args)
    for path in args.inputs:
        _solve_file(path, Path(args.out), args, solve)


COMMANDS = {"simulate": _cmd_simulate, "info": _cmd_info, "example": _cmd_example, "solve": _cmd_solve,
            "screen": cli_screen.run_screen, "watch": cli_screen.run_watch,
            "dataset": cli_dataset.run, "train": cli_train.run, "evaluate": cli_evaluate.run,
            "interpolate": cli_latent.run_interpolate, "latent-map": cli_latent.run_latent_map}


def main(argv=None) -> int:
    """Run ``pdfsolve`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        COMMANDS[args.command](args)
    except (PDFFileError, StructureFileError, ValueError, FloatingPointError, OSError) as exc:
        message = " ".join(str(exc).split())
        print(f"pdfsolve: error: {message}", file=sys.stderr)
        return 2
    return 0
