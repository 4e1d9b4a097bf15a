"""Import and export of trajectories.

* :func:`export_netcdf` — AMBER-convention netCDF trajectory (netCDF3 64-bit offset,
  written with :class:`scipy.io.netcdf_file`; no netCDF4 dependency).
* :func:`export_extxyz` — extended XYZ through :func:`ase.io.write`.
* :func:`import_trajectory` — anything :func:`ase.io.read` handles (extxyz,
  ``lammps-dump-text``, CP2K ``xyz``, ``vasp-xdatcar``...) into a
  :class:`~rotorlab.store.trajectory.TrajectoryStore`, with positions **unwrapped**
  across frames.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rotorlab.units import PS
from rotorlab.store.trajectory import TrajectoryStore

__all__ = ["export_netcdf", "export_extxyz", "import_trajectory", "unwrap_positions",
           "AMBER_VELOCITY_SCALE"]

#: AMBER time unit: velocities are stored in Å per (1/20.455 ps); multiply by this
#: ``scale_factor`` to get Å/ps (AMBER NetCDF convention 1.0).
AMBER_VELOCITY_SCALE = 20.455


def _as_dataset(store_or_ds):
    import xarray as xr

    if isinstance(store_or_ds, TrajectoryStore):
        return store_or_ds.to_xarray()
    if isinstance(store_or_ds, xr.Dataset):
        return store_or_ds
    if isinstance(store_or_ds, (str, Path)):
        return TrajectoryStore.open(store_or_ds, "r").to_xarray()
    raise TypeError(f"expected a TrajectoryStore, an xarray.Dataset or a store path, "
                    f"got {type(store_or_ds).__name__}")


def _iter_frame_blocks(ds, frames: slice, block: int = 256):
    """Yield (indices, loaded dataset block) over the selected frames."""
    idx = np.arange(ds.sizes["frame"])[frames]
    for i in range(0, len(idx), block):
        sel = idx[i:i + block]
        yield sel, ds.isel(frame=sel).load()


# ------------------------------------------------------------------- netCDF
def export_netcdf(store_or_ds, path, *, frames: slice = slice(None),
                  wrap: bool = False, title: str | None = None) -> Path:
    """Write an AMBER-convention netCDF trajectory (ConventionVersion 1.0).

    Coordinates are float32 [Å] and, by default, **unwrapped** (as stored; AMBER
    stores whatever it is given).  With ``wrap=True`` every atom is mapped into the
    home cell.  AMBER defines the box by lengths and angles with **a** along x and
    **b** in the xy plane, so positions and velocities are rotated into that standard
    orientation when the stored cell is not already in it (fractional coordinates are
    preserved exactly; for a left-handed cell the map includes a reflection).

    Written variables: ``time`` (frame) float32 ps; ``coordinates`` (frame, atom,
    spatial) float32 Å; ``cell_lengths`` (frame, cell_spatial) float64 Å;
    ``cell_angles`` (frame, cell_angular) float64 degree; ``velocities`` (frame, atom,
    spatial) float32, units ``angstrom/picosecond`` with ``scale_factor`` 20.455 (the
    stored numbers are Å per AMBER time unit, i.e. Å/ps ÷ 20.455), when the store has
    velocities.  The global attribute ``rotorlab_positions`` says ``"unwrapped"`` or
    ``"wrapped"``.

    Parameters
    ----------
    store_or_ds : TrajectoryStore, xarray.Dataset or path
        The trajectory.
    path : str or path-like
        Output ``.nc`` file.
    frames : slice
        Frames to export.
    wrap : bool
        Wrap coordinates into the home cell.
    title : str, optional
        Global ``title`` attribute (≤ 80 characters); default from the material.

    Returns
    -------
    pathlib.Path
        The file written.

    Notes
    -----
    :class:`scipy.io.netcdf_file` assembles record variables in memory until the
    file is closed, so the exported frames must fit in memory (float32).
    """
    from ase.geometry import cell_to_cellpar, cellpar_to_cell
    from scipy.io import netcdf_file

    import rotorlab

    ds = _as_dataset(store_or_ds)
    path = Path(path)
    idx = np.arange(ds.sizes["frame"])[frames]
    nf, na = len(idx), ds.sizes["atom"]
    has_vel = "velocities" in ds.data_vars
    coords = np.empty((nf, na, 3), np.float32)
    vels = np.empty((nf, na, 3), np.float32) if has_vel else None
    lengths = np.empty((nf, 3))
    angles = np.empty((nf, 3))
    times = np.empty(nf, np.float32)
    k = 0
    for _, blk in _iter_frame_blocks(ds, frames):
        pos = blk["positions"].values
        cell = blk["cell"].values
        vel = blk["velocities"].values if has_vel else None
        for j in range(pos.shape[0]):
            par = cell_to_cellpar(cell[j])
            std = cellpar_to_cell(par)
            frac = np.linalg.solve(cell[j].T, pos[j].T).T
            if wrap:
                frac = frac - np.floor(frac)
            coords[k] = frac @ std
            if has_vel:
                vf = np.linalg.solve(cell[j].T, vel[j].T).T
                # Å/fs -> Å/ps -> AMBER units (scale_factor 20.455 restores Å/ps)
                vels[k] = (vf @ std) * PS / AMBER_VELOCITY_SCALE
            lengths[k], angles[k] = par[:3], par[3:]
            times[k] = blk["time"].values[j]
            k += 1

    material = ds.attrs.get("material") or "unknown material"
    if title is None:
        title = f"rotorlab {material} {ds.attrs.get('constraint_mode') or ''}".strip()
    f = netcdf_file(str(path), "w", version=2)  # 64-bit offset (CDF-2)
    try:
        f.Conventions = "AMBER"
        f.ConventionVersion = "1.0"
        f.program = "rotorlab"
        f.programVersion = str(rotorlab.__version__)
        f.application = "rotorlab"
        f.title = title[:80]
        f.rotorlab_positions = "wrapped" if wrap else "unwrapped"
        f.createDimension("frame", None)
        f.createDimension("spatial", 3)
        f.createDimension("atom", na)
        f.createDimension("cell_spatial", 3)
        f.createDimension("cell_angular", 3)
        f.createDimension("label", 5)
        v = f.createVariable("spatial", "c", ("spatial",))
        v[:] = np.array(list("xyz"), "S1")
        v = f.createVariable("cell_spatial", "c", ("cell_spatial",))
        v[:] = np.array(list("abc"), "S1")
        v = f.createVariable("cell_angular", "c", ("cell_angular", "label"))
        v[:] = np.array([list(s) for s in ("alpha", "beta ", "gamma")], "S1")
        v = f.createVariable("time", "f", ("frame",))
        v.units = "picosecond"
        v[:] = times
        v = f.createVariable("coordinates", "f", ("frame", "atom", "spatial"))
        v.units = "angstrom"
        v[:] = coords
        v = f.createVariable("cell_lengths", "d", ("frame", "cell_spatial"))
        v.units = "angstrom"
        v[:] = lengths
        v = f.createVariable("cell_angles", "d", ("frame", "cell_angular"))
        v.units = "degree"
        v[:] = angles
        if has_vel:
            v = f.createVariable("velocities", "f", ("frame", "atom", "spatial"))
            v.units = "angstrom/picosecond"
            v.scale_factor = np.float32(AMBER_VELOCITY_SCALE)
            v[:] = vels
    finally:
        f.close()
    return path


# ------------------------------------------------------------------- extxyz
def export_extxyz(store_or_ds, path, frames: slice = slice(None), *, wrap: bool = False) -> Path:
    """Write frames as extended XYZ with :func:`ase.io.write`.

    Each frame carries symbols, positions [Å] (unwrapped unless ``wrap``), cell [Å],
    ``pbc=True``, masses, momenta from the velocities (when stored), forces and
    ``energy`` (= potential energy) through a single-point calculator, and in
    ``info``: ``time_ps``, ``step``, ``kinetic_energy``, ``conserved_energy`` [eV],
    ``temperature`` [K], ``model_deviation`` [eV/Å] where recorded.  The result
    re-imports with :func:`import_trajectory` without needing a timestep.

    Parameters
    ----------
    store_or_ds : TrajectoryStore, xarray.Dataset or path
    path : str or path-like
    frames : slice
    wrap : bool

    Returns
    -------
    pathlib.Path
    """
    import ase.io
    import ase.units
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    ds = _as_dataset(store_or_ds)
    path = Path(path)
    species = [str(s) for s in np.asarray(ds["species"].values)]
    masses = np.asarray(ds["mass"].values, float)
    images = []
    for _, blk in _iter_frame_blocks(ds, frames):
        for j in range(blk.sizes["frame"]):
            fr = blk.isel(frame=j)
            atoms = Atoms(species, positions=fr["positions"].values, cell=fr["cell"].values,
                          pbc=True, masses=masses)
            if wrap:
                atoms.wrap()
            if "velocities" in fr:
                atoms.set_velocities(fr["velocities"].values / ase.units.fs)
            calc_kw = {}
            e = float(fr["potential_energy"].values)
            if np.isfinite(e):
                calc_kw["energy"] = e
            if "forces" in fr:
                calc_kw["forces"] = fr["forces"].values
            info = {"time_ps": float(fr["time"].values), "step": int(fr["step"].values)}
            for key in ("kinetic_energy", "conserved_energy", "temperature", "model_deviation"):
                if key in fr and np.isfinite(float(fr[key].values)):
                    info[key] = float(fr[key].values)
            atoms.info.update(info)
            if calc_kw:
                atoms.calc = SinglePointCalculator(atoms, **calc_kw)
            images.append(atoms)
    ase.io.write(str(path), images, format="extxyz")
    return path


# ------------------------------------------------------------------- import
def unwrap_positions(positions: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Unwrap a trajectory across periodic boundaries (triclinic-safe).

    Between consecutive frames the Cartesian displacement is expressed in the
    fractional coordinates of the current cell, reduced to the nearest image
    (``f - round(f)``) and added to the previous unwrapped position.  Correct as long
    as no atom moves by half a lattice vector (fractionally) between frames.  Already
    unwrapped input is returned unchanged.

    Parameters
    ----------
    positions : ndarray, shape (n_frames, N, 3)
        Positions [Å], possibly wrapped.
    cells : ndarray, shape (n_frames, 3, 3)
        Cells [Å], rows = lattice vectors.

    Returns
    -------
    ndarray, shape (n_frames, N, 3)
        Unwrapped positions [Å]; frame 0 is unchanged.
    """
    positions = np.asarray(positions, float)
    cells = np.asarray(cells, float)
    out = np.empty_like(positions)
    if positions.shape[0] == 0:
        return out
    out[0] = positions[0]
    for t in range(1, positions.shape[0]):
        d = positions[t] - positions[t - 1]
        f = np.linalg.solve(cells[t].T, d.T).T
        f -= np.round(f)
        out[t] = out[t - 1] + f @ cells[t]
    return out


