"""The teacher → student active-learning loop (DP-GEN style), resumable step by step.

State on disk (``workdir``)::

    state.json                  settings, teacher, completed steps, per-iteration statistics
    structures/*.extxyz         the unperturbed cells (train, explore, test)
    iter.NNN/configs/           configurations to label (+ teacher-MD frames, labelled)
    iter.NNN/label/             labelled chunks (a killed labelling continues chunk-wise)
    iter.NNN/train/member.K/    DeePMD-kit training of ensemble member K (model.pb)
    iter.NNN/explore/           exploration runs (model deviation) and candidates.extxyz
    data/iter.NNN/              the iteration's labelled training set (DeePMD npy, dpdata)
    data/test/                  held-out frames (a temperature and a cell size not trained on)
    production/                 the production model (longer training, compressed)

Each iteration runs the steps ``configs → label → train → test → explore``; after the last
iteration ``production → card``. A step is recorded in ``state.json`` (written atomically)
only when it has finished, so a kill at any moment continues from the last completed step
(labelling, training and exploration also keep their finished parts: chunks, members,
runs). The loop stops when at least ``accurate_fraction`` (99.5 %) of the explored frames
have ε_f < σ_low (``"converged"``), when the time budget would be exceeded (``"budget"``),
at ``max_iterations`` (``"max_iterations"``) or when exploration finds no candidates to
label (``"no_candidates"``); ``state["stop_reason"]`` says which.

>>> loop = TrainingLoop.create("datasets/training/Li3PS4", atoms, teacher="7net-0",
...                            settings=Settings(material="Li3PS4", type_map=["Li", "P", "S"],
...                                              temperatures=[650, 900]))
>>> loop.run()
>>> TrainingLoop.open("datasets/training/Li3PS4").run()        # after a kill: continues
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Settings", "TrainingLoop", "StateError", "STEPS", "FINAL_STEPS", "STATE_FILE",
           "read_frames", "write_frames"]

STATE_FILE = "state.json"
STEPS = ("configs", "label", "train", "test", "explore")
FINAL_STEPS = ("production", "card")
#: the DeePMD loss prefactors (Settings fields; a refit may override them)
LOSS_KEYS = ("start_pref_e", "limit_pref_e", "start_pref_f", "limit_pref_f", "start_pref_v",
             "limit_pref_v")
#: the network sizes a production model may change (``refit_production(network=...)``)
NETWORK_KEYS = ("neuron", "axis_neuron", "fitting")
#: exploration settings a resumed loop may change (they only steer later explorations)
EXPLORE_KEYS = ("explore_steps", "explore_modes", "explore_temperatures")
STATE_VERSION = 1


class StateError(RuntimeError):
    """The work directory's state does not allow the requested action."""


@dataclass
class Settings:
    """Everything that defines a training loop (stored in ``state.json``).

    Sizes and counts are per iteration unless stated. Times in fs, temperatures in K.
    """

    material: str
    type_map: list
    temperatures: list                       # the study's temperatures (explore / MD)
    test_temperature: float | None = None    # held-out teacher MD (not trained on)
    train_supercells: list = field(default_factory=lambda: [[1, 1, 1]])
    large_supercell: list | None = None      # a few frames of a larger cell
    test_supercell: list | None = None       # held-out frames' cell (default large/train)
    explore_supercell: list | None = None    # default: the first training cell
    timestep: float = 2.0
    # initial data (iteration 0), per training cell; "large_*" for the large cell
    n_strain: int = 40
    n_rattle: int = 30
    n_rotor: int = 40
    n_cation: int = 40
    md_frames: int = 60                      # per MD temperature (lowest, highest)
    md_interval: int = 2
    md_start: int = 20
    large_n_each: int = 10                   # strain/rotor/cation copies of the large cell
    large_md_frames: int = 20                # at the highest temperature
    test_md_frames: int = 30
    test_md_interval: int = 5
    test_md_start: int = 50
    max_strain: float = 0.03
    rattle_stdev: float = 0.05
    strain_rattle: float = 0.03
    # students
    members: int = 4
    first_steps: int = 8000
    next_steps: int = 2000
    production_steps: int = 40000
    start_lr: float = 2e-3
    next_start_lr: float = 1e-3
    stop_lr: float = 3.5e-5
    rcut: float = 5.5
    rcut_smth: float = 0.5
    neuron: list = field(default_factory=lambda: [16, 32, 64])
    axis_neuron: int = 8
    fitting: list = field(default_factory=lambda: [120, 120, 120])
    # DeePMD loss prefactors (start -> limit as the learning rate decays)
    start_pref_e: float = 0.02
    limit_pref_e: float = 1.0
    start_pref_f: float = 1000.0
    limit_pref_f: float = 1.0
    start_pref_v: float = 0.0
    limit_pref_v: float = 0.0
    pin_energy_bias: bool = True             # least-squares per-type energies after production
    jobs: int = 1                            # members trained concurrently
    threads: int = 1                         # threads per process
    compress_step: float = 0.05
    # exploration
    explore_modes: list = field(default_factory=lambda: ["UC", "RC", "RTC", "RTVC"])
    explore_temperatures: list | None = None  # default: lowest and highest study T
    explore_steps: list = field(default_factory=lambda: [2000, 4000, 8000])
    frame_interval: int = 10
    skip_frames: int = 5
    max_candidates: int = 100
    sigma_low: float = 0.11
    sigma_high: float = 0.26
    accurate_fraction: float = 0.995
    max_iterations: int = 10
    budget_hours: float = 2.0
    label_chunk: int = 20
    max_force: float = 20.0                  # [eV/Å] labelled frames above are dropped
    auto_snapshot: bool = True               # refresh snapshot/ after every step
    seed: int = 1
    cross_check_teachers: list | None = None  # None/[]: the other built-in teachers
    measure_card: bool = True                # inference cost, MD sanity, cross-checks
    sanity_steps: int = 10000                # UC MD at the highest T (20 ps at 2 fs)
    sanity_teacher_steps: int = 300          # student vs teacher MD (g(r), VACF); 0: skip
    output_dir: str | None = None            # where the final model goes

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Settings":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise StateError(f"unknown settings in state file: {sorted(unknown)}")
        return cls(**d)


# ------------------------------------------------------------------------------- files


_INFO_KEEP = (str, int, float, bool, np.integer, np.floating)


def write_frames(path, frames) -> Path:
    """Write frames (labelled or not) as extended XYZ, atomically; scalar ``info`` only."""
    import ase.io

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean = []
    for a in frames:
        b = a.copy()
        b.calc = a.calc
        b.info = {k: v for k, v in a.info.items() if isinstance(v, _INFO_KEEP)}
        clean.append(b)
    tmp = path.with_name(path.name + ".tmp")
    ase.io.write(tmp, clean, format="extxyz")
    os.replace(tmp, path)
    return path


