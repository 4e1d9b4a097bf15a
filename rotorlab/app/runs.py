"""Runs of one app session: validated :class:`~rotorlab.spec.RunSpec` from widget values,
background threads with a :class:`~rotorlab.md.observers.LiveMonitor`, cancel (= ``stop``),
resume, the list of runs on disk, the potentials the server allows and checked uploads.

Nothing here imports Panel; the app (``apps/explorer.py``) and the tests drive it directly.

Layout of the work directory (``AppConfig.workdir``)::

    sessions/<session>/runs/<store>.zarr     runs of one browser session
    sessions/<session>/uploads/<name>.pb     its uploaded models
    <shared>/<store>.zarr                    runs when a shared results folder is configured
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["AppConfig", "InputError", "RunRecord", "RunManager", "build_spec",
           "potential_choices", "potential_note", "check_model_upload", "pb_node_names", "config_from_env"]

#: Node names one of which every frozen DeePMD TensorFlow model (.pb) holds.
DEEPMD_NODES = ("descrpt_attr/rcut", "model_attr/tmap", "descrpt_attr/ntypes")


class InputError(ValueError):
    """A widget value the app refuses; the message is shown in the page."""


@dataclass
class AppConfig:
    """Server-side settings of the app (never changed from the browser).

    Parameters
    ----------
    workdir : path
        Where sessions keep runs and uploads.
    shared_results : path, optional
        A results folder every session sees (then runs are not private to a session).
    models : sequence of path
        Extra model files (.pb) the server offers to every session.
    max_steps : int
        Largest number of production steps a browser may ask for.
    max_atoms : int
        Largest system a browser may ask for.
    max_upload_mb : float
        Largest model upload [MB].
    max_running : int
        Runs one session may have running at once.
    """

    workdir: Path = field(default_factory=lambda: Path.cwd() / "rotorlab-app")
    shared_results: Path | None = None
    models: tuple = ()
    max_steps: int = 1_000_000
    max_atoms: int = 5_000
    max_upload_mb: float = 200.0
    max_running: int = 2

    def __post_init__(self):
        self.workdir = Path(self.workdir).expanduser().resolve()
        if self.shared_results is not None:
            self.shared_results = Path(self.shared_results).expanduser().resolve()
        self.models = tuple(Path(m).expanduser().resolve() for m in self.models)


def config_from_env(env=None) -> AppConfig:
    """:class:`AppConfig` from ``ROTORLAB_APP_WORKDIR``, ``ROTORLAB_APP_SHARED`` and
    ``ROTORLAB_APP_MODELS`` (model files separated by ``os.pathsep``), which ``rotorlab app``
    sets from its options."""
    env = os.environ if env is None else env
    kw = {}
    if env.get("ROTORLAB_APP_WORKDIR"):
        kw["workdir"] = env["ROTORLAB_APP_WORKDIR"]
    if env.get("ROTORLAB_APP_SHARED"):
        kw["shared_results"] = env["ROTORLAB_APP_SHARED"]
    if env.get("ROTORLAB_APP_MODELS"):
        kw["models"] = tuple(p for p in env["ROTORLAB_APP_MODELS"].split(os.pathsep) if p)
    for key, name, conv in (("ROTORLAB_APP_MAX_STEPS", "max_steps", int),
                            ("ROTORLAB_APP_MAX_ATOMS", "max_atoms", int)):
        if env.get(key):
            kw[name] = conv(env[key])
    return AppConfig(**kw)


# --------------------------------------------------------------------------------------
# potentials and uploads
# --------------------------------------------------------------------------------------


def potential_choices(material: str, config: AppConfig, uploads_dir: Path | None = None) -> dict:
    """The potentials a session may choose for ``material``: label → spec string.

    ``reference`` always; ``bundled`` when the material has a bundled model; every installed
    model directory (``rotorlab.potentials.registry.model_dirs``) whose card names this
    material (or none); the server's ``config.models``; the session's uploads. The browser
    only ever picks a label of this dict.
    """
    from rotorlab.materials import catalog
    from rotorlab.potentials import registry

    out = {"reference force field (tests only, not physics-grade)": "reference"}
    mat = catalog(material)
    if mat.bundled_model is not None:
        out[f"bundled model ({mat.bundled_model})"] = "bundled"
    for mid in registry.model_dirs():
        try:
            info = registry.model_info(mid)
        except (FileNotFoundError, ValueError):
            continue
        if info.material in (None, mat.name):
            out[f"installed model {mid}"] = mid
            if len(info.files) > 1:
                out[f"installed model {mid} (ensemble of {len(info.files)}, model deviation)"] = \
                    ",".join(str(f) for f in info.files)
    for m in config.models:
        if m.is_file():
            out[f"server model {m.name}"] = str(m)
    if uploads_dir is not None and Path(uploads_dir).is_dir():
        for p in sorted(Path(uploads_dir).glob("*.pb")):
            out[f"uploaded {p.name}"] = str(p)
    return out


def potential_note(material: str, spec: str) -> str:
    """One Markdown paragraph on what the chosen potential is and what its card says.

    Parameters
    ----------
    material : str
        Catalog material of the run.
    spec : str
        A value of :func:`potential_choices` (never a path typed in the browser).

    Returns
    -------
    str
        For ``reference``: that it tests the machinery, not physics. For ``bundled``: the
        teacher, the held-out errors against it and every caveat of the card
        (:meth:`~rotorlab.potentials.registry.BundledModel.caveats`). Otherwise "".
    """
    from rotorlab.potentials import registry

    if spec == "reference":
        return ("The reference force field is rotorlab's analytic test potential: it runs "
                "every mode and analysis, but its numbers are not the material's.")
    if spec != "bundled":
        return ""
    try:
        info = registry.bundled(material)
    except (registry.NoBundledModel, FileNotFoundError, ValueError) as exc:
        return f"No usable bundled model: {exc}"
    c = info.card
    parts = [f"Bundled model **{info.id}**, a DeePMD network trained on "
             f"{info.teacher_id or 'teacher'} "
             "labels (not on DFT)."]
    f, e = c.get("force_rmse_test_meV_A"), c.get("energy_rmse_test_meV_atom")
    if isinstance(f, (int, float)) and isinstance(e, (int, float)):
        parts.append(f"Held-out error against the teacher: forces {f:.1f} meV/Å, energy "
                     f"{e:.2f} meV/atom.")
    cav = info.caveats()
    if cav:
        parts.append("Caveats from its card: " + "; ".join(cav) + ".")
    return " ".join(parts)


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise InputError("not a protobuf file (truncated varint)")
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def _fields(buf: bytes):
    """(field number, wire type, value) of one protobuf message; raises on malformed data."""
    i, n = 0, len(buf)
    while i < n:
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise InputError("not a protobuf file (field number 0)")
        if wt == 0:
            v, i = _varint(buf, i)
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 2:
            ln, i = _varint(buf, i)
            v, i = buf[i:i + ln], i + ln
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise InputError(f"not a protobuf file (wire type {wt})")
        if i > n:
            raise InputError("not a protobuf file (truncated)")
        yield num, wt, v


def pb_node_names(data: bytes) -> list[str]:
    """Node names of a TensorFlow ``GraphDef`` (a frozen .pb), read from the protobuf wire
    format (GraphDef field 1 = NodeDef, NodeDef field 1 = name) without TensorFlow.

    Raises
    ------
    InputError
        The bytes are not a GraphDef.
    """
    names = []
    for num, wt, v in _fields(data):
        if num == 1 and wt == 2:
            for n2, w2, v2 in _fields(v):
                if n2 == 1 and w2 == 2:
                    try:
                        names.append(v2.decode("utf-8"))
                    except UnicodeDecodeError:
                        raise InputError("not a TensorFlow graph (node name is not text)") \
                            from None
                    break
    return names


def check_model_upload(filename: str, data: bytes, max_mb: float = 200.0) -> str:
    """Check an uploaded model and return a safe file name for it.

    Parameters
    ----------
    filename : str
        Name the browser sent (only its stem's safe characters are kept).
    data : bytes
    max_mb : float

    Returns
    -------
    str
        ``<safe stem>.pb``.

    Raises
    ------
    InputError
        Not a ``.pb``, empty, too large, not a TensorFlow graph, or a graph without DeePMD's
        nodes.
    """
    name = Path(str(filename or "")).name
    if not name.lower().endswith(".pb"):
        raise InputError(f"upload {name or '(no name)'!r}: only frozen DeePMD models (.pb) can "
                         "be uploaded")
    if not data:
        raise InputError(f"upload {name!r} is empty")
    if len(data) > max_mb * 1e6:
        raise InputError(f"upload {name!r} is {len(data) / 1e6:.0f} MB; the limit is "
                         f"{max_mb:g} MB")
    try:
        nodes = pb_node_names(data)
    except InputError as exc:
        raise InputError(f"upload {name!r} is not a TensorFlow model: {exc}") from None
    if not nodes or not any(n in DEEPMD_NODES for n in nodes):
        raise InputError(f"upload {name!r} is not a frozen DeePMD model (no "
                         f"{DEEPMD_NODES[0]!r} node among {len(nodes)} graph nodes)")
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", name[:-3]).strip("._") or "model"
    return stem[:80] + ".pb"


# --------------------------------------------------------------------------------------
# specs from widget values
# --------------------------------------------------------------------------------------


def _atoms_of(material: str, size) -> int:
    from rotorlab.materials import catalog, unit_cell

    mat = catalog(material)
    if size == "quick":
        sc = mat.quick_supercell
    elif size == "paper":
        return int(mat.paper_atoms)
    else:
        sc = size
    return len(unit_cell(mat.name)) * int(sc[0]) * int(sc[1]) * int(sc[2])


def build_spec(*, material, size, mode, temperature, steps, frame_interval, potential_label,
               choices: dict, config: AppConfig, equilibration_steps=0, seed=None,
               timestep=None, thermostat="nhc"):
    """A :class:`~rotorlab.spec.RunSpec` from widget values, or :class:`InputError`.

    ``potential_label`` must be a key of ``choices`` (see :func:`potential_choices`): a
    label the server did not offer is refused, so no path typed in a browser is ever used.
    """
    from rotorlab.spec import RunSpec, SpecError

    try:
        t = float(temperature)
    except (TypeError, ValueError):
        raise InputError(f"temperature must be a number, got {temperature!r}") from None
    if not t > 0:
        raise InputError(f"temperature must be above 0 K, got {t:g} K")
    try:
        n = int(steps)
    except (TypeError, ValueError):
        raise InputError(f"steps must be a whole number, got {steps!r}") from None
    if n < 1:
        raise InputError(f"steps must be at least 1, got {n}")
    if n > config.max_steps:
        raise InputError(f"steps: at most {config.max_steps} on this server, got {n}")
    if potential_label not in choices:
        raise InputError(f"unknown model {potential_label!r}: choose one of the listed potentials")
    try:
        natoms = _atoms_of(material, size)
    except Exception as exc:  # unknown material, no structure, bad size
        raise InputError(f"structure: {exc}") from None
    if natoms > config.max_atoms:
        raise InputError(f"size: {natoms} atoms; this server allows at most {config.max_atoms}")
    try:
        return RunSpec(material=material, size=size, mode=mode, temperature=t, steps=n,
                       frame_interval=int(frame_interval), potential=choices[potential_label],
                       equilibration_steps=int(equilibration_steps), seed=seed,
                       timestep=timestep, thermostat=thermostat)
    except (SpecError, TypeError, ValueError) as exc:
        raise InputError(str(exc)) from None


# --------------------------------------------------------------------------------------
# runs
# --------------------------------------------------------------------------------------


@dataclass
class RunRecord:
    """One run of a session (live or found on disk)."""

    name: str
    path: Path
    spec: object = None
    status: str = "starting"
    message: str = ""
    monitor: object = None
    sim: object = None
    thread: threading.Thread | None = None
    cancel_requested: bool = False
    started: float = field(default_factory=time.time)

    @property
    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def progress(self) -> dict:
        """Latest numbers (step, total, fraction, T, energies, ε_f, steps/s, ETA)."""
        ev = self.monitor.latest if self.monitor is not None else None
        if ev is None:
            return {"status": self.status, "message": self.message}
        d = ev.as_dict()
        d.update(status=self.status, message=self.message, fraction=ev.fraction)
        return d


def _safe_session(session_id: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_-]", "", str(session_id))[:64]
    if not s:
        raise ValueError("empty session id")
    return s


class RunManager:
    """Runs and uploads of one browser session.

    Parameters
    ----------
    config : AppConfig
    session_id : str
        The browser session (only ``[A-Za-z0-9_-]`` kept).
    """

    def __init__(self, config: AppConfig, session_id: str):
        self.config = config
        self.session = _safe_session(session_id)
        base = config.workdir / "sessions" / self.session
        self.runs_dir = (config.shared_results if config.shared_results is not None
                         else base / "runs")
        self.uploads_dir = base / "uploads"
        self._lock = threading.Lock()
        self.records: dict[str, RunRecord] = {}
        self.scan()

    # ---------------------------------------------------------------- uploads
    def add_upload(self, filename: str, data: bytes) -> Path:
        """Check and keep an uploaded model in the session's folder (never overwrites a
        different file of the same name: a number is appended)."""
        name = check_model_upload(filename, data, self.config.max_upload_mb)
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        target = self.uploads_dir / name
        k = 1
        while target.exists() and target.read_bytes() != data:
            target = self.uploads_dir / f"{name[:-3]}-{k}.pb"
            k += 1
        if not target.exists():
            part = target.with_suffix(".pb.part")
            part.write_bytes(data)
            os.replace(part, target)
        return target

    def choices(self, material: str) -> dict:
        return potential_choices(material, self.config, self.uploads_dir)

    # ---------------------------------------------------------------- runs on disk
    def scan(self) -> list[RunRecord]:
        """Add the runs found in the runs folder (stores with a RunSpec) to the list."""
        if not self.runs_dir.is_dir():
            return []
        found = []
        for p in sorted(self.runs_dir.glob("*.zarr")):
            with self._lock:
                if p.name in self.records:
                    continue
            rec = self._record_from_disk(p)
            if rec is not None:
                with self._lock:
                    self.records.setdefault(p.name, rec)
                found.append(rec)
        return found

    @staticmethod
    def _disk_status(path: Path):
        from rotorlab.spec import RunSpec
        from rotorlab.store import TrajectoryStore

        ts = TrajectoryStore.open(path, mode="r")
        try:
            rs = ts.attrs.get("run_spec")
            if rs is None:
                return None, "unknown", 0
            spec = RunSpec.from_dict(rs)
            nf = ts.checkpoint_n_frames
            expected = spec.steps // spec.frame_interval + 1
            status = "completed" if nf is not None and nf >= expected else "resumable"
            return spec, status, ts.n_frames_committed
        finally:
            ts.close()

    def _record_from_disk(self, path: Path):
        try:
            spec, status, _ = self._disk_status(path)
        except Exception:  # not a rotorlab store, or damaged: not listed
            return None
        if spec is None:
            return None
        return RunRecord(name=path.name, path=path, spec=spec, status=status)

    def list(self) -> list[dict]:
        """Rows (name, material, mode, T, steps, status, frames) of the session's runs."""
        self.scan()
        rows = []
        with self._lock:
            recs = list(self.records.values())
        for r in sorted(recs, key=lambda r: r.started):
            s = r.spec
            p = r.progress()
            rows.append({"name": r.name, "material": getattr(s, "material", None),
                         "mode": getattr(s, "mode_label", None) or str(getattr(s, "mode", "")),
                         "temperature": getattr(s, "temperature", None),
                         "steps": getattr(s, "steps", None), "status": r.status,
                         "step": p.get("step"), "frames": p.get("frames"),
                         "message": r.message})
        return rows

    def get(self, name: str) -> RunRecord:
        with self._lock:
            if name not in self.records:
                raise InputError(f"no run {name!r} in this session")
            return self.records[name]

    def completed(self) -> list[str]:
        """Names of runs with frames that are not running (for analysis)."""
        self.list()
        with self._lock:
            return [n for n, r in self.records.items()
                    if r.status in ("completed", "stopped", "resumable") and not r.alive]

    # ---------------------------------------------------------------- start / cancel / resume
    def _running(self) -> int:
        with self._lock:
            return sum(1 for r in self.records.values() if r.alive)

    def start(self, spec) -> RunRecord:
        """Start ``spec`` in a background thread; returns its record at once.

        Raises
        ------
        InputError
            Too many runs running, or a run of the same name already exists.
        """
        if self._running() >= self.config.max_running:
            raise InputError(f"{self.config.max_running} runs are running already; wait or "
                             "cancel one")
        name = spec.store_name
        path = self.runs_dir / name
        with self._lock:
            if name in self.records or path.exists():
                raise InputError(f"a run {name} exists already (resume it, or change the seed "
                                 "or settings)")
            rec = RunRecord(name=name, path=path, spec=spec)
            self.records[name] = rec
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        rec.thread = threading.Thread(target=self._run, args=(rec, False), daemon=True,
                                      name=f"rotorlab-run-{name}")
        rec.thread.start()
        return rec

    def resume(self, name: str) -> RunRecord:
        """Continue a stopped (resumable) run from its checkpoint in a background thread."""
        rec = self.get(name)
        if rec.alive:
            raise InputError(f"run {name} is running")
        if rec.status == "completed":
            raise InputError(f"run {name} has completed; nothing to resume")
        if self._running() >= self.config.max_running:
            raise InputError(f"{self.config.max_running} runs are running already")
        rec.cancel_requested = False
        rec.status, rec.message = "resuming", ""
        rec.thread = threading.Thread(target=self._run, args=(rec, True), daemon=True,
                                      name=f"rotorlab-resume-{name}")
        rec.thread.start()
        return rec

    def cancel(self, name: str) -> RunRecord:
        """Ask a running run to stop at the next step (checkpoint written: resumable)."""
        rec = self.get(name)
        rec.cancel_requested = True
        if rec.sim is not None:
            rec.sim.stop()
        return rec

    def wait(self, name: str, timeout: float | None = None) -> bool:
        """Block until the run's thread ends (True) or ``timeout`` passes (False)."""
        rec = self.get(name)
        if rec.thread is None:
            return True
        rec.thread.join(timeout)
        return not rec.thread.is_alive()

    def _run(self, rec: RunRecord, resume: bool) -> None:
        from rotorlab.md.observers import LiveMonitor
        from rotorlab.md.simulation import Simulation

        try:
            if resume:
                sim = Simulation.resume(rec.path, progress=False)
            else:
                sim = Simulation.from_spec(rec.spec, store=rec.path, progress=False)
            rec.spec = sim.spec
            mon = LiveMonitor(interval=max(1, min(50, sim.spec.steps // 100 or 1)))
            mon.attach_to(sim)
            rec.monitor, rec.sim = mon, sim
            if rec.cancel_requested:
                sim.stop()
            rec.status = "running"
            sim.run()
            rec.status = "completed" if sim.status == "completed" else "stopped"
            if rec.status == "stopped":
                rec.message = f"stopped at step {sim.step}; resumable"
        except Exception as exc:  # shown in the page; the store keeps what was written
            rec.status = "failed"
            rec.message = f"{type(exc).__name__}: {exc}"
        finally:
            if rec.sim is not None:
                try:
                    rec.sim.close()
                except Exception:
                    pass
