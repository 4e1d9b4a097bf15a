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
moment leaves each file either old or new.  On :meth:`TrajectoryStore.open` the
store is validated: frame arrays longer than the committed count, arrays of
different lengths, missing chunk files and chunks that fail to decode (every chunk
carries a CRC32C checksum) are detected and every frame variable is cut back to the
last complete, consistent chunk, with a :class:`RuntimeWarning` saying how many
frames were dropped.  In ``mode="a"`` the repair is written to disk; in ``mode="r"``
only the returned view is cut (a concurrent writer's store is never modified by a
reader).

Checkpoints live in the ``checkpoint`` subgroup as versioned subgroups
(``checkpoint/v000001``...), each holding all checkpoint arrays packed into one
checksummed uint8 array with their dtypes, shapes and offsets in its attributes; the
pointer ``checkpoint.attrs["current"]`` is written last, so a kill during a checkpoint
write leaves the previous checkpoint valid.
No pickle is used anywhere; metadata is JSON.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import warnings
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["TrajectoryStore", "open_store", "SCHEMA", "FRAME_VARS", "REQUIRED_ATTRS"]

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

    def __init__(self, path: Path, group, mode: str, n_valid: int):
        self.path = Path(path)
        self.mode = mode
        self._group = group
        a = dict(group.attrs)
        self._chunk = int(a["chunk_frames"])
        self._n_atoms = int(a["n_atoms"])
        self._n_rotors = int(a["n_rotors"])
        self._n_committed = int(n_valid)
        self._vars = [v for v in FRAME_VARS if v in set(group.array_keys())]
        self._buffer: dict[str, list[np.ndarray]] = {v: [] for v in self._vars}
        self._n_buffered = 0

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
            Replace an existing directory at ``path``.  Without it an existing path
            raises :class:`FileExistsError`.

        Returns
        -------
        TrajectoryStore
            Opened in append mode, with zero frames.
        """
        import xarray as xr
        import zarr

        import rotorlab

        _limit_zarr_threads()
        path = Path(path)
        if path.exists():
            if not overwrite:
                raise FileExistsError(f"{path} already exists (pass overwrite=True to replace it)")
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        chunk_frames = int(chunk_frames)
        if chunk_frames < 1:
            raise ValueError(f"chunk_frames must be >= 1, got {chunk_frames}")

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
        ds.to_zarr(path, mode="w", zarr_format=3, consolidated=False, encoding=encoding)
        group = zarr.open_group(path, mode="a", zarr_format=3)
        return cls(path, group, "a", 0)

    # -------------------------------------------------------------------- open
    @classmethod
    def open(cls, path, mode: str = "r", *, verify: str = "last") -> TrajectoryStore:
        """Open an existing store, validating it and cutting back a damaged tail.

        Parameters
        ----------
        path : str or path-like
            Directory of the store.
        mode : {"r", "a"}
            ``"r"``: read only; a damaged tail is cut from the view only.
            ``"a"``: append; a damaged tail is removed on disk and appending resumes
            after the last complete, consistent chunk.
        verify : {"last", "all"}
            Which chunks are decoded to check their checksums: only the last
            committed chunk of every frame variable (cheap; catches a chunk torn by
            a crash) or all chunks.  The presence of every chunk file is always
            checked.

        Returns
        -------
        TrajectoryStore

        Raises
        ------
        FileNotFoundError
            ``path`` does not exist.
        ValueError
            ``path`` is not a rotorlab trajectory store, or lacks a schema variable.

        Warns
        -----
        RuntimeWarning
            When frames are dropped, with their number.
        """
        import zarr

        if mode not in ("r", "a"):
            raise ValueError(f"mode must be 'r' or 'a', got {mode!r}")
        _limit_zarr_threads()
        if verify not in ("last", "all"):
            raise ValueError(f"verify must be 'last' or 'all', got {verify!r}")
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no trajectory store at {path}")
        if not path.is_dir() or not (path / "zarr.json").is_file():
            raise ValueError(f"{path} is not a rotorlab trajectory store (no zarr group)")
        try:
            group = zarr.open_group(path, mode="r" if mode == "r" else "a", zarr_format=3)
        except Exception as exc:  # corrupt group metadata
            raise ValueError(f"{path} is not a readable zarr v3 group: {exc}") from exc
        attrs = dict(group.attrs)
        if attrs.get("rotorlab_schema") != SCHEMA:
            raise ValueError(f"{path} is not a rotorlab trajectory store "
                             f"(rotorlab_schema={attrs.get('rotorlab_schema')!r}, "
                             f"expected {SCHEMA!r})")
        keys = set(group.array_keys())
        missing = [v for v in _ALWAYS + _STATIC_VARS if v not in keys]
        if missing:
            raise ValueError(f"{path} is damaged: missing variable(s) {missing}")
        for v in _STATIC_VARS:
            try:
                group[v][...]
            except Exception as exc:
                raise ValueError(f"{path}: static variable {v!r} is unreadable ({exc}); "
                                 f"the store cannot be repaired") from exc

        n_valid, report = _validate(path, group, attrs, verify)
        if report is not None:
            dropped, detail = report
            action = ("cut back on disk" if mode == "a"
                      else "cut from this read-only view only (disk unchanged)")
            warnings.warn(
                f"trajectory store {path}: dropped {dropped} frame(s) after the last "
                f"complete, consistent chunk; keeping {n_valid} frame(s) ({detail}); {action}",
                RuntimeWarning, stacklevel=2)
            if mode == "a":
                _truncate_group(group, n_valid)
        if mode == "a":
            for p in path.rglob("*.partial"):  # leftovers of interrupted atomic writes
                p.unlink(missing_ok=True)
        return cls(path, group, mode, n_valid)

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
        """Flush buffered frames (append mode)."""
        self.flush()

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

    # ----------------------------------------------------------------- reading
    def to_xarray(self, chunks: Any = None):
        """Lazy (dask-backed) :class:`xarray.Dataset` of the committed frames.

        Buffered, unflushed frames are not included (call :meth:`flush` first).

        Parameters
        ----------
        chunks : optional
            Passed to :func:`xarray.open_zarr`; default: the store's chunks.

        Returns
        -------
        xarray.Dataset
            Dims ``frame``, ``atom``, ``xyz``, ``rotor``, ``cell_a``, ``pair``; every
            variable carries ``attrs["units"]``.
        """
        import xarray as xr

        kw = {} if chunks is None else {"chunks": chunks}
        ds = xr.open_zarr(self.path, consolidated=False, zarr_format=3, **kw)
        ds = ds.isel(frame=slice(0, self._n_committed))
        # small string coordinates as plain numpy unicode arrays (not StringDType)
        for c in ("species", "rotor_kind"):
            ds[c] = ds[c].copy(data=np.array([str(x) for x in ds[c].values], dtype=str))
        for k in _INTERNAL_ATTRS:
            if k != "rotorlab_schema":
                ds.attrs.pop(k, None)
        return ds

    # -------------------------------------------------------------- checkpoint
    @property
    def has_checkpoint(self) -> bool:
        """Whether a complete checkpoint exists."""
        return self._current_checkpoint() is not None

    def _current_checkpoint(self):
        if "checkpoint" not in set(self._group.group_keys()):
            return None
        cp = self._group["checkpoint"]
        cur = cp.attrs.get("current")
        if cur is None or cur not in set(cp.group_keys()):
            return None
        return cp[cur]

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
        for k in existing:  # older versions and leftovers of interrupted writes
            if k != name:
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


# ---------------------------------------------------------------- validation
def _chunk_file(path: Path, name: str, ndim: int, i: int) -> Path:
    return path.joinpath(name, "c", str(i), *(["0"] * (ndim - 1)))


def _validate(path: Path, group, attrs: dict, verify: str) -> tuple[int, tuple[int, str] | None]:
    """Return (number of valid frames, None or (dropped, explanation))."""
    C = int(attrs["chunk_frames"])
    committed = attrs.get("n_frames_committed")
    names = [v for v in FRAME_VARS if v in set(group.array_keys())]
    arrays = {v: group[v] for v in names}
    lengths = {v: int(a.shape[0]) for v, a in arrays.items()}
    reasons = []
    if not isinstance(committed, int) or committed < 0:
        reasons.append(f"committed frame count missing/invalid ({committed!r})")
        committed = min(lengths.values())
    n = min(committed, min(lengths.values()))
    if len(set(lengths.values())) > 1:
        reasons.append("frame variables disagree in length: " +
                       ", ".join(f"{v}={lengths[v]}" for v in names))
    elif max(lengths.values()) > committed:
        reasons.append(f"arrays hold {max(lengths.values())} frames but only {committed} "
                       f"were committed (interrupted write)")
    if committed > n:
        reasons.append(f"{committed} frames committed but arrays hold only {n}")
    # every chunk file needed for frames [0, n) must exist (a missing chunk would
    # otherwise read back silently as fill values)
    n_chunks = math.ceil(n / C)
    for v, a in arrays.items():
        for i in range(n_chunks):
            if not _chunk_file(path, v, a.ndim, i).is_file():
                reasons.append(f"chunk {i} of {v!r} is missing")
                n = i * C
                n_chunks = i
                break
    # decode chunks (checksum + decompression) — last one, or all
    to_check = range(n_chunks) if verify == "all" else range(max(n_chunks - 1, 0), n_chunks)
    bad = None
    for i in to_check:
        for v, a in arrays.items():
            try:
                a[i * C:min((i + 1) * C, n)]
            except Exception as exc:
                reasons.append(f"chunk {i} of {v!r} is corrupt ({type(exc).__name__}: {exc})")
                bad = i
                break
        if bad is not None:
            n = bad * C
            break
    # in "last" mode a corrupt last chunk moves the check to the previous one
    while verify == "last" and bad is not None and bad > 0:
        i, bad = bad - 1, None
        for v, a in arrays.items():
            try:
                a[i * C:(i + 1) * C]
            except Exception as exc:
                reasons.append(f"chunk {i} of {v!r} is corrupt ({type(exc).__name__}: {exc})")
                bad = i
                n = i * C
                break
    raw = attrs.get("n_frames_committed")
    total = max(max(lengths.values()), raw if isinstance(raw, int) else 0)
    if not reasons and n == total:
        return n, None
    return n, (total - n, "; ".join(reasons))


def _truncate_group(group, n: int) -> None:
    for v in FRAME_VARS:
        if v in set(group.array_keys()):
            a = group[v]
            if a.shape[0] != n:
                a.resize((n,) + a.shape[1:])
    group.attrs["n_frames_committed"] = int(n)


def open_store(path, *, verify: str = "last"):
    """Open a store read-only as a lazy :class:`xarray.Dataset` after validation.

    A damaged tail is cut from the returned view with a :class:`RuntimeWarning`
    (the files are left alone; open with ``TrajectoryStore.open(path, "a")`` to
    repair on disk).

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
