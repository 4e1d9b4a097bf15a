"""Structure: partial g(r) (triclinic safe), cation–anion-COM free energy, 3D density (cube), 1D profiles.

Definitions
-----------
* ``g_ab(r) = ⟨V_t n_ab(r)⟩ / (N_pairs 4π/3 ((r+dr)³ − r³))`` with ``n_ab`` the number of ordered
  (a, b) pairs, a ≠ b, at distance in [r, r+dr) under the minimum image, averaged over frames.
  ``r_max`` must not exceed half of the smallest perpendicular cell width (then exactly one
  periodic image can lie within ``r_max``, found among the 27 neighbours of the rounded
  fractional vector, which makes the kernel exact for any triclinic cell).
* ``F(r) = −k_B T ln g(r)`` (eV) between cations and the rotor centres of mass.
* Mobile-ion density: time-averaged number density (ions/Å³) on a grid of fractional
  coordinates; exported as Gaussian cube (Bohr, voxel centred) for isosurfaces.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import xarray as xr

from rotorlab import units as U

from . import _data
from ._kernels import histogram_grid_add, rdf_hist
from .base import Analyzer, Result, scalar

BOHR = 0.529177210903  # Å (CODATA 2018); not in rotorlab.units


def perpendicular_widths(cell: np.ndarray) -> np.ndarray:
    """Distances between opposite cell faces (Å), shape (..., 3) for cell (..., 3, 3)."""
    V = np.abs(np.linalg.det(cell))
    a, b, c = cell[..., 0, :], cell[..., 1, :], cell[..., 2, :]
    return np.stack([V / np.linalg.norm(np.cross(b, c), axis=-1), V / np.linalg.norm(np.cross(c, a), axis=-1),
                     V / np.linalg.norm(np.cross(a, b), axis=-1)], axis=-1)


def _is_orthogonal(cells: np.ndarray) -> bool:
    off = cells.copy()
    for k in range(3):
        off[:, k, k] = 0.0
    return bool(np.all(np.abs(off) < 1e-12))


def rdf_arrays(pos_a: np.ndarray, pos_b: np.ndarray, cells: np.ndarray, r_max: float, nbins: int,
               same: bool) -> tuple[np.ndarray, np.ndarray, float]:
    """Pair histogram of one block of frames.

    Parameters
    ----------
    pos_a : (T, NA, 3), pos_b : (T, NB, 3)  Å
    cells : (T, 3, 3) row lattice vectors, Å
    r_max : float (Å), nbins : int
    same : bool — the two sets are identical (pairs i ≠ j)

    Returns
    -------
    counts : (nbins,)  Σ_t V_t · (ordered pair count)
    edges : (nbins + 1,) Å
    n_frames : float
    """
    w = perpendicular_widths(cells).min()
    if r_max > 0.5 * w + 1e-9:
        raise ValueError(f"r_max = {r_max:.3f} Å exceeds half the smallest perpendicular cell width ({0.5 * w:.3f} Å)")
    inv = np.linalg.inv(cells)
    V = np.abs(np.linalg.det(cells))
    h = rdf_hist(np.ascontiguousarray(pos_a, dtype=np.float64), np.ascontiguousarray(pos_b, dtype=np.float64),
                 np.ascontiguousarray(cells), np.ascontiguousarray(inv), float(r_max), int(nbins), bool(same),
                 _is_orthogonal(cells), V)
    return h, np.linspace(0.0, r_max, nbins + 1), float(cells.shape[0])


def _normalise(counts, edges, n_frames, n_pairs):
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    return counts / (n_frames * n_pairs * shell)


def _rdf_driver(ds, read_a: Callable, read_b: Callable | None, na: int, nb: int, r_max, nbins, memory,
                frames: slice | None):
    nf = _data.n_frames(ds)
    fr = frames or slice(0, nf)
    start, stop, _ = fr.indices(nf)
    c_all = _data.cells(ds, slice(start, stop))
    w = perpendicular_widths(c_all).min()
    if r_max is None:
        r_max = 0.5 * w * (1 - 1e-9)
    counts = np.zeros(nbins)
    nfr = 0.0
    edges = None
    for fs in _data.frame_chunks(ds, (na + nb) * 3 * 8 * 3, memory, start, stop):
        a = read_a(fs)
        b = a if read_b is None else read_b(fs)
        h, edges, n = rdf_arrays(a, b, c_all[fs.start - start:fs.stop - start], r_max, nbins, read_b is None)
        counts += h
        nfr += n
    n_pairs = na * (na - 1) if read_b is None else na * nb
    if n_pairs <= 0:
        raise ValueError("need at least two particles for g(r)")
    g = _normalise(counts, edges, nfr, n_pairs)
    r = 0.5 * (edges[1:] + edges[:-1])
    return r, g, edges


class RDF(Analyzer):
    """Partial radial distribution function g_ab(r) for any (triclinic) cell.

    Parameters
    ----------
    a, b : str
        Species symbols (``b`` defaults to ``a``).  Overlapping-but-different selections are
        not allowed; use the same symbol for a-a.
    r_max : float, optional
        Å; default half the smallest perpendicular cell width.
    nbins : int
    frames : slice, optional
        Frames to use.
    """

    def __init__(self, a: str, b: str | None = None, r_max: float | None = None, nbins: int = 200,
                 frames: slice | None = None, memory: float = _data.DEFAULT_MEMORY):
        self.a, self.b = a, (a if b is None else b)
        self.r_max, self.nbins, self.frames, self.memory = r_max, nbins, frames, memory

    def compute(self, ds: xr.Dataset) -> "RDF":
        _data._require(ds, ["positions", "cell"], "g(r)")
        ia = _data.select_species(ds, self.a)
        ib = _data.select_species(ds, self.b)
        same = self.a == self.b
        ra = lambda fs: _data.read_block(ds, "positions", fs, ia)  # noqa: E731
        rb = None if same else (lambda fs: _data.read_block(ds, "positions", fs, ib))  # noqa: E731
        r, g, _ = _rdf_driver(ds, ra, rb, ia.size, ib.size, self.r_max, self.nbins, self.memory, self.frames)
        ga = xr.DataArray(g, dims="r", coords={"r": r}, name=f"g_{self.a}_{self.b}",
                          attrs={"units": "1", "long_name": f"g(r) {self.a}-{self.b}"})
        ga["r"].attrs["units"] = "Å"
        self._set(rdf=ga)
        return self

    rdf = Result("1", "g(r), dims (r,), r in Å (bin centres).")

    @property
    def first_peak(self) -> xr.Dataset:
        """Position (Å) and height (units "1") of the highest maximum of g(r), 0-d each."""
        g = self.rdf
        k = int(np.nanargmax(g.values)) if np.isfinite(g.values).any() else None
        pos = float(g["r"].values[k]) if k is not None else float("nan")
        h = float(g.values[k]) if k is not None else float("nan")
        return xr.Dataset({"position": scalar(pos, "Å"), "height": scalar(h, "1")},
                          attrs={"pair": f"{self.a}-{self.b}"})

    def _plot(self, P, ax=None, **kw):
        return P.plot_curves([self.rdf], [kw.pop("label", f"{self.a}-{self.b}")], ax=ax, xlabel="r (Å)",
                             ylabel="g(r)", **kw)


def rotor_com(ds: xr.Dataset, frames: slice, kind: str | None = None) -> np.ndarray:
    """Centres of mass (Å) of the rotors for a block of frames, rotors made whole, (T, R, 3)."""
    rid = np.asarray(ds["rotor_id"].values)
    if "rotor" not in ds.dims or ds.sizes["rotor"] == 0:
        raise ValueError("the trajectory has no rotors")
    rotors = np.arange(ds.sizes["rotor"])
    if kind is not None:
        kinds = np.asarray(ds["rotor_kind"].values).astype(str)
        rotors = np.flatnonzero(kinds == kind)
        if rotors.size == 0:
            raise ValueError(f"rotor kind {kind!r} not present (kinds: {sorted(set(kinds.tolist()))})")
    members = np.flatnonzero(np.isin(rid, rotors))
    m = _data.masses(ds)[members]
    r_of = rid[members]
    x = _data.read_block(ds, "positions", frames, members)
    c = _data.cells(ds, frames)
    out = np.empty((x.shape[0], rotors.size, 3))
    for k, r in enumerate(rotors):
        sel = np.flatnonzero(r_of == r)
        ref = x[:, sel[:1]]
        whole = ref + _data.min_image(x[:, sel] - ref, c[:, None])
        out[:, k] = np.einsum("tai,a->ti", whole, m[sel]) / m[sel].sum()
    return out


class AnionFreeEnergy(Analyzer):
    """``F(r) = −k_B T ln g(r)`` between cations and rotor (anion) centres of mass.

    Parameters
    ----------
    cation : str, optional
        Cation species (default ``ds.attrs["mobile_species"]``).
    kind : str, optional
        Rotor kind (default all rotors).
    """

    def __init__(self, cation: str | None = None, kind: str | None = None, r_max: float | None = None,
                 nbins: int = 150, memory: float = _data.DEFAULT_MEMORY):
        self.cation, self.kind, self.r_max, self.nbins, self.memory = cation, kind, r_max, nbins, memory

    def compute(self, ds: xr.Dataset) -> "AnionFreeEnergy":
        ic = _data.mobile_indices(ds, self.cation)
        nrot = rotor_com(ds, slice(0, 1), self.kind).shape[1]
        ra = lambda fs: _data.read_block(ds, "positions", fs, ic)  # noqa: E731
        rb = lambda fs: rotor_com(ds, fs, self.kind)  # noqa: E731
        r, g, _ = _rdf_driver(ds, ra, rb, ic.size, nrot, self.r_max, self.nbins, self.memory, None)
        kT = U.KB * _data.temperature_K(ds)
        with np.errstate(divide="ignore"):
            F = np.where(g > 0, -kT * np.log(np.where(g > 0, g, 1.0)), np.nan)
        co = {"r": r}
        ga = xr.DataArray(g, dims="r", coords=co, name="g_cation_anion", attrs={"units": "1"})
        Fa = xr.DataArray(F, dims="r", coords=co, name="free_energy",
                          attrs={"units": "eV", "long_name": "-kT ln g(r) cation-anion COM"})
        for a in (ga, Fa):
            a["r"].attrs["units"] = "Å"
        self._set(rdf=ga, free_energy=Fa)
        return self

    rdf = Result("1", "g(r) between cations and rotor centres of mass, dims (r,), r in Å.")
    free_energy = Result("eV", "F(r) = −kT ln g(r) (NaN where g = 0), dims (r,).")

    def _plot(self, P, ax=None, **kw):
        return P.plot_curves([self.free_energy], [kw.pop("label", "cation-anion COM")], ax=ax, xlabel="r (Å)",
                             ylabel="F(r) (eV)", **kw)


def _frac_block(ds, fs, idx):
    """Fractional coordinates (T, n, 3) of atoms ``idx`` for the frames ``fs`` (computed in place)."""
    x = _data.read_block(ds, "positions", fs, idx)
    inv = np.linalg.inv(_data.cells(ds, fs))
    for t in range(x.shape[0]):  # row by row in place: no second block-sized array
        x[t] = x[t] @ inv[t]
    return x


class MobileIonDensity(Analyzer):
    """Time-averaged 3D number density of the mobile ions on a fractional grid.

    Parameters
    ----------
    species : str, optional
    spacing : float
        Target voxel edge (Å) when ``shape`` is not given.
    shape : (int, int, int), optional
        Grid points along a, b, c.
    """

    def __init__(self, species: str | None = None, spacing: float = 0.2, shape: tuple[int, int, int] | None = None,
                 memory: float = _data.DEFAULT_MEMORY):
        self.species, self.spacing, self.shape, self.memory = species, spacing, shape, memory

    def compute(self, ds: xr.Dataset) -> "MobileIonDensity":
        idx = _data.mobile_indices(ds, self.species)
        cell = _data.cells(ds).mean(axis=0)
        shape = self.shape or tuple(int(max(1, np.ceil(np.linalg.norm(cell[k]) / self.spacing))) for k in range(3))
        g = np.zeros(shape)
        nf = 0
        for fs in _data.frame_chunks(ds, idx.size * 3 * 8 * 4, self.memory):
            f = _frac_block(ds, fs, idx).reshape(-1, 3)
            histogram_grid_add(np.ascontiguousarray(f), g)  # in place: no second grid
            del f
            nf += fs.stop - fs.start
        V = abs(np.linalg.det(cell))
        dens = g
        dens /= nf * V / np.prod(shape)
        self._cell = cell
        self._species = _data.species(ds)
        self._ref = _frac_block(ds, slice(0, 1), np.arange(ds.sizes["atom"]))[0] % 1.0
        self._mobile = idx
        co = {f"grid_{k}": (np.arange(n) + 0.5) / n for k, n in zip("abc", shape)}
        for k in "abc":
            co[f"grid_{k}"] = (f"grid_{k}", co[f"grid_{k}"], {"units": "1"})
        self._set(density=xr.DataArray(dens, dims=("grid_a", "grid_b", "grid_c"), coords=co, name="density",
                                       attrs={"units": "1/Å^3",
                                              "long_name": "time-averaged mobile-ion number density",
                                              "cell": cell.tolist()}))
        return self

    density = Result("1/Å^3", "(grid_a, grid_b, grid_c) number density in ions/Å³ "
                              "(voxel-centred fractional coordinates).")

    @property
    def probability(self) -> xr.DataArray:
        """Density normalised to sum 1 over voxels, units "1"."""
        d = self.density
        return xr.DataArray(d.values / d.values.sum(), dims=d.dims, coords=d.coords, attrs={"units": "1"})

    def _plot(self, P, ax=None, axis: str = "c", **kw):
        d = self.density
        return P.plot_map(d.mean(f"grid_{axis}", keep_attrs=True), ax=ax,
                          label=f"density averaged along {axis} (1/Å^3)", **kw)

    def write_cube(self, path, include_mobile: bool = False, comment: str = "rotorlab mobile-ion density") -> None:
        """Write a Gaussian cube file (Bohr; density in 1/Bohr³) with the frame-0 framework atoms."""
        self._require_computed()
        from ase.data import atomic_numbers

        keep = np.ones(self._species.size, bool)
        if not include_mobile:
            keep[self._mobile] = False
        write_cube(path, self.density.values * BOHR**3, self._cell, self._ref[keep] @ self._cell,
                   [atomic_numbers[s] for s in self._species[keep]], comment=comment, centred=True)


def write_cube(path, data: np.ndarray, cell: np.ndarray, positions: np.ndarray, numbers, comment: str = "",
               centred: bool = True) -> None:
    """Gaussian cube writer.

    Parameters
    ----------
    path : str or Path
    data : ndarray (na, nb, nc)
        Values at voxel points (written as-is).
    cell : (3, 3) Å, row lattice vectors
    positions : (n, 3) Å Cartesian
    numbers : sequence of int atomic numbers
    centred : bool
        Voxel values represent bin centres: origin is shifted by half a voxel.
    """
    n = np.asarray(data.shape)
    vox = cell / n[:, None] / BOHR
    origin = 0.5 * vox.sum(axis=0) if centred else np.zeros(3)
    with open(path, "w") as fh:
        fh.write(comment.replace("\n", " ") + "\nOUTER LOOP: X, MIDDLE LOOP: Y, INNER LOOP: Z\n")
        fh.write(f"{len(numbers):5d} {origin[0]:12.6f} {origin[1]:12.6f} {origin[2]:12.6f}\n")
        for k in range(3):
            fh.write(f"{n[k]:5d} {vox[k, 0]:12.6f} {vox[k, 1]:12.6f} {vox[k, 2]:12.6f}\n")
        for z, p in zip(numbers, np.asarray(positions) / BOHR):
            fh.write(f"{int(z):5d} {float(z):12.6f} {p[0]:12.6f} {p[1]:12.6f} {p[2]:12.6f}\n")
        flat = data.reshape(-1, n[2])
        for row in flat:
            for s in range(0, n[2], 6):
                fh.write(" ".join(f"{v:13.5e}" for v in row[s:s + 6]) + "\n")


def density_profile(ds: xr.Dataset, axis: int | str = "c", species: str | None = None, nbins: int = 100,
                    memory: float = _data.DEFAULT_MEMORY) -> xr.DataArray:
    """1D number-density profile of the mobile ions along a lattice axis.

    Parameters
    ----------
    axis : 0/1/2 or "a"/"b"/"c"
    nbins : int

    Returns
    -------
    DataArray (position,) in ions/Å³ averaged over slabs parallel to the other two lattice
    vectors; ``position`` = fractional coordinate × ``|a_axis|`` (Å).
    """
    k = "abc".index(axis) if isinstance(axis, str) else int(axis)
    idx = _data.mobile_indices(ds, species)
    h = np.zeros(nbins)
    nf = 0
    for fs in _data.frame_chunks(ds, idx.size * 3 * 8 * 4, memory):
        f = _frac_block(ds, fs, idx)[..., k] % 1.0
        h += np.histogram(f, bins=nbins, range=(0.0, 1.0))[0]
        nf += fs.stop - fs.start
    cell = _data.cells(ds).mean(axis=0)
    V = abs(np.linalg.det(cell))
    dens = h / (nf * V / nbins)
    pos = (np.arange(nbins) + 0.5) / nbins * np.linalg.norm(cell[k])
    out = xr.DataArray(dens, dims="position", coords={"position": pos}, name="density_profile",
                       attrs={"units": "1/Å^3", "axis": "abc"[k]})
    out["position"].attrs["units"] = "Å"
    return out
