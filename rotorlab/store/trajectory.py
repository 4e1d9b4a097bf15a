"""Appendable, crash-safe trajectory store (zarr v3 read through xarray).

One zarr group per run (the store path is a directory such as ``run.zarr``).  The
schema is DESIGN §3:

========================  ========================  ===========  ========================
variable                  dims                      units        notes
========================  ========================  ===========  ========================
``positions``             (frame, atom, xyz)        Å            float64, **unwrapped**
``velocities``            (frame, atom, xyz)        Å/fs         optional at create
``forces``                (frame, atom, xyz)        eV/Å         optional
``cell``                  (frame, cell_a, xyz)      Å            rows = lattice vectors
``potential_energy``      (frame,)                  eV
``kinetic_energy``        (frame,)                  eV
``conserved_energy``      (frame,)                  eV
``temperature``           (frame,)                  K
``model_deviation``       (frame,)                  eV/Å         optional
``step``                  (frame,)                  ""           int64 MD step number
``time`` (coord)          (frame,)                  ps
``species`` (coord)       (atom,)                   ""           element symbols
``mass`` (coord)          (atom,)                   amu
``rotor_id`` (coord)      (atom,)                   ""           int64, -1 = not in a rotor
``rotor_kind`` (coord)    (rotor,)                  ""           e.g. ``"BH4"``
``orientation_atoms``     (rotor, pair)             ""           int64 atom indices
========================  ========================  ===========  ========================

Crash safety
------------
Frames are buffered in memory and written one chunk (``chunk_frames`` frames) at a
time.  For each chunk every frame variable is resized and written first; only then
is the group attribute ``n_frames_committed`` advanced.  zarr's local store writes
every file through a temporary file and an atomic rename, so a process killed at any
moment leaves each file either old or new; a new store is built in a hidden sibling
directory and renamed into place, so a kill during creation leaves no half-made store.
Every chunk carries a CRC32C checksum.

Ownership, writer lock, verify, repair
--------------------------------------
* **Marker.** ``rotorlab_schema`` in the root ``zarr.json`` and the attributes of the
  ``writer_lock`` group.  ``create(overwrite=True)`` replaces only such a store holding
  nothing rotorlab did not create — never ``/``, ``~``, the working directory or a
  directory above it, nor a symbolic link (:class:`NotAStore`, :class:`StoreExists`).
* **One writer.** ``create`` and ``open(mode="a")`` take an OS lock
  (``fcntl.flock`` on ``writer_lock/holder``, which names pid, host, start time and
  command); a second writer gets :class:`StoreLocked`.  The OS drops the lock when a
  process dies, so a killed writer's lock is stale by construction (its info is kept in
  ``store.previous_writer``).  ``close()`` releases it.  Within one process the newest
  writing handle supersedes older ones (they then refuse to write).  Readers
  (``mode="r"``, :func:`open_store`, :meth:`TrajectoryStore.to_xarray`) never take or
  wait on the lock.
* **Verify.** :meth:`TrajectoryStore.verify` decodes every chunk (checksum, shape) and
  returns a :class:`VerifyReport` naming store, variable, frames, chunk file and reason.
  ``open(mode="a")`` verifies every chunk: frames beyond the commit point (an
  interrupted write) are discarded, and so is damage confined to the last, incomplete
  chunk (the crash-loss unit) when the checkpoint does not need it; any other damage
  raises :class:`StoreDamaged` (nothing changed) unless ``repair=True``.
* **Repair without loss** (``repair=True``): every intact frame of every variable is
  kept; damaged chunk files are moved to ``damaged/<UTC time>/`` (never deleted), the
  frames of a damaged chunk are NaN and listed in the variable's
  ``attrs["missing_frames"]`` (:func:`frame_validity` turns them into a mask); ``step``
  and ``time`` are reconstructed exactly when evenly spaced
  (``attrs["reconstructed_frames"]``).  The frame count, hence the checkpoint, stays as
  committed; the root attribute ``repairs`` logs every repair.
* In ``mode="r"`` damage is cut from the returned view only, with a warning; a
  checksum failure met while reading raises :class:`StoreDamaged` naming store,
  variable and frames.

Checkpoints live in the ``checkpoint`` subgroup as versioned subgroups
(``checkpoint/v000001``...), each holding all checkpoint arrays packed into one
checksummed uint8 array with their dtypes, shapes and offsets in its attributes; the
pointer ``checkpoint.attrs["current"]`` is written last, so a kill during a checkpoint
write leaves the previous checkpoint valid.
No pickle is used anywhere; metadata is JSON.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import re
import shutil
import socket
import sys
import time
import warnings
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from rotorlab._safety import OutputExists, UnsafeOutput, describe_contents, protected_reason
from rotorlab.store.chunks import LocalChunks

__all__ = ["TrajectoryStore", "open_store", "SCHEMA", "FRAME_VARS", "REQUIRED_ATTRS",
           "StoreExists", "NotAStore", "StoreLocked", "StoreDamaged", "Damage",
           "VerifyReport", "frame_validity", "store_marker_reason", "LOCK_GROUP",
           "DAMAGED_GROUP"]

#: Identifier written into the group attributes of every rotorlab trajectory store.
SCHEMA = "rotorlab.trajectory/1"

#: Frame variables: name -> (trailing dims, dtype, units).  ``time`` is a coordinate.
FRAME_VARS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "positions": (("atom", "xyz"), "float64", "Å"),
    "velocities": (("atom", "xyz"), "float64", "Å/fs"),
    "forces": (("atom", "xyz"), "float64", "eV/Å"),
    "cell": (("cell_a", "xyz"), "float64", "Å"),
    "potential_energy": ((), "float64", "eV"),
    "kinetic_energy": ((), "float64", "eV"),
    "conserved_energy": ((), "float64", "eV"),
    "temperature": ((), "float64", "K"),
    "model_deviation": ((), "float64", "eV/Å"),
    "step": ((), "int64", ""),
    "time": ((), "float64", "ps"),
}
#: Frame variables every store has.
_ALWAYS = ("positions", "cell", "potential_energy", "kinetic_energy", "conserved_energy",
           "temperature", "step", "time")
#: Frame variables that must be given to :meth:`TrajectoryStore.append`.
_REQUIRED_ON_APPEND = ("positions", "cell", "time", "step")
#: Frame variables that may be left out of an append (stored as NaN = "not recorded").
_NAN_IF_MISSING = ("potential_energy", "kinetic_energy", "conserved_energy", "temperature",
                   "model_deviation")
_STATIC_VARS = ("species", "mass", "rotor_id", "rotor_kind", "orientation_atoms")

#: Dataset attributes always present (``None`` when the creator did not give them).
REQUIRED_ATTRS = ("material", "constraint_mode", "target_temperature", "timestep",
                  "thermostat", "potential_id", "potential_version", "rotorlab_version",
                  "created", "mobile_species", "mobile_charge")
#: Attributes managed by the store itself (not settable by callers).
_INTERNAL_ATTRS = ("rotorlab_schema", "n_frames_committed", "chunk_frames", "n_atoms",
                   "n_rotors")

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


#: zarr codec thread-pool size rotorlab sets when the user has not configured one.
ZARR_IO_THREADS = 1


def _limit_zarr_threads() -> None:
    """Cap zarr's codec thread pool (``threading.max_workers``) unless already configured.

    zarr decodes chunks in a thread pool whose default size is ``min(32, cpus + 4)``.
    Every pool thread gets its own glibc malloc arena, and each arena keeps the freed
    buffers of the (multi-MB) chunks it decoded, so the resident memory of a chunk-by-chunk
    pass over a large store grows with the number of threads, not with the chunk size
    (measured on a 2 GB store: ~3x the block size with the default pool, ~1.1x with one
    thread).  Rotorlab reads and writes one chunk at a time, so the pool brings no speed.
    A value set by the user (``zarr.config.set`` or ``ZARR_THREADING__MAX_WORKERS``) wins.
    """
    import zarr

    if zarr.config.get("threading.max_workers", None) is None:
        zarr.config.set({"threading.max_workers": ZARR_IO_THREADS})


def _codecs():
    from zarr.codecs import Crc32cCodec, ZstdCodec

    return [ZstdCodec(level=3), Crc32cCodec()]


def _jsonable(value: Any, where: str) -> Any:
    """Return ``value`` as plain JSON types (numpy scalars/arrays converted) or raise."""
    if isinstance(value, np.generic):
        value = value.item()
    elif isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, Mapping):
        return {str(k): _jsonable(v, f"{where}[{k!r}]") for k, v in value.items()}
    elif isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{where} is not JSON-serialisable ({type(value).__name__}: "
                        f"{value!r}); store attributes must be plain JSON") from exc
    return value


# zarr warns about the temporary file of an atomic write that a kill left behind
_PARTIAL_LEFTOVER = r"Object at .*\.partial is not recognized as a component of a Zarr hierarchy"


# ---------------------------------------------------------------- errors
class StoreExists(OutputExists):
    """``create`` on an existing rotorlab store without ``overwrite``."""


class NotAStore(UnsafeOutput):
    """The path is not a rotorlab trajectory store (open), or may not be replaced by one
    (create with ``overwrite``).  A :class:`ValueError`."""


class StoreLocked(RuntimeError):
    """Another process (or a newer handle in this process) is writing the store."""


class StoreDamaged(ValueError):
    """Committed frames of the store are damaged; ``report`` says which.

    Raised by ``TrajectoryStore.open(path, mode="a")`` unless ``repair=True``, and by
    reads that hit a damaged chunk (then naming store, variable and frames).
    """

    def __init__(self, message: str, report: VerifyReport | None = None):
        super().__init__(message)
        self.report = report


_REPAIR_HINT = ("rerun with --repair (CLI) / repair=True to keep every intact frame and "
                "move damaged chunks aside")

# ------------------------------------------------------- marker and ownership
#: zarr group inside every store holding the writer lock file (its attributes are the
#: second ownership marker, next to ``rotorlab_schema`` in the root ``zarr.json``).
LOCK_GROUP = "writer_lock"
_LOCK_FILE = "holder"
#: zarr group inside a store where repair moves damaged chunk files (never deleted).
DAMAGED_GROUP = "damaged"
_GROUP_JSON = {"zarr_format": 3, "node_type": "group"}


def _known_entries() -> set[str]:
    return set(FRAME_VARS) | set(_STATIC_VARS) | {"zarr.json", "checkpoint", LOCK_GROUP,
                                                  DAMAGED_GROUP}


def _read_json(p: Path):
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def _has_marker(path: Path) -> bool:
    root = _read_json(path / "zarr.json")
    if isinstance(root, dict):
        sch = (root.get("attributes") or {}).get("rotorlab_schema")
        if isinstance(sch, str) and sch.startswith("rotorlab.trajectory/"):
            return True
    lock = _read_json(path / LOCK_GROUP / "zarr.json")
    return isinstance(lock, dict) and bool((lock.get("attributes") or {}).get("rotorlab_store"))


def store_marker_reason(path) -> str | None:
    """``None`` if ``path`` is a rotorlab store that rotorlab may replace, else why not.

    A store is recognised by its marker (``rotorlab_schema`` in the root ``zarr.json``,
    or the attributes of its ``writer_lock`` group) and may hold only entries rotorlab
    creates (the schema variables, ``checkpoint``, ``writer_lock``, ``damaged``).

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    str or None
        E.g. ``"is not a rotorlab store (it holds 3 files)"``.
    """
    p = Path(path)
    if p.is_symlink():
        return "is a symbolic link (rotorlab does not replace links)"
    if not p.is_dir():
        return "is a file, not a rotorlab store"
    if not _has_marker(p):
        return f"is not a rotorlab store ({describe_contents(p)})"
    known = _known_entries()
    foreign = sorted(e.name for e in p.iterdir()
                     if e.name not in known and not e.name.endswith(".partial"))
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        return (f"is a rotorlab store that also holds {len(foreign)} entr"
                f"{'y' if len(foreign) == 1 else 'ies'} rotorlab did not create ({shown}); "
                f"move them out first")
    return None


# ---------------------------------------------------------------- writer lock
#: Locks held by this process: real store path -> lock (weakly; a lock lives as long as
#: the store handle owning it).
_HELD: dict[str, weakref.ref] = {}


class _WriterLock:
    """``fcntl.flock`` on ``<store>/writer_lock/holder``; the file holds the writer's pid,
    host, start time and command as JSON while locked and is emptied on release.  The OS
    drops the lock when the process dies, so a stale lock is detected by construction."""

    def __init__(self, key: str, fd: int, info: dict):
        self.key, self.fd, self.info = key, fd, info
        self.owner: weakref.ref | None = None
        self.pid = os.getpid()

    @property
    def held(self) -> bool:
        return self.fd >= 0

    def release(self) -> None:
        if self.fd < 0:
            return
        if os.getpid() != self.pid:  # a forked child shares the lock: never release it
            self.fd = -1
            return
        import fcntl

        fd, self.fd = self.fd, -1
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
        ref = _HELD.get(self.key)
        if ref is not None and ref() is self:
            del _HELD[self.key]

    def __del__(self):  # the handle was garbage collected without close()
        try:
            self.release()
        except Exception:
            pass


def _holder_text(info: dict | None) -> str:
    if not info:
        return "another process"
    host = info.get("host")
    where = "" if host in (None, socket.gethostname()) else f" on {host}"
    return f"pid {info.get('pid')}{where} since {info.get('since')}"


def _ensure_lock_group(path: Path) -> Path:
    d = path / LOCK_GROUP
    d.mkdir(exist_ok=True)
    zj = d / "zarr.json"
    if not zj.is_file():
        meta = dict(_GROUP_JSON, attributes={
            "rotorlab_store": SCHEMA,
            "note": "rotorlab writer lock: the file 'holder' is flock()ed by the process "
                    "writing this store and names it"})
        tmp = d / f"zarr.{os.getpid()}.partial"
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, zj)
    return d / _LOCK_FILE


def _acquire_lock(path: Path) -> tuple[_WriterLock, _WriterLock | None, dict | None]:
    """Take the writer lock of the store directory ``path``.

    Returns ``(lock, superseded, stale)``: ``superseded`` is this process's earlier lock
    object when a newer handle takes over, ``stale`` the info left by a dead writer.
    """
    import fcntl

    key = os.path.realpath(path)
    ref = _HELD.get(key)
    mine = ref() if ref is not None else None
    if mine is not None and mine.held:
        return mine, mine, None
    lf = _ensure_lock_group(path)
    fd = os.open(lf, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        info = None
        try:
            info = json.loads(os.pread(fd, 65536, 0).decode() or "null")
        except (OSError, ValueError):
            pass
        os.close(fd)
        raise StoreLocked(f"store {path} is being written by {_holder_text(info)}; wait for "
                          f"it to finish or stop it (reading and analysing it is fine)") from None
    except BaseException:
        os.close(fd)
        raise
    stale = None
    try:
        raw = os.pread(fd, 65536, 0).decode()
        stale = json.loads(raw) if raw.strip() else None
    except (OSError, ValueError):
        stale = {"pid": "unknown"}
    info = {"pid": os.getpid(), "host": socket.gethostname(),
            "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv)[:500]}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    lk = _WriterLock(key, fd, info)
    _HELD[key] = weakref.ref(lk)
    return lk, None, stale


# ---------------------------------------------------------------- verify report
@dataclass(frozen=True)
class Damage:
    """One damaged piece of a store.

    Attributes
    ----------
    variable : str
        Frame variable (``"positions"``...), or ``"checkpoint"``.
    chunk : int or None
        Chunk index along ``frame`` (None: not a single chunk, e.g. a short array).
    start, stop : int
        Affected committed frames ``[start, stop)``.
    reason : str
        ``"chunk file missing"``, ``"checksum/decoding failed: ..."``, ...
    file : str or None
        The chunk file, relative to the store.
    """

    variable: str
    chunk: int | None
    start: int
    stop: int
    reason: str
    file: str | None = None

    def __str__(self) -> str:
        if self.variable == "checkpoint":
            return f"checkpoint: {self.reason}"
        fr = (f"frame {self.start}" if self.stop - self.start == 1
              else f"frames {self.start}–{self.stop - 1}")
        if self.chunk is None:
            return f"{self.variable!r} {fr}: {self.reason}"
        f = f", {self.file}" if self.file else ""
        return f"chunk {self.chunk} of {self.variable!r} ({fr}{f}): {self.reason}"


@dataclass
class VerifyReport:
    """What :meth:`TrajectoryStore.verify` found.

    Attributes
    ----------
    path : pathlib.Path
    n_frames_committed : int
        Frames the store says are committed.
    chunk_frames : int
    variables : tuple of str
        Frame variables checked (every chunk decoded: checksum and shape).
    damage : list of Damage
        Damaged or missing committed data (empty: nothing damaged).
    uncommitted : int
        Frames written beyond the commit point by an interrupted write (not damage:
        they were never committed and are discarded on the next append/resume).
    missing : dict
        ``variable -> [[start, stop), ...]`` frames marked missing by an earlier repair
        (NaN in the data; see :func:`frame_validity`).
    notes : list of str
    """

    path: Path
    n_frames_committed: int
    chunk_frames: int
    variables: tuple[str, ...]
    damage: list[Damage] = field(default_factory=list)
    uncommitted: int = 0
    missing: dict[str, list[list[int]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no committed data is damaged."""
        return not self.damage

    def summary(self) -> str:
        """One line: ``"; "``-joined damage items (empty string when ok)."""
        return "; ".join(str(d) for d in self.damage)

    def to_dict(self) -> dict:
        """JSON-ready dict of the report."""
        return {"path": str(self.path), "ok": self.ok,
                "n_frames_committed": self.n_frames_committed,
                "chunk_frames": self.chunk_frames, "variables": list(self.variables),
                "damage": [d.__dict__.copy() for d in self.damage],
                "uncommitted": self.uncommitted, "missing": self.missing,
                "notes": list(self.notes)}

    def __str__(self) -> str:
        lines = [f"store {self.path}: {self.n_frames_committed} committed frame(s) in chunks "
                 f"of {self.chunk_frames}; checked every chunk of "
                 f"{', '.join(self.variables)}"]
        if self.ok:
            lines.append("no damage found")
        else:
            lines.append(f"DAMAGED ({len(self.damage)} item(s)):")
            lines += [f"  {d}" for d in self.damage]
        if self.uncommitted:
            lines.append(f"{self.uncommitted} uncommitted frame(s) beyond the commit point "
                         f"(an interrupted write; not damage, discarded when the run resumes)")
        for v, rngs in self.missing.items():
            lines.append(f"{v}: frames " + ", ".join(f"{a}–{b - 1}" for a, b in rngs)
                         + " marked missing by an earlier repair (NaN)")
        lines += self.notes
        return "\n".join(lines)


