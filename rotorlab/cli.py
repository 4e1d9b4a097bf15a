"""Command-line interface: ``rotorlab <command> ...``.

Commands: ``materials`` (list, ``show NAME``), ``build``, ``info``, ``demo``, and —
when those parts are installed — ``run``, ``resume``, ``relax``, ``analyze``.
Errors are printed as one clear line (exit status 2), never as a traceback, unless
``--debug`` is given.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

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


def _output_format(path: str):
    """The ASE format name for an output file, or a clear error for an unknown suffix."""
    from ase.io.formats import filetype, ioformats

    name = Path(path).name.lower()
    if name.endswith(".xyz"):
        return "extxyz"
    try:
        fmt = filetype(path, read=False)
    except Exception:
        fmt = None
    if fmt is None or fmt not in ioformats or not ioformats[fmt].can_write:
        raise ValueError(f"cannot tell the structure format of {path!r} from its name; use "
                         ".cif, .xyz (extended XYZ), .vasp/POSCAR, .pdb or another suffix ASE "
                         "writes")
    return fmt


def _cmd_build(args) -> int:
    import ase.io

    from rotorlab._cli_util import build_structure
    from rotorlab.materials import detect

    from rotorlab._safety import check_output

    fmt = _output_format(args.output)
    inputs = [p for p in (args.structure, args.material) if p and Path(p).exists()]
    check_output(args.output, overwrite=args.overwrite, kind="file", inputs=inputs)
    atoms, fields = build_structure(args)
    top = detect(atoms, fields["material"], rotors=fields["rotors"])
    ase.io.write(args.output, atoms, format=fmt)
    print(f"wrote {args.output}: {atoms.get_chemical_formula()} ({len(atoms)} atoms, "
          f"supercell {'x'.join(map(str, atoms.info['supercell']))}); {top.summary()}")
    return 0


def _cmd_info(args) -> int:
    import warnings

    from rotorlab.store import TrajectoryStore

    from rotorlab.store import StoreDamaged

    verify = getattr(args, "verify", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        try:
            store = TrajectoryStore.open(args.store, mode="r")
        except StoreDamaged as exc:
            if not verify:
                raise
            print(f"store {args.store}: DAMAGED: {exc}")
            return 1
    if not verify:
        for w in caught:
            print(f"warning: {w.message}", file=sys.stderr)
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

        def stat(key, fmt):
            try:
                row(key, fmt(np.asarray(ds[key].values)))
            except StoreDamaged as exc:
                row(key, "unreadable (damaged chunk; run rotorlab info --verify)")
                if not verify:
                    print(f"warning: {exc}", file=sys.stderr)

        stat("time", lambda t: f"{t[0]:.4g} – {t[-1]:.4g} ps")
        if "temperature" in ds:
            stat("temperature", lambda v: f"mean {np.nanmean(v):.1f} K, std {np.nanstd(v):.1f} K")
        if "model_deviation" in ds:
            stat("model_deviation",
                 lambda v: f"max {np.nanmax(v):.3f} eV/Å, mean {np.nanmean(v):.3f} eV/Å")
    try:
        has_cp = store.has_checkpoint
        meta = store.read_checkpoint()[1] if has_cp else None
    except ValueError as exc:
        has_cp, meta = True, None
        row("checkpoint", f"unreadable ({exc})")
    if meta is not None:
        step = meta.get("integrator", {}).get("step", meta.get("step"))
        cfg = meta.get("config", {})
        planned = ""
        if "steps" in cfg:
            planned = (f" of {int(cfg.get('equilibration_steps', 0)) + int(cfg['steps'])} planned"
                       " (resume: rotorlab resume STORE)")
        row("checkpoint", f"step {step}{planned}")
    elif not has_cp:
        row("checkpoint", "none")
    row("variables", ", ".join(sorted(ds.data_vars)))
    if verify:
        report = store.verify()
        print(report)
        if not report.ok:
            print(f"rotorlab info: {args.store} is damaged (see above); `rotorlab resume "
                  f"--repair` keeps every intact frame and moves damaged chunks aside",
                  file=sys.stderr)
            return 1
    return 0


def _split(text):
    return None if text is None else [t for t in text.replace(" ", "").split(",") if t]


def _cmd_import(args) -> int:
    from rotorlab.store import import_trajectory

    if args.timestep is not None and not (args.timestep > 0 and args.timestep < 1e3):
        raise ValueError(f"--timestep must be in (0, 1000) fs, got {args.timestep:g}")
    if args.frame_stride < 1:
        raise ValueError(f"--frame-stride must be >= 1, got {args.frame_stride}")
    attrs = {}
    if args.temperature is not None:
        if not args.temperature > 0:
            raise ValueError(f"--temperature must be > 0 K, got {args.temperature:g}")
        attrs["target_temperature"] = float(args.temperature)
    material = args.material
    if material is not None:
        from rotorlab import materials

        material = materials.catalog(material).name
    store = import_trajectory(
        args.file, args.format, store_path=args.output, material=material,
        rotors=_split(args.rotors), timestep_fs=args.timestep, frame_stride=args.frame_stride,
        index=args.index, species=_split(args.species), specorder=_split(args.specorder),
        attrs=attrs or None, overwrite=args.overwrite, unwrap=not args.no_unwrap,
        mobile_species=args.mobile, mobile_charge=args.mobile_charge)
    ds = store.to_xarray()
    store.close()
    rotors = int((ds["rotor_id"].values.max() + 1) if ds.sizes.get("atom") else 0)
    print(f"imported {ds.sizes.get('frame', 0)} frames of {ds.sizes.get('atom', 0)} atoms "
          f"({rotors} rotors) from {args.file} into {args.output}")
    return 0


def _parse_frames(text):
    if text is None:
        return slice(None)
    parts = text.split(":")
    if len(parts) > 3:
        raise ValueError(f"--frames takes START:STOP[:STEP], got {text!r}")
    try:
        vals = [int(p) if p else None for p in parts]
    except ValueError:
        raise ValueError(f"--frames takes START:STOP[:STEP] (integers), got {text!r}") from None
    if len(vals) == 1:
        return slice(vals[0], None if vals[0] is None else vals[0] + 1)
    if len(vals) == 3 and vals[2] is not None and vals[2] < 1:
        raise ValueError(f"--frames step must be >= 1, got {vals[2]}")
    return slice(*vals)


def _cmd_export(args) -> int:
    from rotorlab.store import export_extxyz, export_netcdf, open_store

    from rotorlab._safety import check_output

    out = Path(args.output)
    if not Path(args.store).exists():
        raise FileNotFoundError(f"no trajectory store at {args.store}")
    suffix = out.suffix.lower()
    if suffix not in (".nc", ".xyz", ".extxyz"):
        raise ValueError(f"export writes AMBER netCDF (.nc) or extended XYZ (.xyz, .extxyz); "
                         f"got {args.output!r}")
    frames = _parse_frames(args.frames)
    check_output(out, overwrite=args.overwrite, kind="file", inputs=[args.store])
    ds = open_store(args.store)
    if suffix == ".nc":
        export_netcdf(ds, out, frames=frames, wrap=args.wrap, overwrite=args.overwrite)
    else:
        export_extxyz(ds, out, frames=frames, wrap=args.wrap, overwrite=args.overwrite)
    n = len(range(*frames.indices(ds.sizes.get("frame", 0))))
    print(f"exported {n} frames of {args.store} to {out}")
    return 0


def _cmd_demo(args) -> int:
    from rotorlab.demo import run_demo

    return run_demo(outdir=args.outdir, steps=args.steps, workers=args.workers,
                    progress=not args.quiet)


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
    from rotorlab._cli_util import add_structure_args

    add_structure_args(b)
    b.add_argument("-o", "--output", required=True,
                   help="output file (any ASE format: .cif, .xyz, POSCAR ...)")
    b.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    b.set_defaults(func=_cmd_build)

    i = sub.add_parser("info", help="summarise a trajectory store")
    i.add_argument("store")
    i.add_argument("--verify", action="store_true",
                   help="check every chunk's checksum and list any damage (exit 1 if damaged)")
    i.set_defaults(func=_cmd_info)

    im = sub.add_parser("import", help="import a trajectory made elsewhere into a store",
                        description="Import a trajectory file ASE reads (extxyz, LAMMPS dump, "
                                    "CP2K xyz, VASP XDATCAR ...) into a rotorlab store.")
    im.add_argument("file", help="trajectory file")
    im.add_argument("-o", "--output", required=True, help="new trajectory store (directory)")
    im.add_argument("--format", default=None,
                    help="ASE format name (e.g. lammps-dump-text, vasp-xdatcar); guessed "
                         "when omitted")
    im.add_argument("--material", default=None,
                    help="catalog material: rotors are detected and its mobile ion recorded")
    im.add_argument("--rotors", default=None, help="units treated as rotors, e.g. PS4,SnS4")
    im.add_argument("--species", default=None,
                    help="comma-separated element of every atom, in file order (files "
                         "without species, e.g. LAMMPS dumps with numeric types)")
    im.add_argument("--specorder", default=None,
                    help="comma-separated elements of LAMMPS types 1, 2, ... (e.g. Li,B,H)")
    im.add_argument("--timestep", type=float, default=None,
                    help="MD timestep [fs] (required unless the file carries times)")
    im.add_argument("--frame-stride", type=int, default=1,
                    help="MD steps between frames when the file carries no step numbers")
    im.add_argument("--index", default=":", help="frames to import (ASE syntax, default all)")
    im.add_argument("--temperature", type=float, default=None,
                    help="temperature of the run [K] (needed for conductivities)")
    im.add_argument("--mobile", default=None, help="mobile species (e.g. Li)")
    im.add_argument("--mobile-charge", type=float, default=None, help="its charge [e]")
    im.add_argument("--no-unwrap", action="store_true",
                    help="positions are already unwrapped (do not unwrap across frames)")
    im.add_argument("--overwrite", action="store_true",
                    help="replace an existing rotorlab store at -o")
    im.set_defaults(func=_cmd_import)

    ex = sub.add_parser("export", help="export a store to AMBER netCDF or extended XYZ")
    ex.add_argument("store")
    ex.add_argument("-o", "--output", required=True, help="output file: .nc or .xyz/.extxyz")
    ex.add_argument("--frames", default=None, help="START:STOP[:STEP] (default all)")
    ex.add_argument("--wrap", action="store_true", help="wrap positions into the cell")
    ex.add_argument("--overwrite", action="store_true", help="replace an existing file")
    ex.set_defaults(func=_cmd_export)

    d = sub.add_parser("demo", help="run the main job (the demo campaign) on the bundled defaults")
    d.add_argument("--outdir", default="results/demo", help="campaign directory")
    d.add_argument("--steps", type=int, default=None,
                   help="production steps per run (default: the demo campaign's)")
    d.add_argument("--workers", type=int, default=2, help="Dask workers (default 2)")
    d.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    d.set_defaults(func=_cmd_demo)

    # Command groups of the subpackages (an import error here is a bug: it propagates).
    from rotorlab.analysis.cli_commands import add_parsers as add_analysis
    from rotorlab.campaign.cli_commands import add_parsers as add_campaign
    from rotorlab.md.cli_commands import add_run_parsers
    from rotorlab.training.cli_commands import add_parsers as add_training
    from rotorlab.viz.app_cli import add_parsers as add_app

    add_run_parsers(sub)
    add_analysis(sub)
    add_campaign(sub)
    add_app(sub)
    add_training(sub)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.debug:
        os.environ["ROTORLAB_DEBUG"] = "1"   # DeePMD/TensorFlow start-up lines shown
    else:
        # TensorFlow/oneDNN start-up noise (shown with --debug)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import logging

        logging.getLogger("deepmd").setLevel(logging.ERROR)
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
    except (ValueError, LookupError, RuntimeError, OSError, ArithmeticError) as exc:
        if args.debug:
            raise
        print(f"rotorlab {args.command}: error: {_message(exc)}", file=sys.stderr)
        return 2


def _message(exc: BaseException) -> str:
    """One line in the user's terms (no raw ``[Errno 17]`` or KeyError quotes)."""
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        return f"{exc.filename}: {exc.strerror.lower()}"
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
