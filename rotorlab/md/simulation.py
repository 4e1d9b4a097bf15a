"""The run loop: constrained MD of a material with a trajectory store, checkpoints, resume.

>>> sim = rotorlab.Simulation("LiBH4", "reference", mode="RC", temperature=550,
...                           equilibration_steps=1000, steps=10000, store="rc.zarr")
>>> sim.run()
>>> rotorlab.Simulation.resume("rc.zarr", steps=5000).run()   # 5000 more steps

Frames (unwrapped positions, velocities, energies, temperature, conserved energy) go to the
store every ``frame_interval`` production steps; a checkpoint (complete integrator,
thermostat, constraint, force-field and RNG state) is written at the start, every
``checkpoint_interval`` steps and at the end, so a run killed at any moment resumes
bit-for-bit from its last checkpoint (frames after it are cut and regenerated identically).
"""

from __future__ import annotations

import math
import os
import signal
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from rotorlab.geometry import min_pair_distance
from rotorlab.md.constraints import Constraints, normalise_mode
from rotorlab.md.integrate import Integrator, maxwell_boltzmann
from rotorlab.md.thermostats import make_thermostat
from rotorlab.potentials.base import check_species
from rotorlab.units import PS

__all__ = ["Simulation", "SimulationExploded", "min_pair_distance"]

CHECKPOINT_VERSION = 1


class SimulationExploded(RuntimeError):
    """The dynamics became unphysical (NaN, runaway temperature, overlapping atoms)."""


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def _material(name_or_none):
    if name_or_none is None:
        return None
    from rotorlab import materials

    try:
        return materials.catalog(name_or_none)
    except Exception:
        return None


def _resolve_potential(potential, topology, positions, cell, material, symbols=None):
    """Return ``(forcefield, spec)``; ``spec`` is JSON describing how to rebuild it.

    ``potential`` may be ``"reference"``, ``"bundled"``, a model file, the id of a model
    directory under ``datasets/models/``, a list of model files (an ensemble: the first
    drives, all give the model deviation) or a force-field object.
    """
    from rotorlab.potentials.reference import ReferenceForceField

    if potential is None or (isinstance(potential, str) and potential.lower() == "reference"):
        ff = ReferenceForceField.from_topology(topology, positions, cell, material=material)
        return ff, {"kind": "reference"}
    if symbols is None and topology is not None:
        symbols = list(topology.symbols)
    mat_name = getattr(material, "name", material)
    if isinstance(potential, (str, os.PathLike, list, tuple)):
        from rotorlab.potentials.registry import load

        if isinstance(potential, (list, tuple)):
            for p in potential:
                if not Path(p).exists():
                    raise FileNotFoundError(f"potential file {str(p)!r} does not exist")
            spec = [str(Path(p).resolve()) for p in potential]
        else:
            spec = str(potential)
            if Path(spec).exists():
                spec = str(Path(spec).resolve())
            elif spec.lower() != "bundled" and (os.sep in spec or Path(spec).suffix):
                raise FileNotFoundError(f"potential file {spec!r} does not exist")
        ff = load(spec, mat_name, symbols=symbols)
        return ff, {"kind": "load", "spec": spec, "material": mat_name}
    if not hasattr(potential, "compute"):
        raise TypeError("potential must be 'reference', 'bundled', a model path or an object "
                        "with compute(positions, cell)")
    if hasattr(potential, "bind") and symbols is not None:
        potential.bind(symbols)
    if hasattr(potential, "get_state") and hasattr(type(potential), "from_state"):
        return potential, {"kind": "state", "class": type(potential).__module__ + ":"
                           + type(potential).__qualname__}
    return potential, {"kind": "object", "id": getattr(potential, "id", None),
                       "version": getattr(potential, "version", None)}


def _default_timestep(material, symbols) -> float:
    dt = getattr(material, "timestep", None)
    if dt:
        return float(dt)
    return 0.5 if "H" in set(symbols) else 1.0