def _chunk_rel(name: str, ndim: int, i: int) -> str:
    return "/".join([name, "c", str(i)] + ["0"] * (ndim - 1))


def _checkpoint_n(group) -> int | None:
    if "checkpoint" not in set(group.group_keys()):
        return None
    cp = group["checkpoint"]
    cur = cp.attrs.get("current")
    if cur is None or cur not in set(cp.group_keys()):
        return None
    try:
        return int(cp[cur].attrs["n_frames"])
    except (KeyError, TypeError, ValueError):
        return None


#: decoded static variables (species, masses, rotor ids...) of stores opened before, keyed
#: by the identity (inode, size, mtime) of every file of the variable: written once when a
#: store is created, they are read from disk again only when one of those files changes
_STATIC_CACHE: dict = {}


def _static_values(path: Path, name: str, arr) -> np.ndarray:
    root = os.path.join(str(path), name)
    ident = []
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            st = os.stat(os.path.join(dirpath, f))
            ident.append((os.path.relpath(os.path.join(dirpath, f), root), st.st_ino,
                          st.st_size, st.st_mtime_ns))
    key = (os.path.realpath(root), tuple(sorted(ident)))
    hit = _STATIC_CACHE.get(key)
    if hit is None:
        hit = np.asarray(arr[...])
        hit.flags.writeable = False
        if len(_STATIC_CACHE) > 512:
            _STATIC_CACHE.clear()
        _STATIC_CACHE[key] = hit
    return hit.copy()


