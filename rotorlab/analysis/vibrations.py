"""Vibrations: velocity autocorrelation per species, phonon DOS (total/projected), band centre.

Definitions (DESIGN §5)
-----------------------
* ``Z_s(τ) = Σ_{i∈s} m_i ⟨v_i(t)·v_i(t+τ)⟩ / Σ_{i∈s} m_i ⟨v_i²⟩`` (all origins, FFT); the
  unweighted variant drops the masses.
* Phonon DOS ``g_s(ν) = 2 ∫_0^L C_s(τ) w(τ) cos(2πντ) dτ`` with ``C_s`` the mass-weighted
  (unnormalised) VACF of species s, ``w`` a half-Hann window over the maximum lag L.  The
  total DOS is Σ_s g_s, scaled so ∫ g dν = 3 N_atoms (the projections use the same factor,
  so they sum to the total and each integrates to ≈ 3 N_s under equipartition).  Frequency in
  THz with meV and cm⁻¹ as extra coordinates.
* Band centre ``ν_av = ∫ ν g(ν) dν / ∫ g(ν) dν``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from rotorlab import units as U

from . import _data
from .base import Analyzer, Result, scalar


def _species_list(ds, species):
    spec = _data.species(ds)
    if species is None:
        return sorted(set(spec.tolist()), key=spec.tolist().index)
    lst = [species] if isinstance(species, str) else list(species)
    for s in lst:
        _data.select_species(ds, s)  # raises if absent
    return lst


def _need_velocities(ds, what):
    if "velocities" not in ds.variables:
        raise ValueError(f"{what} needs velocities, but this trajectory has none (stored variables: "
                         f"{sorted(map(str, ds.data_vars))}); re-run with velocities saved")


def vacf_sums(ds: xr.Dataset, idx: np.ndarray, weights: np.ndarray, max_lag: int,
              memory: float = _data.DEFAULT_MEMORY, var: str = "velocities") -> np.ndarray:
    """Weighted all-origin velocity autocorrelations in one pass over the store.

    ``out[τ, k] = Σ_i weights[i, k] · 1/(T−τ) Σ_{t=0}^{T−1−τ} v_i(t)·v_i(t+τ)`` for lags
    ``τ = 0 … max_lag−1``.  The trajectory is read once, in frame blocks of ``B`` frames
    extended by ``max_lag − 1`` frames of overlap; each block's cross-correlation of its
    own origins with the extended block is done by FFT (zero padded, so exact, no
    wrap-around).  Summing over blocks gives exactly the all-origin correlation of the
    whole series.  Atoms are batched only when even ``2 × max_lag`` frames of all of them
    do not fit ``memory``.

    Parameters
    ----------
    ds : xarray.Dataset
        Trajectory with ``var`` (frame, atom, xyz), possibly dask-backed.
    idx : ndarray of int, shape (n,)
        Atom indices.
    weights : ndarray, shape (n, K)
        Weight of each atom in each of the K output columns (e.g. its mass in the column
        of its species).
    max_lag : int
        Number of lags (frames), ``1 <= max_lag <= T``.
    memory : float
        Bytes the working arrays of one block may use.

    Returns
    -------
    ndarray, shape (max_lag, K)
        In (units of ``var``)² × (units of ``weights``), e.g. amu Å²/fs².
    """
    from ._kernels import _next_fast_len

    nf = _data.n_frames(ds)
    L = int(min(max_lag, nf))
    if L < 1:
        raise ValueError("max_lag must be >= 1")
    W = np.asarray(weights, dtype=float).reshape(idx.size, -1)
    out = np.zeros((L, W.shape[1]))
    copies = 4  # block + per-component padded FFTs (measured peak ≈ 3.3 block sizes)
    per_frame_atom = 24.0 * copies
    cap = int(memory // max(per_frame_atom * idx.size, 1.0))
    if cap >= 2 * L:
        batches, B = [slice(0, idx.size)], cap - L
    else:
        nb = max(1, int(memory // (per_frame_atom * 2 * L)))
        batches, B = [slice(a, min(a + nb, idx.size)) for a in range(0, idx.size, nb)], L
    for bt in batches:
        ib = idx[bt]
        wb = W[bt]
        for k0 in range(0, nf, B):
            k1 = min(k0 + B, nf)
            e1 = min(k1 + L - 1, nf)
            ext = _data.read_block(ds, var, slice(k0, e1), ib)  # (n_ext, nb, 3)
            na_ = k1 - k0
            nfft = _next_fast_len(ext.shape[0] + L)
            acc = np.zeros((L, ib.size))
            for c in range(ext.shape[2]):
                fa = np.fft.rfft(ext[:na_, :, c], n=nfft, axis=0)
                fe = np.fft.rfft(ext[:, :, c], n=nfft, axis=0)
                fe *= fa.conj()
                del fa
                acc += np.fft.irfft(fe, n=nfft, axis=0)[:L]
                del fe
            del ext
            out += acc @ wb
    out /= (nf - np.arange(L))[:, None]
    return out


def mass_weighted_vacf(ds: xr.Dataset, species: str, max_lag: int, memory: float = _data.DEFAULT_MEMORY,
                       weighted: bool = True) -> np.ndarray:
    """Σ_i m_i ⟨v_i(0)·v_i(τ)⟩ over the atoms of ``species`` for lags 0…max_lag-1 (amu Å²/fs²).

    One pass over the store (:func:`vacf_sums`); ``weighted=False`` drops the masses (Å²/fs²).
    Returns an ndarray of shape (max_lag,).
    """
    idx = _data.select_species(ds, species)
    m = _data.masses(ds)[idx] if weighted else np.ones(idx.size)
    return vacf_sums(ds, idx, m[:, None], max_lag, memory)[:, 0]


def vacf(ds: xr.Dataset, species: str | Sequence[str] | None = None, mass_weighted: bool = False,
         max_lag_ps: float | None = None, memory: float = _data.DEFAULT_MEMORY) -> xr.DataArray:
    """Normalised velocity autocorrelation per species, dims (species, lag_time).

    Parameters
    ----------
    ds : Dataset with ``velocities`` (Å/fs)
    species : str or list, optional (default all species)
    mass_weighted : bool
    max_lag_ps : float, optional (default: half the trajectory)
    memory : float
        Bytes the working arrays of one block may use.

    Returns
    -------
    xarray.DataArray, shape (n_species, n_lags)
        ``Z_s(τ)`` normalised to 1 at τ = 0 (units "1"), coordinate ``lag_time`` in ps.

    Raises
    ------
    ValueError
        Without velocities in the trajectory, or for a species not present.
    """
    _need_velocities(ds, "the velocity autocorrelation")
    sp = _species_list(ds, species)
    nf = _data.n_frames(ds)
    dt = _data.frame_dt_ps(ds)
    L = nf // 2 if max_lag_ps is None else min(nf, int(round(max_lag_ps / dt)) + 1)
    spec = _data.species(ds)
    idx = np.flatnonzero(np.isin(spec, sp))
    m = _data.masses(ds)[idx] if mass_weighted else np.ones(idx.size)
    W = (spec[idx][:, None] == np.asarray(sp)[None, :]) * m[:, None]
    C = vacf_sums(ds, idx, W, L, memory).T  # (species, lag), one pass over the store
    out = xr.DataArray(C / C[:, :1], dims=("species", "lag_time"),
                       coords={"species": sp, "lag_time": np.arange(L) * dt}, name="vacf",
                       attrs={"units": "1", "mass_weighted": int(mass_weighted)})
    out["lag_time"].attrs["units"] = "ps"
    return out


def dos_from_vacf(c: np.ndarray, dt_ps: float, pad: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Half-Hann-windowed cosine transform of a correlation function.

    Parameters
    ----------
    c : ndarray (..., L)
        Correlation at lags 0…L-1.
    dt_ps : float
        Lag spacing (ps).
    pad : int
        Zero-padding factor (finer frequency grid, not better resolution).

    Returns
    -------
    freq_THz : (F,)
    spec : (..., F)
    """
    L = c.shape[-1]
    if L < 4:
        raise ValueError(f"too few frames for a DOS: {L} lags (need >= 4)")
    w = 0.5 * (1 + np.cos(np.pi * np.arange(L) / L))
    cw = c * w
    nfft = pad * 2 * L
    ext = np.zeros(c.shape[:-1] + (nfft,))
    ext[..., :L] = cw
    ext[..., nfft - L + 1:] = cw[..., 1:][..., ::-1]
    spec = np.fft.rfft(ext, axis=-1).real * dt_ps
    return np.fft.rfftfreq(nfft, dt_ps), spec


