"""CLI subcommands ``rotorlab run``, ``rotorlab resume`` and ``rotorlab relax``.

Wire into ``rotorlab/cli.py`` with::

    from rotorlab.md.cli_commands import add_run_parsers
    add_run_parsers(subparsers)      # each subparser sets ``func=handler(args) -> int``
"""

from __future__ import annotations

import argparse

__all__ = ["add_run_parsers", "cmd_run", "cmd_resume", "cmd_relax"]


def _size(values):
    if values is None:
        return "quick"
    if len(values) == 1 and values[0] in ("quick", "paper"):
        return values[0]
    if len(values) == 3:
        try:
            return tuple(int(v) for v in values)
        except ValueError:
            pass
    raise ValueError(f"--size takes quick, paper or three integers NX NY NZ; got {values}")


def _structure(args):
    """Atoms from a catalog material name or a structure file readable by ASE."""
    from pathlib import Path

    from rotorlab import materials

    src = args.material
    if Path(src).suffix and Path(src).exists():
        if Path(src).suffix.lower() == ".cif":
            return materials.from_cif(src, material=getattr(args, "as_material", None),
                                      size=_size(args.size) if args.as_material else (1, 1, 1))
        import ase.io

        return ase.io.read(src)
    return materials.get(src, size=_size(args.size))


def _potential(spec, atoms):
    """'reference' stays a string (built by Simulation); others go through the loader."""
    if spec in (None, "reference"):
        return "reference"
    if "," in spec:  # an ensemble: the first model drives, all give the model deviation
        return [p.strip() for p in spec.split(",") if p.strip()]
    return spec


def cmd_run(args) -> int:
    from rotorlab.md.simulation import Simulation

    atoms = _structure(args)
    species = args.constrain_species.split(",") if args.constrain_species else None
    sim = Simulation(
        atoms, _potential(args.potential, atoms), mode=args.mode,
        temperature=args.temperature, timestep=args.dt, thermostat=args.thermostat,
        thermostat_tau=args.tau, equilibration_steps=args.equilibration, steps=args.steps,
        store=args.output, frame_interval=args.frame_interval,
        checkpoint_interval=args.checkpoint_interval, seed=args.seed,
        constrain_species=species, relax=args.relax, overwrite=args.overwrite,
        progress=not args.quiet)
    print(sim)
    sim.run()
    print(f"wrote {sim.store.n_frames} frames to {args.output}")
    return 0


def cmd_resume(args) -> int:
    from rotorlab.md.simulation import Simulation

    sim = Simulation.resume(args.store, steps=args.steps, progress=not args.quiet)
    print(sim)
    sim.run()
    print(f"{args.store}: {sim.store.n_frames} frames")
    return 0


def cmd_relax(args) -> int:
    import ase.io
    import numpy as np

    from rotorlab.md.relax import relax
    from rotorlab.potentials.reference import ReferenceForceField
    from rotorlab.materials import detect

    atoms = _structure(args)
    if args.potential in (None, "reference"):
        topo = detect(atoms)
        x = topo.whole_positions(atoms.positions, atoms.cell.array)
        ff = ReferenceForceField.from_topology(topo, x, atoms.cell.array,
                                               material=atoms.info.get("material"))
        atoms.positions = x
    else:
        from rotorlab.md.simulation import _resolve_potential

        ff, _ = _resolve_potential(_potential(args.potential, atoms), None, None, None,
                                   atoms.info.get("material"),
                                   symbols=atoms.get_chemical_symbols())
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
    p = subparsers.add_parser(
        "run", help="constrained MD of a material",
        description="Run constrained MD: equilibration, then production frames written to "
                    "a trajectory store with checkpoints (resume with `rotorlab resume`).")
    p.add_argument("material", help="catalog material name or structure file")
    p.add_argument("--size", nargs="+", default=None, metavar="S",
                   help="quick | paper | NX NY NZ (default quick)")
    p.add_argument("--as-material", default=None,
                   help="catalog material a CIF file is a cell of")
    p.add_argument("--mode", default="UC", help="UC, TC, RC, RTC, RTVC or RVC (default UC)")
    p.add_argument("--constrain-species", default=None,
                   help="comma-separated rotor kinds the mode applies to (default all)")
    p.add_argument("--temperature", "-T", type=float, required=True, help="target [K]")
    p.add_argument("--steps", type=int, required=True, help="production steps")
    p.add_argument("--equilibration", type=int, default=0, help="equilibration steps")
    p.add_argument("--dt", type=float, default=None, help="timestep [fs] (material default)")
    p.add_argument("--thermostat", default="nhc", help="nhc | csvr | langevin | nve")
    p.add_argument("--tau", type=float, default=100.0, help="thermostat time constant [fs]")
    p.add_argument("--potential", default="reference",
                   help="reference | bundled | MODEL_ID | PATH to a DeePMD model | "
                        "PATH1,PATH2,... (ensemble: first drives, all give the model deviation)")
    p.add_argument("--frame-interval", type=int, default=10)
    p.add_argument("--checkpoint-interval", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--relax", action="store_true", help="relax positions and cell first")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.add_argument("-o", "--output", required=True, help="trajectory store (directory)")
    p.set_defaults(func=cmd_run)

    p = subparsers.add_parser("resume", help="continue a run from its checkpoint",
                              description="Continue a run bit-for-bit from its store's "
                                          "checkpoint.")
    p.add_argument("store")
    p.add_argument("--steps", type=int, default=None,
                   help="production steps beyond the checkpoint (default: finish the plan)")
    p.add_argument("--quiet", "-q", action="store_true")
    p.set_defaults(func=cmd_resume)

    p = subparsers.add_parser("relax", help="zero-temperature relaxation of positions and cell")
    p.add_argument("material", help="catalog material name or structure file")
    p.add_argument("--size", nargs="+", default=None, metavar="S")
    p.add_argument("--as-material", default=None)
    p.add_argument("--potential", default="reference")
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