# --------------------------------------------------------------------------------------
# Simulation
# --------------------------------------------------------------------------------------


class Simulation:
    """A constrained MD run of one material, mode and temperature.

    Parameters
    ----------
    atoms_or_material : str or ase.Atoms
        Catalog material name (built with ``rotorlab.materials.get(name, size)``) or a
        periodic structure (``atoms.info["material"]`` names its material, if any).
    potential : str, ForceField or path, default "reference"
        ``"reference"`` (the numba test potential), ``"bundled"`` or a model path (through
        ``rotorlab.potentials.load``), or any object with ``compute(positions, cell)``.
    mode : str or mapping
        ``UC, TC, RC, RTC, RTVC, RVC`` or ``{rotor_kind: mode}``.
    temperature : float
        Target (and initial) temperature [K].
    timestep : float, optional
        [fs]; default the material's (Table S1), else 0.5 fs with H and 1 fs without.
    thermostat : {"nhc", "csvr", "langevin", "nve"}
        Nosé–Hoover chain by default.
    thermostat_tau : float
        Thermostat time constant [fs] (default 100).
    equilibration_steps, steps : int
        Steps before production (not stored) and production steps.
    store : path, optional
        Trajectory store directory (zarr). Without it nothing is written.
    frame_interval : int
        Production steps between stored frames.
    checkpoint_interval : int, optional
        Steps between checkpoints (default ``max(1000, frame_interval)`` rounded to a
        multiple of ``frame_interval``).
    seed : int, optional
        Seed of the PCG64 generator (velocities, stochastic thermostats); default random,
        recorded in the store.
    constrain_species : str or sequence of str, optional
        Rotor kinds the mode applies to (default all rotors).
    relax : bool
        Relax positions and cell with the potential before MD (``rotorlab.md.relax``).
    size : {"quick", "paper"} or (nx, ny, nz)
        Supercell when a material name is given.
    topology : Topology, optional
        Skip detection (hand-built systems).
    overwrite : bool
        Replace an existing store.
    progress : bool
        Show a tqdm progress bar (terminal and notebook) with ETA and temperature.
    explosion_factor : float
        Stop when the temperature exceeds this multiple of the target.
    min_distance : float
        Stop when two atoms come closer than this [Å] (checked at every frame and
        checkpoint).
    store_forces : bool
        Also store (projected) forces.
    chunk_frames : int
        Frames per store chunk (the unit of crash loss).
    callbacks : sequence of callables, optional
        ``f(simulation)`` called after every step (observers).

    Raises
    ------
    ValueError
        Unknown mode or thermostat, a mode for a species without rotors, ``dt <= 0``,
        ``T < 0``, non-positive intervals, no potential (``potential=None``).
    FileNotFoundError
        A potential path that does not exist.
    """

    def __init__(self, atoms_or_material, potential="reference", mode="UC", temperature=None,
                 timestep=None, thermostat="nhc", thermostat_tau=100.0,
                 equilibration_steps=0, steps=1000, store=None, frame_interval=10,
                 checkpoint_interval=None, seed=None, constrain_species=None, relax=False,
                 size="quick", topology=None, overwrite=False, progress=True,
                 explosion_factor=5.0, min_distance=0.5, store_forces=False,
                 chunk_frames=50, callbacks: Sequence[Callable] | None = None,
                 relax_kwargs=None):
        # ---- validate scalars first (cheap, clear errors before any work)
        if temperature is None:
            raise ValueError("temperature [K] is required")
        temperature = float(temperature)
        if not temperature >= 0 or not math.isfinite(temperature):
            raise ValueError(f"temperature must be >= 0 K, got {temperature}")
        if timestep is not None and (not float(timestep) > 0 or not math.isfinite(timestep)):
            raise ValueError(f"timestep must be > 0 fs, got {timestep}")
        if not isinstance(mode, dict):
            normalise_mode(mode)
        for name, val in (("steps", steps), ("equilibration_steps", equilibration_steps)):
            if int(val) < 0:
                raise ValueError(f"{name} must be >= 0, got {val}")
        if int(frame_interval) < 1:
            raise ValueError(f"frame_interval must be >= 1, got {frame_interval}")
        if checkpoint_interval is not None and int(checkpoint_interval) < 1:
            raise ValueError(f"checkpoint_interval must be >= 1, got {checkpoint_interval}")
        if explosion_factor <= 1:
            raise ValueError("explosion_factor must be > 1")
        thermo = make_thermostat(thermostat, temperature, thermostat_tau)
        if potential is None:
            raise ValueError(
                "no potential given: pass 'reference' (rotorlab's test force field, not a "
                "physics-grade model), 'bundled', a DeePMD model file or a list of them, or "
                "a force-field object with compute(positions, cell)")
        if isinstance(potential, (str, os.PathLike)) and str(potential).lower() not in (
                "reference", "bundled") and not Path(potential).exists():
            raise FileNotFoundError(f"potential file {str(potential)!r} does not exist")

        # ---- structure and topology
        import ase

        if isinstance(atoms_or_material, str):
            from rotorlab import materials

            atoms = materials.get(atoms_or_material, size=size)
        elif isinstance(atoms_or_material, ase.Atoms):
            atoms = atoms_or_material.copy()
        else:
            raise TypeError("atoms_or_material must be a material name or ase.Atoms")
        mat_name = atoms.info.get("material")
        material = _material(mat_name)
        if topology is None:
            from rotorlab.materials import detect

            topology = detect(atoms, material=material)
        cell = np.array(atoms.cell.array, dtype=np.float64)
        positions = topology.whole_positions(atoms.positions, cell)
        self.topology = topology
        self.material = mat_name

        ff, ff_spec = _resolve_potential(potential, topology, positions, cell, material)
        check_species(ff, atoms.get_chemical_symbols())
        if relax:
            from rotorlab.md.relax import relax as _relax

            atoms.positions = positions
            atoms = _relax(atoms, ff, **(relax_kwargs or {}))
            cell = np.array(atoms.cell.array, dtype=np.float64)
            positions = topology.whole_positions(atoms.positions, cell)
            if hasattr(ff, "reset_statistics"):
                # model-deviation checks count force calls: realign them with MD steps
                ff.reset_statistics()

        cons = Constraints.from_topology(topology, mode, species=constrain_species,
                                         positions=positions)
        dt = float(timestep) if timestep is not None else _default_timestep(
            material, atoms.get_chemical_symbols())
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0] >> 1)
        rng = np.random.Generator(np.random.PCG64(int(seed)))
        v = maxwell_boltzmann(topology.masses, temperature, rng, cons)
        self.integrator = Integrator(ff, cons, positions, v, cell, dt, thermo, rng)

        fi = int(frame_interval)
        if checkpoint_interval is None:
            checkpoint_interval = max(1000, fi)
            checkpoint_interval -= checkpoint_interval % fi
        self.config = {
            "material": mat_name, "mode": cons.mode, "constrain_species": constrain_species,
            "temperature": temperature, "timestep": dt, "thermostat": thermo.name,
            "thermostat_tau": float(thermostat_tau), "equilibration_steps": int(
                equilibration_steps), "steps": int(steps), "frame_interval": fi,
            "checkpoint_interval": int(checkpoint_interval), "seed": int(seed),
            "explosion_factor": float(explosion_factor), "min_distance": float(min_distance),
            "store_forces": bool(store_forces), "potential": ff_spec,
            "model_deviation": hasattr(ff, "last_model_deviation"),
            "potential_id": str(getattr(ff, "id", type(ff).__name__)),
            "potential_version": str(getattr(ff, "version", "")),
            "mobile_species": str(topology.mobile_species),
            "mobile_charge": float(topology.mobile_charge),
            "checkpoint_version": CHECKPOINT_VERSION,
        }
        self.progress = progress
        self.callbacks = list(callbacks or [])
        self.store = None
        self.store_path = None if store is None else Path(store)
        if store is not None:
            from rotorlab.store import TrajectoryStore

            attrs = {
                "material": mat_name, "constraint_mode": cons.mode,
                "target_temperature": temperature, "timestep": dt,
                "thermostat": thermo.describe(), "potential_id": self.config["potential_id"],
                "potential_version": self.config["potential_version"],
                "mobile_species": self.config["mobile_species"],
                "mobile_charge": self.config["mobile_charge"],
                "n_dof": cons.n_dof, "com_removed": bool(cons.remove_com),
                "equilibration_steps": int(equilibration_steps),
                "frame_interval": fi, "seed": int(seed),
                "constrain_species": constrain_species,
            }
            self.store = TrajectoryStore.create(
                store, species=list(topology.symbols), masses=topology.masses,
                rotor_id=topology.rotor_id, rotor_kind=list(topology.rotor_kind),
                orientation_atoms=topology.orientation_atoms, attrs=attrs,
                chunk_frames=chunk_frames, velocities=True, forces=bool(store_forces),
                model_deviation=self.config["model_deviation"], overwrite=overwrite)
            self._checkpoint()

    # ------------------------------------------------------------------ properties

    @property
    def constraints(self) -> Constraints:
        return self.integrator.cons

    @property
    def forcefield(self):
        return self.integrator.ff

    @property
    def step(self) -> int:
        """Integrator steps taken (equilibration included)."""
        return self.integrator.step_count

    @property
    def total_steps(self) -> int:
        return self.config["equilibration_steps"] + self.config["steps"]

    @property
    def temperature(self) -> float:
        """Current kinetic temperature [K] with the constrained N_f."""
        return self.integrator.temperature

    def __repr__(self):
        c = self.config
        return (f"Simulation({c['material']!r}, mode={c['mode']}, T={c['temperature']:g} K, "
                f"dt={c['timestep']:g} fs, {c['thermostat']}, step {self.step}/"
                f"{self.total_steps}, N_f={self.constraints.n_dof})")

    # ------------------------------------------------------------------ checkpoints

    def _state(self):
        arrays, meta = self.integrator.get_state()
        carr, cmeta = self.constraints.get_state()
        arrays.update(carr)
        meta = {"integrator": meta, "constraints": cmeta, "config": self.config}
        spec = self.config["potential"]
        ff = self.forcefield
        if spec["kind"] in ("reference", "state") or (
                spec["kind"] == "load" and hasattr(ff, "get_state")
                and hasattr(type(ff), "from_state")):
            farr, fmeta = ff.get_state()
            arrays.update(farr)
            meta["forcefield"] = fmeta
            meta["forcefield_class"] = type(ff).__module__ + ":" + type(ff).__qualname__
        return arrays, meta

    def _checkpoint(self):
        if self.store is None:
            return
        arrays, meta = self._state()
        self.store.write_checkpoint(arrays, meta)

    @classmethod
    def resume(cls, store, steps=None, potential=None, progress=True,
               callbacks: Sequence[Callable] | None = None) -> "Simulation":
        """Reopen a run from its store's checkpoint.

        Parameters
        ----------
        store : path
            Trajectory store written by a :class:`Simulation`.
        steps : int, optional
            Production steps to run *beyond the checkpoint*; default: finish the planned
            run. Frames written after the checkpoint are cut (they are regenerated
            identically).
        potential : ForceField, optional
            Required when the run used a force-field object that cannot be rebuilt.

        Returns
        -------
        Simulation
            Call :meth:`run` to continue.

        Raises
        ------
        FileNotFoundError
            No store at ``store``.
        LookupError
            The store has no checkpoint.
        """
        from rotorlab.store import TrajectoryStore

        path = Path(store)
        if not path.exists():
            raise FileNotFoundError(f"no trajectory store at {str(path)!r}")
        ts = TrajectoryStore.open(path, mode="a")
        arrays, meta = ts.read_checkpoint()
        n_cp = ts.checkpoint_n_frames
        if n_cp is not None and ts.n_frames_committed > n_cp:
            ts.truncate(n_cp)
        cfg = dict(meta["config"])
        cons = Constraints.from_state(arrays, meta["constraints"])
        spec = cfg["potential"]
        if potential is not None:
            ff = potential
        elif spec["kind"] == "reference":
            from rotorlab.potentials.reference import ReferenceForceField

            ff = ReferenceForceField.from_state(arrays, meta["forcefield"])
        elif spec["kind"] == "state":
            import importlib

            mod, qual = spec["class"].split(":")
            ff = getattr(importlib.import_module(mod), qual).from_state(arrays,
                                                                       meta["forcefield"])
        elif spec["kind"] == "load" and "forcefield_class" in meta:
            # model files are reloaded from their recorded paths (versions checked) and
            # counters such as the ensemble's model-deviation history restored
            import importlib

            mod, qual = meta["forcefield_class"].split(":")
            ff = getattr(importlib.import_module(mod), qual).from_state(arrays,
                                                                       meta["forcefield"])
        elif spec["kind"] == "load":
            ff, _ = _resolve_potential(spec["spec"], None, None, None, spec.get("material"),
                                       symbols=[str(x) for x in
                                                np.asarray(ts.to_xarray()["species"].values)])
        else:
            raise ValueError(f"this run used a custom force field ({spec.get('id')!r}); "
                             "pass it again with potential=")
        thermo = make_thermostat(cfg["thermostat"], cfg["temperature"], cfg["thermostat_tau"])
        imeta = meta["integrator"]
        rng = np.random.Generator(np.random.PCG64(0))
        integ = Integrator(ff, cons, arrays["positions"], arrays["velocities"], arrays["cell"],
                           imeta["dt"], thermo, rng, compute_forces=False)
        integ.set_state(arrays, imeta)

        sim = cls.__new__(cls)
        sim.integrator = integ
        sim.topology = None
        sim.material = cfg.get("material")
        sim.progress = progress
        sim.callbacks = list(callbacks or [])
        sim.store = ts
        sim.store_path = path
        if steps is not None:
            if int(steps) < 0:
                raise ValueError(f"steps must be >= 0, got {steps}")
            done = max(0, integ.step_count - cfg["equilibration_steps"])
            cfg["steps"] = done + int(steps)
        sim.config = cfg
        return sim

    # ------------------------------------------------------------------ run loop

    def _frame(self):
        integ = self.integrator
        prod = integ.step_count - self.config["equilibration_steps"]
        frame = {
            "positions": integ.x.copy(), "velocities": integ.v.copy(),
            "cell": integ.cell.copy(), "time": prod * integ.dt / PS, "step": prod,
            "potential_energy": integ.potential_energy,
            "kinetic_energy": integ.kinetic_energy,
            "conserved_energy": integ.conserved_energy, "temperature": integ.temperature,
        }
        if self.config["store_forces"]:
            frame["forces"] = integ.f.copy()
        if self.config.get("model_deviation"):
            # the ensemble's latest max force deviation ε_f [eV/Å] (evaluated every k calls)
            frame["model_deviation"] = float(integ.ff.last_model_deviation)
        return frame

    def _check(self, full: bool):
        integ = self.integrator
        t = integ.temperature
        target = self.config["temperature"]
        if not (math.isfinite(t) and math.isfinite(integ.potential_energy)):
            raise SimulationExploded(self._explain("non-finite energy or velocities (NaN)"))
        if target > 0 and t > self.config["explosion_factor"] * target:
            raise SimulationExploded(self._explain(
                f"temperature {t:.0f} K exceeds {self.config['explosion_factor']:g}x the "
                f"target {target:g} K"))
        if full:
            if not np.isfinite(integ.x).all():
                raise SimulationExploded(self._explain("non-finite positions"))
            dmin = self.config["min_distance"]
            if dmin > 0:
                d = min_pair_distance(integ.x, integ.cell, dmin)
                if d < dmin:
                    raise SimulationExploded(self._explain(
                        f"atoms closer than {dmin} Å (found {d:.3f} Å)"))

    def _explain(self, what):
        kept = "" if self.store is None else (
            f"; the {self.store.n_frames} frames written so far are kept in {self.store_path}"
            " and the last checkpoint is intact")
        return (f"simulation exploded at step {self.step}: {what}. Try a smaller timestep, "
                f"a relaxed structure or a better potential{kept}")

    def run(self):
        """Run (or continue) to the planned number of steps.

        Returns
        -------
        Simulation
            ``self``.

        Raises
        ------
        SimulationExploded
            Unphysical dynamics; frames so far are flushed, the last checkpoint is kept.
        KeyboardInterrupt
            After Ctrl-C: the run stops at a step boundary, frames are flushed and a
            checkpoint is written first, so ``resume`` continues exactly.
        """
        from tqdm.auto import tqdm

        cfg = self.config
        integ = self.integrator
        eq = cfg["equilibration_steps"]
        total = eq + cfg["steps"]
        fi = cfg["frame_interval"]
        ci = cfg["checkpoint_interval"]
        store = self.store
        interrupted = []

        def _handler(signum, frame):
            interrupted.append(signum)

        old = None
        if threading.current_thread() is threading.main_thread():
            old = signal.signal(signal.SIGINT, _handler)
        update_every = max(1, min(200, total // 200 or 1))
        bar = tqdm(total=total, initial=integ.step_count, disable=not self.progress,
                   desc=f"{cfg['material'] or 'MD'} {cfg['mode']} {cfg['temperature']:g} K",
                   unit="step", dynamic_ncols=True, leave=True)
        pending = 0
        try:
            if store is not None and integ.step_count == eq and store.n_frames == 0:
                self._check(True)
                store.append(self._frame())
            while integ.step_count < total:
                try:
                    integ.step()
                except FloatingPointError as exc:
                    raise SimulationExploded(self._explain(str(exc))) from exc
                s = integ.step_count
                is_frame = s >= eq and (s - eq) % fi == 0
                is_cp = s % ci == 0 or s == total
                self._check(is_frame or is_cp)
                if store is not None and is_frame:
                    store.append(self._frame())
                if store is not None and is_cp:
                    self._checkpoint()
                for cb in self.callbacks:
                    cb(self)
                pending += 1
                if pending >= update_every:
                    bar.update(pending)
                    bar.set_postfix(T=f"{integ.temperature:.0f}K", refresh=False)
                    pending = 0
                if interrupted:
                    if store is not None:
                        self._checkpoint()
                    raise KeyboardInterrupt(
                        f"interrupted at step {s}; store and checkpoint are consistent"
                        + (f" — continue with Simulation.resume({str(self.store_path)!r})"
                           if store is not None else ""))
        except BaseException:
            # explosion, Ctrl-C or an error in the force field: keep the frames written
            # so far (the last checkpoint is untouched and stays consistent with them)
            if store is not None:
                try:
                    store.flush()
                except Exception as flush_error:  # do not mask the original error
                    import warnings

                    warnings.warn(f"could not flush the trajectory store: {flush_error!r}",
                                  RuntimeWarning, stacklevel=2)
            raise
        finally:
            bar.update(pending)
            bar.close()
            if old is not None:
                signal.signal(signal.SIGINT, old)
        if store is not None:
            store.flush()
        return self

    def dataset(self):
        """The stored trajectory as an :class:`xarray.Dataset` (committed frames)."""
        if self.store is None:
            raise ValueError("this simulation has no store")
        self.store.flush()
        return self.store.to_xarray()
