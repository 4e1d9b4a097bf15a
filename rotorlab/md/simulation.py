"""The run loop: constrained MD of a material with a trajectory store, checkpoints, resume.

>>> sim = rotorlab.Simulation("LiBH4", "reference", mode="RC", temperature=550,
...                           equilibration_steps=1000, steps=10000, store="rc.zarr")
>>> sim.run()
>>> rotorlab.Simulation.resume("rc.zarr", steps=5000).run()   # 5000 more steps
>>> sim = rotorlab.Simulation.from_spec(RunSpec(material="LiBH4", mode="RC", temperature=550))

Every run is described by a :class:`rotorlab.spec.RunSpec` (kept in the store and in every
checkpoint). Observers are attached with an interval and an event (:meth:`Simulation.attach`,
:mod:`rotorlab.md.observers`); :meth:`Simulation.stop` ends a run cooperatively from any
thread and :meth:`Simulation.irun` is the generator form of :meth:`Simulation.run`.

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
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rotorlab.geometry import min_pair_distance
from rotorlab.md.constraints import Constraints
from rotorlab.md.integrate import Integrator, maxwell_boltzmann
from rotorlab.md.thermostats import make_thermostat
from rotorlab.potentials.base import check_species, energy_forces
from rotorlab.units import PS

__all__ = ["Simulation", "SimulationExploded", "min_pair_distance", "topology_state",
           "topology_from_state"]

CHECKPOINT_VERSION = 2


class SimulationExploded(RuntimeError):
    """The dynamics became unphysical (NaN, runaway temperature, overlapping atoms).

    Attributes
    ----------
    step : int or None
        MD step at which it was detected.
    reason : str
        What was found (e.g. ``"temperature 6217 K exceeds 5x the target 800 K"``), without
        the advice and file locations of the message.
    """

    def __init__(self, message, *, step=None, reason=None):
        super().__init__(message)
        self.step = step
        self.reason = message if reason is None else reason


# --------------------------------------------------------------------------------------
# topology in checkpoints (a resumed run rebuilds the exact topology it ran with)
# --------------------------------------------------------------------------------------

_TOPO_ARRAYS = ("masses", "rotor_id", "rotor_ptr", "rotor_atoms", "reference", "reference_com",
                "orientation_atoms", "bonds", "mobile")


def topology_state(top) -> tuple[dict, dict]:
    """``(arrays, meta)`` of a :class:`~rotorlab.topology.Topology` for a checkpoint."""
    arrays = {f"topo_{k}": np.asarray(getattr(top, k)) for k in _TOPO_ARRAYS}
    for name, idx in top.framework.items():
        arrays[f"topo_fw_{name}"] = np.asarray(idx, dtype=np.int64)
    meta = {"symbols": [str(s) for s in top.symbols],
            "rotor_kind": [str(k) for k in top.rotor_kind],
            "mobile_species": str(top.mobile_species),
            "mobile_charge": float(top.mobile_charge), "framework": sorted(top.framework),
            "unit_specs": {k: {"name": u.name, "composition": dict(u.composition),
                               "center": u.center, "orientation": u.orientation,
                               "rotor": bool(u.rotor), "charge": float(u.charge)}
                           for k, u in top.unit_specs.items()}}
    return arrays, meta


def topology_from_state(arrays, meta):
    """Inverse of :func:`topology_state`."""
    from rotorlab.topology import Topology, UnitSpec

    a = {k: np.asarray(arrays[f"topo_{k}"]) for k in _TOPO_ARRAYS}
    n = len(meta["symbols"])
    return Topology(
        n_atoms=n, symbols=np.array(meta["symbols"]), masses=a["masses"].astype(np.float64),
        rotor_id=a["rotor_id"].astype(np.int64), rotor_ptr=a["rotor_ptr"].astype(np.int64),
        rotor_atoms=a["rotor_atoms"].astype(np.int64), rotor_kind=np.array(meta["rotor_kind"]),
        reference=a["reference"].astype(np.float64).reshape(-1, 3),
        reference_com=a["reference_com"].astype(np.float64).reshape(-1, 3),
        orientation_atoms=a["orientation_atoms"].astype(np.int64).reshape(-1, 2),
        bonds=a["bonds"].astype(np.int64).reshape(-1, 2), mobile=a["mobile"].astype(np.int64),
        mobile_species=meta["mobile_species"], mobile_charge=float(meta["mobile_charge"]),
        framework={k: np.asarray(arrays[f"topo_fw_{k}"], dtype=np.int64)
                   for k in meta["framework"]},
        unit_specs={k: UnitSpec(**u) for k, u in meta["unit_specs"].items()})


def _default_timestep(material, symbols) -> float:
    if material is not None:
        from rotorlab.materials import catalog

        dt = getattr(catalog(material), "timestep", None)
        if dt:
            return float(dt)
    return 0.5 if "H" in set(symbols) else 1.0


def _memory_digest(atoms) -> str:
    import hashlib

    h = hashlib.sha256()
    h.update(" ".join(atoms.get_chemical_symbols()).encode())
    h.update(np.ascontiguousarray(atoms.positions, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(atoms.cell.array, dtype=np.float64).tobytes())
    return h.hexdigest()[:12]


class _Observer:
    __slots__ = ("fn", "interval", "event", "count")

    def __init__(self, fn, interval, event):
        self.fn, self.interval, self.event, self.count = fn, interval, event, 0


# --------------------------------------------------------------------------------------
# Simulation
# --------------------------------------------------------------------------------------


class Simulation:
    """A constrained MD run of one material, mode and temperature.

    Every run is described by a :class:`~rotorlab.spec.RunSpec` (``sim.spec``, resolved: seed
    and timestep filled in, paths absolute); the keyword arguments below are its fields
    plus what only a live run has (a structure or force-field object, the store path).
    :meth:`from_spec` builds a run from a spec, :meth:`resume` from a store.

    Parameters
    ----------
    atoms_or_material : str or ase.Atoms
        Catalog material name (built with ``rotorlab.materials.get(name, size, variant)``)
        or a periodic structure (``atoms.info["material"]`` names its material, if any).
    potential : str, ForceField or path, default "reference"
        Any spec :func:`rotorlab.potentials.resolve` accepts (``"reference"``, ``"bundled"``,
        a model file, several files for an ensemble, ``"KIND:ARG"``) or a force-field object.
    mode : str or mapping
        ``UC, TC, RC, RTC, RTVC, RVC`` or ``{rotor_kind: mode}``.
    temperature : float
        Target (and initial) temperature [K]; > 0 unless ``thermostat="nve"``.
    timestep : float, optional
        [fs]; default the material's (Table S1), else 0.5 fs with H and 1 fs without.
    thermostat : {"nhc", "csvr", "langevin", "nve"}
        Nosé–Hoover chain by default (chain ``thermostat_chain``, default 3).
    thermostat_tau : float
        Thermostat time constant [fs] (default 100, as in the reference study).
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
    variant : str, optional
        Alternative catalog structure of the material.
    rotors : sequence of str, optional
        Units treated as rotors (default the material's), e.g. ``["PS4", "SnS4"]``.
    replica : int
        Replica index (recorded; part of the spec's store name).
    topology : Topology, optional
        Skip detection (hand-built systems).
    overwrite : bool
        Replace an existing rotorlab store at ``store``.
    progress : bool
        Attach a tqdm :class:`~rotorlab.md.observers.ProgressBar`.
    explosion_factor : float
        Stop when the temperature exceeds this multiple of the target.
    min_distance : float
        Stop when two atoms come closer than this [Å] (checked at every frame and
        checkpoint).
    store_forces : bool
        Also store (projected) forces.
    chunk_frames : int
        Frames per store chunk (the unit of crash loss).
    observers : sequence, optional
        ``(function, interval, event)`` tuples (or bare functions: every step) attached
        before the run; see :meth:`attach`.
    relax_kwargs : dict, optional
        Passed to :func:`rotorlab.md.relax.relax`.
    max_atoms : int, optional
        Refuse to build larger supercells (default :data:`rotorlab.spec.MAX_ATOMS`).
    type_map : sequence of str, optional
        Elements of a DeePMD model's types when its own type map has no element symbols.

    Raises
    ------
    rotorlab.spec.SpecError
        An invalid setting (a ``ValueError`` naming the field).
    ValueError
        A mode for a species without rotors, no potential (``potential=None``).
    FileNotFoundError
        A potential path that does not exist.
    """

    def __init__(self, atoms_or_material, potential="reference", mode="UC", temperature=None,
                 timestep=None, thermostat="nhc", thermostat_tau=100.0,
                 equilibration_steps=0, steps=1000, store=None, frame_interval=10,
                 checkpoint_interval=None, seed=None, constrain_species=None, relax=False,
                 size="quick", topology=None, overwrite=False, progress=True,
                 explosion_factor=5.0, min_distance=0.5, store_forces=False,
                 chunk_frames=50, observers=None, relax_kwargs=None, variant=None,
                 rotors=None, replica=0, thermostat_chain=3, max_atoms=None, type_map=None):
        import ase

        from rotorlab.spec import RunSpec

        if potential is None:
            raise ValueError(
                "no potential given: pass 'reference' (rotorlab's test force field, not a "
                "physics-grade model), 'bundled', a DeePMD model file or a list of them, or "
                "a force-field object with compute(positions, cell)")
        atoms = None
        if isinstance(atoms_or_material, ase.Atoms):
            atoms = atoms_or_material.copy()
            material, size = atoms.info.get("material"), (1, 1, 1)
            structure = "memory:" + _memory_digest(atoms)
        elif isinstance(atoms_or_material, str):
            material, structure = atoms_or_material, None
        else:
            raise TypeError("atoms_or_material must be a material name or ase.Atoms")
        ff_obj = None
        if hasattr(potential, "compute"):
            from rotorlab.potentials.registry import to_spec

            ff_obj = potential
            pspec = to_spec(potential) or f"custom:{getattr(potential, 'id', type(potential).__name__)}"
        else:
            pspec = potential
        if isinstance(constrain_species, str):
            constrain_species = [constrain_species]
        spec = RunSpec(
            material=material, structure=structure, size=size, variant=variant, rotors=rotors,
            mode=mode, constrain_species=constrain_species, temperature=temperature,
            timestep=timestep, thermostat=thermostat, thermostat_tau=thermostat_tau,
            thermostat_chain=thermostat_chain, equilibration_steps=equilibration_steps,
            steps=steps, frame_interval=frame_interval, checkpoint_interval=checkpoint_interval,
            potential=pspec, type_map=type_map, seed=seed, replica=replica, relax=relax,
            store_forces=store_forces,
            chunk_frames=chunk_frames, explosion_factor=explosion_factor,
            min_distance=min_distance)
        self._setup(spec, atoms=atoms, topology=topology, ff=ff_obj, store=store,
                    overwrite=overwrite, progress=progress, observers=observers,
                    relax_kwargs=relax_kwargs, max_atoms=max_atoms)

    @classmethod
    def from_spec(cls, spec, *, store=None, overwrite=False, progress=True, structure=None,
                  topology=None, potential=None, observers=None, relax_kwargs=None,
                  max_atoms=None) -> "Simulation":
        """Build the run a :class:`~rotorlab.spec.RunSpec` describes.

        Parameters
        ----------
        spec : RunSpec, mapping or path
            The spec, its dict, or a JSON/YAML file written by :meth:`RunSpec.save`.
        store : path, optional
            Trajectory store to write (``spec.store_name`` is the conventional name).
        overwrite : bool
            Replace an existing rotorlab store at ``store``.
        progress : bool
            Attach a tqdm progress bar.
        structure : ase.Atoms, optional
            The starting structure when the spec cannot build it (a run started from an
            in-memory structure: ``spec.structure == "memory:..."``).
        topology : Topology, optional
            Skip detection.
        potential : ForceField, optional
            Use this object (a spec naming a ``custom:`` potential needs it).
        observers, relax_kwargs, max_atoms
            As for :class:`Simulation`.

        Returns
        -------
        Simulation
        """
        from rotorlab.spec import RunSpec

        if isinstance(spec, (str, os.PathLike)):
            spec = RunSpec.load(spec)
        elif isinstance(spec, dict):
            spec = RunSpec.from_dict(spec)
        elif not isinstance(spec, RunSpec):
            raise TypeError(f"from_spec takes a RunSpec, a dict or a spec file, got "
                            f"{type(spec).__name__}")
        sim = cls.__new__(cls)
        sim._setup(spec, atoms=None if structure is None else structure.copy(),
                   topology=topology, ff=potential, store=store, overwrite=overwrite,
                   progress=progress, observers=observers, relax_kwargs=relax_kwargs,
                   max_atoms=max_atoms)
        return sim

    def _setup(self, spec, *, atoms, topology, ff, store, overwrite, progress, observers,
               relax_kwargs, max_atoms):
        from rotorlab.potentials.registry import resolve
        from rotorlab.spec import warn_spec

        self._init_runtime(progress, observers)
        requested_name = spec.store_name  # the name of the spec as given (seed may be unset)
        # ---- structure and topology
        if atoms is None:
            if spec.structure is not None and spec.structure.startswith("memory:"):
                from rotorlab.spec import SpecError

                raise SpecError("RunSpec.structure: this run started from an in-memory "
                                "structure (ase.Atoms); pass it again: "
                                "Simulation.from_spec(spec, structure=atoms)")
            atoms = spec.build_structure(max_atoms=max_atoms)
        if spec.material is not None:
            atoms.info["material"] = spec.material
        if topology is None:
            from rotorlab.materials import detect

            topology = detect(atoms, spec.material,
                              rotors=None if spec.rotors is None else list(spec.rotors))
        cell = np.array(atoms.cell.array, dtype=np.float64)
        positions = topology.whole_positions(atoms.positions, cell)
        self.topology = topology
        self.material = spec.material
        symbols = atoms.get_chemical_symbols()

        # ---- potential (the registry is the only place a spec becomes a force field)
        if ff is None:
            extra = {} if spec.type_map is None else {"type_map": list(spec.type_map)}
            ff = resolve(spec.potential_string, atoms=atoms, topology=topology,
                         positions=positions, cell=cell, material=spec.material, **extra)
        elif hasattr(ff, "bind"):
            ff.bind(symbols)
        check_species(ff, symbols)
        dt = spec.timestep if spec.timestep is not None else _default_timestep(
            spec.material, symbols)
        spec = spec.resolved(timestep=dt)
        warn_spec(spec, stacklevel=4)
        thermo = self._thermostat(spec)
        if spec.relax:
            from rotorlab.md.relax import relax as _relax

            atoms.positions = positions
            atoms = _relax(atoms, ff, **(relax_kwargs or {}))
            cell = np.array(atoms.cell.array, dtype=np.float64)
            positions = topology.whole_positions(atoms.positions, cell)
            if hasattr(ff, "reset_statistics"):
                # model-deviation checks count force calls: realign them with MD steps
                ff.reset_statistics()

        cons = Constraints.from_topology(topology, spec.mode_value,
                                         species=spec.constrain_species, positions=positions)
        rng = np.random.Generator(np.random.PCG64(spec.seed))
        v = maxwell_boltzmann(topology.masses, spec.temperature, rng, cons)
        self._ff = ff
        self.integrator = Integrator(energy_forces(ff), cons, positions, v, cell, dt, thermo,
                                     rng)
        self.spec = spec
        self.config = self._config(spec, ff, cons, thermo)
        self.store = None
        self.store_path = None if store is None else Path(store)
        if store is not None:
            from rotorlab.store import TrajectoryStore

            self.store = TrajectoryStore.create(
                store, species=list(topology.symbols), masses=topology.masses,
                rotor_id=topology.rotor_id, rotor_kind=list(topology.rotor_kind),
                orientation_atoms=topology.orientation_atoms,
                attrs={**self._store_attrs(spec, cons, thermo), "store_name": requested_name},
                chunk_frames=spec.chunk_frames,
                velocities=True, forces=spec.store_forces,
                model_deviation=self.config["model_deviation"], overwrite=overwrite)
            self._checkpoint()

    def _init_runtime(self, progress, observers):
        self.progress = bool(progress)
        self._observers: list[_Observer] = []
        self._stop = threading.Event()
        self._store_open = True
        self._last_checkpoint_step = None
        self.stopped = False
        self.status = "ready"
        for ob in observers or ():
            if callable(ob):
                self.attach(ob)
            else:
                self.attach(*ob)

    @staticmethod
    def _thermostat(spec):
        kw = {"chain": spec.thermostat_chain} if spec.thermostat == "nhc" else {}
        return make_thermostat(spec.thermostat, spec.temperature, spec.thermostat_tau, **kw)

    @staticmethod
    def _config(spec, ff, cons, thermo) -> dict:
        """Runtime facts beside the spec (kept in checkpoints; ``rotorlab info`` reads it)."""
        from rotorlab.potentials.registry import to_spec

        return {
            "material": spec.material, "mode": cons.mode,
            "constrain_species": None if spec.constrain_species is None
            else list(spec.constrain_species),
            "temperature": spec.temperature, "timestep": spec.timestep,
            "thermostat": thermo.name, "thermostat_tau": spec.thermostat_tau,
            "equilibration_steps": spec.equilibration_steps, "steps": spec.steps,
            "frame_interval": spec.frame_interval,
            "checkpoint_interval": spec.checkpoint_every(), "seed": spec.seed,
            "explosion_factor": spec.explosion_factor, "min_distance": spec.min_distance,
            "store_forces": spec.store_forces,
            "potential_spec": to_spec(ff) or spec.potential_string,
            "model_deviation": hasattr(ff, "last_model_deviation"),
            "potential_id": str(getattr(ff, "id", type(ff).__name__)),
            "potential_version": str(getattr(ff, "version", "")),
            "checkpoint_version": CHECKPOINT_VERSION,
        }

    def _store_attrs(self, spec, cons, thermo) -> dict:
        cfg = self.config
        top = self.topology
        return {
            "material": spec.material, "constraint_mode": cons.mode,
            "target_temperature": spec.temperature, "timestep": spec.timestep,
            "thermostat": thermo.describe(), "potential_id": cfg["potential_id"],
            "potential_version": cfg["potential_version"],
            "potential_spec": cfg["potential_spec"] if isinstance(cfg["potential_spec"], str)
            else list(cfg["potential_spec"]),
            "mobile_species": str(top.mobile_species),
            "mobile_charge": float(top.mobile_charge),
            "n_dof": cons.n_dof, "com_removed": bool(cons.remove_com),
            "equilibration_steps": spec.equilibration_steps,
            "frame_interval": spec.frame_interval, "seed": spec.seed,
            "constrain_species": cfg["constrain_species"], "replica": spec.replica,
            "run_spec": spec.to_dict(), "store_name": spec.store_name,
        }

    # ------------------------------------------------------------------ properties

    @property
    def constraints(self) -> Constraints:
        return self.integrator.cons

    @property
    def forcefield(self):
        return self._ff

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

    # ------------------------------------------------------------------ observers

    def attach(self, function: Callable, interval: int = 1, event: str = "progress"):
        """Call ``function(RunEvent)`` every ``interval`` events of kind ``event``.

        Parameters
        ----------
        function : callable
            Receives a :class:`~rotorlab.md.observers.RunEvent` (``event.simulation`` is
            this run). It runs in the thread that runs the simulation.
        interval : int
            Every ``interval`` steps (``"progress"``), frames (``"frame"``) or checkpoints
            (``"checkpoint"``); ignored for ``"done"`` and ``"error"``.
        event : {"progress", "frame", "checkpoint", "done", "error"}

        Returns
        -------
        object
            A handle for :meth:`detach`.

        Raises
        ------
        ValueError
            Unknown event or ``interval < 1``.
        """
        from rotorlab.md.observers import EVENTS

        if event not in EVENTS:
            raise ValueError(f"unknown event {event!r}; choose one of {', '.join(EVENTS)}")
        if isinstance(interval, bool) or int(interval) != interval or int(interval) < 1:
            raise ValueError(f"observer interval must be a whole number >= 1, got {interval!r}")
        if not callable(function):
            raise TypeError("observer must be callable")
        ob = _Observer(function, int(interval), event)
        self._observers.append(ob)
        return ob

    def detach(self, handle) -> None:
        """Remove an observer attached with :meth:`attach`."""
        self._observers = [o for o in self._observers if o is not handle]

    def _snapshot(self, event, t0=None, s0=None, reason=None, error=None):
        from rotorlab.md.observers import RunEvent

        integ = self.integrator
        eq = self.config["equilibration_steps"]
        total = self.total_steps
        rate = float("nan")
        if t0 is not None:
            el = time.perf_counter() - t0
            rate = (integ.step_count - s0) / el if el > 0 else float("nan")
        eta = (total - integ.step_count) / rate if rate and rate > 0 else float("nan")
        md = float(getattr(self._ff, "last_model_deviation", float("nan")))
        prod = integ.step_count - eq
        return RunEvent(
            event=event, step=integ.step_count, total_steps=total, production_step=prod,
            frames=0 if self.store is None else self.store.n_frames,
            time_ps=max(prod, 0) * integ.dt / PS, temperature=integ.temperature,
            potential_energy=integ.potential_energy, kinetic_energy=integ.kinetic_energy,
            conserved_energy=integ.conserved_energy, model_deviation=md,
            steps_per_second=rate, eta_s=eta, reason=reason, error=error, simulation=self)

    def _notify(self, event, t0=None, s0=None, **kw):
        ev = None
        for ob in self._observers:
            if ob.event != event:
                continue
            ob.count += 1
            if event in ("done", "error") or ob.count % ob.interval == 0:
                if ev is None:
                    ev = self._snapshot(event, t0, s0, **kw)
                ob.fn(ev)

    def stop(self) -> None:
        """Ask the run to end at the next step boundary (thread-safe, returns at once).

        The run then writes a checkpoint and flushes its frames exactly as after Ctrl-C,
        fires ``"done"`` with ``reason="stopped"`` and :meth:`run` returns normally;
        :meth:`resume` (or another :meth:`run`) continues bit for bit.
        """
        self._stop.set()

    # ------------------------------------------------------------------ checkpoints

    def _state(self):
        from rotorlab.potentials.registry import get_state

        arrays, meta = self.integrator.get_state()
        carr, cmeta = self.constraints.get_state()
        arrays.update(carr)
        meta = {"integrator": meta, "constraints": cmeta, "config": self.config,
                "spec": self.spec.to_dict()}
        if self.topology is not None:
            tarr, tmeta = topology_state(self.topology)
            arrays.update(tarr)
            meta["topology"] = tmeta
        st = get_state(self._ff)
        if st is not None:
            arrays.update(st[0])
            meta["forcefield"] = st[1]
        return arrays, meta

    def _checkpoint(self):
        if self.store is None:
            return
        arrays, meta = self._state()
        self.store.write_checkpoint(arrays, meta)
        self._last_checkpoint_step = self.step

    @classmethod
    def resume(cls, store, steps=None, potential=None, progress=True, observers=None,
               repair: bool = False) -> "Simulation":
        """Reopen a run from its store's checkpoint.

        The spec, topology, force field (with its state, e.g. an ensemble's deviation
        history) and integrator state come from the checkpoint, so the continuation is
        bit-for-bit what the uninterrupted run would have produced.

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
        progress : bool
            Attach a tqdm progress bar.
        observers : sequence, optional
            As for :class:`Simulation`.
        repair : bool
            Keep every intact frame of a damaged store and move damaged chunks aside
            (otherwise a damaged store is refused with a report of the damage).

        Returns
        -------
        Simulation
            Call :meth:`run` to continue; ``sim.spec`` is the run's spec (``steps``
            extended when ``steps`` is given).

        Raises
        ------
        FileNotFoundError
            No store at ``store``.
        LookupError
            The store has no checkpoint.
        """
        from rotorlab.potentials.registry import restore
        from rotorlab.spec import RunSpec
        from rotorlab.store import TrajectoryStore

        path = Path(store)
        if not path.exists():
            raise FileNotFoundError(f"no trajectory store at {str(path)!r}")
        if steps is not None and (isinstance(steps, bool) or int(steps) != steps
                                  or int(steps) < 0):
            raise ValueError(f"steps must be a whole number >= 0, got {steps!r}")
        ts = TrajectoryStore.open(path, mode="a", repair=bool(repair))
        try:
            arrays, meta = ts.read_checkpoint()
            n_cp = ts.checkpoint_n_frames
            if n_cp is not None and ts.n_frames_committed > n_cp:
                ts.truncate(n_cp)
            cfg = dict(meta["config"])
            if "spec" in meta:
                spec = RunSpec.from_dict(meta["spec"])
            else:  # a store written before RunSpec existed
                spec = RunSpec.from_legacy_config(cfg, ts.attrs)
            topology = topology_from_state(arrays, meta["topology"]) if "topology" in meta \
                else None
            species = [str(x) for x in np.asarray(ts.to_xarray()["species"].values)]
            cons = Constraints.from_state(arrays, meta["constraints"])
            if potential is not None:
                ff = potential
                if hasattr(ff, "bind"):
                    ff.bind(species)
            else:
                legacy = cfg.get("potential")
                pspec = spec.potential_string
                if "forcefield" not in meta and isinstance(legacy, dict) \
                        and legacy.get("kind") == "object":
                    pspec = None
                ff = restore(pspec, arrays, meta.get("forcefield"), topology=topology,
                             symbols=species, material=spec.material,
                             positions=arrays["positions"], cell=arrays["cell"])
            thermo = cls._thermostat(spec)
            imeta = meta["integrator"]
            rng = np.random.Generator(np.random.PCG64(0))
            integ = Integrator(energy_forces(ff), cons, arrays["positions"],
                               arrays["velocities"], arrays["cell"], imeta["dt"], thermo, rng,
                               compute_forces=False)
            integ.set_state(arrays, imeta)
        except BaseException:
            ts.close()
            raise

        sim = cls.__new__(cls)
        sim._init_runtime(progress, observers)
        sim.integrator = integ
        sim._ff = ff
        sim.topology = topology
        sim.material = spec.material
        sim.store = ts
        sim.store_path = path
        sim._last_checkpoint_step = integ.step_count
        if steps is not None:
            done = max(0, integ.step_count - spec.equilibration_steps)
            spec = spec.replace(steps=done + int(steps))
            cfg["steps"] = spec.steps
        sim.spec = spec
        sim.config = cfg
        if steps is not None and ts.attrs.get("run_spec") is not None:
            ts.update_attrs({"run_spec": spec.to_dict()})
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
            frame["model_deviation"] = float(self._ff.last_model_deviation)
        return frame

    def _check(self, full: bool):
        integ = self.integrator
        t = integ.temperature
        target = self.config["temperature"]
        if not (math.isfinite(t) and math.isfinite(integ.potential_energy)):
            raise self._exploded("non-finite energy or velocities (NaN)")
        if target > 0 and t > self.config["explosion_factor"] * target:
            raise self._exploded(
                f"temperature {t:.0f} K exceeds {self.config['explosion_factor']:g}x the "
                f"target {target:g} K")
        if full:
            if not np.isfinite(integ.x).all():
                raise self._exploded("non-finite positions")
            dmin = self.config["min_distance"]
            if dmin > 0:
                d = min_pair_distance(integ.x, integ.cell, dmin)
                if d < dmin:
                    raise self._exploded(
                        f"atoms closer than {dmin} Å (found {d:.3f} Å)")

    def _exploded(self, what) -> SimulationExploded:
        kept = "" if self.store is None else (
            f"; the {self.store.n_frames} frames written so far are kept in {self.store_path}"
            " and the last checkpoint is intact")
        return SimulationExploded(
            f"simulation exploded at step {self.step}: {what}. Try a smaller timestep, "
            f"a relaxed structure or a better potential{kept}", step=int(self.step), reason=what)

    def _ensure_store(self):
        if self.store is not None and not self._store_open:
            from rotorlab.store import TrajectoryStore

            self.store = TrajectoryStore.open(self.store_path, mode="a")
            self._store_open = True

    def close(self) -> None:
        """Flush and close the store (releases it for other writers); idempotent."""
        if self.store is not None and self._store_open:
            self.store.close()
            self._store_open = False

    def __enter__(self) -> "Simulation":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def run(self) -> "Simulation":
        """Run (or continue) to the planned number of steps.

        Returns
        -------
        Simulation
            ``self``. ``self.status`` is ``"completed"`` or ``"stopped"`` (after
            :meth:`stop`).

        Raises
        ------
        SimulationExploded
            Unphysical dynamics; frames so far are flushed, the last checkpoint is kept.
        KeyboardInterrupt
            After Ctrl-C: the run stops at a step boundary, frames are flushed and a
            checkpoint is written first, so ``resume`` continues exactly.
        """
        for _ in self._loop(0):
            pass
        return self

    def irun(self, interval: int = 1):
        """Generator form of :meth:`run`: yields a :class:`~rotorlab.md.observers.RunEvent`
        every ``interval`` steps (and once at the end).

        Leaving the loop early (``break``, ``close()``) ends the run like :meth:`stop`:
        checkpoint written, frames flushed, resumable.
        """
        if isinstance(interval, bool) or int(interval) != interval or int(interval) < 1:
            raise ValueError(f"interval must be a whole number >= 1, got {interval!r}")
        yield from self._loop(int(interval))

    def _loop(self, yield_every: int):
        cfg = self.config
        integ = self.integrator
        eq = cfg["equilibration_steps"]
        total = eq + cfg["steps"]
        fi = cfg["frame_interval"]
        ci = cfg["checkpoint_interval"]
        self._ensure_store()
        store = self.store
        interrupted = []

        def _handler(signum, frame):
            interrupted.append(signum)

        old = None
        if threading.current_thread() is threading.main_thread():
            old = signal.signal(signal.SIGINT, _handler)
        bar = None
        if self.progress:
            from rotorlab.md.observers import ProgressBar

            bar = ProgressBar(f"{cfg['material'] or 'MD'} {cfg['mode']} {cfg['temperature']:g} K",
                              interval=max(1, min(200, total // 200 or 1)))
            bar.attach_to(self)
        t0, s0 = time.perf_counter(), integ.step_count
        self.status = "running"
        reason = "completed"
        try:
            if store is not None and integ.step_count == eq and store.n_frames == 0:
                self._check(True)
                store.append(self._frame())
                self._notify("frame", t0, s0)
            while integ.step_count < total:
                if self._stop.is_set():
                    reason = "stopped"
                    break
                try:
                    integ.step()
                except FloatingPointError as exc:
                    raise self._exploded(str(exc)) from exc
                s = integ.step_count
                is_frame = s >= eq and (s - eq) % fi == 0
                is_cp = s % ci == 0 or s == total
                self._check(is_frame or is_cp)
                if store is not None and is_frame:
                    store.append(self._frame())
                    self._notify("frame", t0, s0)
                if store is not None and is_cp:
                    self._checkpoint()
                    self._notify("checkpoint", t0, s0)
                self._notify("progress", t0, s0)
                if interrupted:
                    reason = "interrupted"
                    break
                if yield_every and s % yield_every == 0:
                    try:
                        yield self._snapshot("progress", t0, s0)
                    except GeneratorExit:
                        reason = "stopped"
                        break
        except BaseException as exc:
            # explosion or an error in the force field: keep the frames written so far
            # (the last checkpoint is untouched and stays consistent with them)
            self.status = "failed"
            if store is not None:
                try:
                    store.flush()
                except Exception as flush_error:  # do not mask the original error
                    import warnings

                    warnings.warn(f"could not flush the trajectory store: {flush_error!r}",
                                  RuntimeWarning, stacklevel=2)
            try:
                self._notify("error", t0, s0, error=exc)
            finally:
                self.close()
                if old is not None:
                    signal.signal(signal.SIGINT, old)
            raise
        try:
            if store is not None:
                if self._last_checkpoint_step != integ.step_count:
                    self._checkpoint()
                store.flush()
            self.stopped = reason != "completed"
            self.status = reason
            self._stop.clear()
            self._notify("done", t0, s0, reason=reason)
        finally:
            self.close()
            if old is not None:
                signal.signal(signal.SIGINT, old)
            if bar is not None:
                self._observers = [o for o in self._observers
                                   if getattr(o.fn, "__self__", None) is not bar]
        if reason == "interrupted":
            raise KeyboardInterrupt(
                f"interrupted at step {integ.step_count}; store and checkpoint are consistent"
                + (f" — continue with Simulation.resume({str(self.store_path)!r})"
                   if store is not None else ""))
        if yield_every and reason == "completed":
            yield self._snapshot("done", t0, s0, reason=reason)

    def dataset(self):
        """The stored trajectory as an :class:`xarray.Dataset` (committed frames)."""
        if self.store is None:
            raise ValueError("this simulation has no store")
        from rotorlab.store import open_store

        if self._store_open:
            self.store.flush()
        return open_store(self.store_path)
