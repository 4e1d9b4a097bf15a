"""``rotorlab analyze STORE... -o DIR`` (picked up by :mod:`rotorlab.cli`), driven by the registry."""

from __future__ import annotations

import importlib


def _cmd_analyze(args) -> int:
    from rotorlab.analysis import registry as R

    for mod in args.plugin or ():
        importlib.import_module(mod)  # registers its analyses
    if args.list:
        print(R.describe())
        return 0
    if not args.stores:
        raise ValueError("no trajectory stores given (rotorlab analyze STORE... -o DIR; --list shows the analyses)")
    if not args.output:
        raise ValueError("-o/--output DIR is required")
    from rotorlab.analysis.report import main_analyze

    if args.memory_mb is not None and not args.memory_mb > 0:
        raise ValueError(f"--memory-mb must be > 0, got {args.memory_mb:g} (nothing written)")
    options = {}
    if args.blocks is not None:
        if args.blocks < 2:
            raise ValueError(f"--blocks must be >= 2 (independent blocks for the D_tr error), got {args.blocks} "
                             "(nothing written)")
        options["transport"] = {"n_blocks": args.blocks}
    if args.sites != "density":
        options["hops"] = {"sites": args.sites}
    main_analyze(args.stores, args.output, analyses=args.analyses, rotation=not args.no_rotation,
                 hops=not args.no_hops, vibrations=not args.no_vibrations, figures=not args.no_figures,
                 memory=args.memory_mb * 2**20, options=options, overwrite=args.overwrite,
                 mobile_species=args.species, charge=args.charge, temperature=args.temperature)
    return 0


def add_parsers(sub) -> None:
    a = sub.add_parser("analyze", help="run the registered analyses (transport, rotation, hops, structure, "
                                       "vibrations) on trajectory stores")
    a.add_argument("stores", nargs="*", help="trajectory store directories")
    a.add_argument("-o", "--output", help="output directory (results.nc and figures); never inside a store")
    a.add_argument("--analyses", default=None,
                   help="comma-separated analyses to run (default: every registered analysis that is "
                        "applicable to each store; see --list)")
    a.add_argument("--list", action="store_true", help="print the registered analyses and what they need, then exit")
    a.add_argument("--plugin", action="append", metavar="MODULE",
                   help="import MODULE first (it registers extra analyses); repeatable")
    a.add_argument("--overwrite", action="store_true", help="replace an existing DIR/results.nc")
    a.add_argument("--blocks", type=int, default=None, help="independent blocks for the D_tr error (default 5; >= 2)")
    a.add_argument("--species", default=None, metavar="SPECIES",
                   help="mobile species, for stores that do not record one (imported trajectories)")
    a.add_argument("--charge", type=float, default=None, metavar="E",
                   help="charge of the mobile ion in e, for stores that do not record one")
    a.add_argument("--temperature", type=float, default=None, metavar="K",
                   help="temperature for sigma and free energies, for stores that do not record one "
                        "(D, MSD, g(r), DOS and rotation never need it)")
    a.add_argument("--memory-mb", type=float, default=256.0, help="memory budget per block read (MB)")
    a.add_argument("--sites", choices=["density", "reference"], default="density",
                   help="cation sites for hops: maxima of the time-averaged density (default) "
                        "or the mobile-ion positions of the first frame (reference structure)")
    a.add_argument("--no-rotation", action="store_true", help="skip the rotation analyses")
    a.add_argument("--no-hops", action="store_true", help="skip the hop analysis")
    a.add_argument("--no-vibrations", action="store_true", help="skip the phonon DOS")
    a.add_argument("--no-figures", action="store_true")
    a.set_defaults(func=_cmd_analyze)