def _band_centre(freq: np.ndarray, g: np.ndarray) -> np.ndarray:
    return np.trapezoid(g * freq, freq, axis=-1) / np.trapezoid(g, freq, axis=-1)


def band_centre(freq, g, units: str | None = None) -> xr.DataArray:
    """``∫ ν g dν / ∫ g dν`` along the frequency axis.

    Parameters
    ----------
    freq : array_like or xarray.DataArray, shape (F,)
        Frequencies (e.g. THz).
    g : array_like or xarray.DataArray, shape (..., F)
        Spectra on ``freq`` (last axis; for a DataArray the dim ``frequency`` or its last dim).
    units : str, optional
        Units of ``freq`` (default ``freq.attrs["units"]`` for a DataArray, else "THz").

    Returns
    -------
    xarray.DataArray, shape (...)
        Band centre(s) in the units of ``freq``; a DataArray ``g`` keeps its other dims/coords.
    """
    if units is None:
        units = str(freq.attrs.get("units", "THz")) if isinstance(freq, xr.DataArray) else "THz"
    f = np.asarray(freq, dtype=float)
    if isinstance(g, xr.DataArray):
        fd = "frequency" if "frequency" in g.dims else g.dims[-1]
        gt = g.transpose(..., fd)
        vals = _band_centre(f, np.asarray(gt.values, dtype=float))
        coords = {k: v for k, v in gt.coords.items() if fd not in v.dims}
        out = xr.DataArray(vals, dims=gt.dims[:-1], coords=coords)
    else:
        out = xr.DataArray(_band_centre(f, np.asarray(g, dtype=float)))
    out.attrs = {"units": units, "long_name": "band centre"}
    return out.rename("band_centre")


