"""Rotor dynamics as the reference study measured it: C1/C2 over every ligand bond vector,
integrated correlation times, the Ivanov jump-diffusion fit, and full-rotation reorientation.

Definitions
-----------
* **Ligand bond vectors** of rotor r: unit vectors from the rotor's mass-weighted centre
  to each of its atoms farther than ``min_bond`` (0.5 Å) from it in the first frame
  (B→H for BH4, P→S for PS4, cage centre→B/H for B10H10), minimum image; optionally only
  atoms of ``ligand_species``.
* ``C_l(t) = ⟨P_l(u(0)·u(t))⟩`` over all time origins (FFT) and all ligand vectors, l = 1, 2.
* **Integrated time** ``τ_l = ∫_0^{t*} C_l dt`` with t* the first lag where C_l drops below
  ``cutoff`` (0.02 in the study; fast rotors).  If C_l never drops below the cutoff within
  half the run, τ_l is NaN and ``tau_*_int_bound`` carries the lower bound (the integral so far).
* **Ivanov jump model** (E. N. Ivanov, Sov. Phys. JETP 18, 1041 (1964)): jumps of a fixed
  angle Δ about random axes after exponentially distributed residence times τ0 give
  ``C_l(t) = exp(−t/τ_l)`` with ``1/τ_l = (1/τ0) [1 − sin((l+½)Δ) / ((2l+1) sin(Δ/2))]``.
  C1 and C2 are fitted jointly (``A_l exp(−t/τ_l)``, amplitudes A_l absorb the fast
  libration drop) over lags from ``fit_start_ps`` to the first drop below ``cutoff``; the
  parameter errors are the fit's standard errors (for one run) — pool replicas
  (:class:`rotorlab.analysis.replicas.ReplicaSet`) for errors over replicas.
* **Reorientation frequency** ``1/τ`` (per ns) for every correlation time.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from . import _data
from ._kernels import _autocorr_rows
from .base import Analyzer, Result

__all__ = ["RotorDynamics", "ivanov_tau", "fit_ivanov", "integrated_time", "ligand_vectors",
           "ligand_groups", "legendre_acfs"]


# ---------------------------------------------------------------------------------------
# ligand vectors
# ---------------------------------------------------------------------------------------


def ligand_groups(ds: xr.Dataset, kind: str | None = None, ligand_species=None, min_bond: float = 0.5):
    """Rotors and their ligand atoms, from the first frame.

    Parameters
    ----------
    ds : xarray.Dataset
        Trajectory with ``rotor_id`` (atom) and the ``rotor`` dim.
    kind : str, optional
        Restrict to one ``rotor_kind``.
    ligand_species : str or sequence of str, optional
        Only these species are ligands (default: every rotor atom farther than ``min_bond``).
    min_bond : float
        Distance (Å) from the rotor centre below which an atom is the centre, not a ligand.

    Returns
    -------
    rotors : ndarray (R,) int
        Rotor indices.
    members : list of ndarray
        Atom indices of each rotor (all its atoms, for the centre of mass).
    ligands : list of ndarray
        Ligand atom indices of each rotor (subset of ``members``).
    """
    from .rotation import _rotor_indices

    ridx = _rotor_indices(ds, kind)
    if "rotor_id" not in ds.variables:
        raise ValueError("rotor dynamics needs 'rotor_id' (atom → rotor) in the trajectory")
    rid = np.asarray(ds["rotor_id"].values).astype(np.int64)
    spec = _data.species(ds)
    m = _data.masses(ds)
    x0 = _data.read_block(ds, "positions", slice(0, 1))[0]
    c0 = _data.cells(ds, slice(0, 1))[0]
    want = None if ligand_species is None else ([ligand_species] if isinstance(ligand_species, str)
                                                else list(ligand_species))
    members, ligands = [], []
    for r in ridx:
        mem = np.flatnonzero(rid == r)
        if mem.size < 2:
            raise ValueError(f"rotor {int(r)} has {mem.size} atom(s) in rotor_id; needs a centre and ligands")
        rel = _data.min_image(x0[mem] - x0[mem[0]], c0)
        com = (m[mem, None] * rel).sum(0) / m[mem].sum()
        d = np.linalg.norm(rel - com, axis=1)
        sel = d > min_bond
        if want is not None:
            sel &= np.isin(spec[mem], want)
        if sel.sum() < 1:
            raise ValueError(f"rotor {int(r)} has no ligand atom (farther than {min_bond} Å from its centre"
                             + (f", species {want}" if want else "") + ")")
        members.append(mem)
        ligands.append(mem[sel])
    return ridx, members, ligands


def ligand_vectors(ds: xr.Dataset, kind: str | None = None, ligand_species=None, min_bond: float = 0.5,
                   memory: float = _data.DEFAULT_MEMORY) -> xr.DataArray:
    """Unit centre→ligand vectors of every rotor, read block by block.

    Rotors with different ligand counts are padded with NaN along ``ligand``.

    Returns
    -------
    xarray.DataArray, dims (frame, rotor, ligand, xyz), units "1"
    """
    _data._require(ds, ["positions", "cell", "mass"], "ligand vectors")
    ridx, members, ligands = ligand_groups(ds, kind, ligand_species, min_bond)
    nl = max(lg.size for lg in ligands)
    atoms = np.unique(np.concatenate(members))
    m = _data.masses(ds)
    nf = _data.n_frames(ds)
    out = np.full((nf, ridx.size, nl, 3), np.nan)
    # flat member list, each member's rotor and the rotor's first atom (unwrapping anchor)
    flat = np.concatenate(members)
    owner = np.repeat(np.arange(ridx.size), [mem.size for mem in members])
    loc = np.searchsorted(atoms, flat)
    anchor = np.searchsorted(atoms, np.array([mem[0] for mem in members]))[owner]
    wflat = np.concatenate([m[mem] / m[mem].sum() for mem in members])
    starts = np.concatenate([[0], np.cumsum([mem.size for mem in members])[:-1]])
    is_lig = np.concatenate([np.isin(mem, lg) for mem, lg in zip(members, ligands)])
    slot = np.concatenate([np.cumsum(np.isin(mem, lg)) - 1 for mem, lg in zip(members, ligands)])
    for fs in _data.frame_chunks(ds, atoms.size * 3 * 8 * 6 + ridx.size * nl * 24, memory):
        x = _data.read_block(ds, "positions", fs, atoms)
        c = _data.cells(ds, fs)[:, None]
        rel = _data.min_image(x[:, loc] - x[:, anchor], c)  # (f, n_members, 3)
        com = np.add.reduceat(rel * wflat[None, :, None], starts, axis=1)  # (f, R, 3)
        v = rel[:, is_lig] - com[:, owner[is_lig]]
        v /= np.linalg.norm(v, axis=-1, keepdims=True)
        out[fs, owner[is_lig], slot[is_lig]] = v
    da = xr.DataArray(out, dims=("frame", "rotor", "ligand", "xyz"), coords={"rotor": ridx},
                      name="ligand_vectors", attrs={"units": "1", "long_name": "unit centre-ligand vectors"})
    return da


# ---------------------------------------------------------------------------------------
# correlation functions and times
# ---------------------------------------------------------------------------------------


def legendre_acfs(u: np.ndarray, memory: float = _data.DEFAULT_MEMORY) -> tuple[np.ndarray, np.ndarray]:
    """All-origin ``⟨P1(u(0)·u(t))⟩`` and ``⟨P2(u(0)·u(t))⟩`` averaged over vectors.

    Parameters
    ----------
    u : ndarray, shape (T, M, 3)
        Unit vectors (NaN columns are ignored).
    memory : float
        Bytes for one batch of FFT rows.

    Returns
    -------
    c1, c2 : ndarray, shape (T,)
    """
    T = u.shape[0]
    ok = np.all(np.isfinite(u), axis=(0, 2))
    u = u[:, ok]
    M = u.shape[1]
    if M == 0:
        raise ValueError("no finite orientation vectors")
    s2 = np.sqrt(2.0)
    c1 = np.zeros(T)
    c2 = np.zeros(T)
    per = max(1, int(memory // (T * 8 * 6 * 4)))
    for a in range(0, M, per):
        v = u[:, a:a + per]
        y = np.ascontiguousarray(v.transpose(1, 2, 0)).reshape(-1, T)
        c1 += _autocorr_rows(y, T).sum(axis=0)
        q = np.stack([v[..., 0] ** 2, v[..., 1] ** 2, v[..., 2] ** 2, s2 * v[..., 0] * v[..., 1],
                      s2 * v[..., 0] * v[..., 2], s2 * v[..., 1] * v[..., 2]], axis=0)  # (6, T, m)
        y2 = np.ascontiguousarray(q.transpose(2, 0, 1)).reshape(-1, T)
        c2 += _autocorr_rows(y2, T).sum(axis=0)
    norm = 1.0 / (M * (T - np.arange(T)))
    return c1 * norm, 1.5 * c2 * norm - 0.5


def integrated_time(lag_ps: np.ndarray, c: np.ndarray, cutoff: float = 0.02,
                    max_lag_ps: float | None = None) -> tuple[float, float, float]:
    """``∫_0^{t*} C dt`` up to the first lag t* where C < ``cutoff`` (trapezoid rule).

    Returns
    -------
    tau : float
        Integral in ps (NaN if C never drops below the cutoff before ``max_lag_ps``).
    t_star : float
        First lag below the cutoff (ps; NaN if none).
    bound : float
        The integral up to ``max_lag_ps`` when C never dropped (a lower bound), else NaN.
    """
    lag_ps, c = np.asarray(lag_ps, float), np.asarray(c, float)
    n = c.size if max_lag_ps is None else int(np.searchsorted(lag_ps, max_lag_ps, side="right"))
    below = np.flatnonzero(c[:n] < cutoff)
    if below.size == 0:
        return float("nan"), float("nan"), float(np.trapezoid(c[:n], lag_ps[:n]))
    k = int(below[0])
    return float(np.trapezoid(c[:k + 1], lag_ps[:k + 1])), float(lag_ps[k]), float("nan")


def ivanov_tau(tau0, delta_rad, l):
    """Ivanov jump-model correlation time ``τ_l = τ0 / [1 − sin((l+½)Δ) / ((2l+1) sin(Δ/2))]``.

    Parameters
    ----------
    tau0 : float or ndarray
        Mean residence time between jumps (any time unit; τ_l has the same).
    delta_rad : float or ndarray
        Jump angle Δ (radians, 0 < Δ ≤ π).
    l : int
        Legendre order.
    """
    d = np.asarray(delta_rad, dtype=float)
    lam = np.sin((l + 0.5) * d) / ((2 * l + 1) * np.sin(0.5 * d))
    return np.asarray(tau0, dtype=float) / (1.0 - lam)


def fit_ivanov(lag_ps: np.ndarray, c1: np.ndarray, c2: np.ndarray, cutoff: float = 0.02,
               fit_start_ps: float = 0.0, max_lag_ps: float | None = None) -> dict:
    """Joint least-squares fit of C1 and C2 to ``A_l exp(−t/τ_l(τ0, Δ))`` (Ivanov model).

    Each C_l enters over lags in [``fit_start_ps``, first drop below ``cutoff``) (and ≤
    ``max_lag_ps``).  Δ is searched on a grid over (0, π] first (the problem is separable
    for fixed Δ), then refined with :func:`scipy.optimize.least_squares`.

    Returns
    -------
    dict
        ``tau0``, ``tau0_err`` (ps), ``delta``, ``delta_err`` (degree), ``a1``, ``a2``,
        ``tau1``, ``tau2`` (ps), ``n_points``, ``converged`` (bool), ``message``.
    """
    from scipy.optimize import least_squares

    lag_ps = np.asarray(lag_ps, float)
    nmax = lag_ps.size if max_lag_ps is None else int(np.searchsorted(lag_ps, max_lag_ps, side="right"))
    parts = []
    for c in (c1, c2):
        c = np.asarray(c, float)[:nmax]
        below = np.flatnonzero(c < cutoff)
        end = int(below[0]) if below.size else c.size
        sel = np.arange(end)
        sel = sel[lag_ps[sel] >= fit_start_ps]
        parts.append((lag_ps[sel], c[sel]))
    nan = float("nan")
    bad = {"tau0": nan, "tau0_err": nan, "delta": nan, "delta_err": nan, "a1": nan, "a2": nan,
           "tau1": nan, "tau2": nan, "n_points": sum(p[0].size for p in parts), "converged": False}
    if min(p[0].size for p in parts) < 3:
        return {**bad, "message": "fewer than 3 lags above the cutoff in C1 or C2: the run or the "
                                  "frame spacing cannot resolve the decay"}
    (t1, y1), (t2, y2) = parts

    def resid(p):
        lt0, d, a1, a2 = p
        tau1 = ivanov_tau(np.exp(lt0), d, 1)
        tau2 = ivanov_tau(np.exp(lt0), d, 2)
        return np.concatenate([a1 * np.exp(-t1 / tau1) - y1, a2 * np.exp(-t2 / tau2) - y2])

    # start: Δ on a grid, τ0 from the C1 log-slope, amplitudes 1
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = y1 > 0
        s = np.polyfit(t1[ok], np.log(y1[ok]), 1)[0] if ok.sum() >= 2 else -1.0 / max(t1[-1], 1e-9)
    tau1_0 = -1.0 / s if s < 0 else max(t1[-1], 1e-6)
    best = None
    for d0 in np.radians(np.arange(10.0, 180.0, 10.0)):
        lam1 = np.sin(1.5 * d0) / (3 * np.sin(0.5 * d0))
        p0 = [np.log(tau1_0 * (1 - lam1)), d0, 1.0, 1.0]
        r = resid(p0)
        if best is None or r @ r < best[0]:
            best = (r @ r, p0)
    lo = [-np.inf, 1e-3, 0.0, 0.0]
    hi = [np.inf, np.pi, 2.0, 2.0]
    fit = least_squares(resid, best[1], bounds=(lo, hi), x_scale="jac")
    p = fit.x
    n, k = fit.fun.size, p.size
    dof = max(n - k, 1)
    s2 = float(fit.fun @ fit.fun) / dof
    try:
        cov = np.linalg.pinv(fit.jac.T @ fit.jac) * s2
        err = np.sqrt(np.clip(np.diag(cov), 0, None))
    except np.linalg.LinAlgError:  # pragma: no cover
        err = np.full(k, nan)
    tau0 = float(np.exp(p[0]))
    return {"tau0": tau0, "tau0_err": float(tau0 * err[0]), "delta": float(np.degrees(p[1])),
            "delta_err": float(np.degrees(err[1])), "a1": float(p[2]), "a2": float(p[3]),
            "tau1": float(ivanov_tau(tau0, p[1], 1)), "tau2": float(ivanov_tau(tau0, p[1], 2)),
            "n_points": int(n), "converged": bool(fit.success), "message": str(fit.message)}


class RotorDynamics(Analyzer):
    """C1(t), C2(t) over all ligand bond vectors; integrated and Ivanov-fit correlation times.

    Parameters
    ----------
    kind : str, optional
        Restrict to one ``rotor_kind``.
    cutoff : float
        C(t) level ending the integration and the fit (0.02, as in the reference study).
    fit_start_ps : float
        First lag (ps) of the Ivanov fit (skip the libration drop; default 0).
    max_lag_ps : float, optional
        Longest lag used (default: half the run, where every lag still has many origins).
    ligand_species : str or sequence of str, optional
        Only these species are ligands.
    min_bond : float
        Atoms closer than this (Å) to the rotor centre are not ligands.
    memory : float
        Bytes per materialised block.

    Notes
    -----
    Results ``c1``/``c2`` (lag_time,) unitless; ``result`` (0-d, with units):
    ``tau_c1_int``, ``tau_c2_int`` (ps; NaN + ``*_bound`` lower bound when C never drops below
    the cutoff), ``frequency_c1_int``, ``frequency_c2_int`` (1/ns), ``tau0``, ``tau0_err`` (ps),
    ``delta``, ``delta_err`` (degree), ``tau_c1_fit``, ``tau_c2_fit`` (ps), ``jump_frequency``
    (1/τ0, 1/ns), ``frequency_c1_fit``, ``frequency_c2_fit`` (1/ns), ``fit_converged``, ``n_vectors``.
    """

    c1 = Result("1", "⟨P1(u(0)·u(t))⟩ over all ligand vectors, dims (lag_time,), lag_time in ps.")
    c2 = Result("1", "⟨P2(u(0)·u(t))⟩ over all ligand vectors, dims (lag_time,), lag_time in ps.")
    result = Result(None, "0-d correlation times (ps), Ivanov τ0 (ps) and Δ (degree), frequencies (1/ns).")

    def __init__(self, kind: str | None = None, cutoff: float = 0.02, fit_start_ps: float = 0.0,
                 max_lag_ps: float | None = None, ligand_species=None, min_bond: float = 0.5,
                 memory: float = _data.DEFAULT_MEMORY):
        if not 0 < cutoff < 1:
            raise ValueError(f"cutoff must be in (0, 1), got {cutoff!r}")
        if fit_start_ps < 0:
            raise ValueError(f"fit_start_ps must be >= 0, got {fit_start_ps!r}")
        self.kind, self.cutoff, self.fit_start_ps, self.max_lag_ps = kind, float(cutoff), float(fit_start_ps), max_lag_ps
        self.ligand_species, self.min_bond, self.memory = ligand_species, float(min_bond), memory

    def compute(self, ds: xr.Dataset) -> "RotorDynamics":
        nf = _data.n_frames(ds)
        if nf < 4:
            raise ValueError(f"too few frames for rotor correlation functions: {nf} (need >= 4)")
        u = ligand_vectors(ds, self.kind, self.ligand_species, self.min_bond, self.memory)
        c1, c2 = legendre_acfs(u.values.reshape(nf, -1, 3), self.memory)
        dt = _data.frame_dt_ps(ds)
        lag = np.arange(nf) * dt
        a1, a2, res = self.estimates(lag, c1, c2, int(np.isfinite(u.values[0, ..., 0]).sum()))
        self._set(c1=a1, c2=a2, result=res)
        return self

    def estimates(self, lag, c1, c2, n_vectors: int):
        """This analyzer's estimators on given curves (used for pooled replica curves).

        Parameters
        ----------
        lag : ndarray (L,), ps
        c1, c2 : ndarray (L,)
        n_vectors : int

        Returns
        -------
        c1, c2 : xarray.DataArray (lag_time,)
        result : xarray.Dataset of 0-d values (see the class notes)
        """
        maxlag = self.max_lag_ps if self.max_lag_ps is not None else 0.5 * lag[-1]
        co = {"lag_time": lag}
        a1 = xr.DataArray(c1, dims="lag_time", coords=co, name="C1", attrs={"units": "1"})
        a2 = xr.DataArray(c2, dims="lag_time", coords=co, name="C2", attrs={"units": "1"})
        for a in (a1, a2):
            a["lag_time"].attrs["units"] = "ps"
        res = xr.Dataset()
        meth = f"integral of C_l up to its first drop below {self.cutoff:g} (lags <= {maxlag:g} ps)"
        for name, c in (("c1", c1), ("c2", c2)):
            tau, tstar, bound = integrated_time(lag, c, self.cutoff, maxlag)
            res[f"tau_{name}_int"] = xr.DataArray(tau, attrs={"units": "ps", "method": meth, "t_cut_ps": tstar})
            res[f"tau_{name}_int_bound"] = xr.DataArray(bound, attrs={
                "units": "ps", "long_name": "lower bound of the integrated time when C never drops below the cutoff"})
            res[f"frequency_{name}_int"] = xr.DataArray(1e3 / tau if tau > 0 else np.nan, attrs={
                "units": "1/ns", "long_name": f"reorientation frequency 1/tau from {name.upper()} (integral)"})
        f = fit_ivanov(lag, c1, c2, self.cutoff, self.fit_start_ps, maxlag)
        fm = (f"joint fit of C1, C2 to A_l exp(-t/tau_l), Ivanov jump model, lags [{self.fit_start_ps:g} ps, "
              f"first drop below {self.cutoff:g}]")
        res["tau0"] = xr.DataArray(f["tau0"], attrs={"units": "ps", "long_name": "Ivanov residence time",
                                                     "method": fm})
        res["tau0_err"] = xr.DataArray(f["tau0_err"], attrs={"units": "ps", "method": "fit standard error"})
        res["delta"] = xr.DataArray(f["delta"], attrs={"units": "degree", "long_name": "Ivanov jump angle"})
        res["delta_err"] = xr.DataArray(f["delta_err"], attrs={"units": "degree", "method": "fit standard error"})
        res["tau_c1_fit"] = xr.DataArray(f["tau1"], attrs={"units": "ps"})
        res["tau_c2_fit"] = xr.DataArray(f["tau2"], attrs={"units": "ps"})
        res["jump_frequency"] = xr.DataArray(1e3 / f["tau0"], attrs={"units": "1/ns", "long_name": "1/tau0"})
        res["frequency_c1_fit"] = xr.DataArray(1e3 / f["tau1"], attrs={"units": "1/ns"})
        res["frequency_c2_fit"] = xr.DataArray(1e3 / f["tau2"], attrs={"units": "1/ns"})
        res["fit_converged"] = xr.DataArray(bool(f["converged"]), attrs={"units": "1", "message": f["message"]})
        res["n_vectors"] = xr.DataArray(int(n_vectors), attrs={"units": "1"})
        return a1, a2, res

    def _plot(self, P, ax=None, **kw):
        return P.plot_curves([self.c1, self.c2], ["C1", "C2"], ax=ax, xlabel="lag time (ps)",
                             ylabel="Legendre orientation correlation", **kw)
