"""Transport: MSD, tracer diffusion, Nernst–Einstein conductivity, Arrhenius, mode contributions.

Definitions (DESIGN §5)
-----------------------
* **MSD** of the mobile ions from unwrapped positions, averaged over all time origins with
  the FFT algorithm.  Drift: the system centre of mass is subtracted for UC/RC (total momentum
  is conserved but the initial COM velocity need not be zero); nothing is subtracted for
  translation-constrained modes (TC, RTC, RTVC) whose anion frame is pinned.
* **Blocks**: the trajectory is cut into ``n_blocks`` (default 5) contiguous, non-overlapping
  segments of duration ``t_b = t_total / n_blocks``.
* **D_tr** is the slope/6 of ``MSD(t) = 6 D t + c`` fitted by least squares to the
  all-origin MSD of the *whole* trajectory over the lag window ``[f0, f1] × t_b`` (default
  ``f0 = 0.1``, ``f1 = 0.5``: past the ballistic/caging regime, and short enough that every
  lag is averaged over many origins).
* **Uncertainty of D_tr** (block averaging): each block's own all-origin MSD is fitted over
  the same lag window; the reported error is the standard error of the block slopes
  ``std(D_b, ddof=1) / sqrt(n_blocks)``.  The whole-trajectory fit uses the same lags with
  more origins, so this is a (slightly conservative) estimate of its error.  It captures
  correlations between ions (collective motion) because blocks are separated in time.
* **σ** by Nernst–Einstein ``σ = N q² D_tr / (V k_B T)`` in mS/cm, with V the mean cell
  volume and T the run's target temperature; error propagated linearly from D_tr.
* **Collective (charge) transport**: the all-origin MSD of the summed carrier displacement
  (the reference study's "dipole" MSD) gives ``D_sigma`` (slope / 6N), ``sigma_collective``
  and the Haven ratio ``D_tr / D_sigma``, with block errors like D_tr.  ``drift="framework"``
  removes the drift of the centre of mass of every non-mobile atom (the study's choice).
* **No temperature needed** for D and the MSDs: without a temperature every σ is NaN with
  ``attrs["reason"]`` (pass ``temperature=``).
* **Below measurable**: ``D_tr < 1e-8 cm²/s`` is never reported as a number: ``D_tr`` and
  ``sigma`` are NaN, ``below_measurable`` is True and ``D_tr_bound``/``sigma_bound`` carry the
  upper bound (the threshold itself and its σ).
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence

import numpy as np
import xarray as xr

from rotorlab import units as U

from . import _data
from ._kernels import msd_fft_rows, msd_fft_sum
from .base import Analyzer, Result, scalar

MODES = ("UC", "RC", "RTC", "RTVC")
CONTRIBUTIONS = ("Rot", "Trs", "Vib")


# ---------------------------------------------------------------------------------------
# kernels on arrays
# ---------------------------------------------------------------------------------------


def fit_window_indices(n_lags: int, window: tuple[float, float]) -> np.ndarray:
    """Lag indices (frames) inside the fractional fit window of a series of ``n_lags`` frames."""
    f0, f1 = window
    if not (0.0 <= f0 < f1 <= 1.0):
        raise ValueError(f"fit window must satisfy 0 <= start < end <= 1, got {window}")
    span = n_lags - 1
    lo = max(1, int(np.ceil(f0 * span)))
    hi = int(np.floor(f1 * span))
    return np.arange(lo, hi + 1)


def _fit_diffusion(lag_time_ps, msd_A2, window=(0.1, 0.5), dim=3) -> tuple[float, float]:
    """(D in cm²/s, intercept in Å²) as floats; see :func:`fit_diffusion`."""
    lag_time_ps, msd_A2 = np.asarray(lag_time_ps, dtype=float), np.asarray(msd_A2, dtype=float)
    idx = fit_window_indices(len(lag_time_ps), window)
    if idx.size < 3:
        raise ValueError(
            f"too few frames for a diffusion fit: only {idx.size} lag(s) in window {window} of a "
            f"{len(lag_time_ps)}-frame series (need >= 3); use a longer trajectory, fewer blocks or a wider window"
        )
    slope, icpt = np.polyfit(lag_time_ps[idx], msd_A2[idx], 1)
    return float(slope / (2 * dim) * U.A2_PER_PS_TO_CM2_PER_S), float(icpt)


def fit_diffusion(lag_time_ps: np.ndarray, msd_A2: np.ndarray, window: tuple[float, float] = (0.1, 0.5),
                  dim: int = 3) -> xr.Dataset:
    """Fit ``MSD = 2 dim D t + c`` over a fractional window of lag times.

    Parameters
    ----------
    lag_time_ps : array_like, shape (L,)
        Lag times (ps), ``lag_time_ps[0] = 0``.
    msd_A2 : array_like, shape (L,)
        MSD (Å²).
    window : (float, float)
        Fractions of the largest lag delimiting the fit.
    dim : int
        Dimensionality (3).

    Returns
    -------
    xarray.Dataset
        0-d ``D`` (cm²/s) and ``intercept`` (Å²); ``attrs["fit_window"]``.

    Raises
    ------
    ValueError
        If fewer than 3 lags fall in the window.
    """
    D, icpt = _fit_diffusion(lag_time_ps, msd_A2, window, dim)
    return xr.Dataset({"D": scalar(D, "cm^2/s", long_name="diffusion coefficient"),
                       "intercept": scalar(icpt, "Å^2", long_name="fitted MSD intercept")},
                      attrs={"fit_window": list(window), "dim": int(dim)})


def _msd_exponent(lag_time_ps, msd_A2, window=(0.1, 0.5)) -> tuple[float, float]:
    """(β, MSD at the window's end) as floats; see :func:`msd_exponent`."""
    idx = fit_window_indices(len(lag_time_ps), window)
    t, m = np.asarray(lag_time_ps)[idx], np.asarray(msd_A2)[idx]
    ok = (t > 0) & (m > 0)
    if ok.sum() < 2:
        return float("nan"), float(m[-1]) if m.size else float("nan")
    beta = np.polyfit(np.log(t[ok]), np.log(m[ok]), 1)[0]
    return float(beta), float(m[-1])


def msd_exponent(lag_time_ps: np.ndarray, msd_A2: np.ndarray,
                 window: tuple[float, float] = (0.1, 0.5)) -> xr.Dataset:
    """Log-log slope of the MSD over the fit window and the MSD at the window's end.

    Parameters
    ----------
    lag_time_ps : ndarray, shape (L,)
        Lag times (ps).
    msd_A2 : ndarray, shape (L,)
        MSD (Å²).
    window : (float, float)
        Fractions of the largest lag delimiting the fit.

    Returns
    -------
    xarray.Dataset
        0-d ``beta`` (units "1"): d ln MSD / d ln t over the window (1 for diffusion, 2
        ballistic, → 0 caged); ``msd_end`` (Å²): MSD at the last lag of the window.
    """
    beta, msd_end = _msd_exponent(lag_time_ps, msd_A2, window)
    return xr.Dataset({"beta": scalar(beta, "1", long_name="log-log slope of the MSD"),
                       "msd_end": scalar(msd_end, "Å^2", long_name="MSD at the end of the fit window")})


def nernst_einstein(D_cm2_s, n_ions: int, volume_A3: float, temperature_K: float, charge: float = 1.0):
    """Nernst–Einstein conductivity ``σ = N q² D / (V k_B T)``.

    Parameters
    ----------
    D_cm2_s : float, ndarray or xarray.DataArray
        Tracer diffusion coefficient (cm²/s).
    n_ions : int
        Number of mobile ions in the cell.
    volume_A3 : float
        Cell volume (Å³).
    temperature_K : float
    charge : float
        Ion charge in units of e.

    Returns
    -------
    xarray.DataArray
        σ in mS/cm (``attrs["units"]``), shape of ``D_cm2_s`` (0-d for a scalar; an input
        DataArray keeps its dims and coords).
    """
    q = charge * U.E_CHARGE
    D = (D_cm2_s if isinstance(D_cm2_s, xr.DataArray) else xr.DataArray(np.asarray(D_cm2_s, dtype=float))) * 1e-4
    V = volume_A3 * 1e-30  # m³
    out = n_ions * q * q * D / (V * U.KB_SI * temperature_K) * 10.0  # S/m → mS/cm
    out.attrs = {"units": "mS/cm", "long_name": "Nernst-Einstein ionic conductivity"}
    return out.rename("sigma")


#: float64 copies of one (frames, 3) series that the FFT MSD holds at once per atom (input,
#: centred rows, complex spectrum, power, DCT output, squares and sums): sizes atom batches
_MSD_COPIES = 10


def _ion_msd_sum(staged: np.ndarray, frames: slice, memory) -> np.ndarray:
    """Sum over ions of the per-ion all-origin MSD for a frame range, shape (L,).

    ``staged`` is the atom-major (n_ions, n_frames, 3) series from :func:`_data.stage_series`.
    """
    L = len(range(*frames.indices(staged.shape[1])))
    out = np.zeros(L)
    for b in _data.atom_batches(staged.shape[0], L, memory, copies=_MSD_COPIES):
        out += msd_fft_sum(np.asarray(staged[b, frames]))
    return out


def _block_msd_sums(staged, n_blocks: int, L: int, memory) -> np.ndarray:
    """Per-block sums over ions of the all-origin MSD, shape (n_blocks, L).

    Blocks are consecutive, non-overlapping runs of L frames; all blocks of a batch of ions
    go through one batched FFT.
    """
    N = staged.shape[0]
    out = np.zeros((n_blocks, L))
    for b in _data.atom_batches(N, n_blocks * L, memory, copies=_MSD_COPIES):
        x = np.asarray(staged[b, 0:n_blocks * L])  # (n, nb*L, 3)
        n = x.shape[0]
        out += msd_fft_sum(x.reshape(n, n_blocks, L, 3).swapaxes(0, 1))
    return out


def collective_msd(x: np.ndarray) -> np.ndarray:
    """All-origin MSD of the summed displacement (the collective or "charge" MSD).

    Parameters
    ----------
    x : ndarray, shape (T, N, 3)
        Unwrapped positions (Å) of the N carriers.

    Returns
    -------
    ndarray, shape (T,)
        ``⟨|Σ_i [x_i(t+τ) − x_i(t)]|²⟩`` in Å² (not divided by N). For independent carriers
        its expectation is N × the tracer MSD.
    """
    X = np.asarray(x, dtype=float).sum(axis=1)
    return msd_fft_rows(X[None])[0]


def _as_slice(ix: np.ndarray):
    """A slice for a contiguous run of indices (a view instead of a fancy-index copy)."""
    if ix.size and np.all(np.diff(ix) == 1):
        return slice(int(ix[0]), int(ix[-1]) + 1)
    return ix


def _stage(ds: xr.Dataset, idx: np.ndarray, drift: str, memory: float):
    """One pass over the store: drift-corrected, atom-major mobile series and their sum.

    Returns ``(staged (n_ions, n_frames, 3), summed (n_frames, 3), drift_atoms)``; the
    drift reference is the mass-weighted centre of the whole system (``com``) or of every
    atom that is not a mobile ion (``framework``), computed from the same block read.
    """
    nf = _data.n_frames(ds)
    shape = (idx.size, nf, 3)
    if 8 * idx.size * nf * 3 > 0.5 * memory:
        staged = _data.FileSeries(shape)  # atom-major on disk: atom batches read contiguously
    else:
        # in memory: frame-major blocks as read, indexed atom-major through a transposed
        # view (the FFT kernels copy into their own layout once anyway)
        staged = np.empty((nf, idx.size, 3)).transpose(1, 0, 2)
    summed = np.empty((nf, 3))
    if drift == "none":
        ref, read_atoms, loc = None, idx, np.arange(idx.size)
    else:
        m = _data.masses(ds)
        if drift == "framework":
            ref = np.setdiff1d(np.arange(m.size), idx)
            if ref.size == 0:
                raise ValueError("drift='framework' needs atoms other than the mobile ions (the framework); "
                                 "the trajectory has only mobile ions")
        else:
            ref = np.arange(m.size)
        read_atoms = np.union1d(ref, idx)
        loc = _as_slice(np.searchsorted(read_atoms, idx))
        rloc = _as_slice(np.searchsorted(read_atoms, ref))
        w = m[ref] / m[ref].sum()
    for fs in _data.frame_chunks(ds, max(read_atoms.size, 1) * 3 * 8 * 3, 0.25 * memory):
        xb = _data.read_block(ds, "positions", fs, read_atoms)
        x = xb[:, loc] if ref is not None else xb
        if ref is not None:
            com = np.einsum("fai,a->fi", xb[:, rloc], w)
            x -= com[:, None, :]
        staged[:, fs] = x.transpose(1, 0, 2)
        summed[fs] = x.sum(axis=1)
    return staged, summed, (0 if ref is None else ref.size)


def _temperature_or_nan(ds: xr.Dataset, given: float | None) -> float:
    if given is not None:
        return float(given)
    try:
        return _data.temperature_K(ds)
    except ValueError:
        return float("nan")


class Transport(Analyzer):
    """MSD, D_tr with block-averaged error, Nernst–Einstein σ, collective σ and the Haven ratio.

    Parameters
    ----------
    species : str, optional
        Mobile species (default: ``ds.attrs["mobile_species"]``).
    charge : float, optional
        Ion charge in e (default: ``ds.attrs["mobile_charge"]`` or 1).
    drift : {"auto", "com", "framework", "none"}
        ``auto`` follows DESIGN §5 (system COM for UC/RC, none for T-constrained modes);
        ``framework`` subtracts the mass-weighted centre of every atom that is not a mobile
        ion (the anion framework, as the reference study does).
    window : (float, float)
        Fractional fit window of lag times (default (0.1, 0.5)).
    n_blocks : int
        Independent segments for the error bar (default 5; ≥ 2).
    memory : float
        Bytes one materialised block may use.
    min_exponent, max_exponent, min_msd : float
        Diffusive-regime check: the log-log slope β of the MSD over the fit window must lie
        in [``min_exponent``, ``max_exponent``] (default [0.8, 1.3]; 2 is ballistic, → 0
        caged) and the MSD at the end of the window must be at least ``min_msd`` Å²
        (default 1.0). Otherwise ``result["diffusive"]`` is False (``attrs["reason"]`` names
        the failed condition) and a :class:`RuntimeWarning` says that D_tr reflects local
        motion (rattling, librations), not long-range transport — run longer.
    temperature : float, optional
        Temperature (K) for σ. Default: the store's target temperature or mean
        ``temperature``; with neither, D and the MSDs are still computed and every σ is NaN
        (``attrs["reason"]``).

    Notes
    -----
    **Collective (charge) transport**: ``msd_collective`` is the all-origin MSD of the summed
    carrier displacement ``Σ_i Δx_i`` (Å², not divided by N). ``D_sigma`` = slope/(6 N) over
    the same lag window, so ``D_sigma = D_tr`` for uncorrelated carriers;
    ``sigma_collective = N q² D_sigma / (V k_B T)``; the Haven ratio is ``D_tr / D_sigma``.
    Errors are the standard error over the same independent blocks as D_tr (the collective
    MSD has one "particle", so its error is much larger than the tracer's; a block slope
    that is not positive makes the Haven ratio undetermined: NaN with a reason).

    Examples
    --------
    >>> tr = Transport().compute(ds)        # doctest: +SKIP
    >>> tr.result["D_tr"]                    # doctest: +SKIP
    """

    def __init__(self, species: str | None = None, charge: float | None = None, drift: str = "auto",
                 window: tuple[float, float] = (0.1, 0.5), n_blocks: int = 5,
                 memory: float = _data.DEFAULT_MEMORY, min_exponent: float = 0.8,
                 max_exponent: float = 1.3, min_msd: float = 1.0, temperature: float | None = None):
        if drift not in ("auto", "com", "framework", "none"):
            raise ValueError(f"drift must be 'auto', 'com', 'framework' or 'none', got {drift!r}")
        if isinstance(n_blocks, bool) or int(n_blocks) != n_blocks or n_blocks < 2:
            raise ValueError(f"n_blocks must be an integer >= 2 to estimate an error, got {n_blocks!r}")
        if not memory > 0:
            raise ValueError(f"memory must be > 0 bytes, got {memory!r}")
        if temperature is not None and not (np.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be a positive number of kelvin, got {temperature!r}")
        if charge is not None and not (np.isfinite(charge) and charge != 0):
            raise ValueError(f"charge must be a non-zero number (units of e), got {charge!r}")
        self.species, self.charge, self.drift = species, charge, drift
        self.window, self.n_blocks, self.memory = tuple(window), int(n_blocks), memory
        self.min_exponent, self.max_exponent = float(min_exponent), float(max_exponent)
        self.min_msd = float(min_msd)
        self.temperature = None if temperature is None else float(temperature)

    msd = Result("Å^2", "All-origin MSD of the mobile ions, dims (lag_time,), lag_time in ps.")
    block_msd = Result("Å^2", "MSD of each independent block, dims (block, block_lag_time).")
    msd_collective = Result("Å^2", "All-origin MSD of the summed carrier displacement (not / N), "
                                   "dims (lag_time,).")
    result = Result(None, "0-d D_tr, D_tr_err, D_tr_bound, below_measurable, sigma, sigma_err, "
                          "sigma_bound, msd_exponent, msd_fit_end, diffusive, volume, temperature, "
                          "n_ions, D_tr_blocks (block,), D_sigma, D_sigma_err, sigma_collective, "
                          "sigma_collective_err, haven_ratio, haven_ratio_err, each with units.")

    def compute(self, ds: xr.Dataset) -> "Transport":
        _data._require(ds, ["positions", "cell"], "Transport")
        idx = _data.mobile_indices(ds, self.species)
        nf = _data.n_frames(ds)
        block_len = nf // self.n_blocks
        if block_len < 8 or fit_window_indices(block_len, self.window).size < 3:
            raise ValueError(
                f"too few frames for a diffusion fit: {nf} frames split into {self.n_blocks} blocks "
                f"leaves {block_len} frames per block (need >= 8 and >= 3 lags in window {self.window})"
            )
        drift = _data.drift_mode(ds) if self.drift == "auto" else self.drift
        dt = _data.frame_dt_ps(ds)
        staged, summed, _ = _stage(ds, idx, drift, self.memory)
        N = idx.size
        msd = _ion_msd_sum(staged, slice(0, nf), self.memory) / N
        cmsd = msd_fft_rows(summed[None])[0]
        lag = np.arange(nf) * dt
        # fit the full-trajectory MSD over the same absolute lag window as the blocks, so the
        # block standard error bounds the error of this (more origins, same lags) estimate
        D, icpt = _fit_diffusion(lag[:block_len], msd[:block_len], self.window)
        Dc = _fit_diffusion(lag[:block_len], cmsd[:block_len] / N, self.window)[0]
        nb, L = self.n_blocks, block_len
        bmsd = _block_msd_sums(staged, nb, L, self.memory) / N
        cb = msd_fft_rows(summed[:nb * L].reshape(nb, L, 3)) / N
        Db = np.array([_fit_diffusion(lag[:L], bmsd[k], self.window)[0] for k in range(nb)])
        Dcb = np.array([_fit_diffusion(lag[:L], cb[k], self.window)[0] for k in range(nb)])
        del staged
        sem = np.sqrt(self.n_blocks)
        D_err = float(np.std(Db, ddof=1) / sem)
        Dc_err = float(np.std(Dcb, ddof=1) / sem)
        beta, msd_end = _msd_exponent(lag[:block_len], msd[:block_len], self.window)
        why = []
        if not self.min_exponent <= beta <= self.max_exponent:
            why.append(f"log-log slope {beta:.2f} outside [{self.min_exponent:g}, "
                       f"{self.max_exponent:g}]" + (" (ballistic)" if beta > 1.5 else ""))
        if not msd_end >= self.min_msd:
            why.append(f"MSD {msd_end:.2f} Å² < {self.min_msd:g} Å² at the window's end")
        diffusive = not why
        if not diffusive and not D < U.D_MEASURABLE_CM2_S:
            warnings.warn(
                f"MSD of the mobile ions is not in the diffusive regime over the fit window "
                f"({'; '.join(why)}): D_tr = {D:.2e} cm²/s reflects local motion, "
                "not long-range transport; run longer", RuntimeWarning, stacklevel=3)
        V = float(_data.volumes(ds).mean())
        T = _temperature_or_nan(ds, self.temperature)
        t_reason = "" if np.isfinite(T) else ("no temperature in the store and none given "
                                              "(pass temperature=… / --temperature)")
        q = float(self.charge if self.charge is not None else (ds.attrs.get("mobile_charge") or 1.0))
        below = bool(D < U.D_MEASURABLE_CM2_S)
        ne = (lambda d: float(nernst_einstein(d, N, V, T, q))) if np.isfinite(T) else (lambda d: float("nan"))
        sig, sig_err, sig_bound = ne(D), ne(D_err), ne(U.D_MEASURABLE_CM2_S)
        msd_da = xr.DataArray(msd, dims="lag_time", coords={"lag_time": lag}, name="msd",
                              attrs={"units": "Å^2", "drift_removed": drift,
                                     "long_name": "mean squared displacement (all origins)"})
        msd_da["lag_time"].attrs["units"] = "ps"
        cmsd_da = xr.DataArray(cmsd, dims="lag_time", coords={"lag_time": lag}, name="msd_collective",
                               attrs={"units": "Å^2", "drift_removed": drift, "n_carriers": int(N),
                                      "long_name": "MSD of the summed carrier displacement (all origins)"})
        cmsd_da["lag_time"].attrs["units"] = "ps"
        block_da = xr.DataArray(bmsd, dims=("block", "block_lag_time"),
                                coords={"block_lag_time": lag[:block_len]}, name="block_msd",
                                attrs={"units": "Å^2"})
        block_da["block_lag_time"].attrs["units"] = "ps"
        nan = float("nan")
        rv = {}  # one Dataset constructor (21 __setitem__ calls cost more than the maths)
        rv["D_tr"] = xr.Variable((), nan if below else D, attrs={
            "units": "cm^2/s", "long_name": "tracer diffusion coefficient",
            "method": f"least-squares slope/6 of all-origin FFT MSD over lag window {self.window} "
                      f"x block duration ({self.n_blocks} blocks); drift removal: {drift}"})
        rv["D_tr_err"] = xr.Variable((), nan if below else D_err, attrs={
            "units": "cm^2/s", "method": f"standard error of slopes over {self.n_blocks} independent blocks"})
        rv["D_tr_bound"] = xr.Variable((), U.D_MEASURABLE_CM2_S if below else nan, attrs={
            "units": "cm^2/s", "long_name": "upper bound of D_tr when below measurable"})
        rv["below_measurable"] = xr.Variable((), below, attrs={
            "units": "1", "threshold_cm2_s": U.D_MEASURABLE_CM2_S})
        s_attrs = {"reason": t_reason} if t_reason else {}
        rv["sigma"] = xr.Variable((), nan if below else sig, attrs={
            "units": "mS/cm", "long_name": "Nernst-Einstein ionic conductivity", **s_attrs})
        rv["sigma_err"] = xr.Variable((), nan if below else sig_err, attrs={"units": "mS/cm", **s_attrs})
        rv["sigma_bound"] = xr.Variable((), sig_bound if below else nan, attrs={
            "units": "mS/cm", "long_name": "upper bound of sigma when below measurable", **s_attrs})
        rv["msd_exponent"] = xr.Variable((), beta, attrs={
            "units": "1", "long_name": "log-log slope of the MSD over the fit window (1: diffusive)"})
        rv["msd_fit_end"] = xr.Variable((), msd_end, attrs={
            "units": "Å^2", "long_name": "MSD at the end of the fit window"})
        rv["diffusive"] = xr.Variable((), diffusive, attrs={
            "units": "1", "criterion": f"{self.min_exponent:g} <= msd_exponent <= "
                                       f"{self.max_exponent:g} and msd_fit_end >= "
                                       f"{self.min_msd:g} Å^2", "reason": "; ".join(why)})
        rv["D_tr_blocks"] = xr.Variable("block", Db, attrs={"units": "cm^2/s"})
        # collective (charge) transport
        rv["D_sigma"] = xr.Variable((), Dc, attrs={
            "units": "cm^2/s", "long_name": "charge (collective) diffusion coefficient",
            "method": "slope/(6 N) of the all-origin MSD of the summed carrier displacement over the "
                      f"same lag window; drift removal: {drift}"})
        rv["D_sigma_err"] = xr.Variable((), Dc_err, attrs={
            "units": "cm^2/s", "method": f"standard error of slopes over {self.n_blocks} independent blocks"})
        rv["D_sigma_blocks"] = xr.Variable("block", Dcb, attrs={"units": "cm^2/s"})
        rv["sigma_collective"] = xr.Variable((), ne(Dc), attrs={
            "units": "mS/cm", "long_name": "conductivity from the collective (charge) MSD", **s_attrs})
        rv["sigma_collective_err"] = xr.Variable((), ne(Dc_err), attrs={"units": "mS/cm", **s_attrs})
        if Dc > 0 and not below and np.all(Dcb > 0):
            H = D / Dc
            H_err = H * float(np.hypot(D_err / D, Dc_err / Dc))
            h_reason = ""
        else:
            H = H_err = nan
            h_reason = ("D_tr below measurable" if below else
                        "a collective block slope is not positive: the charge MSD is too noisy for a "
                        "Haven ratio; run longer or pool replicas")
        rv["haven_ratio"] = xr.Variable((), H, attrs={"units": "1", "long_name": "Haven ratio D_tr / D_sigma",
                                                    "reason": h_reason})
        rv["haven_ratio_err"] = xr.Variable((), H_err, attrs={"units": "1", "method": "linear error propagation"})
        rv["volume"] = xr.Variable((), V, attrs={"units": "Å^3"})
        rv["temperature"] = xr.Variable((), T, attrs={"units": "K", **s_attrs})
        rv["n_ions"] = xr.Variable((), int(N), attrs={"units": "1"})
        res = xr.Dataset(rv)
        res.attrs.update({"mobile_species": str(_data.species(ds)[idx[0]]), "charge_e": q,
                          "fit_window": list(self.window), "n_blocks": self.n_blocks, "drift": drift})
        self._set(msd=msd_da, block_msd=block_da, msd_collective=cmsd_da, result=res)
        return self

    @property
    def D(self) -> xr.DataArray:
        """D_tr, 0-d in cm²/s (NaN when below measurable); ``float(tr.D)`` gives the number."""
        return self.result["D_tr"]

    @property
    def D_err(self) -> xr.DataArray:
        """Block standard error of D_tr, 0-d in cm²/s."""
        return self.result["D_tr_err"]

    @property
    def sigma(self) -> xr.DataArray:
        """σ, 0-d in mS/cm (NaN when below measurable)."""
        return self.result["sigma"]

    @property
    def below_measurable(self) -> xr.DataArray:
        """0-d bool (units "1"): D_tr below 1e-8 cm²/s."""
        return self.result["below_measurable"]

    def _plot(self, P, ax=None, **kw):
        return P.plot_curves([self.msd], [kw.pop("label", "MSD")], ax=ax, xscale="log", yscale="log",
                             skip_first=True, **kw)


def msd(ds: xr.Dataset, species: str | None = None, drift: str = "auto",
        memory: float = _data.DEFAULT_MEMORY) -> xr.DataArray:
    """All-origin FFT MSD of one species, dims (lag_time,) in Å² (lag_time in ps).

    Parameters
    ----------
    ds : xarray.Dataset
        Trajectory (DESIGN §3), possibly dask-backed.
    species : str, optional
        Species (default mobile species).
    drift : {"auto", "com", "framework", "none"}
    memory : float
        Bytes per materialised block.

    Returns
    -------
    xarray.DataArray, shape (n_frames,)
        MSD in Å² (``attrs["units"]``), coordinate ``lag_time`` in ps, ``attrs["drift_removed"]``.
    """
    _data._require(ds, ["positions"], "msd")
    idx = _data.mobile_indices(ds, species)
    if drift not in ("auto", "com", "framework", "none"):
        raise ValueError(f"drift must be 'auto', 'com', 'framework' or 'none', got {drift!r}")
    d = _data.drift_mode(ds) if drift == "auto" else drift
    nf = _data.n_frames(ds)
    m = _ion_msd_sum(_stage(ds, idx, d, memory)[0], slice(0, nf), memory) / idx.size
    lag = np.arange(nf) * (_data.frame_dt_ps(ds) if nf > 1 else 0.0)
    out = xr.DataArray(m, dims="lag_time", coords={"lag_time": lag}, name="msd",
                       attrs={"units": "Å^2", "drift_removed": d})
    out["lag_time"].attrs["units"] = "ps"
    return out


# ---------------------------------------------------------------------------------------
# Arrhenius
# ---------------------------------------------------------------------------------------


def arrhenius_fit(temperature_K: Sequence[float], values: Sequence[float], errors: Sequence[float] | None = None,
                  quantity: str = "D", units: str = "cm^2/s") -> xr.Dataset:
    """Fit ``ln y = ln A − E_a / (k_B T)``.

    Use ``y = D_tr`` for the diffusion barrier or ``y = σ T`` for the conductivity barrier.
    NaN values (below measurable) are excluded and listed in ``attrs["excluded_temperatures"]``.

    Parameters
    ----------
    temperature_K : array_like, shape (n,)
    values : array_like, shape (n,)
        Positive values of y.
    errors : array_like, shape (n,), optional
        1-σ errors of y; the fit is then weighted by ``(y/err)²`` and parameter errors follow
        from the weighted covariance (absolute errors).  Without errors the fit is ordinary
        least squares and parameter errors come from the residual variance (needs n ≥ 3).
    quantity : str
        Label for y ("D" or "sigmaT").
    units : str
        Units of y (and of the prefactor).

    Returns
    -------
    xarray.Dataset
        ``Ea`` and ``Ea_err`` (eV), ``prefactor`` and ``prefactor_err`` (units of y),
        ``ln_prefactor``, ``n_points``.

    Raises
    ------
    ValueError
        With fewer than 2 usable points (3 without errors).
    """
    T = np.asarray(temperature_K, dtype=float)
    y = np.asarray(values, dtype=float)
    e = None if errors is None else np.asarray(errors, dtype=float)
    ok = np.isfinite(y) & (y > 0) & np.isfinite(T) & (T > 0)
    if e is not None:
        ok &= np.isfinite(e) & (e > 0)
    excluded = T[~ok].tolist()
    T, y = T[ok], y[ok]
    need = 2 if e is not None else 3
    if T.size < need or np.unique(T).size < 2:
        raise ValueError(
            f"too few points for an Arrhenius fit of {quantity}: {T.size} usable (need >= {need} at "
            f"distinct temperatures{'' if e is not None else ' without error bars'}); "
            f"excluded (below measurable/invalid): {excluded}")
    x = 1.0 / (U.KB * T)  # 1/eV
    ly = np.log(y)
    X = np.column_stack([np.ones_like(x), -x])  # params: lnA, Ea
    if e is not None:
        w = (y / e[ok]) ** 2
        A = X.T @ (w[:, None] * X)
        cov = np.linalg.inv(A)
        p = cov @ (X.T @ (w * ly))
    else:
        A = X.T @ X
        p = np.linalg.solve(A, X.T @ ly)
        res = ly - X @ p
        s2 = float(res @ res) / (T.size - 2)
        cov = s2 * np.linalg.inv(A)
    lnA, Ea = float(p[0]), float(p[1])
    lnA_err, Ea_err = float(np.sqrt(cov[0, 0])), float(np.sqrt(cov[1, 1]))
    ds = xr.Dataset()
    ds["Ea"] = xr.DataArray(Ea, attrs={"units": "eV", "long_name": f"activation energy from {quantity}"})
    ds["Ea_err"] = xr.DataArray(Ea_err, attrs={"units": "eV"})
    ds["ln_prefactor"] = xr.DataArray(lnA, attrs={"units": f"ln({units})"})
    ds["ln_prefactor_err"] = xr.DataArray(lnA_err, attrs={"units": "1"})
    ds["prefactor"] = xr.DataArray(np.exp(lnA), attrs={"units": units})
    ds["prefactor_err"] = xr.DataArray(np.exp(lnA) * lnA_err, attrs={"units": units, "method": "delta method"})
    ds["n_points"] = xr.DataArray(int(T.size), attrs={"units": "1"})
    ds.attrs.update({"quantity": quantity, "excluded_temperatures": excluded,
                     "weighted": e is not None})
    return ds


def arrhenius_from_results(results: xr.Dataset, quantity: str = "D") -> xr.Dataset:
    """Arrhenius fit over the runs of an :func:`rotorlab.analysis.report.analyze` results set.

    Parameters
    ----------
    results : xarray.Dataset
        Output of :func:`~rotorlab.analysis.report.analyze` (dim ``run``) for one material
        and constraint mode at several temperatures.
    quantity : {"D", "sigmaT"}
        Fit D_tr (cm²/s) or σ·T (mS K/cm).  Error bars are used when every finite value has one.

    Returns
    -------
    xarray.Dataset
        As :func:`arrhenius_fit`: ``Ea``/``Ea_err`` in eV, ``prefactor``/``prefactor_err``.
    """
    T = np.asarray(results["target_temperature"].values, dtype=float)
    if quantity == "D":
        y, e, un = results["D_tr"].values, results["D_tr_err"].values, "cm^2/s"
    elif quantity == "sigmaT":
        y, e, un = results["sigma"].values * T, results["sigma_err"].values * T, "mS K/cm"
    else:
        raise ValueError("quantity must be 'D' or 'sigmaT'")
    e = np.where(np.isfinite(e) & (e > 0), e, np.nan)
    use_err = bool(np.all(np.isfinite(e[np.isfinite(y)]))) and np.isfinite(y).sum() >= 2
    return arrhenius_fit(T, y, e if use_err else None, quantity=quantity, units=un)


# ---------------------------------------------------------------------------------------
# mode contributions (reference study eqs. 3-6, Fig. 3f)
# ---------------------------------------------------------------------------------------


def _delta(la, ba, lb, bb):
    """Δ = log σ_a − log σ_b with below-measurable bounds → (value, kind)."""
    if not ba and not bb:
        return la - lb, "value"
    if not ba and bb:
        return la - lb, "lower_bound"
    if ba and not bb:
        return la - lb, "upper_bound"
    return float("nan"), "undetermined"


def _r_with_bounds(deltas, kinds, big=1e6):
    n = len(deltas)
    if any(k == "undetermined" for k in kinds):
        return [float("nan")] * n, [float("nan")] * n, [float("nan")] * n, ["undetermined"] * n
    opts = []
    for d, k in zip(deltas, kinds):
        if k == "value":
            opts.append((d,))
        elif k == "lower_bound":
            opts.append((d, d + big))
        else:
            opts.append((d, d - big))
    tot = sum(deltas)
    r0 = [d / tot if tot != 0 else float("nan") for d in deltas]
    corners = []
    for c in itertools.product(*opts):
        s = sum(c)
        corners.append([v / s if s != 0 else float("nan") for v in c])
    corners = np.asarray(corners)
    lo, hi = np.nanmin(corners, axis=0), np.nanmax(corners, axis=0)
    rk = []
    for i in range(n):
        if np.isclose(lo[i], hi[i], rtol=0, atol=1e-12):
            rk.append("value")
        elif np.isclose(r0[i], lo[i], rtol=0, atol=1e-9):
            rk.append("lower_bound")
        elif np.isclose(r0[i], hi[i], rtol=0, atol=1e-9):
            rk.append("upper_bound")
        else:
            rk.append("range")
    return r0, lo.tolist(), hi.tolist(), rk


def mode_contributions(sigma: xr.DataArray, sigma_bound: xr.DataArray | None = None) -> xr.Dataset:
    """Mode contributions to conductivity (DESIGN §5; reference study eqs. 3–6, Fig. 3f).

    ``Δ_Rot = log σ_UC − log σ_RC``, ``Δ_Trs = log σ_RC − log σ_RTC``,
    ``Δ_Vib = log σ_RTC − log σ_RTVC`` (log10, decades), ``r_mode = Δ_mode / ΣΔ``, and the
    order-of-magnitude drop ``log10(σ_UC / σ_mode)`` for every mode.

    A below-measurable σ (NaN in ``sigma``) enters through its upper bound ``sigma_bound``;
    every derived number then carries a ``*_kind`` of ``value``, ``lower_bound``,
    ``upper_bound``, ``range`` or ``undetermined`` and ``r_lo``/``r_hi`` give the feasible
    interval of each ``r``.

    Parameters
    ----------
    sigma : xarray.DataArray
        σ (mS/cm) with a ``mode`` dim holding at least UC, RC, RTC, RTVC; any other dims (e.g.
        ``temperature``) are looped over.
    sigma_bound : xarray.DataArray, optional
        Upper bounds (mS/cm) for the below-measurable entries, same shape.

    Returns
    -------
    xarray.Dataset
        ``delta`` (contribution, …) in decades (units "1"), ``delta_kind``, ``r``, ``r_lo``, ``r_hi``,
        ``r_kind`` (contribution, …), ``drop`` and ``drop_kind`` (mode, …).
    """
    if "mode" not in sigma.dims:
        raise ValueError("sigma needs a 'mode' dimension with UC, RC, RTC, RTVC")
    missing = [m for m in MODES if m not in list(map(str, sigma["mode"].values))]
    if missing:
        raise ValueError(f"sigma lacks constraint mode(s) {missing}")
    sig = sigma.sel(mode=list(MODES)).transpose("mode", ...)
    below = ~np.isfinite(sig.values)
    if below.any():
        if sigma_bound is None:
            raise ValueError("sigma has below-measurable (NaN) entries: pass sigma_bound")
        bnd = sigma_bound.sel(mode=list(MODES)).transpose("mode", ...).values
        if not np.all(np.isfinite(bnd[below])):
            raise ValueError("sigma_bound must be finite where sigma is below measurable")
        vals = np.where(below, bnd, sig.values)
    else:
        vals = sig.values
    L = np.log10(vals)
    rest_shape = L.shape[1:]
    dshape = (3,) + rest_shape
    delta = np.full(dshape, np.nan)
    dkind = np.empty(dshape, dtype=object)
    r = np.full(dshape, np.nan)
    rlo = np.full(dshape, np.nan)
    rhi = np.full(dshape, np.nan)
    rkind = np.empty(dshape, dtype=object)
    drop = np.full(L.shape, np.nan)
    dropk = np.empty(L.shape, dtype=object)
    for ix in np.ndindex(*rest_shape):
        ds_, ks = [], []
        for c in range(3):
            v, k = _delta(L[(c,) + ix], below[(c,) + ix], L[(c + 1,) + ix], below[(c + 1,) + ix])
            delta[(c,) + ix], dkind[(c,) + ix] = v, k
            ds_.append(v)
            ks.append(k)
        rr, lo, hi, rk = _r_with_bounds(ds_, ks)
        for c in range(3):
            r[(c,) + ix], rlo[(c,) + ix], rhi[(c,) + ix], rkind[(c,) + ix] = rr[c], lo[c], hi[c], rk[c]
        for m in range(4):
            v, k = _delta(L[(0,) + ix], below[(0,) + ix], L[(m,) + ix], below[(m,) + ix])
            drop[(m,) + ix], dropk[(m,) + ix] = v, k
    other_dims = sig.dims[1:]
    coords = {d: sig[d] for d in other_dims if d in sig.coords}
    cdims = ("contribution",) + other_dims
    mdims = ("mode",) + other_dims
    out = xr.Dataset(coords={"contribution": list(CONTRIBUTIONS), "mode": list(MODES), **coords})
    out["delta"] = xr.DataArray(delta, dims=cdims, attrs={"units": "1", "long_name": "Δ log10 σ (decades)"})
    out["delta_kind"] = xr.DataArray(dkind.astype(str), dims=cdims, attrs={"units": "1"})
    out["r"] = xr.DataArray(r, dims=cdims, attrs={"units": "1", "long_name": "mode contribution r_mode"})
    out["r_lo"] = xr.DataArray(rlo, dims=cdims, attrs={"units": "1"})
    out["r_hi"] = xr.DataArray(rhi, dims=cdims, attrs={"units": "1"})
    out["r_kind"] = xr.DataArray(rkind.astype(str), dims=cdims, attrs={"units": "1"})
    out["drop"] = xr.DataArray(drop, dims=mdims, attrs={"units": "1",
                                                        "long_name": "log10(sigma_UC / sigma_mode) (decades)"})
    out["drop_kind"] = xr.DataArray(dropk.astype(str), dims=mdims, attrs={"units": "1"})
    return out


def sigma_table(results: xr.Dataset) -> tuple[xr.DataArray, xr.DataArray]:
    """Pivot an ``analyze`` results set (dim ``run``) to σ and σ-bound arrays (mode, temperature).

    Parameters
    ----------
    results : xarray.Dataset
        Output of :func:`~rotorlab.analysis.report.analyze` for one material.

    Returns
    -------
    sigma, sigma_bound : xarray.DataArray, shape (4, n_temperatures)
        In mS/cm, dims (mode, temperature) with modes UC, RC, RTC, RTVC; NaN where a run is
        missing (sigma) or measurable (sigma_bound).  A run whose MSD is not diffusive
        (``diffusive`` False) never enters as a value: its apparent σ becomes an upper bound
        (the slope of a caged/sub-diffusive MSD over-estimates long-range transport), so the
        mode contributions built from it are bounds of the matching kind.  Inputs of
        :func:`mode_contributions`.
    """
    modes = [str(m).upper() for m in results["constraint_mode"].values]
    temps = np.asarray(results["target_temperature"].values, dtype=float)
    ut = np.unique(temps)
    sig = np.full((len(MODES), ut.size), np.nan)
    bnd = np.full_like(sig, np.nan)
    diff = (np.asarray(results["diffusive"].values, dtype=bool) if "diffusive" in results
            else np.ones(temps.size, dtype=bool))
    for i, (m, T) in enumerate(zip(modes, temps)):
        if m not in MODES:
            continue
        a, b = MODES.index(m), int(np.searchsorted(ut, T))
        s_i = float(results["sigma"].values[i])
        if np.isfinite(s_i) and not diff[i]:
            # not diffusive: the apparent sigma (slope of a sub-diffusive MSD over the window)
            # over-estimates long-range transport, so it is an upper bound, never a value
            bnd[a, b] = s_i
            continue
        sig[a, b] = s_i
        bnd[a, b] = float(results["sigma_bound"].values[i])
    coords = {"mode": list(MODES), "temperature": ut}
    s = xr.DataArray(sig, dims=("mode", "temperature"), coords=coords, attrs={"units": "mS/cm"})
    b = xr.DataArray(bnd, dims=("mode", "temperature"), coords=coords, attrs={"units": "mS/cm"})
    s["temperature"].attrs["units"] = "K"
    b["temperature"].attrs["units"] = "K"
    return s, b
