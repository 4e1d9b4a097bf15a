"""Command-line interface: ``rotorlab <command> ...``.

Commands: ``materials`` (list, ``show NAME``), ``build``, ``info``, ``demo``, and —
when those parts are installed — ``run``, ``resume``, ``relax``, ``analyze``.
Errors are printed as one clear line (exit status 2), never as a traceback, unless
``--debug`` is given.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["main", "build_parser"]


def _cmd_materials(args) -> int:
    from rotorlab import materials

    if args.action == "show":
        if not args.name:
            raise ValueError("usage: rotorlab materials show NAME")
        print(materials.catalog(args.name).describe())
        return 0
    print(f"{'material':<12} {'structure':<6} {'paper cell':<10} {'atoms':>6} {'quick':>6}  "
          f"{'dt/fs':>5}  rotors   mobile")
    for name in materials.names():
        m = materials.catalog(name)
        quick = len(materials.get(name, "quick")) if m.has_structure else "-"
        print(
            f"{name:<12} {m.trust if m.has_structure else 'none':<6} "
            f"{'x'.join(map(str, m.paper_supercell)):<10} {m.paper_atoms:>6} {quick!s:>6}  "
            f"{m.timestep:>5g}  {','.join(m.default_rotors):<8} {m.mobile}"
        )
    return 0


def _parse_size(values):
    if values is None:
        return "quick"
    if len(values) == 1:
        return values[0]
    if len(values) == 3:
        try:
            return tuple(int(v) for v in values)
        except ValueError:
            raise ValueError(f"--size takes quick, paper or three integers; got {values}") from None
    raise ValueError(f"--size takes quick, paper or three integers; got {values}")


def _cmd_build(args) -> int:
    import ase.io

    from rotorlab import materials
    from rotorlab.materials import detect

    size = _parse_size(args.size)
    if args.cif:
        atoms = materials.from_cif(args.cif, material=args.name, size=size)
    else:
        atoms = materials.get(args.name, size=size)
    top = detect(atoms)
    fmt = None
    if args.output.endswith(".xyz"):
        fmt = "extxyz"
    ase.io.write(args.output, atoms, format=fmt)
    print(f"wrote {args.output}: {atoms.get_chemical_formula()} ({len(atoms)} atoms, "
          f"supercell {'x'.join(map(str, atoms.info['supercell']))}); {top.summary()}")
    return 0


def _cmd_info(args) -> int:
    from rotorlab.store import TrajectoryStore

    store = TrajectoryStore.open(args.store, mode="r")
    ds = store.to_xarray()
    def row(key, value):
        print(f"{key:<19}: {value}")

    row("store", args.store)
    for key in ("material", "constraint_mode", "target_temperature", "timestep", "thermostat",
                "potential_id", "n_dof", "rotorlab_version", "created"):
        if ds.attrs.get(key) is not None:
            row(key, ds.attrs[key])
    row("frames", ds.sizes.get("frame", 0))
    row("atoms", ds.sizes.get("atom", 0))
    row("rotors", ds.sizes.get("rotor", 0))
    if ds.sizes.get("frame", 0):
        import numpy as np

        t = ds["time"].values
        row("time", f"{t[0]:.4g} – {t[-1]:.4g} ps")
        if "temperature" in ds:
            temp = np.asarray(ds["temperature"].values)
            row("temperature", f"mean {np.nanmean(temp):.1f} K, std {np.nanstd(temp):.1f} K")
        if "model_deviation" in ds:
            md = np.asarray(ds["model_deviation"].values)
            row("model_deviation", f"max {np.nanmax(md):.3f} eV/Å, mean {np.nanmean(md):.3f} eV/Å")
    if store.has_checkpoint:
        _, meta = store.read_checkpoint()
        step = meta.get("integrator", {}).get("step", meta.get("step"))
        cfg = meta.get("config", {})
        planned = ""
        if "steps" in cfg:
            planned = (f" of {int(cfg.get('equilibration_steps', 0)) + int(cfg['steps'])} planned"
                       " (resume: rotorlab resume STORE)")
        row("checkpoint", f"step {step}{planned}")
    else:
        row("checkpoint", "none")
    row("variables", ", ".join(sorted(ds.data_vars)))
    return 0


def _cmd_demo(args) -> int:
    from rotorlab.demo import run_demo

    return run_demo(outdir=args.outdir, quick=not args.full, steps=args.steps)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rotorlab",
        description="Constrained MLMD of rotor-anion solid electrolytes: which anion motion "
        "drives cation transport?",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command")

    m = sub.add_parser("materials", help="list the materials catalog, or show one")
    m.add_argument("action", nargs="?", choices=["list", "show"], default="list")
    m.add_argument("name", nargs="?")
    m.set_defaults(func=_cmd_materials)

    b = sub.add_parser("build", help="build a material's supercell and write it to a file")
    b.add_argument("name", help="catalog material (rotorlab materials)")
    b.add_argument("--size", nargs="+", help="quick | paper | NX NY NZ (default quick)")
    b.add_argument("--cif", help="use this (ordered) CIF instead of the bundled structure")
    b.add_argument("-o", "--output", required=True, help="output file (any ASE format: .cif, .xyz, POSCAR ...)")
    b.set_defaults(func=_cmd_build)

    i = sub.add_parser("info", help="summarise a trajectory store")
    i.add_argument("store")
    i.set_defaults(func=_cmd_info)

    d = sub.add_parser("demo", help="run the main job on the bundled defaults")
    d.add_argument("--outdir", default="results/demo")
    d.add_argument("--full", action="store_true", help="5x longer runs")
    d.add_argument("--steps", type=int, default=None,
                   help="production steps per constraint mode (default 6000 x 0.5 fs)")
    d.set_defaults(func=_cmd_demo)

    # Optional command groups contributed by other subpackages.
    for modname in ("rotorlab.md.cli_commands", "rotorlab.analysis.cli_commands"):
        try:
            mod = __import__(modname, fromlist=["add_parsers"])
        except ImportError:
            continue
        add = getattr(mod, "add_parsers", None) or getattr(mod, "add_run_parsers", None)
        if add is not None:
            add(sub)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from rotorlab import __version__

        print(f"rotorlab {__version__}")
        return 0
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, KeyError, FileNotFoundError, RuntimeError, OSError) as exc:
        if args.debug:
            raise
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"rotorlab {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