def read_frames(path) -> list:
    """Frames of an extended XYZ file (labels, when present, as ``SinglePointCalculator``)."""
    import ase.io

    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return []
    return list(ase.io.read(path, index=":", format="extxyz"))


def _supercell(atoms, sc):
    b = atoms.repeat(tuple(int(x) for x in sc))
    b.info.update(atoms.info)
    b.info["supercell"] = "x".join(str(int(x)) for x in sc)
    return b


# ------------------------------------------------------------------------------- loop


class TrainingLoop:
    """A resumable teacher → student loop in a work directory (see module docstring).

    Use :meth:`create` for a new directory and :meth:`open` to continue one.

    Attributes
    ----------
    workdir : Path
    settings : Settings
    state : dict
        The contents of ``state.json``.
    teacher : Teacher
        Built lazily from the recorded teacher spec.
    """

    def __init__(self, workdir, state, teacher=None):
        self.workdir = Path(workdir)
        self.state = state
        self.settings = Settings.from_dict(state["settings"])
        self._teacher = teacher
        self._log_fh = None
        #: Test hook: raise KeyboardInterrupt after this (iteration, step) completes.
        self.stop_after = None

    # -- creation ---------------------------------------------------------------------

    @classmethod
    def create(cls, workdir, atoms, teacher="7net-0", settings: Settings | None = None,
               teacher_obj=None) -> "TrainingLoop":
        """Start a new loop in ``workdir`` for the structure ``atoms`` (the unit cell).

        Parameters
        ----------
        workdir : path
            New or empty directory (a directory with a state file is refused: use
            :meth:`open`).
        atoms : ase.Atoms
            The study's structure of the material (``info["material"]`` is set to
            ``settings.material``).
        teacher : str
            Teacher spec (:func:`rotorlab.training.teachers.make_teacher`).
        settings : Settings
        teacher_obj : Teacher, optional
            An already built teacher (its id must match ``teacher``'s).

        Raises
        ------
        StateError
            ``workdir`` already holds a loop.
        """
        from rotorlab.training.teachers import make_teacher

        wd = Path(workdir)
        if (wd / STATE_FILE).exists():
            raise StateError(f"{wd} already holds a training loop ({STATE_FILE}); continue it "
                             "with TrainingLoop.open / 'rotorlab train --resume'")
        if settings is None:
            raise ValueError("settings are required")
        t = teacher_obj if teacher_obj is not None else make_teacher(
            teacher, threads=settings.threads, material=settings.material)
        wd.mkdir(parents=True, exist_ok=True)
        (wd / "structures").mkdir(exist_ok=True)
        unit = atoms.copy()
        unit.info["material"] = settings.material
        write_frames(wd / "structures" / "unit.extxyz", [unit])
        state = {"version": STATE_VERSION, "material": settings.material,
                 "teacher_spec": str(teacher), "teacher": t.describe(),
                 "settings": settings.to_dict(), "completed": [], "iterations": [],
                 "status": "created", "stop_reason": None, "elapsed_s": 0.0,
                 "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "sessions": [],
                 "timings": {}}
        _write_json(wd / STATE_FILE, state)
        (wd / ".gitignore").write_text(_GITIGNORE)
        return cls(wd, state, teacher=t)

    @classmethod
    def open(cls, workdir, teacher=None, teacher_obj=None) -> "TrainingLoop":
        """Reopen a loop; ``teacher`` (a spec), if given, must be the recorded one.

        Raises
        ------
        StateError
            No state file, or a different teacher (data of two teachers never mix).
        """
        wd = Path(workdir)
        p = wd / STATE_FILE
        if not p.is_file():
            raise StateError(f"no training loop in {wd} (no {STATE_FILE})")
        state = json.loads(p.read_text())
        if state.get("version") != STATE_VERSION:
            raise StateError(f"{p}: unsupported state version {state.get('version')}")
        tid = state["teacher"]["id"]
        if teacher is not None:
            from rotorlab.training.teachers import make_teacher

            teacher_obj = teacher_obj or make_teacher(
                teacher, threads=state["settings"]["threads"], material=state["material"])
        if teacher_obj is not None and teacher_obj.id != tid:
            from rotorlab.training.data import TeacherMismatch

            raise TeacherMismatch(f"{wd} was labelled by {tid!r}; refusing to continue it with "
                                  f"{teacher_obj.id!r} (start a new work directory)")
        if not (wd / ".gitignore").exists():  # a clone holds state.json + snapshot/ only
            (wd / ".gitignore").write_text(_GITIGNORE)
        if (wd / "snapshot").is_dir():
            from rotorlab.training.snapshot import restore

            restored = restore(wd)
            state = json.loads(p.read_text())
        else:
            restored = []
        loop = cls(wd, state, teacher=teacher_obj)
        if restored:
            loop.log("restored from snapshot: " + ", ".join(restored))
        return loop

    # -- state ------------------------------------------------------------------------

    @property
    def teacher(self):
        if self._teacher is None:
            from rotorlab.training.teachers import make_teacher

            self._teacher = make_teacher(self.state["teacher_spec"],
                                         threads=self.settings.threads,
                                         material=self.state["material"])
            if self._teacher.id != self.state["teacher"]["id"]:
                raise StateError("rebuilt teacher has a different id than recorded")
            for a in self._base_cells().values():
                self._teacher.prepare(a)
        return self._teacher

    def save(self) -> None:
        _write_json(self.workdir / STATE_FILE, self.state)

    def done(self, iteration, step) -> bool:
        return self._key(iteration, step) in self.state["completed"]

    @staticmethod
    def _key(iteration, step):
        return step if iteration is None else f"iter.{iteration:03d}/{step}"

    def _mark(self, iteration, step, seconds, info=None):
        key = self._key(iteration, step)
        self.state["completed"].append(key)
        self.state["timings"][key] = round(seconds, 2)
        self.state["elapsed_s"] = round(self.state["elapsed_s"] + seconds, 2)
        if info is not None and iteration is not None:
            self._iter_stats(iteration)[step] = info
        elif info is not None:
            self.state[step] = info
        self.save()
        self.log(f"done {key} in {seconds:.1f} s")
        if self.settings.auto_snapshot:
            from rotorlab.training.snapshot import snapshot

            snapshot(self.workdir)
        if self.stop_after == (iteration, step):
            raise KeyboardInterrupt(f"simulated kill after {key}")

    def _iter_stats(self, it) -> dict:
        while len(self.state["iterations"]) <= it:
            self.state["iterations"].append({"iteration": len(self.state["iterations"])})
        return self.state["iterations"][it]

    def iter_dir(self, it) -> Path:
        return self.workdir / f"iter.{it:03d}"

    def log(self, msg):
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        with open(self.workdir / "loop.log", "a") as fh:
            fh.write(line + "\n")
        if os.environ.get("ROTORLAB_TRAIN_QUIET") != "1":
            print(line, flush=True)

    # -- structures -------------------------------------------------------------------

    def _unit(self):
        return read_frames(self.workdir / "structures" / "unit.extxyz")[0]

    def _base_cells(self) -> dict:
        s = self.settings
        unit = self._unit()
        cells = {}
        for sc in s.train_supercells:
            cells["train-" + "x".join(map(str, sc))] = _supercell(unit, sc)
        if s.large_supercell:
            cells["large-" + "x".join(map(str, s.large_supercell))] = _supercell(
                unit, s.large_supercell)
        tsc = s.test_supercell or s.large_supercell or s.train_supercells[0]
        cells["test-" + "x".join(map(str, tsc))] = _supercell(unit, tsc)
        esc = s.explore_supercell or s.train_supercells[0]
        cells["explore-" + "x".join(map(str, esc))] = _supercell(unit, esc)
        return cells

    def _cell(self, kind):
        for k, v in self._base_cells().items():
            if k.startswith(kind + "-"):
                return v
        raise KeyError(kind)

    # -- run --------------------------------------------------------------------------

    def run(self, max_iterations=None) -> dict:
        """Run (or continue) the loop to its end: iterations, production model, card.

        Returns
        -------
        dict
            The final state.
        """
        s = self.settings
        t_session = time.time()
        self.state["sessions"].append({"started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        self.state["status"] = "running"
        self.save()
        limit = s.max_iterations if max_iterations is None else int(max_iterations)
        try:
            it = 0
            while self.state["stop_reason"] is None:
                if it >= limit:
                    self._stop("max_iterations", it)
                    break
                if not self.done(it, "configs") and it > 0 and self._over_budget(it) and \
                        str(it) not in (self.state.get("added_frames") or {}):
                    self._stop("budget", it)
                    break
                for step in STEPS:
                    if self.done(it, step):
                        continue
                    self.log(f"iteration {it}: {step}")
                    t0 = time.time()
                    info = getattr(self, f"step_{step}")(it)
                    self._mark(it, step, time.time() - t0, info)
                    if step == "configs" and info.get("n_configs", 1) == 0 and it > 0:
                        break
                if self.state["stop_reason"] is None:
                    self._check_stop(it)
                it += 1
            for step in FINAL_STEPS:
                if self.done(None, step):
                    continue
                self.log(f"final: {step}")
                t0 = time.time()
                info = getattr(self, f"step_{step}")()
                self._mark(None, step, time.time() - t0, info)
            self.state["status"] = "finished"
        finally:
            self.state["sessions"][-1]["seconds"] = round(time.time() - t_session, 1)
            if self.state["status"] == "running":
                self.state["status"] = "interrupted"
            self.save()
        return self.state

    def reopen_iterations(self, keep_refit: bool = False, _any_stop: bool = False) -> None:
        """Forget a ``budget`` or ``max_iterations`` stop (and the final steps) so that
        :meth:`run` continues the active learning, e.g. with a larger budget.

        Parameters
        ----------
        keep_refit : bool
            Keep a refit prepared by :meth:`refit_production` (called first): after the new
            iterations the production step continues that refit's model (or trains its
            network from scratch) on all data, new iterations included. Default: drop it,
            so a new production model is trained from scratch with the loop's settings.
        """
        if self.state.get("stop_reason") not in ("budget", "max_iterations") and not (
                _any_stop and self.state.get("stop_reason")):
            raise StateError(f"the loop stopped because {self.state.get('stop_reason')!r}; "
                             "only a budget or max_iterations stop can be reopened")
        self.state["stop_reason"] = None
        self.state.pop("stopped_at_iteration", None)
        if keep_refit and self.state.get("refit"):
            self.state["refit"]["after_reopen"] = True
        else:
            self.state.pop("refit", None)   # a new production model is trained from scratch
        if "production" in self.state["completed"] or (self.workdir / "production").exists():
            self._retire_production()
        self.state["completed"] = [k for k in self.state["completed"] if k not in FINAL_STEPS]
        self.save()
        self.log("reopened: active learning continues")

    def next_iteration(self) -> int:
        """The iteration the next :meth:`run` starts (the first without a ``configs`` step)."""
        done = [int(k.split("/")[0][5:]) for k in self.state["completed"]
                if k.startswith("iter.") and k.endswith("/configs")]
        return max(done) + 1 if done else 0

    def add_frames(self, frames, keep_refit: bool = False, source: str = "added") -> dict:
        """Queue configurations of your own (e.g. MD frames of a larger cell or a user's
        trajectory) for the next iteration: they join its configurations, are labelled by
        the loop's teacher (frames already labelled by this same teacher, ``info["teacher"]``
        equal to its id, keep their labels) and train the members and the production model
        from then on. A finished loop is reopened for one more iteration (its production
        model and card are redone; with ``keep_refit`` a prepared :meth:`refit_production`
        is kept). Nothing is overwritten: frames queued twice for one iteration are appended.

        Parameters
        ----------
        frames : sequence of ase.Atoms
            Periodic configurations of the loop's elements (any cell size).
        keep_refit : bool
            See :meth:`reopen_iterations`.
        source : str
            Label of these frames in the data statistics (``info["source"]``).

        Returns
        -------
        dict
            ``iteration``, ``n_frames`` queued now, ``n_labelled`` kept with their labels,
            ``file`` (in the work directory).

        Raises
        ------
        StateError
            No frames, an element outside the type map, a frame without a periodic cell, or
            the loop still running its iterations part-way (add between iterations).
        """
        frames = list(frames)
        if not frames:
            raise StateError("add_frames: no frames given")
        tmap = set(self.settings.type_map)
        tid = self.state["teacher"]["id"]
        clean, n_lab = [], 0
        for k, a in enumerate(frames):
            bad = sorted(set(a.get_chemical_symbols()) - tmap)
            if bad:
                raise StateError(f"frame {k}: elements {bad} are not in the loop's type map "
                                 f"{self.settings.type_map}")
            if not all(a.pbc) or abs(a.cell.volume) < 1e-6:
                raise StateError(f"frame {k}: a periodic cell is needed (pbc {list(a.pbc)}, "
                                 f"volume {abs(a.cell.volume):.3g} Å^3)")
            b = a.copy()
            b.info = {key: v for key, v in a.info.items()
                      if key not in ("split", "teacher", "fallback")}  # never held-out data
            b.info["source"] = str(source)
            labelled = False
            if a.calc is not None and a.info.get("teacher") == tid:
                try:
                    from ase.calculators.singlepoint import SinglePointCalculator

                    res = {"energy": a.get_potential_energy(), "forces": a.get_forces()}
                    try:
                        res["stress"] = a.get_stress()
                    except Exception:
                        pass
                    b.calc = SinglePointCalculator(b, **res)
                    b.info["teacher"] = tid
                    labelled = True
                except Exception:
                    labelled = False
            n_lab += labelled
            clean.append(b)
        it = self.next_iteration()
        running = any(self.done(it - 1, st) for st in STEPS) and not all(
            self.done(it - 1, st) for st in STEPS) if it > 0 else False
        if running:
            raise StateError(f"iteration {it - 1} is part-way: finish it (--resume) before "
                             "adding frames")
        adir = self.workdir / "added"
        f = adir / f"iter.{it:03d}.extxyz"
        old = read_frames(f)
        write_frames(f, old + clean)
        rec = self.state.setdefault("added_frames", {}).setdefault(
            str(it), {"file": str(f.relative_to(self.workdir)), "n_frames": 0, "n_labelled": 0,
                      "sources": {}})
        rec["n_frames"] += len(clean)
        rec["n_labelled"] += int(n_lab)
        rec["sources"][str(source)] = rec["sources"].get(str(source), 0) + len(clean)
        if self.state.get("stop_reason"):
            self.reopen_iterations(keep_refit=keep_refit, _any_stop=True)
        if self.settings.max_iterations <= it:
            self.settings.max_iterations = it + 1
            self.state["settings"]["max_iterations"] = it + 1
        self.state.setdefault("notes", []).append(
            time.strftime("%Y-%m-%d %H:%M") + f" {len(clean)} frames added for iteration {it} "
            f"({n_lab} with labels of {tid}, source {source!r})")
        self.save()
        self.log(f"added {len(clean)} frames for iteration {it}")
        return {"iteration": it, "n_frames": len(clean), "n_labelled": int(n_lab),
                "file": str(f.relative_to(self.workdir))}

    def set_exploration(self, **values) -> list:
        """Change how later iterations explore (:data:`EXPLORE_KEYS`: ``explore_steps``,
        ``explore_modes``, ``explore_temperatures``), e.g. longer runs once short ones stop
        finding candidates. Finished explorations keep what they ran (their statistics
        record steps, modes and temperatures); the change is noted in the state.

        Returns
        -------
        list of str
            The changes made (empty if none).
        """
        changed = []
        for k, v in check_exploration(**values).items():
            old = getattr(self.settings, k)
            if old != v:
                changed.append(f"{k} {old} -> {v}")
                setattr(self.settings, k, v)
                self.state["settings"][k] = v
        if changed:
            self.state.setdefault("notes", []).append(
                time.strftime("%Y-%m-%d %H:%M") + " exploration changed: " + ", ".join(changed))
            self.save()
        return changed

    def refit_production(self, steps: int | None = None, start_lr: float | None = None,
                         scratch: bool = False, network: dict | None = None, **loss) -> dict:
        """Prepare a refit of the production model: the next :meth:`run` trains it further
        from the current production model (``dp train --init-frz-model``) on all data for
        ``steps`` steps with other loss prefactors (e.g. a larger energy weight), pins the
        per-type energies (``pin_energy_bias``), compresses it and rewrites the card. The
        active learning and its data are untouched; the previous production model is kept
        (``production.iter.NNN`` or ``refit-base/``), never deleted.

        Parameters
        ----------
        steps : int, optional
            Training steps of the refit (default ``next_steps``, at least 1000).
        start_lr : float, optional
            Default ``next_start_lr`` (a continuation, like the later ensemble members);
            ``start_lr`` with ``scratch``.
        scratch : bool
            Train a new production model from scratch instead of continuing the current
            one (default ``steps``: ``production_steps``). The current model is still
            kept in ``refit-base/`` when there is one.
        network : dict, optional
            Another network for the production model (implies ``scratch``: a frozen
            model's architecture cannot change): any of :data:`NETWORK_KEYS`
            (``neuron``, ``axis_neuron``, ``fitting``); the ensemble keeps its own.
        **loss
            Any of :data:`LOSS_KEYS` (default: the loop's settings).

        Returns
        -------
        dict
            The refit record (``state["refit"]``).

        Raises
        ------
        StateError
            The active learning has not stopped, no production model to start from, or an
            unknown loss key.
        """
        from rotorlab.training.snapshot import output_dir

        if not self.state.get("stop_reason") and not (scratch or network):
            raise StateError("the active learning has not finished: run the loop first "
                             "(a refit continues a finished production model; a retrain "
                             "from scratch can be prepared part-way)")
        bad = sorted(set(loss) - set(LOSS_KEYS))
        if bad:
            raise StateError(f"unknown loss prefactors {bad}; known: {list(LOSS_KEYS)}")
        for k, v in loss.items():
            if v is None or not np.isfinite(float(v)) or float(v) < 0:
                raise StateError(f"{k} must be a number >= 0, got {v!r}")
        net = _check_network(network)
        scratch = bool(scratch or net)
        if steps is not None and int(steps) < 1:
            raise StateError(f"refit steps must be >= 1, got {steps}")
        prod = self.state.get("production") or {}
        base = None
        if "production" in self.state["completed"] and prod.get("model") and \
                (self.workdir / prod["model"]).is_file():
            base = self.workdir / prod["model"]
        else:
            out = output_dir(self.state, self.workdir)
            if out is not None and (Path(out) / "model.pb").is_file():
                base = Path(out) / "model.pb"
        if base is None and not scratch:
            raise StateError(f"{self.workdir}: no production model to refit (neither "
                             "production/ nor the output directory's model.pb)")
        dst = None
        if base is not None:   # kept in any case: nothing is overwritten
            keep = self.workdir / "refit-base"
            keep.mkdir(exist_ok=True)
            k, dst = 1, keep / "model.pb"
            while dst.exists():
                k += 1
                dst = keep / f"model-{k}.pb"
            shutil.copy2(base, dst)
        last = prod.get("last_iteration")
        if "production" in self.state["completed"] or (self.workdir / "production").exists():
            self._retire_production()
        self.state["completed"] = [c for c in self.state["completed"] if c not in FINAL_STEPS]
        s = self.settings
        if scratch:
            n_steps = int(steps) if steps else int(s.production_steps)
            lr = float(start_lr) if start_lr else float(s.start_lr)
        else:
            n_steps = int(steps) if steps else max(int(s.next_steps), 1000)
            lr = float(start_lr) if start_lr else float(s.next_start_lr)
        rec = {"init_model": None if scratch else str(dst.relative_to(self.workdir)),
               "kept_model": None if dst is None else str(dst.relative_to(self.workdir)),
               "from": None if base is None else str(base), "scratch": scratch,
               "network": {k: net.get(k, getattr(s, k)) for k in NETWORK_KEYS},
               "steps": n_steps, "start_lr": lr,
               "loss": {k: float(loss.get(k, getattr(s, k))) for k in LOSS_KEYS},
               "last_iteration": last,
               "requested": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        self.state["refit"] = rec
        what = ("a new production model from scratch (network " + ", ".join(
            f"{k} {v}" for k, v in rec["network"].items()) + ")") if scratch else \
            f"a refit of the production model from {base.name}"
        self.state.setdefault("notes", []).append(
            time.strftime("%Y-%m-%d %H:%M") + f" {what}: {rec['steps']} steps, loss " +
            ", ".join(f"{k} {v:g}" for k, v in rec["loss"].items()))
        self.save()
        self.log(f"refit prepared: {rec['steps']} steps "
                 + ("from scratch" if scratch else f"from {rec['init_model']}"))
        return rec

    def _retire_production(self) -> None:
        """Move the finished production model aside (never delete it), so that the final
        production step trains a new one on the grown data set instead of reusing the old
        ``production/train`` output. The old directory becomes ``production.iter.NNN``
        (NNN: the last iteration it was trained on; ``-2``, ``-3`` ... if taken) and its
        record moves to ``state["previous_productions"]``."""
        old = self.state.pop("production", None) or {}
        src = self.workdir / "production"
        if not src.exists():
            if old:
                self.state.setdefault("previous_productions", []).append(old)
            return
        last = old.get("last_iteration")
        base = f"production.iter.{int(last):03d}" if last is not None else "production.old"
        dst, k = self.workdir / base, 1
        while dst.exists():
            k += 1
            dst = self.workdir / f"{base}-{k}"
        src.rename(dst)
        for key in ("model", "compressed"):
            if isinstance(old.get(key), str) and old[key].startswith("production/"):
                old[key] = dst.name + old[key][len("production"):]
        old["moved_to"] = dst.name
        self.state.setdefault("previous_productions", []).append(old)
        self.log(f"the previous production model is kept in {dst.name}")

    def _stop(self, reason, it):
        self.state["stop_reason"] = reason
        self.state["stopped_at_iteration"] = it
        self.save()
        self.log(f"stop: {reason} (iteration {it})")

    def _check_stop(self, it):
        ex = self._iter_stats(it).get("explore", {})
        frac = ex.get("fraction_accurate", 0.0)
        if ex.get("frames", 0) and frac >= self.settings.accurate_fraction:
            self._stop("converged", it)
        elif ex.get("frames", 0) and ex.get("n_candidates", 0) == 0:
            self._stop("no_candidates", it)

    def _production_estimate(self) -> float:
        rate = self._measured_rate()
        return self.settings.production_steps / rate + 120.0

    def _measured_rate(self) -> float:
        rates = [m.get("steps_per_s") for st in self.state["iterations"]
                 for m in st.get("train", {}).get("members", []) if m.get("steps_per_s")]
        return float(np.median(rates)) if rates else 20.0

    def _iteration_estimate(self, it) -> float:
        """Seconds the next iteration will take, scaled from the previous one."""
        s = self.settings
        tm = self.state["timings"]
        prev = f"iter.{it - 1:03d}/"
        t = {k[len(prev):]: v for k, v in tm.items() if k.startswith(prev)}
        if not t:
            return 0.0
        # the steps the previous exploration ran (recorded: the settings may have changed
        # since, e.g. ``--explore-steps`` on resume) against the next one's
        ex_prev = (self._iter_stats(it - 1).get("explore") or {}).get("steps") or \
            s.explore_steps[min(it - 1, len(s.explore_steps) - 1)]
        ex_next = s.explore_steps[min(it, len(s.explore_steps) - 1)]
        train = t.get("train", 0.0)
        if it - 1 == 0:
            train *= s.next_steps / max(s.first_steps, 1)
        lab = self._iter_stats(it - 1).get("label", {}).get("s_per_frame") or 0.0
        n_lab = self._iter_stats(it - 1).get("explore", {}).get("n_candidates", s.max_candidates)
        return (train + t.get("test", 0.0) + t.get("explore", 0.0) * ex_next / max(ex_prev, 1)
                + lab * n_lab + 30.0)

    def _over_budget(self, it) -> bool:
        """Would another iteration plus the production training exceed the budget?"""
        budget = self.settings.budget_hours * 3600.0
        per_iter = self._iteration_estimate(it)
        # keep enough for the production model (it is shortened only if estimates were off)
        need = per_iter + self._production_estimate()
        return self.state["elapsed_s"] + need > budget

    # -- steps ------------------------------------------------------------------------

    def step_configs(self, it) -> dict:
        """Iteration 0: perturbed copies + teacher MD; later: the previous candidates."""
        from rotorlab.training import configs as C

        s = self.settings
        d = self.iter_dir(it) / "configs"
        d.mkdir(parents=True, exist_ok=True)  # teacher-MD runs finished before a kill are kept
        if it > 0:
            cands = read_frames(self.iter_dir(it - 1) / "explore" / "candidates.extxyz")
            added = self._added(it)
            pre = [a for a in added if a.info.get("teacher") == self.state["teacher"]["id"]]
            todo = [a for a in added if a.info.get("teacher") != self.state["teacher"]["id"]]
            write_frames(d / "pending.extxyz", cands + todo)
            if pre:   # read by the label step as already labelled (like teacher MD frames)
                write_frames(d / "md-added.extxyz", pre)
            srcs = {"explore": len(cands)}
            if added:
                srcs.update(added=len(added), added_with_labels=len(pre))
            return {"n_configs": len(cands) + len(added), "sources": srcs}
        rng = np.random.default_rng(s.seed)
        cells = self._base_cells()
        t = self.teacher
        pending = []
        counts = {}
        for name, cell in cells.items():
            t.prepare(cell)
            if name.startswith("train-"):
                n = (s.n_strain, s.n_rattle, s.n_rotor, s.n_cation)
            elif name.startswith("large-"):
                n = (s.large_n_each, 0, s.large_n_each, s.large_n_each)
            else:
                continue
            new = (C.strained(cell, n[0], s.max_strain, rng=rng, rattle=s.strain_rattle)
                   + C.rattled(cell, n[1], s.rattle_stdev, rng=rng)
                   + (C.rotor_rotated(cell, n[2], rng=rng) if n[2] else [])
                   + (C.cation_displaced(cell, n[3], rng=rng) if n[3] else []))
            for a in new:
                a.info["cell"] = name
                counts[a.info["source"]] = counts.get(a.info["source"], 0) + 1
            pending += new
        write_frames(d / "pending.extxyz", pending)
        # teacher MD (labelled on the fly): lowest and highest study T on each training
        # cell, highest on the large cell, the held-out test temperature on the test cell
        temps = sorted(s.temperatures)
        md_jobs = []
        for name, cell in cells.items():
            if name.startswith("train-"):
                md_jobs += [(name, cell, temps[0], s.md_frames, s.md_interval, s.md_start),
                            (name, cell, temps[-1], s.md_frames, s.md_interval, s.md_start)]
            elif name.startswith("large-") and s.large_md_frames:
                md_jobs.append((name, cell, temps[-1], s.large_md_frames, s.md_interval,
                                s.md_start))
            elif name.startswith("test-"):
                md_jobs.append((name, cell, self._test_temperature(), s.test_md_frames,
                                s.test_md_interval, s.test_md_start))
        md_stats = []
        for k, (name, cell, temp, nfr, interval, start) in enumerate(md_jobs):
            out = d / f"md-{name}-{int(round(temp))}K.extxyz"
            if out.is_file():
                frames = read_frames(out)
                md_stats.append({"cell": name, "temperature": temp, "frames": len(frames),
                                 "reused": True})
                continue
            steps = start + interval * (nfr - 1)
            t0 = time.time()
            frames = C.teacher_md(cell, t, temp, steps, interval=interval, start=start,
                                  timestep=s.timestep, rng=np.random.default_rng(s.seed + 100 + k))
            sec = time.time() - t0
            for a in frames:
                a.info["cell"] = name
                if name.startswith("test-"):
                    a.info["split"] = "test"
            write_frames(out, frames)
            md_stats.append({"cell": name, "temperature": temp, "frames": len(frames),
                             "steps": steps, "seconds": round(sec, 1),
                             "s_per_step": round(sec / steps, 3), "n_atoms": len(cell)})
            self.log(f"teacher MD {name} {temp} K: {len(frames)} frames, {sec / steps:.3f} s/step")
        return {"n_configs": len(pending), "sources": counts, "md": md_stats}

    def _test_temperature(self):
        s = self.settings
        if s.test_temperature is not None:
            return float(s.test_temperature)
        temps = sorted(s.temperatures)
        # midway between two study temperatures: not one that is trained on
        mid = len(temps) // 2
        return 0.5 * (temps[mid - 1] + temps[mid]) if len(temps) > 1 else temps[0] + 25.0

    def step_label(self, it) -> dict:
        """Label the pending configurations chunk by chunk; write the iteration's data set."""
        from rotorlab.training import data as D

        s = self.settings
        cdir = self.iter_dir(it) / "configs"
        ldir = self.iter_dir(it) / "label"
        ldir.mkdir(parents=True, exist_ok=True)
        pending = read_frames(cdir / "pending.extxyz")
        t = self.teacher
        sec = 0.0
        n_new = 0
        for c0 in range(0, len(pending), s.label_chunk):
            out = ldir / f"chunk-{c0 // s.label_chunk:04d}.extxyz"
            if out.is_file():
                continue
            t0 = time.time()
            lab = [t.label(a) for a in pending[c0:c0 + s.label_chunk]]
            sec += time.time() - t0
            n_new += len(lab)
            write_frames(out, lab)
        labelled = []
        for p in sorted(ldir.glob("chunk-*.extxyz")):
            labelled += read_frames(p)
        for p in sorted(cdir.glob("md-*.extxyz")):
            labelled += read_frames(p)
        fmax = np.array([np.abs(a.get_forces()).max() for a in labelled])
        dropped = int(np.sum(fmax > s.max_force))
        labelled = [a for a, f in zip(labelled, fmax) if f <= s.max_force]
        train = [a for a in labelled if a.info.get("split") != "test"]
        test = [a for a in labelled if a.info.get("split") == "test"]
        for a in labelled:
            a.info["teacher"] = t.id
        ddir = self.workdir / "data" / f"iter.{it:03d}"
        if ddir.exists():
            shutil.rmtree(ddir)  # written by this step only; rebuilt from the chunks
        info = {"n_labelled_now": n_new, "dropped_max_force": dropped,
                "max_force_label_eV_A": float(fmax.max()) if fmax.size else None,
                "s_per_frame": round(sec / n_new, 3) if n_new else None}
        if train:
            meta = D.write_set(train, ddir, s.type_map, t.describe(), extra={"iteration": it})
            info.update(n_train=meta["n_frames"], sources=meta["sources"],
                        systems=meta["systems"])
        else:
            info.update(n_train=0)
        if test:
            tdir = self.workdir / "data" / "test"
            if tdir.exists():
                shutil.rmtree(tdir)
            meta = D.write_set(test, tdir, s.type_map, t.describe(),
                               extra={"temperature": self._test_temperature(),
                                      "note": "held out: teacher MD at a temperature and in a "
                                              "cell size not trained on"})
            info.update(n_test=meta["n_frames"])
        return info

    def _added(self, it) -> list:
        """The frames :meth:`add_frames` queued for iteration ``it`` (may be empty)."""
        rec = (self.state.get("added_frames") or {}).get(str(it))
        if not rec:
            return []
        f = self.workdir / rec["file"]
        if not f.is_file():
            raise StateError(f"the frames added for iteration {it} ({f}) are missing")
        return read_frames(f)

    def _continuation_sel(self, model, new_sets) -> dict:
        """Whether a frozen model's neighbour list (``sel``) holds every neighbour of the data
        sets added since it was trained (its own data fit by construction). If so, training
        it further with that ``sel`` given explicitly loses nothing, where DeePMD-kit's
        automatic ``sel`` (10 % margin, rounded up to 4) could ask for more and refuse."""
        from rotorlab.training import data as D
        from rotorlab.training import dp

        sel = dp.frozen_sel(model)
        sets = [p for p in new_sets if (Path(p) / D.META).is_file()]
        need = D.max_neighbours(sets, self.settings.rcut) if sets else []
        fits = bool(sel) and all(n <= m for n, m in zip(need, sel))
        return {"sel": sel, "max_neighbours": need, "fits": fits}

    def _train_sets(self, upto):
        from rotorlab.training import data as D

        sets = [self.workdir / "data" / f"iter.{i:03d}" for i in range(upto + 1)]
        sets = [p for p in sets if (p / D.META).is_file()]
        D.check_teacher(sets + ([self.workdir / "data" / "test"]
                                if (self.workdir / "data" / "test" / D.META).is_file() else []),
                        self.state["teacher"]["id"])
        return sets

    def _input(self, it, seed, steps, start_lr, network=None):
        from rotorlab.training import data as D
        from rotorlab.training import dp

        s = self.settings
        net = {k: getattr(s, k) for k in NETWORK_KEYS} | dict(network or {})
        train_sys = [p.resolve() for st in self._train_sets(it) for p in D.systems(st)]
        test_dir = self.workdir / "data" / "test"
        valid = [p.resolve() for p in D.systems(test_dir)] if test_dir.is_dir() else None
        return dp.input_json(s.type_map, train_sys, valid, numb_steps=steps, seed=seed,
                             rcut=s.rcut, rcut_smth=s.rcut_smth, neuron=net["neuron"],
                             axis_neuron=net["axis_neuron"], fitting=net["fitting"],
                             start_lr=start_lr,
                             stop_lr=s.stop_lr, **{k: getattr(s, k) for k in LOSS_KEYS})

    def member_models(self, it) -> list:
        return [self.iter_dir(it) / "train" / f"member.{k}" / "model.pb"
                for k in range(self.settings.members)]

    def step_train(self, it) -> dict:
        """Train the ensemble (iteration 0 from scratch, later from the previous members)."""
        from rotorlab.training import dp

        s = self.settings
        tdir = self.iter_dir(it) / "train"
        tdir.mkdir(parents=True, exist_ok=True)
        if it == 0 or not all(p.is_file() for p in self.member_models(it - 1)):
            steps, lr, inits = s.first_steps, s.start_lr, None
        else:
            steps, lr, inits = s.next_steps, s.next_start_lr, self.member_models(it - 1)
        cfgs = [self._input(it, s.seed * 1000 + 17 * k + it, steps, lr) for k in range(s.members)]
        sel_note = None
        if inits:
            sel_note = self._continuation_sel(inits[0], [self.workdir / "data" / f"iter.{it:03d}"])
            if sel_note["fits"]:
                for c in cfgs:
                    c["model"]["descriptor"]["sel"] = list(sel_note["sel"])
        dirs = [tdir / f"member.{k}" for k in range(s.members)]
        init_note = "previous members" if inits else "scratch"
        try:
            res = dp.train_members(cfgs, dirs, jobs=s.jobs, threads=s.threads, init_frz_models=inits)
        except dp.DPError as exc:
            if not inits or "Adjusting sel" not in str(exc):
                raise
            # The new configurations have more neighbours inside the cutoff than the
            # previous members' neighbour list (``sel``, fixed when a model is first
            # trained) holds, and a frozen model's sel cannot grow: train from scratch.
            old_sel = _sel_of(inits[0]) or (sel_note or {}).get("sel")
            new_sel = _sel_of(dirs[0] / "model.pb", dirs[0])
            self.log(f"iteration {it}: the data need a larger neighbour list (sel {old_sel} -> "
                     f"{new_sel}); the members are trained from scratch")
            for d in dirs:
                if not (d / "model.pb").is_file():
                    shutil.rmtree(d, ignore_errors=True)
            steps, lr = s.first_steps, s.start_lr
            cfgs = [self._input(it, s.seed * 1000 + 17 * k + it, steps, lr) for k in range(s.members)]
            res = dp.train_members(cfgs, dirs, jobs=s.jobs, threads=s.threads, init_frz_models=None)
            init_note = f"scratch (sel grew from {old_sel} to {new_sel})"
        return {"steps": steps, "start_lr": lr, "init": init_note, "sel_check": sel_note,
                "members": [{k: v for k, v in r.items() if k != "model"} | {
                    "model": str(Path(r["model"]).relative_to(self.workdir))} for r in res]}

    def step_test(self, it) -> dict:
        """RMSEs of every member on the held-out and the training frames."""
        from rotorlab.training import dp

        tests = []
        test_dir = self.workdir / "data" / "test"
        train_sets = self._train_sets(it)
        for k, m in enumerate(self.member_models(it)):
            row = {"member": k}
            if test_dir.is_dir():
                row["test"] = dp.test(m, test_dir)
            row["train"] = dp.test(m, train_sets)
            tests.append(row)
        return {"members": tests, "summary": _rmse_summary(tests)}

    def step_explore(self, it) -> dict:
        """MD with the ensemble in every mode at the exploration temperatures; candidates."""
        from rotorlab.training import explore as E

        s = self.settings
        edir = self.iter_dir(it) / "explore"
        edir.mkdir(parents=True, exist_ok=True)
        temps = s.explore_temperatures or [min(s.temperatures), max(s.temperatures)]
        steps = s.explore_steps[min(it, len(s.explore_steps) - 1)]
        cell = self._cell("explore")
        runs = E.explore([str(p) for p in self.member_models(it)], cell, modes=s.explore_modes,
                         temperatures=temps, steps=steps, workdir=edir,
                         frame_interval=s.frame_interval, timestep=s.timestep,
                         seed=s.seed * 7919 + it * 101, sigma_low=s.sigma_low,
                         sigma_high=s.sigma_high, skip_frames=s.skip_frames)
        summ = E.summarize(runs, s.sigma_low, s.sigma_high)
        cands = E.select_candidates(runs, cell, s.max_candidates, sigma_low=s.sigma_low,
                                    sigma_high=s.sigma_high, rng=s.seed * 31 + it)
        write_frames(edir / "candidates.extxyz", cands)
        for r in runs:  # trajectories are bulky and re-creatable: keep only the npz/json
            store = edir / r["name"] / "traj.zarr"
            if store.exists():
                shutil.rmtree(store)
        summ.update(n_candidates=len(cands), steps=steps, temperatures=temps,
                    fallback_candidates=bool(cands and cands[0].info.get("fallback")),
                    modes=list(s.explore_modes))
        self.log(f"explore {it}: {summ['fraction_accurate']:.3f} accurate, "
                 f"{summ['fraction_candidate']:.3f} candidate, {summ['fraction_failed']:.3f} "
                 f"failed; {len(cands)} candidates")
        return summ

    def step_production(self) -> dict:
        """Train the production model on all data (longer; shortened to fit the budget),
        pin its per-type energies to the training data, freeze and compress it. After
        :meth:`refit_production` it continues from the previous production model instead."""
        from rotorlab.training import dp

        s = self.settings
        last = max(int(k.split("/")[0].split(".")[1]) for k in self.state["completed"]
                   if k.startswith("iter.") and k.endswith("/train"))
        pdir = self.workdir / "production"
        pdir.mkdir(exist_ok=True)
        refit = self.state.get("refit")
        if refit and refit.get("init_model"):
            init = self.workdir / refit["init_model"]
            if not init.is_file():
                raise StateError(f"the refit's starting model {init} is missing")
            steps, shortened = int(refit["steps"]), False
            cfg = self._input(last, s.seed * 1000 + 998, steps, refit["start_lr"])
            cfg["loss"].update(refit["loss"])
            since = refit.get("last_iteration")
            newer = [self.workdir / "data" / f"iter.{i:03d}" for i in range(
                0 if since is None else int(since) + 1, last + 1)]
            chk = self._continuation_sel(init, newer)
            if chk["sel"] and not chk["fits"]:
                raise StateError(
                    f"the data added since the production model was trained need "
                    f"{chk['max_neighbours']} neighbours per type within {s.rcut} Å, more than "
                    f"its neighbour list holds (sel {chk['sel']}); a frozen model's sel cannot "
                    "grow, so it cannot be refitted on them: train a new production model "
                    "instead (rotorlab train MATERIAL --resume --retrain-production)")
            if chk["fits"]:
                cfg["model"]["descriptor"]["sel"] = list(chk["sel"])
            res = dp.train(cfg, pdir / "train", threads=s.threads, init_frz_model=init)
        elif refit:   # from scratch, possibly with another network than the ensemble's
            steps, shortened = int(refit["steps"]), False
            cfg = self._input(last, s.seed * 1000 + 997, steps, refit["start_lr"],
                              network=refit.get("network"))
            cfg["loss"].update(refit["loss"])
            res = dp.train(cfg, pdir / "train", threads=s.threads)
        else:
            budget_left = s.budget_hours * 3600.0 - self.state["elapsed_s"]
            rate = self._measured_rate()
            steps = int(s.production_steps)
            fit = int(0.85 * max(budget_left - 300.0, 0.0) * rate)
            shortened = fit < steps
            steps = max(min(steps, fit), s.production_steps // 4)
            cfg = self._input(last, s.seed * 1000 + 999, steps, s.start_lr)
            res = dp.train(cfg, pdir / "train", threads=s.threads)
        model = Path(res["model"])
        bias = None
        if s.pin_energy_bias:
            pinned = pdir / "model.pb"
            if not pinned.is_file():
                bias = dp.pin_energy_bias(model, self._train_sets(last), pinned)
                _write_json(pdir / "energy_bias.json", bias)
            else:
                bias = json.loads((pdir / "energy_bias.json").read_text())
            bias["model"] = str(pinned.relative_to(self.workdir))
            model = pinned
        comp = pdir / "model-compressed.pb"
        t0 = time.time()
        if not comp.is_file():
            dp.compress(model, comp, step=s.compress_step, threads=s.threads)
        test = {}
        tdir = self.workdir / "data" / "test"
        if tdir.is_dir():
            test["frozen"] = dp.test(model, tdir)
            test["compressed"] = dp.test(comp, tdir)
        train_err = dp.test(model, self._train_sets(last))
        out = {"steps": steps, "shortened_to_fit_budget": shortened,
               "train": {k: v for k, v in res.items() if k != "model"},
               "model": str(model.relative_to(self.workdir)),
               "compressed": str(comp.relative_to(self.workdir)),
               "compress_seconds": round(time.time() - t0, 1), "test": test,
               "train_errors": train_err, "last_iteration": last,
               "loss": dict(cfg["loss"]), "energy_bias": bias}
        if refit:
            out["refit"] = dict(refit)
        return out

    def step_card(self) -> dict:
        """Copy the products to the output directory and write the model card."""
        from rotorlab.training import card

        from rotorlab.training.snapshot import output_dir

        out = output_dir(self.state, self.workdir)
        if out is None:
            return {"written": None}
        info = card.write_products(self, out)
        return {"written": str(out), **info}


def _check_network(network) -> dict:
    """Validate a production-network override (:data:`NETWORK_KEYS`); returns a clean copy."""
    if not network:
        return {}
    bad = sorted(set(network) - set(NETWORK_KEYS))
    if bad:
        raise StateError(f"unknown network keys {bad}; known: {list(NETWORK_KEYS)}")
    out = {}
    for k, v in network.items():
        if k == "axis_neuron":
            ok = isinstance(v, (int, np.integer)) and int(v) >= 1
            val = int(v) if ok else None
        else:
            ok = isinstance(v, (list, tuple)) and len(v) >= 1 and all(
                isinstance(x, (int, np.integer)) and int(x) >= 1 for x in v)
            val = [int(x) for x in v] if ok else None
        if not ok:
            raise StateError(f"network {k} must be "
                             + ("a positive integer" if k == "axis_neuron" else
                                "a list of positive integers (layer widths)") + f", got {v!r}")
        out[k] = val
    if "neuron" in out and "axis_neuron" in out and out["axis_neuron"] > out["neuron"][-1]:
        raise StateError(f"axis_neuron {out['axis_neuron']} exceeds the embedding's last "
                         f"width {out['neuron'][-1]}")
    return out


def check_exploration(**values) -> dict:
    """Validate exploration settings (:data:`EXPLORE_KEYS`); returns the clean values
    (``None`` values are left out)."""
    from rotorlab.md.constraints import MODES

    bad = sorted(set(values) - set(EXPLORE_KEYS))
    if bad:
        raise StateError(f"unknown exploration settings {bad}; known: {list(EXPLORE_KEYS)}")
    out = {}
    for k, v in values.items():
        if v is None:
            continue
        v = list(v)
        if not v:
            raise StateError(f"{k} must not be empty")
        if k == "explore_steps":
            if not all(float(x) == int(x) and int(x) >= 1 for x in v):
                raise StateError(f"explore_steps must be positive integers, got {v}")
            v = [int(x) for x in v]
        elif k == "explore_modes":
            unknown = [m for m in v if str(m).upper() not in MODES]
            if unknown:
                raise StateError(f"unknown constraint modes {unknown}; choose from "
                                 f"{', '.join(MODES)}")
            v = [str(m).upper() for m in v]
        else:
            if not all(np.isfinite(float(x)) and float(x) > 0 for x in v):
                raise StateError(f"explore_temperatures must be positive [K], got {v}")
            v = [float(x) for x in v]
        out[k] = v
    return out


def _sel_of(model, directory=None):
    """The descriptor's neighbour list sizes (``sel``) DeePMD-kit recorded for a model, from
    the ``out.json`` beside it (or in ``directory``); None if not recorded."""
    d = Path(directory) if directory is not None else Path(model).parent
    try:
        return json.loads((d / "out.json").read_text())["model"]["descriptor"]["sel"]
    except (OSError, KeyError, ValueError, TypeError):
        return None


def _rmse_summary(rows) -> dict:
    out = {}
    for split in ("test", "train"):
        e = [r[split]["energy_rmse_meV_atom"] for r in rows if split in r]
        f = [r[split]["force_rmse_meV_A"] for r in rows if split in r]
        if e:
            out[split] = {"energy_rmse_meV_atom_mean": float(np.mean(e)),
                          "energy_rmse_meV_atom_std": float(np.std(e)),
                          "force_rmse_meV_A_mean": float(np.mean(f)),
                          "force_rmse_meV_A_std": float(np.std(f))}
    return out


def _write_json(path: Path, obj) -> None:
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n")
    os.replace(tmp, path)


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")


#: Only the small, re-usable part of a work directory goes into git (see snapshot.py).
_GITIGNORE = """# rotorlab training work directory: commit only the snapshot (python -m
# rotorlab.training.snapshot WORKDIR) and the state file; the rest is re-creatable.
/*
!/.gitignore
!/state.json
!/snapshot/
"""
