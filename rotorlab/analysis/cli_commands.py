"""``rotorlab analyze STORE... -o DIR`` (picked up by :mod:`rotorlab.cli`)."""

from __future__ import annotations


def _cmd_analyze(args) -> int:
    from rotorlab.analysis.report import main_analyze

    kw = {}
    if args.blocks:
        kw["transport_kw"] = {"n_blocks": args.blocks}
    if args.sites != "density":
        kw["hops_kw"] = {"sites": args.sites}
    main_analyze(args.stores, args.output, rotation=not args.no_rotation, hops=not args.no_hops,
                 vibrations=not args.no_vibrations, figures=not args.no_figures,
                 memory=args.memory_mb * 2**20, **kw)
    return 0


def add_parsers(sub) -> None:
    a = sub.add_parser("analyze", help="transport, rotation, hops and vibration analysis of trajectory stores")
    a.add_argument("stores", nargs="+", help="trajectory store directories")
    a.add_argument("-o", "--output", required=True, help="output directory (results.nc and figures)")
    a.add_argument("--blocks", type=int, default=0, help="independent blocks for the D_tr error (default 5)")
    a.add_argument("--memory-mb", type=float, default=256.0, help="memory budget per block read (MB)")
    a.add_argument("--sites", choices=["density", "reference"], default="density",
                   help="cation sites for hops: maxima of the time-averaged density (default) "
                        "or the mobile-ion positions of the first frame (reference structure)")
    a.add_argument("--no-rotation", action="store_true")
    a.add_argument("--no-hops", action="store_true")
    a.add_argument("--no-vibrations", action="store_true")
    a.add_argument("--no-figures", action="store_true")
    a.set_defaults(func=_cmd_analyze)
