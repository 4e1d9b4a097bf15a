"""CLI subcommands ``rotorlab run``, ``rotorlab resume`` and ``rotorlab relax``.

``run`` parses its options into a :class:`~rotorlab.spec.RunSpec` (or reads one with
``--spec FILE``) and runs it with :meth:`Simulation.from_spec`; the store records the
resolved spec, so ``rotorlab resume`` and Python (``Simulation.from_spec(spec)``) reproduce
the same run bit for bit. Registered by :mod:`rotorlab.cli` through :func:`add_run_parsers`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rotorlab._cli_util import (add_potential_arg, add_structure_args, build_structure,
                                structure_fields)

__all__ = ["add_run_parsers", "cmd_run", "cmd_resume", "cmd_relax", "spec_from_args"]

_RUN_DEFAULTS = dict(mode="UC", equilibration=0, dt=None, thermostat="nhc", tau=100.0,
                     chain=3, potential="reference", frame_interval=10,
                     checkpoint_interval=None, seed=None, replica=0, relax=False,
                     constrain_species=None, store_forces=False, type_map=None)


def spec_from_args(args):
    """The :class:`~rotorlab.spec.RunSpec` that ``rotorlab run`` options describe."""
    from rotorlab.spec import RunSpec

    if args.spec is not None:
        given = [f"--{k.replace('_', '-')}" for k, v in _RUN_DEFAULTS.items()
                 if getattr(args, k) != v]
        given += [f"--{k}" for k in ("temperature", "steps", "size", "structure", "variant",
                                     "rotors") if getattr(args, k) is not None]
        if args.material is not None:
            given.append(args.material)
        if given:
            raise ValueError(f"--spec describes the whole run; do not combine it with "
                             f"{', '.join(given)} (edit the spec file instead)")
        return RunSpec.load(args.spec)
    if args.temperature is None or args.steps is None:
        raise ValueError("run needs --temperature/-T and --steps (or --spec FILE)")
    mode = args.mode
    if "=" in mode:  # per-species modes: PS4=RC,SnS4=UC
        try:
            mode = dict(part.split("=") for part in mode.split(","))
        except ValueError:
            raise ValueError(f"--mode {args.mode!r}: per-species modes are written "
                             "KIND=MODE,KIND=MODE (e.g. PS4=RC,SnS4=UC)") from None
    return RunSpec(
        **structure_fields(args), mode=mode, constrain_species=args.constrain_species,
        temperature=args.temperature, timestep=args.dt, thermostat=args.thermostat,
        thermostat_tau=args.tau, thermostat_chain=args.chain,
        equilibration_steps=args.equilibration, steps=args.steps,
        frame_interval=args.frame_interval, checkpoint_interval=args.checkpoint_interval,
        potential=args.potential, type_map=args.type_map, seed=args.seed,
        replica=args.replica, relax=args.relax,
        store_forces=args.store_forces)


def cmd_run(args) -> int:
    import warnings

    from rotorlab.md.simulation import Simulation

    spec = spec_from_args(args)
    output = Path(args.output) if args.output else Path(spec.store_name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        sim = Simulation.from_spec(spec, store=output, overwrite=args.overwrite,
                                   progress=not args.quiet, max_atoms=args.max_atoms)
    for w in caught:
        print(f"warning: {w.message}")
    if args.write_spec:
        sim.spec.save(args.write_spec)
        print(f"run spec written to {args.write_spec}")
    print(sim)
    sim.run()
    print(f"wrote {sim.store.n_frames} frames to {output}")
    return 0


def cmd_resume(args) -> int:
    from rotorlab.md.simulation import Simulation

    sim = Simulation.resume(args.store, steps=args.steps, progress=not args.quiet,
                            repair=args.repair)
    if sim.step >= sim.total_steps:
        sim.close()
        print(f"{args.store}: the run is complete ({sim.step} of {sim.total_steps} steps, "
              f"{sim.store.n_frames} frames); nothing to do. Extend it with --steps N.")
        return 0
    print(sim)
    sim.run()
    print(f"{args.store}: {sim.store.n_frames} frames")
    return 0


def cmd_relax(args) -> int:
    import ase.io
    import numpy as np

    from rotorlab.md.relax import relax
    from rotorlab.potentials.registry import resolve

    atoms, fields = build_structure(args)
    from rotorlab.materials import detect

    topo = detect(atoms, fields["material"], rotors=fields["rotors"])
    cell = atoms.cell.array
    atoms.positions = topo.whole_positions(atoms.positions, cell)
    extra = {} if args.type_map is None else {
        "type_map": [t for t in args.type_map.replace(" ", "").split(",") if t]}
    ff = resolve(args.potential, atoms=atoms, topology=topo, positions=atoms.positions,
                 cell=cell, material=fields["material"], **extra)
    v0 = atoms.get_volume()
    out = relax(atoms, ff, cell=not args.fixed_cell, fmax=args.fmax, steps=args.steps,
                optimizer=args.optimizer)
    out.info["relaxed_with"] = getattr(ff, "id", "?")
    ase.io.write(args.output, out)
    print(f"relaxed in {out.info['relax_steps']} steps: E = {out.info['relax_energy']:.4f} eV, "
          f"V/V0 = {out.get_volume() / v0:.4f}, cell lengths "
          f"{np.round(out.cell.lengths(), 3).tolist()} Å -> {args.output}")
    return 0


def add_run_parsers(subparsers) -> None:
    """Register ``run``, ``resume`` and ``relax`` on an argparse ``subparsers`` object.

    Each parser sets ``func`` to a handler ``f(args) -> int`` (exit status). Errors are
    raised as exceptions (ValueError, FileNotFoundError, ...) for the caller to report.
    """
    d = _RUN_DEFAULTS
    p = subparsers.add_parser(
        "run", help="constrained MD of a material",
        description="Run constrained MD: equilibration, then production frames written to "
                    "a trajectory store with checkpoints (resume with `rotorlab resume`). "
                    "The options form a run spec, stored with the run; --spec FILE runs a "
                    "spec file (JSON or YAML) instead.")
    add_structure_args(p, positional_required=False)
    p.add_argument("--spec", default=None, metavar="FILE",
                   help="run spec file (JSON/YAML, e.g. from --write-spec)")
    p.add_argument("--write-spec", default=None, metavar="FILE",
                   help="write the resolved run spec (seed and timestep filled in) here")
    p.add_argument("--mode", default=d["mode"],
                   help="UC, TC, RC, RTC, RTVC or RVC (default UC), or per species "
                        "KIND=MODE,KIND=MODE")
    p.add_argument("--constrain-species", default=None,
                   help="comma-separated rotor kinds the mode applies to (default all)")
    p.add_argument("--temperature", "-T", type=float, default=None, help="target [K]")
    p.add_argument("--steps", type=int, default=None, help="production steps")
    p.add_argument("--equilibration", type=int, default=d["equilibration"],
                   help="equilibration steps")
    p.add_argument("--dt", type=float, default=None, help="timestep [fs] (material default)")
    p.add_argument("--thermostat", default=d["thermostat"], help="nhc | csvr | langevin | nve")
    p.add_argument("--tau", type=float, default=d["tau"],
                   help="thermostat time constant [fs] (default 100, as in the study)")
    p.add_argument("--chain", type=int, default=d["chain"],
                   help="Nosé–Hoover chain length (default 3)")
    add_potential_arg(p)
    p.add_argument("--frame-interval", type=int, default=d["frame_interval"])
    p.add_argument("--checkpoint-interval", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--replica", type=int, default=d["replica"],
                   help="replica index (part of the default store name)")
    p.add_argument("--relax", action="store_true", help="relax positions and cell first")
    p.add_argument("--store-forces", action="store_true", help="also store forces")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing rotorlab store at -o")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.add_argument("-o", "--output", default=None,
                   help="trajectory store (directory); default: the spec's store name")
    p.set_defaults(func=cmd_run)

    p = subparsers.add_parser("resume", help="continue a run from its checkpoint",
                              description="Continue a run bit-for-bit from its store's "
                                          "checkpoint.")
    p.add_argument("store")
    p.add_argument("--steps", type=int, default=None,
                   help="production steps beyond the checkpoint (default: finish the plan)")
    p.add_argument("--repair", action="store_true",
                   help="resume a damaged store: keep every intact frame, move damaged "
                        "chunks aside")
    p.add_argument("--quiet", "-q", action="store_true")
    p.set_defaults(func=cmd_resume)

    p = subparsers.add_parser("relax", help="zero-temperature relaxation of positions and cell")
    add_structure_args(p)
    add_potential_arg(p)
    p.add_argument("--fmax", type=float, default=0.05, help="force threshold [eV/Å]")
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--optimizer", default="FIRE", help="FIRE | BFGS | LBFGS")
    p.add_argument("--fixed-cell", action="store_true", help="relax positions only")
    p.add_argument("-o", "--output", required=True, help="output structure file (extxyz, cif...)")
    p.set_defaults(func=cmd_relax)


def _standalone(argv=None) -> int:  # pragma: no cover - convenience for testing
    parser = argparse.ArgumentParser(prog="rotorlab")
    add_run_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)