def import_trajectory(path, format: str | None = None, *, store_path,
                      material: str | None = None, timestep_fs: float | None = None,
                      frame_stride: int = 1, index: str | int | slice = ":",
                      topology: Callable[[Any], tuple] | None = None,
                      species: Sequence[str] | None = None, cell=None,
                      attrs: Mapping[str, Any] | None = None, chunk_frames: int = 50,
                      overwrite: bool = False, unwrap: bool = True,
                      read_kwargs: Mapping[str, Any] | None = None) -> TrajectoryStore:
    """Import a trajectory file that ASE can read into a new store.

    Parameters
    ----------
    path : str or path-like
        Trajectory file (extxyz, ``lammps-dump-text``, CP2K ``xyz``, ``vasp-xdatcar``, ...).
    format : str, optional
        ASE format name; guessed by ASE from the file when omitted.
    store_path : str or path-like
        Directory of the new store.
    material : str, optional
        ``material`` attribute. For a catalog material (``rotorlab materials``) the
        rotors are detected on the first frame (unless ``topology`` is given) and
        the mobile species and charge are recorded.
    timestep_fs : float, optional
        MD timestep [fs].  Required unless every frame carries ``time_ps`` in its
        info (files written by :func:`export_extxyz`).  ``time`` [ps] =
        ``step × timestep_fs / 1000``, where ``step`` is the file's step number
        (extxyz ``step`` info, LAMMPS ``TIMESTEP``) or ``file_frame_index ×
        frame_stride``.
    frame_stride : int
        MD steps between consecutive frames of the file (when it carries no steps).
    index : str, int or slice
        Frames of the file to import (ASE index syntax, default all).
    topology : callable, optional
        ``topology(atoms) -> (rotor_id (N,), rotor_kind (n_rotors,),
        orientation_atoms (n_rotors, 2))`` applied to the first imported frame;
        without it every atom gets ``rotor_id = -1``.
    species : sequence of str, optional
        Element symbols overriding the file's (e.g. LAMMPS types read as H, He...).
    cell : array_like, shape (3, 3), optional
        Cell [Å] for every frame, for files that carry none (plain/CP2K xyz);
        overrides the file's cell.
    attrs : mapping, optional
        Extra dataset attributes.
    chunk_frames : int
        Frames per chunk of the new store.
    overwrite : bool
        Replace an existing store.
    unwrap : bool
        Unwrap positions across frames (default).  Pass ``False`` only for files
        whose positions are already unwrapped and may jump by more than half a cell
        between frames (e.g. widely spaced frames written by :func:`export_extxyz`).
    read_kwargs : mapping, optional
        Passed to :func:`ase.io.read` (e.g. ``{"specorder": ["Li", "B", "H"]}``).

    Returns
    -------
    TrajectoryStore
        The new store in append mode, flushed.  Positions are unwrapped.
        Velocities (converted to Å/fs) and forces are stored when every frame has
        them; the potential energy when the file gives one (never from a LAMMPS
        dump, whose ASE reader reports a placeholder 0); ``kinetic_energy`` from the
        velocities when the file gives none.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        Unreadable file, no cell, changing atom count or species, missing timestep.
    """
    import ase.io
    import ase.units
    from ase.io.formats import string2index

    from rotorlab.units import MVV2E

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no trajectory file at {path}")
    try:
        images = ase.io.read(str(path), index=":", format=format, **dict(read_kwargs or {}))
    except Exception as exc:
        raise ValueError(f"cannot read {path} as {format or 'a trajectory'} with ASE: "
                         f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(images, list):
        images = [images]
    sel = string2index(index) if isinstance(index, str) else index
    file_idx = np.arange(len(images))[sel]
    file_idx = np.atleast_1d(file_idx)
    images = [images[i] for i in file_idx]
    if not images:
        raise ValueError(f"{path}: no frames selected (index={index!r})")
    fmt = (format or "").lower()

    n = len(images[0])
    syms0 = images[0].get_chemical_symbols()
    for i, a in zip(file_idx, images):
        if len(a) != n:
            raise ValueError(f"{path}: frame {i} has {len(a)} atoms, frame {file_idx[0]} "
                             f"has {n}; a trajectory needs a fixed atom count")
        if species is None and a.get_chemical_symbols() != syms0:
            raise ValueError(f"{path}: species order changes at frame {i}")
    if species is not None:
        species = [str(s) for s in species]
        if len(species) != n:
            raise ValueError(f"species: expected {n} symbols, got {len(species)}")
        for a in images:
            a.set_chemical_symbols(species)
    symbols = images[0].get_chemical_symbols()
    masses = images[0].get_masses()

    if cell is not None:
        cell = np.asarray(cell, float)
        if cell.shape != (3, 3):
            raise ValueError(f"cell: expected shape (3, 3), got {cell.shape}")
        cells = np.repeat(cell[np.newaxis], len(images), axis=0)
    else:
        cells = np.array([a.cell.array for a in images])
        vol = np.abs(np.linalg.det(cells))
        if np.any(vol < 1e-8):
            bad = int(file_idx[np.argmax(vol < 1e-8)])
            raise ValueError(f"{path}: frame {bad} has no (or a degenerate) cell; pass "
                             f"cell=(3x3 array in Å) for formats without one (e.g. CP2K xyz)")
    pos = np.array([a.positions for a in images])
    if unwrap:
        pos = unwrap_positions(pos, cells)

    # time axis and steps
    infos = [a.info for a in images]
    if all("step" in i for i in infos):
        steps = np.array([int(i["step"]) for i in infos], np.int64)
    elif all("timestep" in i for i in infos):  # LAMMPS dump TIMESTEP
        steps = np.array([int(i["timestep"]) for i in infos], np.int64)
    else:
        steps = (file_idx * int(frame_stride)).astype(np.int64)
    if all("time_ps" in i for i in infos):
        time_ps = np.array([float(i["time_ps"]) for i in infos])
    elif timestep_fs is not None:
        time_ps = steps * float(timestep_fs) / PS
    else:
        raise ValueError(f"{path} carries no time axis; pass timestep_fs= (MD timestep in fs) "
                         f"and, if frames were saved every k steps without step numbers, "
                         f"frame_stride=k")
    if timestep_fs is None and len(steps) > 1 and np.all(np.diff(steps) > 0):
        ts = np.diff(time_ps) * PS / np.diff(steps)
        timestep_fs = float(ts[0]) if np.allclose(ts, ts[0]) else None

    def _has_vel(a):
        return a.has("momenta")

    has_vel = all(_has_vel(a) for a in images)
    vel = (np.array([a.get_velocities() for a in images]) * ase.units.fs) if has_vel else None

    def _calc(a, key):
        c = a.calc
        if c is None or key not in getattr(c, "results", {}):
            return None
        return c.results[key]

    has_forces = all(_calc(a, "forces") is not None for a in images)
    forces = np.array([_calc(a, "forces") for a in images]) if has_forces else None
    if fmt.startswith("lammps"):
        epot = np.full(len(images), np.nan)
    else:
        epot = np.array([np.nan if _calc(a, "energy") is None else float(_calc(a, "energy"))
                         for a in images])

    def _info(key):
        return np.array([float(i.get(key, np.nan)) for i in infos])

    ekin = _info("kinetic_energy")
    if has_vel and np.all(np.isnan(ekin)):
        ekin = 0.5 * MVV2E * np.einsum("i,fij,fij->f", masses, vel, vel)
    frames = {"positions": pos, "cell": cells, "time": time_ps, "step": steps,
              "potential_energy": epot, "kinetic_energy": ekin,
              "conserved_energy": _info("conserved_energy"), "temperature": _info("temperature")}
    mdev = _info("model_deviation")
    if has_vel:
        frames["velocities"] = vel
    if has_forces:
        frames["forces"] = forces
    if not np.all(np.isnan(mdev)):
        frames["model_deviation"] = mdev

    if topology is None and material is not None:
        topology = _material_topology(material)
    if topology is not None:
        first = images[0].copy()
        first.positions = pos[0]
        first.cell = cells[0]
        first.pbc = True
        rotor_id, rotor_kind, orientation_atoms = topology(first)
    else:
        rotor_id, rotor_kind, orientation_atoms = np.full(n, -1, np.int64), (), None
    mobile_attrs = {}
    if material is not None:
        from rotorlab.materials import catalog

        try:
            mat = catalog(material)
            mobile_attrs = {"mobile_species": mat.mobile, "mobile_charge": mat.mobile_charge}
        except KeyError:
            pass
    all_attrs = {"material": material, "timestep": timestep_fs, **mobile_attrs,
                 "source_file": str(path), "source_format": format or "auto",
                 "imported": True}
    all_attrs.update(attrs or {})
    store = TrajectoryStore.create(
        store_path, species=symbols, masses=masses, rotor_id=rotor_id,
        rotor_kind=rotor_kind, orientation_atoms=orientation_atoms, attrs=all_attrs,
        chunk_frames=chunk_frames, velocities=has_vel, forces=has_forces,
        model_deviation="model_deviation" in frames, overwrite=overwrite)
    store.append(frames)
    store.flush()
    return store


def _material_topology(material):
    """Topology callable for a catalog material: rotors detected on the first frame."""

    def detect_rotors(atoms):
        from rotorlab.materials import catalog
        from rotorlab.materials import detect

        try:
            mat = catalog(material)
        except KeyError:
            return np.full(len(atoms), -1, np.int64), (), None
        top = detect(atoms, material=mat)
        return top.rotor_id, list(top.rotor_kind), top.orientation_atoms

    return detect_rotors
