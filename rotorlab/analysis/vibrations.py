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
from ._kernels import autocorr_fft
from .transport import _Analyzer


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


def mass_weighted_vacf(ds: xr.Dataset, species: str, max_lag: int, memory: float = _data.DEFAULT_MEMORY,
                       weighted: bool = True) -> np.ndarray:
    """Σ_i m_i ⟨v_i(0)·v_i(τ)⟩ over the atoms of ``species`` for lags 0…max_lag-1 (amu Å²/fs²)."""
    idx = _data.select_species(ds, species)
    m = _data.masses(ds)[idx] if weighted else np.ones(idx.size)
    nf = _data.n_frames(ds)
    out = np.zeros(max_lag)
    for b in _data.atom_batches(idx.size, nf, memory, copies=8):
        v = _data.read_series(ds, "velocities", idx[b], memory)
        out += (autocorr_fft(v)[:max_lag] * m[b][None]).sum(axis=1)
    return out


def vacf(ds: xr.Dataset, species: str | Sequence[str] | None = None, mass_weighted: bool = False,
         max_lag_ps: float | None = None, memory: float = _data.DEFAULT_MEMORY) -> xr.DataArray:
    """Normalised velocity autocorrelation per species, dims (species, lag_time).

    Parameters
    ----------
    ds : Dataset with ``velocities`` (Å/fs)
    species : str or list, optional (default all species)
    mass_weighted : bool
    max_lag_ps : float, optional (default: half the trajectory)
    """
    _need_velocities(ds, "the velocity autocorrelation")
    sp = _species_list(ds, species)
    nf = _data.n_frames(ds)
    dt = _data.frame_dt_ps(ds)
    L = nf // 2 if max_lag_ps is None else min(nf, int(round(max_lag_ps / dt)) + 1)
    rows = []
    for s in sp:
        c = mass_weighted_vacf(ds, s, L, memory, weighted=mass_weighted)
        rows.append(c / c[0])
    out = xr.DataArray(np.array(rows), dims=("species", "lag_time"),
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


def band_centre(freq: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``∫ ν g dν / ∫ g dν`` along the last axis (units of ``freq``)."""
    return np.trapezoid(g * freq, freq, axis=-1) / np.trapezoid(g, freq, axis=-1)


class PhononDOS(_Analyzer):
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

    @classmethod
    def from_dataset(cls, ds, **kw):
        return cls(**kw).compute(ds)

    @classmethod
    def from_store(cls, path, **kw):
        from rotorlab.store import open_store

        return cls(**kw).compute(open_store(path))

    def compute(self, ds: xr.Dataset) -> "PhononDOS":
        _need_velocities(ds, "the phonon DOS")
        sp = _species_list(ds, self.species)
        nf = _data.n_frames(ds)
        if nf < 8:
            raise ValueError(f"too few frames for a DOS: {nf} (need >= 8)")
        dt = _data.frame_dt_ps(ds)
        L = max(4, min(nf // 2, int(round(self.max_lag_ps / dt)) + 1))
        C = np.array([mass_weighted_vacf(ds, s, L, self.memory) for s in sp])
        freq, spec = dos_from_vacf(C, dt)
        total = spec.sum(axis=0)
        n_atoms = sum(_data.select_species(ds, s).size for s in sp)
        scale = 3 * n_atoms / np.trapezoid(total, freq)
        spec *= scale
        total *= scale
        co = {"frequency": freq, "energy": ("frequency", freq * U.THZ_TO_MEV, {"units": "meV"}),
              "wavenumber": ("frequency", freq * U.THZ_TO_CM1, {"units": "cm^-1"})}
        self._dos = xr.DataArray(total, dims="frequency", coords=co, name="dos",
                                 attrs={"units": "1/THz", "long_name": "phonon DOS (3N normalised)"})
        self._pdos = xr.DataArray(spec, dims=("species", "frequency"), coords={"species": sp, **co},
                                  name="pdos", attrs={"units": "1/THz", "long_name": "species-projected DOS"})
        for a in (self._dos, self._pdos):
            a["frequency"].attrs["units"] = "THz"
        bc = band_centre(freq, np.vstack([spec, total[None]]))
        self._bc = xr.Dataset(
            {"band_centre": ("species", bc, {"units": "THz"}),
             "band_centre_meV": ("species", bc * U.THZ_TO_MEV, {"units": "meV"}),
             "band_centre_cm1": ("species", bc * U.THZ_TO_CM1, {"units": "cm^-1"})},
            coords={"species": sp + ["total"]})
        self._computed = True
        return self

    @property
    def dos(self) -> xr.DataArray:
        """Total DOS (frequency,) in 1/THz, ∫ = 3N."""
        self._check()
        return self._dos

    @property
    def pdos(self) -> xr.DataArray:
        """Projected DOS (species, frequency) in 1/THz."""
        self._check()
        return self._pdos

    @property
    def band_centres(self) -> xr.Dataset:
        """Band centre per species and 'total' in THz, meV and cm⁻¹."""
        self._check()
        return self._bc

    def band_centre_of(self, species: str = "total") -> float:
        """Band centre (THz) of one species or the total."""
        bc = self.band_centres
        if species not in list(bc["species"].values):
            raise ValueError(f"species {species!r} not in this DOS ({list(bc['species'].values)})")
        return float(bc["band_centre"].sel(species=species))


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