def _scan(path: Path, group, attrs: dict, verify: str, *, checkpoint: bool = False,
          arrays: Mapping | None = None):
    """Inspect every frame variable: returns (committed, lengths, uncommitted, damage, notes).

    ``verify="all"`` decodes every committed chunk (checksum + decompression + shape),
    ``"last"`` only the last one (and the one before when it is damaged); the presence of
    every chunk file is always checked.
    """
    C = int(attrs["chunk_frames"])
    if arrays is None:
        arrays = dict(group.arrays())  # one listing: names and metadata together
    names = [v for v in FRAME_VARS if v in arrays]
    arrays = {v: arrays[v] for v in names}
    lengths = {v: int(a.shape[0]) for v, a in arrays.items()}
    notes: list[str] = []
    damage: list[Damage] = []
    committed = attrs.get("n_frames_committed")
    if not isinstance(committed, int) or isinstance(committed, bool) or committed < 0:
        notes.append(f"committed frame count missing/invalid ({committed!r}); using the "
                     f"shortest array")
        committed = min(lengths.values())
    if len(set(lengths.values())) > 1:
        notes.append("frame variables disagree in length: "
                     + ", ".join(f"{v}={lengths[v]}" for v in names))
    uncommitted = max(0, max(lengths.values()) - committed)
    for v in names:
        if lengths[v] < committed:
            damage.append(Damage(v, None, lengths[v], committed,
                                 f"array holds only {lengths[v]} of {committed} committed "
                                 f"frames"))
    for v, a in arrays.items():
        last = min(committed, lengths[v])
        nch = math.ceil(last / C)
        decode = set(range(nch)) if verify == "all" else {nch - 1} if nch else set()
        pending = sorted(decode)
        bad_chunks = set()
        spath, ndim = str(path), a.ndim
        for i in range(nch):
            rel = _chunk_rel(v, ndim, i)
            if not os.path.isfile(os.path.join(spath, rel)):
                damage.append(Damage(v, i, i * C, min((i + 1) * C, last),
                                     "chunk file missing", rel))
                bad_chunks.add(i)
        # decode runs of consecutive chunks in one call (~64 MB at a time); only a run
        # that fails is checked chunk by chunk to say which chunk is damaged
        per = max(1, (64 << 20) // max(1, C * int(np.prod(a.shape[1:])) * a.dtype.itemsize))
        good = set()
        runs, run = [], []
        for i in sorted(decode - bad_chunks):
            if run and (i != run[-1] + 1 or len(run) >= per):
                runs.append(run)
                run = []
            run.append(i)
        if run:
            runs.append(run)
        direct = LocalChunks.for_array(a)
        for run in runs:
            try:
                if direct is not None:  # the store's own layout: checksum + zstd + size
                    for i in run:
                        direct.chunk(i)
                else:
                    a[run[0] * C:min((run[-1] + 1) * C, last)]
                good.update(run)
            except Exception:
                pass
        while pending:
            i = pending.pop(0)
            if i in bad_chunks or i in good:
                continue
            rel = _chunk_rel(v, a.ndim, i)
            try:
                block = a[i * C:min((i + 1) * C, last)]
                expect = (min((i + 1) * C, last) - i * C,) + tuple(a.shape[1:])
                if block.shape != expect:
                    raise ValueError(f"decoded shape {block.shape}, expected {expect}")
            except Exception as exc:
                damage.append(Damage(v, i, i * C, min((i + 1) * C, last),
                                     f"checksum/decoding failed ({type(exc).__name__}: "
                                     f"{str(exc)[:120]})", rel))
                bad_chunks.add(i)
                if verify == "last" and i > 0 and (i - 1) not in decode:
                    decode.add(i - 1)
                    pending.append(i - 1)
    if checkpoint:
        st = _checkpoint_problem(group)
        if st:
            cpn = _checkpoint_n(group) or 0
            damage.append(Damage("checkpoint", None, cpn, cpn, st))
    damage.sort(key=lambda d: (d.start, d.variable))
    return committed, lengths, uncommitted, damage, notes


def _checkpoint_problem(group) -> str | None:
    if "checkpoint" not in set(group.group_keys()):
        return None
    cp = group["checkpoint"]
    cur = cp.attrs.get("current")
    if cur is None:
        return None
    if cur not in set(cp.group_keys()):
        return f"the current checkpoint {cur!r} is missing; the run cannot be resumed"
    sub = cp[cur]
    try:
        for k in sub.array_keys():
            sub[k][...]
    except Exception as exc:
        return (f"the current checkpoint is unreadable ({type(exc).__name__}); the frames "
                f"can still be analysed but the run cannot be resumed")
    return None


def _merge_ranges(rngs) -> list[list[int]]:
    out: list[list[int]] = []
    for a, b in sorted((int(a), int(b)) for a, b in rngs):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out


def frame_validity(ds, variables: Sequence[str] | None = ("positions",)):
    """Per-frame validity mask of a dataset read from a (possibly repaired) store.

    Repair (``TrajectoryStore.open(path, "a", repair=True)``) keeps every intact frame
    and fills the frames of a damaged chunk with NaN, listing them in the variable's
    ``attrs["missing_frames"]`` (``[[start, stop), ...]``).  Analyses that need whole
    frames should select ``ds.isel(frame=frame_validity(ds))``.

    Parameters
    ----------
    ds : xarray.Dataset
        From :meth:`TrajectoryStore.to_xarray` / :func:`open_store`, before any
        selection along ``frame`` (the ranges count stored frames from 0).
    variables : sequence of str or None
        Variables that must be valid; ``None``: every frame variable.

    Returns
    -------
    xarray.DataArray
        bool, dims ``(frame,)``, ``units = "1"``; True where every listed variable holds
        real data.
    """
    import xarray as xr

    n = ds.sizes["frame"]
    ok = np.ones(n, bool)
    names = [v for v in (variables if variables is not None else FRAME_VARS) if v in ds.variables]
    for v in names:
        for a, b in ds[v].attrs.get("missing_frames", []) or []:
            ok[max(int(a), 0):min(int(b), n)] = False
    return xr.DataArray(ok, dims=("frame",), attrs={"units": "1", "long_name": "frame holds "
                        "real data in " + ", ".join(names)})


class TrajectoryStore:
    """A run's trajectory on disk: appendable, crash-safe, opened lazily with xarray.

    Create a new store with :meth:`create`, open an existing one with :meth:`open`;
    do not call the constructor directly.

    Attributes
    ----------
    path : pathlib.Path
        Directory of the zarr v3 group.
    mode : str
        ``"r"`` (read only) or ``"a"`` (append).
    """

    def __init__(self, path: Path, group, mode: str, n_valid: int, *,
                 arrays: Mapping | None = None, static: Mapping | None = None):
        self.path = Path(path)
        self.mode = mode
        self._group = group
        a = dict(group.attrs)
        self._chunk = int(a["chunk_frames"])
        self._n_atoms = int(a["n_atoms"])
        self._n_rotors = int(a["n_rotors"])
        self._n_committed = int(n_valid)
        keys = set(arrays) if arrays is not None else set(group.array_keys())
        self._vars = [v for v in FRAME_VARS if v in keys]
        #: read-only views: the arrays and static values opened once by open() (a writer
        #: resizes its arrays, so it always reopens them)
        self._ro_arrays = dict(arrays) if arrays is not None and mode == "r" else None
        self._ro_static = dict(static) if static is not None and mode == "r" else None
        self._buffer: dict[str, list[np.ndarray]] = {v: [] for v in self._vars}
        self._n_buffered = 0
        self._lock: _WriterLock | None = None
        self._closed = False
        #: lock info of a writer that died without closing the store (set by open("a"))
        self.previous_writer: dict | None = None

    # ------------------------------------------------------------------ create
    @classmethod
    def create(cls, path, *, species: Sequence[str], masses, rotor_id,
               rotor_kind: Sequence[str] = (), orientation_atoms=None,
               attrs: Mapping[str, Any] | None = None, chunk_frames: int = 50,
               velocities: bool = True, forces: bool = False,
               model_deviation: bool = False, overwrite: bool = False) -> TrajectoryStore:
        """Create an empty store for one run.

        Parameters
        ----------
        path : str or path-like
            Directory of the new zarr group (e.g. ``"run.zarr"``).
        species : sequence of str, shape (N,)
            Element symbol of every atom.
        masses : array_like, shape (N,)
            Atomic masses [amu].
        rotor_id : array_like of int, shape (N,)
            Rotor index of each atom, -1 for atoms not in a rotor.  Rotor indices must
            be ``0 .. n_rotors-1``.
        rotor_kind : sequence of str, shape (n_rotors,)
            Kind of each rotor (e.g. ``"BH4"``).  Its length defines ``n_rotors``.
        orientation_atoms : array_like of int, shape (n_rotors, 2), optional
            Atom indices (tail, head) defining each rotor's orientation vector;
            defaults to -1 (undefined).
        attrs : mapping, optional
            Dataset attributes (JSON-serialisable): material, constraint_mode,
            target_temperature [K], timestep [fs], thermostat, potential_id,
            potential_version, mobile_species, mobile_charge [e], plus any extra keys.
            Missing schema attributes are stored as ``None``; ``rotorlab_version``
            and ``created`` (ISO 8601, UTC) are filled in automatically unless given.
        chunk_frames : int
            Frames per chunk: the unit of writing and of crash loss.
        velocities, forces, model_deviation : bool
            Whether the store records these optional frame variables.
        overwrite : bool
            Replace an existing rotorlab store at ``path``.  Only a rotorlab store
            (recognised by its marker, holding nothing rotorlab did not create) is ever
            replaced, never ``/``, ``~``, the working directory or a directory above it,
            nor a symbolic link; a store another process is writing is refused before
            anything is removed.

        Raises
        ------
        StoreExists
            ``path`` is a rotorlab store and ``overwrite`` is false (a
            :class:`FileExistsError`).
        NotAStore
            ``path`` exists and is not a rotorlab store, or is protected (a
            :class:`ValueError`).
        StoreLocked
            Another process is writing the store at ``path``.
        ValueError
            Inconsistent arguments (nothing on disk is touched).

        Returns
        -------
        TrajectoryStore
            Opened in append mode, with zero frames.
        """
        _limit_zarr_threads()
        path = Path(path)
        chunk_frames = int(chunk_frames)
        if chunk_frames < 1:
            raise ValueError(f"chunk_frames must be >= 1, got {chunk_frames}")
        return cls._create_in(path, overwrite, species=species, masses=masses,
                              rotor_id=rotor_id, rotor_kind=rotor_kind,
                              orientation_atoms=orientation_atoms, attrs=attrs,
                              chunk_frames=chunk_frames, velocities=velocities,
                              forces=forces, model_deviation=model_deviation)

    @classmethod
    def _claim_path(cls, path: Path, overwrite: bool):
        """Check that ``path`` may become a new store; for an existing rotorlab store take
        its writer lock (refusing while another process writes) before anything changes.

        Returns the old store's lock (or None when ``path`` is free or an empty dir).
        """
        shown = str(path)
        if path.is_symlink():
            raise NotAStore(f"{shown} is a symbolic link; choose another path — rotorlab "
                            f"does not replace links")
        why = protected_reason(path)
        if why:
            raise NotAStore(f"{shown} is {why}; choose another -o path — rotorlab never "
                            f"replaces it")
        if not path.exists() or (path.is_dir() and not any(path.iterdir())):
            return None
        bad = store_marker_reason(path)
        if bad:
            raise NotAStore(f"{shown} exists and {bad}; choose another -o path — rotorlab "
                            f"only ever overwrites its own stores")
        if not overwrite:
            raise StoreExists(f"{shown} exists; pass --overwrite (CLI) / overwrite=True "
                              f"(Python) to replace this rotorlab store")
        lock, superseded, stale = _acquire_lock(path)  # refuses while another process writes
        _detach_previous(superseded, keep_buffer=False)
        if stale:
            import logging

            logging.getLogger("rotorlab.store").warning(
                "store %s: its last writer (%s) ended without closing it; replacing it as "
                "asked", shown, _holder_text(stale))
        return lock

    @classmethod
    def _create_in(cls, path, overwrite, *, species, masses, rotor_id, rotor_kind,
                   orientation_atoms, attrs, chunk_frames, velocities, forces,
                   model_deviation):
        import rotorlab

        species = np.asarray([str(s) for s in species], dtype=object)
        n = species.shape[0]
        masses = np.asarray(masses, dtype=np.float64)
        rotor_id = np.asarray(rotor_id)
        if masses.shape != (n,):
            raise ValueError(f"masses: expected shape ({n},) to match species, got {masses.shape}")
        if rotor_id.shape != (n,):
            raise ValueError(f"rotor_id: expected shape ({n},) to match species, got {rotor_id.shape}")
        if rotor_id.size and not np.issubdtype(rotor_id.dtype, np.integer):
            raise ValueError(f"rotor_id must be integer, got dtype {rotor_id.dtype}")
        rotor_id = rotor_id.astype(np.int64)
        rotor_kind = np.asarray([str(k) for k in rotor_kind], dtype=object)
        nr = rotor_kind.shape[0]
        if rotor_id.size and (rotor_id.min() < -1 or rotor_id.max() >= nr):
            raise ValueError(f"rotor_id values must lie in [-1, {nr - 1}] for {nr} rotor_kind "
                             f"entries, got range [{rotor_id.min()}, {rotor_id.max()}]")
        if orientation_atoms is None:
            orientation_atoms = np.full((nr, 2), -1, dtype=np.int64)
        orientation_atoms = np.asarray(orientation_atoms)
        if orientation_atoms.shape != (nr, 2):
            raise ValueError(f"orientation_atoms: expected shape ({nr}, 2), got "
                             f"{orientation_atoms.shape}")
        orientation_atoms = orientation_atoms.astype(np.int64)
        if np.any((orientation_atoms < -1) | (orientation_atoms >= n)):
            raise ValueError(f"orientation_atoms must be atom indices in [0, {n - 1}] (or -1)")

        user = dict(attrs or {})
        for k in _INTERNAL_ATTRS:
            if k in user:
                raise ValueError(f"attribute {k!r} is managed by the store and cannot be set")
        full: dict[str, Any] = {k: None for k in REQUIRED_ATTRS}
        full["rotorlab_version"] = rotorlab.__version__
        full["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        full.update(user)
        full = {str(k): _jsonable(v, f"attrs[{k!r}]") for k, v in full.items()}
        full.update(rotorlab_schema=SCHEMA, n_frames_committed=0, chunk_frames=chunk_frames,
                    n_atoms=int(n), n_rotors=int(nr))

        # every argument is valid: only now claim the path.  The new store is built in a
        # hidden sibling directory (holding its own writer lock) and renamed into place, so
        # a kill at any moment leaves either no store / the old store, or the complete new
        # one — never a half-created store.
        old_lock = cls._claim_path(path, overwrite)
        tag = f"{os.getpid()}-{os.urandom(4).hex()}"
        tmp = path.parent / f".{path.name}.rotorlab-new-{tag}"
        lock = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.mkdir()
            lock, _, _ = _acquire_lock(tmp)
            cls._write_new(tmp, species, masses, rotor_id, rotor_kind, orientation_atoms,
                           full, chunk_frames, velocities, forces, model_deviation)
            if old_lock is not None:
                aside = path.parent / f".{path.name}.rotorlab-old-{tag}"
                os.rename(path, aside)
                try:
                    os.rename(tmp, path)
                except BaseException:
                    os.rename(aside, path)
                    raise
                old_lock.release()
                old_lock = None
                shutil.rmtree(aside, ignore_errors=True)
            else:
                try:
                    os.rename(tmp, path)  # onto nothing or an empty directory
                except OSError:
                    raise StoreExists(f"{path} was created by another process meanwhile; "
                                      f"choose another -o path") from None
        except BaseException:
            if lock is not None:
                lock.release()
            if old_lock is not None:
                old_lock.release()
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)  # only what this call created
            raise
        # the lock now lives at the final path
        _HELD.pop(lock.key, None)
        lock.key = os.path.realpath(path)
        _HELD[lock.key] = weakref.ref(lock)
        lock.info["path"] = str(path)
        import zarr

        group = zarr.open_group(path, mode="a", zarr_format=3)
        store = cls(path, group, "a", 0)
        store._lock = lock
        lock.owner = weakref.ref(store)
        return store

    @staticmethod
    def _write_new(path, species, masses, rotor_id, rotor_kind, orientation_atoms, full,
                   chunk_frames, velocities, forces, model_deviation) -> None:
        import xarray as xr

        n = species.shape[0]
        nr = rotor_kind.shape[0]
        wanted = [v for v in FRAME_VARS if v in _ALWAYS
                  or (v == "velocities" and velocities) or (v == "forces" and forces)
                  or (v == "model_deviation" and model_deviation)]
        sizes = {"atom": n, "xyz": 3, "cell_a": 3}
        data_vars = {}
        encoding = {}
        for v in wanted:
            trail, dtype, units = FRAME_VARS[v]
            shape = (0,) + tuple(sizes[d] for d in trail)
            var = xr.Variable(("frame",) + trail, np.zeros(shape, dtype=dtype),
                              attrs={"units": units})
            data_vars[v] = var
            encoding[v] = {"chunks": (chunk_frames,) + shape[1:], "compressors": _codecs()}
        coords = {
            "time": data_vars.pop("time"),
            "species": xr.Variable(("atom",), species, attrs={"units": ""}),
            "mass": xr.Variable(("atom",), masses, attrs={"units": "amu"}),
            "rotor_id": xr.Variable(("atom",), rotor_id, attrs={"units": ""}),
            "rotor_kind": xr.Variable(("rotor",), rotor_kind, attrs={"units": ""}),
            "orientation_atoms": xr.Variable(("rotor", "pair"), orientation_atoms,
                                             attrs={"units": ""}),
        }
        for v in ("mass", "rotor_id", "orientation_atoms"):
            encoding[v] = {"compressors": _codecs()}
        ds = xr.Dataset(data_vars, coords=coords, attrs=full)
        # mode "a": the directory already holds the (locked) writer_lock group
        ds.to_zarr(path, mode="a", zarr_format=3, consolidated=False, encoding=encoding)

    # -------------------------------------------------------------------- open
    @classmethod
    def open(cls, path, mode: str = "r", *, verify: str | None = None,
             repair: bool = False) -> TrajectoryStore:
        """Open an existing store, validating it.

        Parameters
        ----------
        path : str or path-like
            Directory of the store.
        mode : {"r", "a"}
            ``"r"``: read only; never takes or waits on the writer lock and never
            changes the disk.  Uncommitted frames of a live or killed writer and damaged
            chunks are cut from the returned view only (with a warning).
            ``"a"``: append (what resuming a run uses): takes the writer lock
            (:class:`StoreLocked` while another process writes) and verifies every
            chunk.  Frames beyond the commit point (an interrupted write) are discarded
            and so is damage confined to the last, incomplete chunk (the crash-loss
            unit) when the checkpoint does not need it — its chunk files are moved into
            ``damaged/`` — both with a :class:`RuntimeWarning`.  Any other damage raises
            :class:`StoreDamaged` unless ``repair=True``.
        verify : {"last", "all"}, optional
            Which chunks are decoded to check their checksums: the last committed chunk
            of every frame variable (cheap; default for ``"r"``) or all (default for
            ``"a"``).  The presence of every chunk file is always checked.
        repair : bool
            (``mode="a"`` only) Keep every intact frame of every variable: damaged chunk
            files are moved to ``<store>/damaged/<UTC time>/`` (never deleted), the
            frames of a damaged chunk are filled with NaN and listed in the variable's
            ``attrs["missing_frames"]`` (see :func:`frame_validity`); ``step`` and
            ``time`` are reconstructed when the intact frames are evenly spaced.  The
            frame count, and so the checkpoint, stay as committed.

        Returns
        -------
        TrajectoryStore
            ``store.previous_writer`` holds the lock info of a writer that died without
            closing the store (``mode="a"``), else ``None``.

        Raises
        ------
        FileNotFoundError
            ``path`` does not exist.
        NotAStore
            ``path`` is not a rotorlab trajectory store (a :class:`ValueError`).
        StoreLocked
            ``mode="a"`` and another process is writing the store.
        StoreDamaged
            ``mode="a"``, committed frames are damaged and ``repair`` is false (nothing
            is changed on disk); the message lists store, variables and frames and the
            exception's ``report`` is the :class:`VerifyReport`.  Also for a store
            missing a schema variable or with an unreadable static variable.

        Warns
        -----
        RuntimeWarning
            When frames are dropped (with their number and why) or repaired.
        """
        if mode not in ("r", "a"):
            raise ValueError(f"mode must be 'r' or 'a', got {mode!r}")
        if verify is None:
            verify = "all" if mode == "a" else "last"
        if verify not in ("last", "all"):
            raise ValueError(f"verify must be 'last' or 'all', got {verify!r}")
        if repair and mode != "a":
            raise ValueError("repair=True needs mode='a' (a repair writes to the store)")
        _limit_zarr_threads()
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no trajectory store at {path}")
        if not path.is_dir() or not (path / "zarr.json").is_file():
            raise NotAStore(f"{path} is not a rotorlab trajectory store (no zarr group)")
        if mode == "r":
            return cls._open_checked(path, "r", verify, False)
        if not _has_marker(path):
            raise NotAStore(f"{path} is not a rotorlab trajectory store (no rotorlab marker)")
        lock, superseded, stale = _acquire_lock(path)
        try:
            _detach_previous(superseded, keep_buffer=True)
            store = cls._open_checked(path, "a", verify, repair)
        except BaseException:
            if superseded is None:
                lock.release()
            raise
        store._lock = lock
        lock.owner = weakref.ref(store)
        store.previous_writer = stale
        if stale:
            import logging

            logging.getLogger("rotorlab.store").warning(
                "store %s: taking over from its last writer (%s), which ended without "
                "closing it (killed?)", path, _holder_text(stale))
        return store

    @classmethod
    def _open_checked(cls, path: Path, mode: str, verify: str, repair: bool):
        import zarr

        try:
            group = zarr.open_group(path, mode="r" if mode == "r" else "a", zarr_format=3)
        except Exception as exc:  # corrupt group metadata
            raise NotAStore(f"{path} is not a readable zarr v3 group: {exc}") from exc
        attrs = dict(group.attrs)
        if attrs.get("rotorlab_schema") != SCHEMA:
            raise NotAStore(f"{path} is not a rotorlab trajectory store "
                            f"(rotorlab_schema={attrs.get('rotorlab_schema')!r}, "
                            f"expected {SCHEMA!r})")
        if mode != "r":  # a rotorlab store: remove leftovers of interrupted atomic writes
            for p in path.rglob("*.partial"):
                p.unlink(missing_ok=True)
        with warnings.catch_warnings():  # read-only: zarr names a killed write's leftover
            warnings.filterwarnings("ignore", message=_PARTIAL_LEFTOVER)
            members = dict(group.arrays())  # one listing: names and metadata together
        missing = [v for v in _ALWAYS + _STATIC_VARS if v not in members]
        if missing:
            raise StoreDamaged(f"{path} is damaged: missing variable(s) {missing}")
        static = {}
        for v in _STATIC_VARS:
            try:
                static[v] = _static_values(path, v, members[v])
            except Exception as exc:
                raise StoreDamaged(f"{path}: static variable {v!r} is unreadable ({exc}); "
                                   f"the store cannot be repaired") from exc

        C = int(attrs["chunk_frames"])
        committed, lengths, uncommitted, damage, notes = _scan(path, group, attrs, verify,
                                                               arrays=members)
        total = max(max(lengths.values()), committed)
        detail = "; ".join([str(d) for d in damage] + notes
                           + ([f"{uncommitted} frame(s) beyond the commit point (interrupted "
                               f"write)"] if uncommitted else []))
        if mode == "r":
            keep = min([committed] + [d.start for d in damage])
            if keep < total:
                hint = (f"; repair with TrajectoryStore.open(path, 'a', repair=True) / "
                        f"rotorlab resume --repair to keep every intact frame" if damage else "")
                warnings.warn(
                    f"trajectory store {path}: dropped {total - keep} frame(s) after the last "
                    f"complete, consistent chunk; keeping {keep} frame(s) ({detail}); cut from "
                    f"this read-only view only (disk unchanged){hint}",
                    RuntimeWarning, stacklevel=3)
            # a read-only view keeps the arrays and static values it has already opened
            return cls(path, group, mode, keep, arrays=members, static=static)

        cp_n = _checkpoint_n(group)
        if not damage:
            if uncommitted or total > committed:
                warnings.warn(
                    f"trajectory store {path}: dropped {total - committed} frame(s) after the "
                    f"last complete, consistent chunk; keeping {committed} frame(s) ({detail}); "
                    f"cut back on disk (frames that were never committed)",
                    RuntimeWarning, stacklevel=3)
                _truncate_group(group, committed)
            return cls(path, group, mode, committed)
        first = min(d.start for d in damage)
        last_start = ((committed - 1) // C) * C if committed else 0
        tail = (first >= last_start and committed % C != 0
                and (cp_n is None or cp_n <= first))
        if tail and not repair:
            moved = _move_aside(path, damage)
            warnings.warn(
                f"trajectory store {path}: dropped {total - first} frame(s) after the last "
                f"complete, consistent chunk; keeping {first} frame(s) ({detail}); cut back on "
                f"disk (the last, incomplete chunk is the crash-loss unit)"
                + (f"; damaged chunk files moved to {moved}" if moved else ""),
                RuntimeWarning, stacklevel=3)
            _truncate_group(group, first)
            return cls(path, group, mode, first)
        if not repair:
            report = VerifyReport(path, committed, C, tuple(lengths), damage, uncommitted,
                                  _missing_of(group), notes)
            raise StoreDamaged(f"store {path} is damaged: {report.summary()}; nothing was "
                               f"changed — {_REPAIR_HINT}", report)
        moved = _repair(path, group, damage, committed, C, lengths)
        missing = _missing_of(group)
        warnings.warn(
            f"trajectory store {path}: repaired, keeping all {committed} committed frame(s) "
            f"of every variable; damaged data marked missing (NaN): "
            + "; ".join(f"{v} frames " + ", ".join(f"{a}–{b - 1}" for a, b in r)
                        for v, r in missing.items())
            + f"; damaged chunk files moved to {moved}", RuntimeWarning, stacklevel=3)
        return cls(path, group, mode, committed)

    def verify(self) -> VerifyReport:
        """Decode every committed chunk of every frame variable (checksum, decompression,
        shape), check the static variables and the current checkpoint, and report.

        Never changes the store and never takes the writer lock.

        Returns
        -------
        VerifyReport
            ``report.ok`` is False when committed data is damaged; ``str(report)`` says
            exactly what (store path, variable, frame range, chunk file, reason).
        """
        import zarr

        group = zarr.open_group(self.path, mode="r", zarr_format=3)
        attrs = dict(group.attrs)
        committed, lengths, uncommitted, damage, notes = _scan(self.path, group, attrs, "all",
                                                               checkpoint=True)
        for v in _STATIC_VARS:
            try:
                group[v][...]
            except Exception as exc:
                damage.insert(0, Damage(v, None, 0, 0, f"static variable unreadable "
                                        f"({type(exc).__name__})"))
        return VerifyReport(self.path, committed, int(attrs["chunk_frames"]),
                            tuple(lengths), damage, uncommitted, _missing_of(group), notes)

    # ---------------------------------------------------------------- properties
    @property
    def n_frames(self) -> int:
        """Number of frames appended so far, committed plus still buffered."""
        return self._n_committed + self._n_buffered

    @property
    def n_frames_committed(self) -> int:
        """Number of frames safely on disk."""
        return self._n_committed

    @property
    def n_atoms(self) -> int:
        return self._n_atoms

    @property
    def n_rotors(self) -> int:
        return self._n_rotors

    @property
    def chunk_frames(self) -> int:
        return self._chunk

    @property
    def frame_variables(self) -> tuple[str, ...]:
        """Frame variables this store records (including ``time``)."""
        return tuple(self._vars)

    @property
    def attrs(self) -> dict[str, Any]:
        """Copy of the dataset attributes (store-internal bookkeeping included)."""
        return dict(self._group.attrs)

    def update_attrs(self, attrs: Mapping[str, Any]) -> None:
        """Add or change dataset attributes (JSON-serialisable; not the internal ones)."""
        self._require_writable()
        new = {}
        for k, v in attrs.items():
            if k in _INTERNAL_ATTRS:
                raise ValueError(f"attribute {k!r} is managed by the store and cannot be set")
            new[str(k)] = _jsonable(v, f"attrs[{k!r}]")
        self._group.attrs.update(new)

    # ------------------------------------------------------------------ append
    def append(self, frames: Mapping[str, Any]) -> None:
        """Append ``n`` frames; written to disk whenever a chunk is full.

        Parameters
        ----------
        frames : mapping of str to array_like
            ``positions`` (n, N, 3) Å unwrapped, ``cell`` (n, 3, 3) Å, ``time`` (n,) ps,
            ``step`` (n,) int — required; ``velocities`` (n, N, 3) Å/fs and ``forces``
            (n, N, 3) eV/Å — required when the store records them;
            ``potential_energy``, ``kinetic_energy``, ``conserved_energy`` (n,) eV,
            ``temperature`` (n,) K, ``model_deviation`` (n,) eV/Å — optional, stored
            as NaN ("not recorded") when absent.  A single frame may be given without
            the leading axis (positions (N, 3), time scalar, ...).

        Raises
        ------
        ValueError
            Unknown or missing variables, or a shape that does not match (the message
            names the variable and the expected shape).
        """
        self._require_writable()
        unknown = set(frames) - set(self._vars)
        if unknown:
            extra = [u for u in unknown if u in FRAME_VARS]
            hint = (f" ({sorted(extra)} not enabled at create)" if extra else "")
            raise ValueError(f"unknown frame variable(s) {sorted(unknown)}{hint}; "
                             f"this store records {list(self._vars)}")
        needed = [v for v in self._vars if v not in _NAN_IF_MISSING]
        missing = [v for v in needed if v not in frames]
        if missing:
            raise ValueError(f"append: missing required frame variable(s) {missing}")
        sizes = {"atom": self._n_atoms, "xyz": 3, "cell_a": 3}
        n = None
        arrays: dict[str, np.ndarray] = {}
        # a single frame may come without the leading frame axis
        single = np.asarray(frames["positions"]).ndim == 2
        for v in self._vars:
            trail, dtype, _ = FRAME_VARS[v]
            tshape = tuple(sizes[d] for d in trail)
            if v not in frames:
                continue
            a = np.asarray(frames[v])
            if single:
                a = a[np.newaxis]
            if v == "step":
                if a.size and not np.issubdtype(a.dtype, np.integer):
                    if not np.all(np.equal(np.mod(a, 1), 0)):
                        raise ValueError(f"step must be integer-valued, got {a!r}")
                a = a.astype(np.int64)
            else:
                if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
                    raise ValueError(f"{v}: expected a real numeric array, got dtype {a.dtype}")
                a = a.astype(np.float64)
            if a.ndim != 1 + len(tshape) or a.shape[1:] != tshape:
                exp = ("(n, " + ", ".join(map(str, tshape)) + ")") if tshape else "(n,)"
                raise ValueError(f"{v}: expected shape {exp}"
                                 f"{' or ' + str(tshape) + ' for one frame' if tshape else ''}, "
                                 f"got {np.asarray(frames[v]).shape}")
            if n is None:
                n = a.shape[0]
            elif a.shape[0] != n:
                raise ValueError(f"{v}: has {a.shape[0]} frames but positions has {n}")
            arrays[v] = a
        assert n is not None
        for v in self._vars:
            if v not in arrays:
                tshape = tuple(sizes[d] for d in FRAME_VARS[v][0])
                arrays[v] = np.full((n,) + tshape, np.nan)
        if n == 0:
            return
        for v in self._vars:
            self._buffer[v].append(arrays[v])
        self._n_buffered += n
        # write every chunk that is now complete (chunk boundaries are absolute)
        while True:
            room = self._chunk - (self._n_committed % self._chunk)
            if self._n_buffered < room:
                break
            self._write_from_buffer(room)

    def flush(self) -> None:
        """Write all buffered frames now, even if that leaves a partial chunk.

        A later append completes that chunk (rewriting it).
        """
        if self.mode == "r" or self._n_buffered == 0:
            return
        self._write_from_buffer(self._n_buffered)

    def _write_from_buffer(self, k: int) -> None:
        self._require_writable()
        block = {}
        for v in self._vars:
            allv = np.concatenate(self._buffer[v], axis=0)
            block[v] = allv[:k]
            self._buffer[v] = [allv[k:]] if allv.shape[0] > k else []
        self._n_buffered -= k
        n0 = self._n_committed
        n1 = n0 + k
        # 1. data of every frame variable; 2. only then the committed count.
        # Chunks equal to the fill value (all-NaN energies) must still be written:
        # a missing chunk file means damage to the validator.
        import zarr

        with zarr.config.set({"array.write_empty_chunks": True}):
            for v in self._vars:
                arr = self._group[v]
                arr.resize((n1,) + arr.shape[1:])
                arr[n0:n1] = block[v]
        self._group.attrs["n_frames_committed"] = n1
        self._n_committed = n1

    def truncate(self, n_frames: int) -> None:
        """Cut the store to its first ``n_frames`` frames (e.g. to resume from an
        older checkpoint).  Buffered frames are discarded."""
        self._require_writable()
        n_frames = int(n_frames)
        if not 0 <= n_frames <= self._n_committed:
            raise ValueError(f"truncate: n_frames must be in [0, {self._n_committed}], "
                             f"got {n_frames}")
        self._buffer = {v: [] for v in self._vars}
        self._n_buffered = 0
        _truncate_group(self._group, n_frames)
        self._n_committed = n_frames

    def close(self) -> None:
        """Flush buffered frames and release the writer lock (append mode).

        The handle can still be read (:meth:`to_xarray`) but no longer written; closing
        twice is harmless.
        """
        if self.mode == "a" and not self._closed:
            try:
                if self._lock is not None:
                    self.flush()
            finally:
                self._closed = True
                if self._lock is not None and self._lock.owner is not None \
                        and self._lock.owner() is self:
                    self._lock.release()
                self._lock = None

    def __enter__(self) -> TrajectoryStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __len__(self) -> int:
        return self.n_frames

    def __repr__(self) -> str:
        return (f"TrajectoryStore({str(self.path)!r}, mode={self.mode!r}, "
                f"frames={self.n_frames}, atoms={self._n_atoms}, rotors={self._n_rotors})")

    def _require_writable(self) -> None:
        if self.mode != "a":
            raise PermissionError(f"{self.path} is open read-only; use mode='a'")
        if self._closed:
            raise ValueError(f"{self.path} was closed; open it again with "
                             f"TrajectoryStore.open(path, mode='a') to write")
        lk = self._lock
        if lk is None or not lk.held or lk.owner is None or lk.owner() is not self:
            raise StoreLocked(f"this handle of {self.path} no longer owns the writer lock: a "
                              f"newer handle in this process opened the store for writing; "
                              f"write through that one")

    @property
    def is_writer(self) -> bool:
        """Whether this handle currently holds the store's writer lock."""
        lk = self._lock
        return (self.mode == "a" and not self._closed and lk is not None and lk.held
                and lk.owner is not None and lk.owner() is self)

    # ----------------------------------------------------------------- reading
    def to_xarray(self, chunks: Any = None):
        """Lazy (dask-backed) :class:`xarray.Dataset` of the committed frames.

        Buffered, unflushed frames are not included (call :meth:`flush` first).

        Parameters
        ----------
        chunks : mapping, optional
            Dask chunk size per dimension (``{"frame": 200}``; -1 = whole axis);
            default: the store's chunks.

        Returns
        -------
        xarray.Dataset
            Dims ``frame``, ``atom``, ``xyz``, ``rotor``, ``cell_a``, ``pair``; every
            variable carries ``attrs["units"]``.
        """
        import dask.array as da
        import xarray as xr
        import zarr

        # Built from the zarr arrays directly (not xr.open_zarr): a store a writer is
        # extending, or one killed between resizing two variables, has frame arrays of
        # different lengths, which open_zarr refuses; every view is cut to the committed
        # frames anyway.
        ro = self._ro_arrays
        group = self._group if ro is not None else zarr.open_group(self.path, mode="r", zarr_format=3)
        n = self._n_committed
        want = dict(chunks) if isinstance(chunks, Mapping) else {}
        data_vars, coords = {}, {}
        for v in FRAME_VARS:
            if v not in self._vars:
                continue
            g = _GuardedArray(self.path, v, n, z=None if ro is None else ro.get(v))
            dims = ("frame",) + FRAME_VARS[v][0]
            ch = tuple(int(want.get(d, c)) if want.get(d, c) != -1 else s_
                       for d, c, s_ in zip(dims, g._z.chunks, g.shape))
            arr = da.from_array(g, chunks=ch, asarray=False, fancy=False, lock=False,
                                name=False, meta=np.empty((0,) * g.ndim, g.dtype))
            _register_view(arr, g._z, self.path, v)
            attrs = {k: val for k, val in g._z.attrs.items()
                     if k not in ("_FillValue", "coordinates")}
            # the on-disk layout, as xr.open_zarr records it: analyses read verified views of
            # a store straight through zarr in large blocks (rotorlab.analysis._data)
            var = xr.Variable(dims, arr, attrs=attrs,
                              encoding={"chunks": tuple(g._z.chunks),
                                        "preferred_chunks": dict(zip(dims, g._z.chunks))})
            (coords if v == "time" else data_vars)[v] = var
        dims_static = {"species": ("atom",), "mass": ("atom",), "rotor_id": ("atom",),
                       "rotor_kind": ("rotor",), "orientation_atoms": ("rotor", "pair")}
        for v, dims in dims_static.items():
            z = group[v] if ro is None else ro[v]
            vals = z[...] if self._ro_static is None or v not in self._ro_static else self._ro_static[v]
            if v in ("species", "rotor_kind"):
                # small string coordinates as plain numpy unicode arrays (not StringDType)
                vals = np.array([str(x) for x in np.asarray(vals).ravel()], dtype=str)
            attrs = {k: val for k, val in z.attrs.items()
                     if k not in ("_FillValue", "coordinates")}
            coords[v] = xr.Variable(dims, np.asarray(vals), attrs=attrs)
        ds = xr.Dataset(data_vars, coords=coords,
                        attrs={k: v for k, v in group.attrs.items() if k != "coordinates"})
        for k in _INTERNAL_ATTRS:
            if k != "rotorlab_schema":
                ds.attrs.pop(k, None)
        ds.encoding["source"] = str(self.path)
        return ds

    # -------------------------------------------------------------- checkpoint
    @property
    def has_checkpoint(self) -> bool:
        """Whether a complete checkpoint exists."""
        return self._current_checkpoint() is not None

    def _current_checkpoint(self):
        # A reader may look while the writer moves the pointer: the writer keeps the
        # previous version until the next one is current (write_checkpoint), and a
        # reader that still loses the race (pointer read, version removed before it is
        # opened) reads the pointer again.
        for attempt in range(5):
            if "checkpoint" not in set(self._group.group_keys()):
                return None
            cp = self._group["checkpoint"]
            cur = cp.attrs.get("current")
            if cur is None:
                return None
            try:
                with warnings.catch_warnings():
                    # a version the writer is creating right now is listed before its
                    # metadata exists; zarr warns about it
                    warnings.filterwarnings("ignore", "Object at .* is not recognized")
                    if cur in set(cp.group_keys()):
                        return cp[cur]
            except (KeyError, FileNotFoundError):
                pass
            if self.mode == "r" and attempt < 4:
                time.sleep(0.05 * (attempt + 1))
                continue
            return None
        return None

    def write_checkpoint(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
        """Write everything needed to continue the run bit-for-bit.

        Buffered frames are flushed first, so the frames on disk reach at least the
        checkpoint; the number of committed frames is recorded with it
        (:attr:`checkpoint_n_frames`).  The new checkpoint is written to a fresh
        versioned subgroup and becomes current only when the pointer is written last;
        a kill during the write leaves the previous checkpoint valid.

        Parameters
        ----------
        arrays : mapping of str to numpy.ndarray
            E.g. ``positions`` (N, 3) Å, ``velocities`` (N, 3) Å/fs, thermostat state
            arrays.  Stored losslessly with their dtype and shape.  Names must match
            ``[A-Za-z_][A-Za-z0-9_.-]*``.
        meta : mapping
            JSON-serialisable metadata: step, RNG state (e.g.
            ``Generator.bit_generator.state``), thermostat scalars...  Floats
            (including NaN/inf) round-trip exactly.
        """
        import zarr

        self._require_writable()
        for name in arrays:
            if not isinstance(name, str) or not _NAME_RE.match(name):
                raise ValueError(f"checkpoint array name {name!r} is not a valid name")
        arrs = {}
        for k, a in arrays.items():
            a = np.asarray(a)
            if a.dtype == object or a.dtype.kind not in "biufc":
                raise TypeError(f"checkpoint array {k!r}: numeric arrays only, got {a.dtype}")
            arrs[k] = a.copy(order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
        meta_json = json.dumps(_jsonable_meta(meta), allow_nan=True)
        self.flush()
        if "checkpoint" in set(self._group.group_keys()):
            cp = self._group["checkpoint"]
        else:
            cp = self._group.create_group("checkpoint")
        existing = [k for k in cp.group_keys() if re.match(r"^v\d{6,}$", k)]
        nums = [int(k[1:]) for k in existing] + [0]
        name = f"v{max(nums) + 1:06d}"
        # All arrays packed into one uint8 array (raw C-order bytes; dtype, shape and byte
        # offset of each in the attributes): one array file + two metadata files per
        # checkpoint instead of two files per array (25 arrays for an MD run), and a
        # one-directory rmtree of the previous version.
        names = sorted(arrs)
        offsets, pos, parts = {}, 0, []
        for k in names:
            b = arrs[k].tobytes(order="C")
            offsets[k] = pos
            pos += len(b)
            parts.append(b)
        blob = np.frombuffer(b"".join(parts), dtype=np.uint8)
        previous = cp.attrs.get("current")
        sub = cp.create_group(name, attributes={
            "meta_json": meta_json, "format": "packed-1", "arrays": names,
            "shapes": {k: list(arrs[k].shape) for k in names},
            "dtypes": {k: arrs[k].dtype.str for k in names}, "offsets": offsets,
            "n_frames": self._n_committed, "complete": True})
        with zarr.config.set({"array.write_empty_chunks": True}):
            z = sub.create_array("packed", shape=blob.shape, dtype="uint8", chunks=(max(blob.size, 1),),
                                 compressors=_codecs(), fill_value=0)
            if blob.size:
                z[...] = blob
        cp.attrs["current"] = name  # the commit point (written only after the data)
        # Older versions and leftovers of interrupted writes go; the previous version
        # stays until the next checkpoint, so a reader that read the pointer just before
        # it moved still finds the version it points to.
        for k in existing:
            if k not in (name, previous):
                shutil.rmtree(self.path / "checkpoint" / k, ignore_errors=True)

    def read_checkpoint(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Return ``(arrays, meta)`` of the current checkpoint.

        Reads both the packed layout (one uint8 array, current) and the older layout of
        one zarr array per checkpoint array.

        Raises
        ------
        LookupError
            The store has no complete checkpoint.
        ValueError
            The current checkpoint is unreadable (checksum failure).
        """
        sub = self._current_checkpoint()
        if sub is None:
            raise LookupError(f"{self.path} has no checkpoint")
        a = dict(sub.attrs)
        out = {}
        if a.get("format") == "packed-1":
            try:
                raw = np.asarray(sub["packed"][...], dtype=np.uint8).tobytes()
            except Exception as exc:
                raise ValueError(f"{self.path}: checkpoint data is unreadable: {exc}") from exc
            for k in a["arrays"]:
                dt = np.dtype(a["dtypes"][k])
                shape = tuple(a["shapes"][k])
                n = dt.itemsize * math.prod(shape)
                o = int(a["offsets"][k])
                if o + n > len(raw):
                    raise ValueError(f"{self.path}: checkpoint array {k!r} is truncated")
                out[k] = np.frombuffer(raw, dtype=dt, count=math.prod(shape), offset=o).reshape(shape).copy()
            return out, json.loads(a["meta_json"])
        for k in a["arrays"]:
            try:
                out[k] = np.asarray(sub[k][...]).reshape(a["shapes"][k])
            except Exception as exc:
                raise ValueError(f"{self.path}: checkpoint array {k!r} is unreadable: {exc}") from exc
        return out, json.loads(a["meta_json"])

    @property
    def checkpoint_n_frames(self) -> int | None:
        """Committed frame count when the current checkpoint was written (or None)."""
        sub = self._current_checkpoint()
        return None if sub is None else int(sub.attrs["n_frames"])


def _jsonable_meta(value: Any, where: str = "meta") -> Any:
    """Like :func:`_jsonable` but NaN/inf allowed (thermostat scalars may be)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Mapping):
        return {str(k): _jsonable_meta(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable_meta(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{where} is not JSON-serialisable ({type(value).__name__}); "
                    f"checkpoint metadata must be plain JSON")


# ---------------------------------------------------------------- repair

def _detach_previous(superseded: _WriterLock | None, *, keep_buffer: bool) -> None:
    """A newer handle of this process takes over the writer lock: the older handle stops
    being a writer (its buffered frames are flushed first when ``keep_buffer``)."""
    if superseded is None or superseded.owner is None:
        return
    old = superseded.owner()
    if old is None:
        return
    if keep_buffer and old._n_buffered:
        try:
            old.flush()
        except Exception as exc:  # do not block the new writer
            warnings.warn(f"could not flush the older handle of {old.path}: {exc!r}",
                          RuntimeWarning, stacklevel=4)
    old._buffer = {v: [] for v in old._vars}
    old._n_buffered = 0
    old._lock = None
    superseded.owner = None


def _release_all_at_exit() -> None:  # a clean exit leaves no stale lock info behind
    for ref in list(_HELD.values()):
        lk = ref()
        if lk is not None:
            try:
                lk.release()
            except Exception:
                pass


atexit.register(_release_all_at_exit)


def _missing_of(group) -> dict[str, list[list[int]]]:
    out = {}
    keys = set(group.array_keys())
    for v in FRAME_VARS:
        if v in keys:
            m = group[v].attrs.get("missing_frames")
            if m:
                out[v] = [list(map(int, r)) for r in m]
    return out


def _aside_dir(path: Path) -> Path:
    d = path / DAMAGED_GROUP
    d.mkdir(exist_ok=True)
    zj = d / "zarr.json"
    if not zj.is_file():
        zj.write_text(json.dumps(dict(_GROUP_JSON, attributes={
            "note": "chunk files rotorlab found damaged, moved here by a repair (never "
                    "deleted); see README.json in each subfolder"})))
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    sub = d / stamp
    sub.mkdir()
    return sub


def _move_aside(path: Path, damage: Sequence[Damage]) -> str | None:
    """Move the existing chunk files of ``damage`` into ``damaged/<time>/`` (same relative
    paths) with a README.json; returns the folder (relative) or None if nothing moved."""
    files = [d for d in damage if d.file and (path / d.file).is_file()]
    if not files and not damage:
        return None
    sub = _aside_dir(path)
    for d in files:
        dst = sub / d.file
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path / d.file, dst)
    (sub / "README.json").write_text(json.dumps({
        "store": str(path), "moved": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "damage": [dict(d.__dict__, moved=bool(d.file and d in files)) for d in damage]},
        indent=1))
    return str(sub.relative_to(path))


def _even_fill(vals: np.ndarray, known: np.ndarray, integer: bool):
    """Values for the unknown frames if the known ones are evenly spaced, else None."""
    idx = np.flatnonzero(known)
    if idx.size < 2:
        return None
    i0, i1 = idx[0], idx[-1]
    d = (vals[i1] - vals[i0]) / (i1 - i0)
    allidx = np.arange(vals.shape[0])
    if integer:
        if d != int(d):
            return None
        pred = vals[i0] + (allidx - i0) * int(d)
        return pred if np.array_equal(pred[idx], vals[idx]) else None
    pred = vals[i0] + (allidx - i0) * d
    scale = max(abs(vals[i0]), abs(vals[i1]), 1e-300)
    return pred if np.allclose(pred[idx], vals[idx], rtol=1e-9, atol=1e-12 * scale) else None


def _repair(path: Path, group, damage: Sequence[Damage], committed: int, C: int,
            lengths: Mapping[str, int]) -> str:
    """Repair without loss: keep every intact frame; see :meth:`TrajectoryStore.open`."""
    import zarr

    frame_damage = [d for d in damage if d.variable in FRAME_VARS]
    moved = _move_aside(path, frame_damage)
    by_var: dict[str, list[tuple[int, int]]] = {}
    for d in frame_damage:
        by_var.setdefault(d.variable, []).append((d.start, d.stop))
    with zarr.config.set({"array.write_empty_chunks": True}):
        for v in FRAME_VARS:
            if v not in lengths:
                continue
            a = group[v]
            if a.shape[0] != committed:  # drop uncommitted frames / extend short arrays
                a.resize((committed,) + a.shape[1:])
        for v, rngs in by_var.items():
            a = group[v]
            rngs = _merge_ranges(rngs)
            bad = np.zeros(committed, bool)
            for s0, s1 in rngs:
                bad[s0:s1] = True
            fill = None
            if v in ("step", "time"):
                vals = np.zeros(committed, a.dtype)
                for i in range(math.ceil(committed / C)):
                    sl = slice(i * C, min((i + 1) * C, committed))
                    if not bad[sl].any():
                        vals[sl] = a[sl]
                fill = _even_fill(vals, ~bad, v == "step")
            for s0, s1 in rngs:
                if fill is not None:
                    a[s0:s1] = fill[s0:s1]
                else:
                    shape = (s1 - s0,) + tuple(a.shape[1:])
                    a[s0:s1] = (np.full(shape, -1, a.dtype) if a.dtype.kind in "iu"
                                else np.full(shape, np.nan, a.dtype))
            key = "reconstructed_frames" if fill is not None else "missing_frames"
            old = a.attrs.get(key) or []
            a.attrs[key] = _merge_ranges(list(old) + rngs)
    log = list(group.attrs.get("repairs") or [])
    log.append({"time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "damage": [str(d) for d in damage], "moved_to": moved})
    group.attrs["repairs"] = log
    group.attrs["n_frames_committed"] = int(committed)
    return moved


def _truncate_group(group, n: int) -> None:
    keys = set(group.array_keys())
    for v in FRAME_VARS:
        if v in keys:
            a = group[v]
            if a.shape[0] != n:
                a.resize((n,) + a.shape[1:])
    group.attrs["n_frames_committed"] = int(n)


#: dask name -> (zarr array, store path, variable, frames) of every frame variable that
#: :meth:`TrajectoryStore.to_xarray` built. ``name=False`` gives each dask array a unique
#: random name and every dask operation (slicing, arithmetic, rechunking) a new one, so a
#: variable whose dask name is listed here *is* the store's committed frames, unmodified.
#: Bounded: the oldest entries go first (a forgotten entry only costs a verified read).
_VIEWS: dict = {}
_VIEWS_MAX = 1024


def _register_view(arr, z, path, var) -> None:
    if len(_VIEWS) >= _VIEWS_MAX:
        for k in list(_VIEWS)[: _VIEWS_MAX // 4]:
            del _VIEWS[k]
    _VIEWS[arr.name] = (z, str(path), var, int(arr.shape[0]))


def store_view(data):
    """``(zarr_array, store_path, variable)`` when ``data`` is a dask array exactly as
    :meth:`TrajectoryStore.to_xarray` built it (same graph, same frames), else None.

    Analyses use it to read such a view with direct, large-block chunk reads without first
    re-verifying the view against the store (see ``rotorlab.analysis._data``).
    """
    name = getattr(data, "name", None)
    hit = _VIEWS.get(name) if isinstance(name, str) else None
    if hit is None or tuple(getattr(data, "shape", ()))[:1] != (hit[3],):
        return None
    return hit[0], hit[1], hit[2]


class _GuardedArray:
    """Array-like over a zarr frame array whose read errors name store, variable and
    frames (a checksum failure deep inside dask otherwise names neither)."""

    def __init__(self, path: Path, name: str, n: int, z=None):
        import zarr

        self.path, self.name = Path(path), name
        self._z = z if z is not None else zarr.open_array(self.path / name, mode="r", zarr_format=3)
        self.shape = (int(n),) + tuple(self._z.shape[1:])
        self.dtype = self._z.dtype
        self.ndim = len(self.shape)
        self.chunk = int(self._z.chunks[0])
        # the store writes every chunk (empty ones too), so within the committed frames a
        # missing chunk file is damage; zarr alone would return its fill value silently
        m = self._z.metadata
        self._default_keys = (getattr(m.chunk_key_encoding, "name", None) == "default"
                              and getattr(m.chunk_key_encoding, "separator", None) == "/"
                              and tuple(self._z.chunks[1:]) == tuple(self._z.shape[1:]))

    def _missing_chunk(self, k0):
        if not self._default_keys or not isinstance(k0, slice):
            return None
        a, b, _ = k0.indices(self.shape[0])
        tail = ["0"] * (self.ndim - 1)
        for i in range(a // self.chunk, (b - 1) // self.chunk + 1 if b > a else 0):
            if not os.path.isfile(os.path.join(self.path, self.name, "c", str(i), *tail)):
                return i
        return None

    def __getitem__(self, key):
        k0 = key[0] if isinstance(key, tuple) and key else key
        try:
            i = self._missing_chunk(k0)
            if i is not None:
                raise FileNotFoundError(f"chunk {i} of {self.name!r} is missing")
            return np.asarray(self._z[key])
        except Exception as exc:
            k0 = key[0] if isinstance(key, tuple) and key else key
            if isinstance(k0, slice):
                a, b, _ = k0.indices(self.shape[0])
                fr = f"frames {a}–{b - 1}"
                ch = f" (chunk {a // self.chunk})" if b - a <= self.chunk else ""
            else:
                fr, ch = "some frames", ""
            raise StoreDamaged(f"store {self.path}: variable {self.name!r}, {fr}{ch} cannot be "
                               f"read ({type(exc).__name__}: {str(exc)[:160]}); run `rotorlab "
                               f"info --verify {self.path}` to list the damage, and "
                               f"{_REPAIR_HINT}") from exc


def open_store(path, *, verify: str = "last"):
    """Open a store read-only as a lazy :class:`xarray.Dataset` after validation.

    Never takes or waits on the writer lock (a live run's store can be read).
    Uncommitted frames and damage found are cut from the returned view with a
    :class:`RuntimeWarning` (the files are left alone; see ``TrajectoryStore.open(path,
    "a", repair=True)``).  A damaged chunk found only while reading raises
    :class:`StoreDamaged` naming store, variable and frames.

    Parameters
    ----------
    path : str or path-like
        Directory of the store.
    verify : {"last", "all"}
        See :meth:`TrajectoryStore.open`.

    Returns
    -------
    xarray.Dataset
    """
    return TrajectoryStore.open(path, "r", verify=verify).to_xarray()
