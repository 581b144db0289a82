"""The solver options shared by ``pdfsolve solve`` and ``pdfsolve evaluate`` (``--method`` and its settings) and the
solver they select: ``solver(args)(target, elements) -> RankedCandidates``."""
from __future__ import annotations

import argparse
import sys

#: Routes that sample a trained model (their weights: --weights, else the shipped ones).
GENERATIVE = ("deepstruc", "cvae", "dae", "cbldm", "fingerprint")
METHODS = ("mine", *GENERATIVE, "all")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--method, the library options (--element, --min-atoms, --max-atoms) and DeepStruc's settings (the parser
    shows defaults with ``argparse.ArgumentDefaultsHelpFormatter``)."""
    from .routes.ranking import POLISH
    from .routes.sampling import SNAP_MIN_ATOMS, SNAP_WIDTH

    group = parser.add_argument_group("method")
    group.add_argument("--method", choices=METHODS, default="mine",
                       help="'mine': refine a cluster library; 'deepstruc': refine clusters sampled from a trained "
                            "DeepStruc model (--weights), each labelled with the motif of the nearest cluster of the "
                            "library or 'unknown'; 'cvae' / 'dae': the distance route (Anker, Kjaer et al. 2020), "
                            "distances decoded from the CVAE's prior (or the DAE's prior mean) and trilaterated, "
                            "then labelled, refined and ranked like DeepStruc's; 'cbldm': affinities sampled by latent "
                            "diffusion (Cao et al. 2025), turned into coordinates, refined and ranked; 'fingerprint': "
                            "ACSF fingerprints generated for the PDF (Fung et al. 2022), inverted, refined and "
                            "ranked; 'all': every method whose weights are available (mining, DeepStruc, and the "
                            "distance, CbLDM and fingerprint models whose weights are shipped), one ranking")
    group.add_argument("--element", action="append", metavar="EL",
                       help="metal(s) of the library (repeatable); default: the metals in the file's composition, "
                            "else every metal (mine) or Au (deepstruc, which uses the first); 'evaluate' uses each cluster's own")
    group.add_argument("--min-atoms", type=int, default=5, help="smallest library cluster")
    group.add_argument("--max-atoms", type=int, default=200, help="largest library cluster")
    group.add_argument("--weights", metavar="FILE",
                       help="weights of the --method's model: best.pt of 'pdfsolve train deepstruc|cvae|dae' "
                            "(default: the shipped ones)")
    group.add_argument("--samples", type=int, default=1000,
                       help="DeepStruc: clusters sampled from the prior, split evenly over the widening factors")
    group.add_argument("--widen", type=float, nargs="+", default=[3.0, 5.0, 7.0], metavar="F",
                       help="DeepStruc: factors widening the prior's sigma")
    group.add_argument("--refine", type=int, default=50, metavar="N",
                       help="DeepStruc: samples refined, those whose G(r) fits best before refinement")
    group.add_argument("--polish", type=int, default=POLISH, metavar="K",
                       help="candidates whose fit is refined again with delta2 (correlated motion) free too, the K "
                            "best after refining scale, expansion and U_iso; it decides the atom count far more "
                            "often (docs/refinement.md); 0: none")
    group.add_argument("--fingerprints", type=int, default=16, metavar="K",
                       help="fingerprint: fingerprints generated and inverted (about 0.7 s each at 13 atoms)")
    group.add_argument("--affinities", type=int, default=50, metavar="K",
                       help="CbLDM: affinities sampled, recovered and screened")
    group.add_argument("--steps", type=int, default=20,
                       help="CbLDM: sampler steps from the accelerated start (0: decode the prior's latent)")
    group.add_argument("--sample-seed", type=int, default=0, metavar="SEED",
                       help="generative methods: seed of the sampling, set afresh for every PDF, so the same file and "
                            "options give the same candidates in solve, screen, watch and evaluate")
    group.add_argument("--snap", action=argparse.BooleanOptionalAction, default=True,
                       help="generative methods: also refine the library clusters the refined samples lead "
                            "to, the nearest to each and all of atom counts within --snap-width of theirs (a hybrid "
                            "with mining; those candidates' method reads e.g. 'deepstruc+library'; not with 'all', "
                            "whose mining refines the whole library); --no-snap: the model's own clusters only")
    group.add_argument("--snap-width", type=float, default=SNAP_WIDTH, metavar="F",
                       help="snap: library clusters whose atom count is within this fraction of a refined sample's "
                            f"(and at least {SNAP_MIN_ATOMS} atoms either side) are refined too (0: the same counts "
                            "only)")


def check(args: argparse.Namespace) -> None:
    """ValueError naming the first invalid option."""
    from .structures.radii import METALS

    if not 1 <= args.min_atoms <= args.max_atoms:
        raise ValueError(f"need 1 <= --min-atoms <= --max-atoms, got {args.min_atoms} and {args.max_atoms}")
    unknown = sorted(set(args.element or ()) - set(METALS))
    if unknown:
        raise ValueError(f"no metallic radius for {unknown}; known metals: {' '.join(METALS)}")
    if args.polish < 0 or not args.snap_width >= 0:
        raise ValueError(f"--polish and --snap-width must be >= 0, got {args.polish} and {args.snap_width}")
    if args.method != "mine":
        if args.samples < 1 or args.refine < 1 or min(args.widen) <= 0 or args.steps < 0 or args.fingerprints < 1 or args.affinities < 1:
            raise ValueError("--samples, --fingerprints, --affinities and --refine must be >= 1, --steps >= 0 and "
                             "--widen factors > 0")


def default_elements(args: argparse.Namespace, composition: str | None) -> list[str]:
    """--element, else the metals of ``composition``, else every metal (mine) or Au (deepstruc)."""
    from .routes.mine import elements_from_composition
    from .structures.radii import METALS

    fallback = ["Au"] if args.method in GENERATIVE else list(METALS)
    return args.element or elements_from_composition(composition) or fallback


def describe(args: argparse.Namespace, elements) -> str:
    """One line naming the method and its settings."""
    from .routes.sampling import SNAP_MIN_ATOMS

    library = f"library {'/'.join(elements)}, {args.min_atoms}-{args.max_atoms} atoms"
    if args.method == "mine":
        return library
    if args.method == "fingerprint":
        sampled = f"fingerprint cVAE, {args.fingerprints} fingerprints generated and inverted"
    elif args.method == "cbldm":
        sampled = f"CbLDM, {args.affinities} affinities, {args.steps} sampler steps"
    else:
        model = {"cvae": "distance CVAE", "dae": "distance DAE"}.get(args.method, "DeepStruc")
        sampled = f"{model}, {args.samples} samples at widening {args.widen}"
    sampled += f", {elements[0]}"
    if args.method not in GENERATIVE:
        return f"{library}; {sampled}"
    return sampled + (f", snapped to the library (atom counts within {args.snap_width:.0%}, >= {SNAP_MIN_ATOMS} "
                      "atoms)" if args.snap else "")


def libraries_read(args: argparse.Namespace, elements) -> list[tuple[str, ...]]:
    """The metals of each cluster library :func:`solver` reads for an input of ``elements``: mining's, of all of
    them (--method mine or all), and the motif classifier's, of the first (any other method)."""
    needed = [tuple(sorted(elements))] if args.method in ("mine", "all") else []
    return needed + ([(elements[0],)] if args.method != "mine" else [])