class PhononDOS(Analyzer):
    """Phonon DOS from the mass-weighted VACF, total and projected per species.

    Parameters
    ----------
    species : str or list, optional
        Species to project on (default all); the total always sums all species given.
    max_lag_ps : float
        Correlation length used (default 5 ps, capped at half the trajectory); sets the
        resolution (~1/max_lag).
    """

    def __init__(self, species: str | Sequence[str] | None = None, max_lag_ps: float = 5.0,
                 memory: float = _data.DEFAULT_MEMORY):
        self.species, self.max_lag_ps, self.memory = species, max_lag_ps, memory

    def compute(self, ds: xr.Dataset) -> "PhononDOS":
        _need_velocities(ds, "the phonon DOS")
        sp = _species_list(ds, self.species)
        nf = _data.n_frames(ds)
        if nf < 8:
            raise ValueError(f"too few frames for a DOS: {nf} (need >= 8)")
        dt = _data.frame_dt_ps(ds)
        L = max(4, min(nf // 2, int(round(self.max_lag_ps / dt)) + 1))
        # all species in one pass over the store: column k collects the masses of species k
        spec = _data.species(ds)
        idx = np.flatnonzero(np.isin(spec, sp))
        W = (spec[idx][:, None] == np.asarray(sp)[None, :]) * _data.masses(ds)[idx][:, None]
        C = vacf_sums(ds, idx, W, L, self.memory).T
        freq, spec = dos_from_vacf(C, dt)
        total = spec.sum(axis=0)
        n_atoms = sum(_data.select_species(ds, s).size for s in sp)
        scale = 3 * n_atoms / np.trapezoid(total, freq)
        spec *= scale
        total *= scale
        co = {"frequency": freq, "energy": ("frequency", freq * U.THZ_TO_MEV, {"units": "meV"}),
              "wavenumber": ("frequency", freq * U.THZ_TO_CM1, {"units": "cm^-1"})}
        dos = xr.DataArray(total, dims="frequency", coords=co, name="dos",
                           attrs={"units": "1/THz", "long_name": "phonon DOS (3N normalised)"})
        pdos = xr.DataArray(spec, dims=("species", "frequency"), coords={"species": sp, **co},
                            name="pdos", attrs={"units": "1/THz", "long_name": "species-projected DOS"})
        for a in (dos, pdos):
            a["frequency"].attrs["units"] = "THz"
        bc = _band_centre(freq, np.vstack([spec, total[None]]))
        bcs = xr.Dataset(
            {"band_centre": ("species", bc, {"units": "THz"}),
             "band_centre_meV": ("species", bc * U.THZ_TO_MEV, {"units": "meV"}),
             "band_centre_cm1": ("species", bc * U.THZ_TO_CM1, {"units": "cm^-1"})},
            coords={"species": sp + ["total"]})
        self._set(dos=dos, pdos=pdos, band_centres=bcs)
        return self

    dos = Result("1/THz", "Total DOS (frequency,), ∫ = 3N; energy (meV) and wavenumber (cm⁻¹) coords.")
    pdos = Result("1/THz", "Projected DOS (species, frequency).")
    band_centres = Result(None, "Band centre per species and 'total' in THz, meV and cm⁻¹ (Dataset, dim species).")

    def _results_dataset(self) -> xr.Dataset:
        # band centres include a "total" row: their species dim is named bc_species here
        from .base import _merge

        out = _merge([self.dos.to_dataset(name="dos"), self.pdos.to_dataset(name="pdos"),
                      self.band_centres.rename({"species": "bc_species"})])
        out.attrs = {"analyzer": type(self).__name__}
        return out

    def band_centre_of(self, species: str = "total") -> xr.DataArray:
        """Band centre of one species or the total, 0-d in THz (``float(...)`` for the number)."""
        bc = self.band_centres
        if species not in list(bc["species"].values):
            raise ValueError(f"species {species!r} not in this DOS ({list(bc['species'].values)})")
        return bc["band_centre"].sel(species=species)

    def _plot(self, P, ax=None, unit: str = "THz", **kw):
        curves = [self.dos] + [self.pdos.sel(species=s) for s in self.pdos["species"].values]
        labels = ["total"] + [str(s) for s in self.pdos["species"].values]
        fig = P.plot_dos(curves, labels, ax=ax, unit=unit, **kw)
        return ax if ax is not None else fig.axes[0]


def band_centre_shift(reference: PhononDOS, other: PhononDOS) -> xr.Dataset:
    """Change of band centres from ``reference`` (e.g. UC) to ``other`` (e.g. RTVC), per shared species.

    Returns a Dataset with ``shift`` in THz, ``shift_meV`` and ``shift_cm1``.
    """
    a, b = reference.band_centres, other.band_centres
    common = [s for s in a["species"].values if s in set(b["species"].values)]
    d = b["band_centre"].sel(species=common) - a["band_centre"].sel(species=common)
    return xr.Dataset({"shift": ("species", d.values, {"units": "THz"}),
                       "shift_meV": ("species", d.values * U.THZ_TO_MEV, {"units": "meV"}),
                       "shift_cm1": ("species", d.values * U.THZ_TO_CM1, {"units": "cm^-1"})},
                      coords={"species": common})
