"""Access helpers for trajectory Datasets (DESIGN §3), chunk by chunk over ``frame``.

Nothing here loads a whole variable unless asked: every reader slices the (possibly
dask-backed) Dataset with ``isel`` and materialises only the requested block, so a store
larger than memory can be analysed with bounded peak memory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import numpy as np
import xarray as xr

from rotorlab.store.chunks import LocalChunks

#: Default memory budget (bytes) for one block of data materialised by an analysis.
DEFAULT_MEMORY = 256 * 2**20

#: Modes that freeze rotor translation (the anion frame is pinned: no COM drift to remove).
#: RVC (rigid translation) leaves translation free, so total momentum is conserved there.
T_CONSTRAINED_MODES = frozenset({"TC", "RTC", "RTVC"})


def _require(ds: xr.Dataset, names: Sequence[str], what: str) -> None:
    missing = [n for n in names if n not in ds.variables]
    if missing:
        raise ValueError(
            f"{what} needs variable(s) {missing} in the trajectory, but the dataset only has "
            f"{sorted(map(str, ds.data_vars))}"
        )


def n_frames(ds: xr.Dataset) -> int:
    return int(ds.sizes["frame"])


def frame_times_ps(ds: xr.Dataset) -> np.ndarray:
    """Frame times in ps, shape (n_frames,)."""
    if "time" in ds.coords or "time" in ds.variables:
        t = np.asarray(values(ds, "time"), dtype=float)
        units = str(ds["time"].attrs.get("units", "ps")).strip().lower()
        if units in ("fs", "femtosecond", "femtoseconds"):
            t = t / 1000.0
        return t
    if ds.attrs.get("timestep") is not None:
        return np.arange(n_frames(ds)) * float(ds.attrs["timestep"]) / 1000.0
    raise ValueError("dataset has neither a 'time' coordinate nor a 'timestep' attribute")


def frame_dt_ps(ds: xr.Dataset) -> float:
    """Uniform spacing between frames in ps (raises if frames are not evenly spaced)."""
    t = frame_times_ps(ds)
    if t.size < 2:
        raise ValueError("need at least 2 frames to define a frame spacing")
    d = np.diff(t)
    dt = float(np.median(d))
    if dt <= 0 or np.max(np.abs(d - dt)) > 1e-6 * max(dt, 1e-12) + 1e-9:
        raise ValueError("frames are not evenly spaced in time; correlation analyses need a uniform grid")
    return dt


def frame_chunks(ds: xr.Dataset, bytes_per_frame: float, memory: float = DEFAULT_MEMORY,
                 start: int = 0, stop: int | None = None) -> Iterator[slice]:
    """Yield ``slice`` objects over ``frame`` so one block fits in ``memory`` bytes.

    Aligns to the dask chunking of ``positions`` when the Dataset is chunked.
    """
    nf = n_frames(ds) if stop is None else stop
    per = max(1, int(memory // max(bytes_per_frame, 1.0)))
    chunks = None
    if "positions" in ds and ds["positions"].chunks is not None:
        chunks = ds["positions"].chunks[ds["positions"].dims.index("frame")]
    if chunks:
        c0 = int(chunks[0])
        if per >= c0:
            per = (per // c0) * c0
    for a in range(start, nf, per):
        yield slice(a, min(a + per, nf))


def cells(ds: xr.Dataset, frames: slice | None = None) -> np.ndarray:
    """Row lattice vectors in Å, shape (n, 3, 3) for the frames in ``frames``."""
    _require(ds, ["cell"], "this analysis")
    c = ds["cell"]
    nsel = n_frames(ds) if frames is None else len(range(*frames.indices(n_frames(ds))))
    if "frame" in c.dims:
        if frames is None:
            arr = np.asarray(values(ds, "cell"), dtype=float)
        elif c.chunks is not None and frames.step in (None, 1):
            arr = read_block(ds, "cell", frames)
        else:
            arr = np.asarray(c.isel(frame=frames).values, dtype=float)
    else:
        arr = np.broadcast_to(np.asarray(c.values, dtype=float), (nsel, 3, 3)).copy()
    if arr.shape[1:] != (3, 3):
        raise ValueError(f"cell must be (frame, 3, 3), got {arr.shape}")
    return arr


def volumes(ds: xr.Dataset) -> np.ndarray:
    """Cell volumes (Å³) per frame."""
    return np.abs(np.linalg.det(cells(ds)))


def species(ds: xr.Dataset) -> np.ndarray:
    return np.asarray(ds["species"].values).astype(str)


def masses(ds: xr.Dataset) -> np.ndarray:
    return np.asarray(ds["mass"].values, dtype=float)


def select_species(ds: xr.Dataset, sp: str | Sequence[str] | None) -> np.ndarray:
    """Indices of atoms with species in ``sp`` (``None`` → all). Raises if none match."""
    spec = species(ds)
    if sp is None:
        return np.arange(spec.size)
    wanted = [sp] if isinstance(sp, str) else list(sp)
    idx = np.flatnonzero(np.isin(spec, wanted))
    if idx.size == 0:
        raise ValueError(
            f"species {wanted} not present in the trajectory (species present: "
            f"{sorted(set(spec.tolist()))})"
        )
    return idx


def mobile_indices(ds: xr.Dataset, species_: str | None = None) -> np.ndarray:
    sp = species_ or ds.attrs.get("mobile_species")
    if sp is None:
        raise ValueError("no mobile species given and dataset has no 'mobile_species' attribute")
    return select_species(ds, sp)


_ZARR_CACHE: dict = {}
#: id(zarr array) -> (array, LocalChunks or None): the direct-read decision per opened array
_LOCAL_CHUNKS: dict = {}


def _elem(da: xr.DataArray, f: int) -> np.ndarray:
    return np.asarray(da.data[f].compute(scheduler="synchronous"))


def _frame_offset(ds: xr.Dataset, grp) -> int | None:
    """Offset of frame 0 of ``ds`` in the store group ``grp`` (its ``time`` array), verified.

    ``ds["time"]`` must be a contiguous run of the store's time array: its first element
    locates the run, and the last element and a few interior ones (one chunk read each)
    must match the store's at the same offsets; the store's times must increase strictly.
    """
    if "time" not in ds.variables or "time" not in grp or ds["time"].dims != ("frame",):
        return None
    nf = int(ds.sizes["frame"])
    t_st = np.asarray(grp["time"][:], dtype=float)
    if nf == 0 or nf > t_st.size or not np.all(np.diff(t_st) > 0):
        return None
    tda = ds["time"]
    lazy = tda.chunks is not None
    get = (lambda f: float(_elem(tda, f))) if lazy else (lambda f: float(tda.values[f]))
    hit = np.flatnonzero(t_st == get(0))
    if hit.size != 1:
        return None
    off = int(hit[0])
    if off + nf > t_st.size:
        return None
    if lazy:
        probe = sorted({nf - 1, nf // 2})
        ok = all(t_st[off + f] == get(f) for f in probe)
    else:
        ok = np.array_equal(t_st[off:off + nf], np.asarray(tda.values, dtype=float))
    return off if ok else None


def _zarr_source(ds: xr.Dataset, var: str):
    """``(zarr_array, frame_offset)`` when ``ds[var]`` is an unmodified view of a zarr store, else None.

    A lazily opened store (:func:`rotorlab.store.open_store`, :func:`xarray.open_zarr`) is
    then read with plain zarr slicing in large contiguous blocks instead of one dask graph
    per chunk.  The mapping is verified, never assumed: the variable must still carry its
    on-disk encoding, its non-frame shape must equal the array's, the frames must be a
    contiguous run of the store's (located through the ``time`` coordinate, so a frame
    slice of a store is found at its offset), and the first and last frames are compared
    element by element with the dask view.  Anything else (computed variables, atom
    subsets, reordered frames) returns None and the caller falls back to dask.
    """
    da = ds[var]
    src = ds.encoding.get("source")
    if src is None or da.chunks is None or "preferred_chunks" not in da.encoding or not da.dims \
            or da.dims[0] != "frame":
        return None
    key = (str(src), var, getattr(da.data, "name", None), int(da.shape[0]))
    hit = _ZARR_CACHE.get(key)
    if hit is not None:
        return hit
    from rotorlab.store.trajectory import store_view

    trusted = store_view(da.data)
    if trusted is not None and trusted[2] == var and os.path.abspath(trusted[1]) == os.path.abspath(str(src)) \
            and tuple(trusted[0].shape[1:]) == tuple(da.shape[1:]):
        # the very dask array the store built for this variable: frames 0..n-1 of it
        return trusted[0], 0
    try:
        import zarr

        grp = zarr.open_group(str(src), mode="r")
        arr = grp[var]
        nf = int(da.shape[0])
        if tuple(arr.shape[1:]) != tuple(da.shape[1:]) or arr.shape[0] < nf or nf == 0:
            return None
        tkey = (str(src), "#frame-offset", getattr(ds["time"].data, "name", None) if "time" in ds.variables else None, nf)
        off = _ZARR_CACHE.get(tkey)
        if off is None:
            off = _frame_offset(ds, grp)
            if off is None:
                return None
            _ZARR_CACHE[tkey] = off
        if var != "time":
            for f in (0, nf - 1):
                if not np.array_equal(np.asarray(arr[off + f]), _elem(da, f), equal_nan=True):
                    return None
    except Exception:
        return None
    if len(_ZARR_CACHE) > 256:
        _ZARR_CACHE.clear()
    _ZARR_CACHE[key] = (arr, off)
    return arr, off


def values(ds: xr.Dataset, var: str) -> np.ndarray:
    """Whole variable as a NumPy array (small per-frame variables: time, cell, temperature).

    Read with one zarr call when ``ds[var]`` is a verified view of a store (:func:`_zarr_source`),
    otherwise through xarray/dask.
    """
    da = ds[var]
    if da.chunks is not None:
        z = _zarr_source(ds, var)
        if z is not None:
            try:
                return _values_direct(ds, var, da, *z)
            except Exception:
                pass  # a damaged chunk: the guarded dask path below names store and variable
    return np.asarray(da.values)


def _values_direct(ds, var, da, arr, off):
    if da.nbytes > _SMALL_BYTES:
        return np.asarray(arr[off:off + da.shape[0]])
    # small per-frame variables are read once per store version (many small chunks
    # cost ~1 ms each); the key holds the array metadata's mtime, which every write,
    # append or rewrite of the array changes
    key = ("#values", str(ds.encoding.get("source")), var, off, int(da.shape[0]),
           _meta_mtime(ds, var))
    hit = _ZARR_CACHE.get(key)
    if hit is None:
        hit = np.asarray(arr[off:off + da.shape[0]])
        hit.flags.writeable = False
        _ZARR_CACHE[key] = hit
    return hit.copy()


_SMALL_BYTES = 4 * 2**20


def _meta_mtime(ds: xr.Dataset, var: str):
    src = str(ds.encoding.get("source"))
    for name in ("zarr.json", ".zarray"):
        try:
            return os.stat(os.path.join(src, var, name)).st_mtime_ns
        except OSError:
            continue
    return None


#: decoded bytes of store chunks one zarr call may hold at once (zarr decodes every chunk
#: a selection touches before copying it out, so a large block is read in pieces)
ZARR_DECODE_BYTES = 32 * 2**20


def _read_zarr_block(arr, a: int, b: int, atoms: np.ndarray | None) -> np.ndarray:
    """``arr[a:b]`` (atoms selected on axis 1) as a new float64 array, in pieces of whole chunks."""
    direct = _LOCAL_CHUNKS.get(id(arr), (None, False))
    if direct[0] is not arr:
        direct = (arr, LocalChunks.for_array(arr))
        if len(_LOCAL_CHUNKS) > 256:
            _LOCAL_CHUNKS.clear()
        _LOCAL_CHUNKS[id(arr)] = direct
    if direct[1] is not None:
        width = (arr.shape[1:] if atoms is None
                 else (np.asarray(atoms).size,) + tuple(arr.shape[2:]))
        out = np.empty((b - a,) + tuple(width), dtype=np.float64)
        if out.size:
            sel = None
            if atoms is not None:
                atoms = np.asarray(atoms, dtype=np.int64)
                sel = (slice(int(atoms[0]), int(atoms[-1]) + 1)
                       if atoms.size and np.all(np.diff(atoms) == 1) else atoms)
            direct[1].read(out, a, b, sel)
        return out
    shape1 = tuple(arr.shape[1:])
    if atoms is None:
        sel, width = slice(None), shape1
    else:
        atoms = np.asarray(atoms, dtype=np.int64)
        width = (atoms.size,) + shape1[1:]
    out = np.empty((b - a,) + width, dtype=np.float64)
    if out.size == 0:
        return out
    cf = int(arr.chunks[0])
    full = cf * int(np.prod(shape1)) * arr.dtype.itemsize
    step = max(1, ZARR_DECODE_BYTES // max(full, 1)) * cf
    lo_atom = None
    if atoms is not None and atoms.size:
        if np.all(np.diff(atoms) == 1):
            sel = slice(int(atoms[0]), int(atoms[-1]) + 1)
        elif int(atoms.max()) - int(atoms.min()) + 1 <= 4 * atoms.size:
            lo_atom = int(atoms.min())
            sel = slice(lo_atom, int(atoms.max()) + 1)
        else:
            sel = None
    t = a
    while t < b:
        e = min(b, (t // cf) * cf + step)  # chunk-aligned pieces
        if atoms is None or (atoms is not None and sel is not None and lo_atom is None):
            out[t - a:e - a] = arr[t:e] if atoms is None else arr[t:e, sel]
        elif sel is not None:
            out[t - a:e - a] = np.asarray(arr[t:e, sel])[:, atoms - lo_atom]
        else:
            out[t - a:e - a] = arr.oindex[t:e, atoms]
        t = e
    return out


def read_block(ds: xr.Dataset, var: str, frames: slice, atoms: np.ndarray | None = None) -> np.ndarray:
    """Materialise ``ds[var]`` for a frame slice (and atom subset) as float64 (n, na, 3).

    The result is always a new array owned by the caller (never a view of ``ds``).

    A variable that is an unmodified view of a zarr store (:func:`_zarr_source`) is read
    with one zarr slice for the whole block (decoded straight into the output).  Any other
    dask-backed variable is filled one store chunk (along ``frame``) at a time into a
    preallocated array, so the transient memory is the output plus one decoded chunk.
    """
    da = ds[var]
    f0, f1, step = frames.indices(n_frames(ds))
    if da.chunks is not None and step == 1:
        z = _zarr_source(ds, var)
        if z is not None:
            arr, off = z
            try:
                return _read_zarr_block(arr, off + f0, off + f1, atoms)
            except Exception:
                pass  # a damaged chunk: the guarded dask path below names store and variable
    if atoms is not None:
        # contiguous ranges select cheaply; fancy indexing otherwise
        if atoms.size and np.all(np.diff(atoms) == 1):
            da = da.isel(atom=slice(int(atoms[0]), int(atoms[-1]) + 1))
        else:
            da = da.isel(atom=atoms)
    if da.chunks is None:
        # always a copy: callers modify blocks in place (drift removal, fractional
        # coordinates), which must never write through to the caller's Dataset
        return np.array(da.isel(frame=frames).values, dtype=np.float64, copy=True)
    if step != 1:
        return np.asarray(da.isel(frame=frames).data.compute(scheduler="synchronous"), dtype=np.float64)
    bounds = np.cumsum((0,) + tuple(da.chunks[da.dims.index("frame")]))
    out = np.empty((max(f1 - f0, 0),) + da.shape[1:], dtype=np.float64)
    a = f0
    while a < f1:
        b = min(f1, int(bounds[np.searchsorted(bounds, a, side="right")]))
        # synchronous scheduler: one chunk decoded at a time
        out[a - f0:b - f0] = da.isel(frame=slice(a, b)).data.compute(scheduler="synchronous")
        a = b
    return out


def read_series(ds: xr.Dataset, var: str, atoms: np.ndarray, memory: float = DEFAULT_MEMORY) -> np.ndarray:
    """Full time series of ``var`` for a few atoms, shape (n_frames, len(atoms), 3).

    Reads frame block by frame block (bounded by ``memory``), so only the output is resident.
    """
    _require(ds, [var], f"reading '{var}'")
    nf = n_frames(ds)
    out = np.empty((nf, atoms.size, 3))
    natom_read = atoms.size
    for fs in frame_chunks(ds, natom_read * 3 * 8 * 2, memory):
        out[fs] = read_block(ds, var, fs, atoms)
    return out


def stage_series(ds: xr.Dataset, var: str, atoms: np.ndarray, memory: float = DEFAULT_MEMORY,
                 com: np.ndarray | None = None) -> np.ndarray:
    """Time series of ``var`` for ``atoms`` in atom-major layout (n_atoms_sel, n_frames, 3).

    One pass over the store, frame block by frame block.  If the result exceeds half of
    ``memory`` it is staged in a temporary file (:class:`FileSeries`, atom-major, so a later
    batch of atoms is one contiguous read) instead of RAM.  ``com`` (n_frames, 3)
    is subtracted when given (drift removal).
    """
    _require(ds, [var], f"reading '{var}'")
    nf = n_frames(ds)
    shape = (atoms.size, nf, 3)
    nbytes = 8 * atoms.size * nf * 3
    out = FileSeries(shape) if nbytes > 0.5 * memory else np.empty(shape)
    for fs in frame_chunks(ds, max(atoms.size, 1) * 3 * 8 * 3, 0.25 * memory):
        x = read_block(ds, var, fs, atoms)
        if com is not None:
            x -= com[fs][:, None, :]
        out[:, fs] = x.transpose(1, 0, 2)
    return out


class FileSeries:
    """Atom-major (n_atoms, n_frames, 3) float64 array in an anonymous temporary file.

    Written and read with ``pwrite``/``pread`` (no memory map), so staged data lives in the
    OS page cache, not in the process's resident memory.  Supports ``a[i0:i1, f0:f1]`` reads
    and ``a[:, f0:f1] = block`` writes only.
    """

    def __init__(self, shape):
        import tempfile

        self.shape = tuple(shape)
        self._fh = tempfile.TemporaryFile(prefix="rotorlab_stage_")
        self._fd = self._fh.fileno()
        os.ftruncate(self._fd, 8 * int(np.prod(self.shape)))

    def _off(self, a, f):
        return 8 * 3 * (a * self.shape[1] + f)

    def __setitem__(self, key, value):
        sa, sf = key
        if sa != slice(None):
            raise IndexError("FileSeries writes whole atom ranges only")
        f0, f1, _ = sf.indices(self.shape[1])
        v = np.ascontiguousarray(value, dtype=np.float64)
        for a in range(self.shape[0]):
            os.pwrite(self._fd, v[a].tobytes(), self._off(a, f0))

    def __getitem__(self, key):
        sa, sf = key
        a0, a1, _ = sa.indices(self.shape[0])
        f0, f1, _ = sf.indices(self.shape[1])
        out = np.empty((a1 - a0, f1 - f0, 3))
        if f0 == 0 and f1 == self.shape[1]:
            buf = os.pread(self._fd, out.nbytes, self._off(a0, 0))
            out[...] = np.frombuffer(buf, dtype=np.float64).reshape(out.shape)
        else:
            n = 24 * (f1 - f0)
            for k, a in enumerate(range(a0, a1)):
                out[k] = np.frombuffer(os.pread(self._fd, n, self._off(a, f0)), dtype=np.float64).reshape(-1, 3)
        return out


def atom_batches(n_atoms_sel: int, n_frames_: int, memory: float, copies: int = 6) -> list[slice]:
    """Split a selection of atoms so (n_frames, batch, 3) float64 × ``copies`` fits ``memory``."""
    per_atom = n_frames_ * 3 * 8 * copies
    b = max(1, int(memory // max(per_atom, 1)))
    return [slice(a, min(a + b, n_atoms_sel)) for a in range(0, n_atoms_sel, b)]


def system_com(ds: xr.Dataset, memory: float = DEFAULT_MEMORY) -> np.ndarray:
    """Mass-weighted centre of mass of all atoms per frame from unwrapped positions, (n_frames, 3) Å."""
    _require(ds, ["positions"], "centre-of-mass drift removal")
    m = masses(ds)
    M = m.sum()
    nat = m.size
    out = np.empty((n_frames(ds), 3))
    for fs in frame_chunks(ds, nat * 3 * 8 * 2, memory):
        x = read_block(ds, "positions", fs)
        out[fs] = np.einsum("fai,a->fi", x, m) / M
    return out


def drift_mode(ds: xr.Dataset) -> str:
    """'com' for UC/RC/RVC (remove system COM), 'none' for translation-constrained modes.

    A store written by :class:`rotorlab.Simulation` records ``com_removed`` (whether the
    run conserved and removed total momentum, also right for per-species mixed modes);
    otherwise the mode name decides.
    """
    flag = ds.attrs.get("com_removed")
    if flag is not None:
        return "com" if bool(flag) else "none"
    mode = str(ds.attrs.get("constraint_mode") or "UC").upper()
    return "none" if mode in T_CONSTRAINED_MODES else "com"


def temperature_K(ds: xr.Dataset) -> float:
    """Target temperature attr if present, else the mean of the ``temperature`` variable."""
    if ds.attrs.get("target_temperature") is not None:
        return float(ds.attrs["target_temperature"])
    if "temperature" in ds:
        t = np.asarray(values(ds, "temperature"), dtype=float)
        if np.isfinite(t).any():
            return float(np.nanmean(t))
    raise ValueError("dataset has neither a 'target_temperature' attribute nor a 'temperature' variable")


def min_image(d: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Exact minimum image of difference vectors d (..., 3) for cell(s) (..., 3, 3) [Å]
    (:func:`rotorlab.geometry.minimum_image`, the one periodic-geometry implementation)."""
    from rotorlab.geometry import minimum_image

    return minimum_image(d, cell)


def with_units(da: xr.DataArray, units: str, **attrs) -> xr.DataArray:
    da.attrs["units"] = units
    da.attrs.update(attrs)
    return da