def solver(args: argparse.Namespace):
    """``solve(target, elements) -> RankedCandidates`` for the options (models are loaded once). 'all' merges the
    rankings of mining, DeepStruc and the distance, CbLDM and fingerprint models whose weights are shipped
    (:func:`pdfsolve.routes.ranking.merge_ranked`)."""
    import torch

    from .models.weights import load_weights, shipped_weights
    from .routes import cbldm, cvae, deepstruc, fingerprint
    from .routes.sampling import library_classifier
    from .routes.mine import cached_library, mine
    from .routes.ranking import merge_ranked

    check(args)

    def solve_mine(target, elements):
        return mine(target, cached_library(elements, args.min_atoms, args.max_atoms), polish=args.polish)

    def sampled(name, weights, snap):
        model, _ = load_weights(weights, name)
        solve_route = {"deepstruc": deepstruc.solve, "cvae": cvae.solve, "dae": cvae.solve, "cbldm": cbldm.solve,
                       "fingerprint": fingerprint.solve}[name]
        options = {"cbldm": {"k": args.affinities, "steps": args.steps},
                   "fingerprint": {"k": args.fingerprints}}.get(name, {"k": args.samples, "widen": args.widen})

        def solve_sampled(target, elements):
            classifier = library_classifier(elements[0], args.min_atoms, args.max_atoms)
            with torch.random.fork_rng():  # the caller's random state is left as it was
                torch.manual_seed(args.sample_seed)
                return solve_route(target, model, n_refine=args.refine, element=elements[0], classifier=classifier,
                                   snap=snap, snap_width=args.snap_width, polish=args.polish, **options)

        return solve_sampled

    if args.method == "mine":
        return solve_mine
    if args.method in GENERATIVE:
        return sampled(args.method, args.weights, args.snap)
    # mining refines the whole library: no route snaps to it again
    routes = {"mine": solve_mine, "deepstruc": sampled("deepstruc", args.weights, False)}
    optional = ("cvae", "dae", "cbldm", "fingerprint")
    routes.update({name: sampled(name, None, False) for name in optional if shipped_weights(name) is not None})

    def solve_all(target, elements):
        """Every route's ranking, merged; a route that finds no usable candidate is skipped with a warning."""
        rankings = []
        for name, route in routes.items():
            try:
                rankings.append(route(target, elements))
            except ValueError as exc:
                print(f"pdfsolve: warning: {name} gave no candidates ({exc}); the other routes go on",
                      file=sys.stderr, flush=True)
        if not rankings:
            raise ValueError("no route gave a usable candidate")
        return merge_ranked(rankings)

    return solve_all
