"""Collect the results of every run of a campaign into one Dataset, ``DIR/campaign.nc``.

Each finished run is analysed once; the numbers and the curves the report draws (cation DOS,
cation–anion-COM free energy F(r), mobile-ion density slice) are cached next to its store as
``runs/NAME.analysis.nc`` and recomputed only when the store or the analysis options change,
so re-collecting a campaign is cheap. With a Dask ``client`` the per-run analyses run on the
cluster.

Dims of ``campaign.nc``: ``material``, ``mode``, ``temperature`` (K), ``replica``; pooled
values drop ``replica``; Arrhenius fits are per (material, mode); mode contributions per
(material, contribution, temperature). Every variable has a ``units`` attribute ("1" for
dimensionless, "" for text). A below-measurable σ is NaN with its upper bound in
``sigma_bound`` and ``below_measurable == 1`` — never a number pretending to be a value.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from rotorlab.campaign.runner import RUNS_DIR, CampaignState, store_status
from rotorlab.campaign.spec import MODE_ORDER, CampaignSpec

__all__ = ["collect", "analyze_run_cached", "pool", "CACHE_SUFFIX", "RESULT_FILE"]

CACHE_SUFFIX = ".analysis.nc"
RESULT_FILE = "campaign.nc"
CACHE_VERSION = 1

#: Per-run scalars: name → units.
RUN_SCALARS = {
    "D_tr": "cm^2/s", "D_tr_err": "cm^2/s", "D_tr_bound": "cm^2/s", "below_measurable": "1",
    "sigma": "mS/cm", "sigma_err": "mS/cm", "sigma_bound": "mS/cm",
    "diffusive": "1", "msd_exponent": "1",
    "reorientation_frequency": "1/ns", "hop_frequency": "1/ns",
    "cation_band_centre": "THz", "n_frames": "1", "duration": "ps",
}
_CONTRIB = ("Rot", "Trs", "Vib")
_MC_MODES = ("UC", "RC", "RTC", "RTVC")


def _options_digest(options: dict) -> str:
    blob = json.dumps(options, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _cache_path(store) -> Path:
    store = Path(store)
    return store.with_name(store.name + CACHE_SUFFIX)


def _fingerprint(store) -> dict:
    """What identifies the content of a finished store (frames and checkpoint step)."""
    from rotorlab.spec import RunSpec
    from rotorlab.store import open_store

    ds = open_store(store)
    spec = RunSpec.from_dict(ds.attrs["run_spec"])
    st = store_status(store, spec)
    return {"frames": int(ds.sizes["frame"]), "step": int(st.step)}


def analyze_run_cached(store, options: dict | None = None, *, force: bool = False) -> Path:
    """Analyse one run's store (or reuse its cache) and return the cache file.

    Parameters
    ----------
    store : path
        A finished run's trajectory store.
    options : dict, optional
        Analysis options (:data:`rotorlab.campaign.spec.ANALYSIS_DEFAULTS` keys).
    force : bool
        Recompute even when the cache is current.

    Returns
    -------
    pathlib.Path
        ``STORE.analysis.nc``: the scalars of :data:`RUN_SCALARS` (0-d), ``notes`` (attr)
        and curves ``cation_dos`` (dos_frequency) 1/THz, ``free_energy`` (fr_r) eV,
        ``density_ab`` (grid_a, grid_b) where available.
    """
    from rotorlab.campaign.spec import ANALYSIS_DEFAULTS

    opts = {**ANALYSIS_DEFAULTS, **(options or {})}
    store = Path(store)
    cache = _cache_path(store)
    fp = _fingerprint(store)
    key = {"frames": fp["frames"], "step": fp["step"], "options": _options_digest(opts),
           "version": CACHE_VERSION}
    if cache.is_file() and not force:
        try:
            with xr.open_dataset(cache, engine="scipy") as old:
                if json.loads(old.attrs.get("cache_key", "{}")) == key:
                    return cache
        except Exception:  # unreadable cache: recompute it
            pass
    ds_out = _analyze(store, opts)
    ds_out.attrs["cache_key"] = json.dumps(key, sort_keys=True)
    tmp = cache.with_name(cache.name + ".tmp")
    ds_out.to_netcdf(tmp, engine="scipy")
    tmp.replace(cache)
    return cache


def _analyze(store: Path, opts: dict) -> xr.Dataset:
    from rotorlab import analysis as A
    from rotorlab.store import open_store

    ds = open_store(store)
    vals = {k: np.nan for k in RUN_SCALARS}
    notes: list[str] = []
    out = xr.Dataset()
    mobile = str(ds.attrs.get("mobile_species") or "")
    nf = int(ds.sizes["frame"])
    vals["n_frames"] = nf
    try:
        t = np.asarray(ds["time"].values, dtype=float)
        vals["duration"] = float(t[-1] - t[0]) if nf > 1 else 0.0
    except Exception:
        pass

    def attempt(label, fn):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return fn()
        except Exception as exc:
            notes.append(f"{label}: {type(exc).__name__}: {exc}")
            return None

    if opts["transport"]:
        tr = attempt("transport", lambda: A.Transport(**opts["transport_kw"]).compute(ds))
        if tr is not None:
            r = tr.result
            for k in ("D_tr", "D_tr_err", "D_tr_bound", "sigma", "sigma_err", "sigma_bound",
                      "msd_exponent"):
                vals[k] = float(r[k])
            vals["below_measurable"] = float(bool(r["below_measurable"]))
            vals["diffusive"] = float(bool(r["diffusive"]))
            mobile = str(r.attrs.get("mobile_species", mobile))
            if not bool(r["diffusive"]) and not bool(r["below_measurable"]):
                notes.append(f"MSD not diffusive (slope {float(r['msd_exponent']):.2f}): "
                             "D_tr reflects local motion")
    if opts["rotation"] and ds.sizes.get("rotor", 0) > 0:
        ro = attempt("reorientation",
                     lambda: A.Reorientation(**opts["reorientation_kw"]).compute(ds))
        if ro is not None:
            vals["reorientation_frequency"] = float(ro.mean_frequency)
    if opts["hops"]:
        h = attempt("hops", lambda: A.SiteHops(**opts["hops_kw"]).compute(ds))
        if h is not None:
            vals["hop_frequency"] = float(h.mean_frequency)
    if opts["vibrations"] and "velocities" in ds.variables and mobile:
        d = attempt("dos", lambda: A.PhononDOS(species=mobile, **opts["dos_kw"]).compute(ds))
        if d is not None:
            vals["cation_band_centre"] = float(d.band_centre_of(mobile))
            g = d.pdos.sel(species=mobile)
            out["cation_dos"] = xr.DataArray(
                np.asarray(g.values, dtype=float), dims="dos_frequency",
                coords={"dos_frequency": np.asarray(g["frequency"].values, dtype=float)},
                attrs={"units": "1/THz", "long_name": f"{mobile} projected phonon DOS"})
            out["dos_frequency"].attrs["units"] = "THz"
    if opts["free_energy"] and ds.sizes.get("rotor", 0) > 0:
        fe = attempt("free_energy",
                     lambda: A.AnionFreeEnergy(**opts["free_energy_kw"]).compute(ds))
        if fe is not None:
            F = fe.free_energy
            out["free_energy"] = xr.DataArray(
                np.asarray(F.values, dtype=float), dims="fr_r",
                coords={"fr_r": np.asarray(F[F.dims[0]].values, dtype=float)},
                attrs={"units": str(F.attrs.get("units", "eV")),
                       "long_name": "free energy of cation-anion COM distance F(r)"})
            out["fr_r"].attrs["units"] = "Å"
    if opts["density"]:
        de = attempt("density", lambda: A.MobileIonDensity(**opts["density_kw"]).compute(ds))
        if de is not None:
            p = np.asarray(de.probability.values, dtype=float)
            ab = p.sum(axis=2)
            out["density_ab"] = xr.DataArray(
                ab / ab.sum() if ab.sum() > 0 else ab, dims=("grid_a", "grid_b"),
                attrs={"units": "1", "long_name": f"{mobile} probability projected on "
                                                  "the a-b plane (summed over c)"})
            cell = np.asarray(ds["cell"].isel(frame=0).values, dtype=float)
            out.attrs["cell_a"] = float(np.linalg.norm(cell[0]))
            out.attrs["cell_b"] = float(np.linalg.norm(cell[1]))
    for k, u in RUN_SCALARS.items():
        out[k] = xr.DataArray(float(vals[k]), attrs={"units": u})
    out.attrs.update({"store": store.name, "mobile_species": mobile,
                      "notes": "; ".join(notes) if notes else "none"})
    return out


# ------------------------------------------------------------------------------ pooling


def pool(values, errors, below, bounds):
    """Pool replicas: mean and standard error, honouring below-measurable bounds.

    Parameters
    ----------
    values, errors, bounds : array_like, shape (n,)
        Per replica value (NaN when below measurable or missing), its error, its bound.
    below : array_like of bool-like, shape (n,)
        Replica below measurable (NaN: missing run).

    Returns
    -------
    value, error, bound : float
        ``value`` NaN when the pooled result is a bound; ``error`` is the standard error of
        the mean (ddof 1) for n >= 2, the run's own error for n == 1.
    kind : str
        ``value``, ``upper_bound`` (every replica, or some, below measurable: the mean
        with bounds substituted bounds the true mean from above) or ``missing``.
    n : int
        Replicas used.
    """
    v = np.asarray(values, float)
    e = np.asarray(errors, float)
    b = np.asarray(bounds, float)
    bl = np.asarray(below, float)
    have = np.isfinite(bl)
    n = int(have.sum())
    if n == 0:
        return math.nan, math.nan, math.nan, "missing", 0
    isb = have & (bl > 0.5)
    if not isb.any():
        x = v[have]
        err = float(np.std(x, ddof=1) / math.sqrt(n)) if n >= 2 else float(e[have][0])
        return float(x.mean()), err, math.nan, "value", n
    x = np.where(isb, b, v)[have]
    return math.nan, math.nan, float(x.mean()), "upper_bound", n


# ------------------------------------------------------------------------------ collect


def _mode_axis(labels) -> list:
    canon = [m for m in MODE_ORDER if m in labels]
    return canon + [m for m in labels if m not in canon]


def collect(outdir, *, client=None, force: bool = False, write: bool = True) -> xr.Dataset:
    """Analyse every finished run of a campaign and write ``DIR/campaign.nc``.

    Parameters
    ----------
    outdir : path
        Campaign directory (holds ``campaign.json``).
    client : distributed.Client, optional
        Run the per-run analyses as tasks on this cluster (default: here, one by one).
    force : bool
        Ignore the per-run caches.
    write : bool
        Write ``campaign.nc``.

    Returns
    -------
    xarray.Dataset
        Dims (material, mode, temperature, replica): ``D_tr``, ``D_tr_err``, ``D_tr_bound``,
        ``sigma``, ``sigma_err``, ``sigma_bound``, ``below_measurable``, ``diffusive``,
        ``msd_exponent``, ``reorientation_frequency``, ``hop_frequency``,
        ``cation_band_centre``, ``status``, ``attempts``, ``error``, ``fallback``; pooled
        over replicas (material, mode, temperature): ``*_pooled``, ``*_pooled_err``,
        ``*_pooled_bound``, ``*_pooled_kind``, ``n_replicas``; Arrhenius (material, mode):
        ``Ea_sigmaT``, ``Ea_D`` with ``_err``, ``prefactor_*``; mode contributions
        (material, contribution, temperature): ``delta``, ``delta_kind``, ``r_mode``,
        ``r_lo``, ``r_hi``, ``r_kind``, and ``drop``/``drop_kind`` (material, mode,
        temperature); ``band_centre_change`` (material, temperature) UC → RTVC.
    """
    outdir = Path(outdir)
    state = CampaignState.load(outdir)
    spec = CampaignSpec.from_dict(state.data["spec"])
    opts = spec.analysis_options
    runs = {k: r for k, r in state.runs.items() if r.get("in_spec", True)}
    stores = {k: outdir / RUNS_DIR / k for k, r in runs.items() if r["status"] == "done"}
    caches = {}
    if client is not None and stores:
        futs = {k: client.submit(analyze_run_cached, str(p), opts, force=force, pure=False)
                for k, p in stores.items()}
        for k, f in futs.items():
            try:
                caches[k] = Path(f.result())
            except Exception as exc:
                runs[k].setdefault("analysis_error", f"{type(exc).__name__}: {exc}")
    else:
        for k, p in stores.items():
            try:
                caches[k] = analyze_run_cached(p, opts, force=force)
            except Exception as exc:
                runs[k]["analysis_error"] = f"{type(exc).__name__}: {exc}"

    mats = list(spec.materials)
    modes = _mode_axis(sorted({r["mode"] for r in runs.values()}))
    temps = sorted({float(r["temperature"]) for r in runs.values()})
    nrep = max(int(r["replica"]) for r in runs.values()) + 1
    shape = (len(mats), len(modes), len(temps), nrep)
    arr = {k: np.full(shape, np.nan) for k in RUN_SCALARS}
    status = np.full(shape, "absent", dtype=object)
    error = np.full(shape, "", dtype=object)
    attempts = np.full(shape, -1, dtype=np.int64)
    fallback = np.zeros(shape, dtype=np.int8)
    notes = np.full(shape, "", dtype=object)
    names = np.full(shape, "", dtype=object)
    for k, r in runs.items():
        ix = (mats.index(r["material"]), modes.index(r["mode"]),
              temps.index(float(r["temperature"])), int(r["replica"]))
        status[ix] = r["status"]
        attempts[ix] = int(r.get("attempts", 0))
        fallback[ix] = int(bool(r.get("fallback")))
        names[ix] = k
        if r.get("errors"):
            e = r["errors"][-1]
            error[ix] = f"{e['type']}: {e['message']}"[:400]
        if k in caches:
            with xr.open_dataset(caches[k], engine="scipy") as c:
                for v in RUN_SCALARS:
                    arr[v][ix] = float(c[v])
                if c.attrs.get("notes", "none") != "none":
                    notes[ix] = str(c.attrs["notes"])[:400]
        elif r["status"] == "done":
            notes[ix] = "analysis failed: " + str(r.get("analysis_error", "?"))[:380]
            status[ix] = "done"

    dims = ("material", "mode", "temperature", "replica")
    res = xr.Dataset(coords={"material": mats, "mode": modes,
                             "temperature": ("temperature", np.asarray(temps), {"units": "K"}),
                             "replica": ("replica", np.arange(nrep), {"units": "1"})})
    for v, u in RUN_SCALARS.items():
        res[v] = xr.DataArray(arr[v], dims=dims, attrs={"units": u})
    res["below_measurable"].attrs["long_name"] = "1: D_tr below the measurable threshold " \
                                                 "(sigma is NaN, sigma_bound bounds it)"
    res["diffusive"].attrs["long_name"] = "1: the MSD is diffusive over the fit window"
    res["status"] = xr.DataArray(status.astype(str), dims=dims, attrs={
        "units": "", "long_name": "done, failed, pending or absent (not in the grid)"})
    res["error"] = xr.DataArray(error.astype(str), dims=dims,
                                attrs={"units": "", "long_name": "last error of a failed run"})
    res["notes"] = xr.DataArray(notes.astype(str), dims=dims, attrs={"units": ""})
    res["run_name"] = xr.DataArray(names.astype(str), dims=dims, attrs={"units": ""})
    res["attempts"] = xr.DataArray(attempts, dims=dims, attrs={"units": "1"})
    res["fallback"] = xr.DataArray(fallback, dims=dims, attrs={
        "units": "1", "long_name": "1: ran with potential_fallback (no bundled model)"})

    _add_pooled(res)
    _add_arrhenius(res)
    _add_mode_contributions(res)
    _add_band_centre_change(res)
    n_failed = int((status == "failed").sum())
    fb = sorted({r["material"] for r in runs.values() if r.get("fallback")})
    res.attrs.update({
        "campaign": spec.name, "spec_digest": spec.digest(),
        "n_runs": len(runs), "n_done": int((status == "done").sum()), "n_failed": n_failed,
        "potential_fallback_materials": ", ".join(fb) if fb else "none",
        "sigma_method": "Nernst-Einstein sigma from the tracer D_tr of the mobile ion",
        "pooling": "mean over replicas, standard error of the mean (ddof 1); one replica: "
                   "its block error; any replica below measurable: the pooled value is an "
                   "upper bound (bounds substituted)"})
    if write:
        tmp = outdir / (RESULT_FILE + ".tmp")
        res.to_netcdf(tmp, engine="scipy")
        tmp.replace(outdir / RESULT_FILE)
    return res


def _add_pooled(res):
    dims3 = ("material", "mode", "temperature")
    shape3 = tuple(res.sizes[d] for d in dims3)
    specs = [("D_tr", "D_tr_err", "D_tr_bound", "below_measurable", "cm^2/s"),
             ("sigma", "sigma_err", "sigma_bound", "below_measurable", "mS/cm")]
    for name, en, bn, bln, u in specs:
        val, err, bnd = (np.full(shape3, np.nan) for _ in range(3))
        kind = np.full(shape3, "missing", dtype=object)
        n = np.zeros(shape3, dtype=np.int64)
        for ix in np.ndindex(*shape3):
            val[ix], err[ix], bnd[ix], kind[ix], n[ix] = pool(
                res[name].values[ix], res[en].values[ix], res[bln].values[ix],
                res[bn].values[ix])
        res[f"{name}_pooled"] = xr.DataArray(val, dims=dims3, attrs={"units": u})
        res[f"{name}_pooled_err"] = xr.DataArray(err, dims=dims3, attrs={
            "units": u, "long_name": "standard error over replicas"})
        res[f"{name}_pooled_bound"] = xr.DataArray(bnd, dims=dims3, attrs={
            "units": u, "long_name": "upper bound where the pooled value is a bound"})
        res[f"{name}_pooled_kind"] = xr.DataArray(kind.astype(str), dims=dims3,
                                                  attrs={"units": ""})
        res["n_replicas"] = xr.DataArray(n, dims=dims3, attrs={
            "units": "1", "long_name": "replicas with a transport result"})
    for name, u in (("reorientation_frequency", "1/ns"), ("hop_frequency", "1/ns"),
                    ("cation_band_centre", "THz"), ("diffusive", "1")):
        x = res[name].values
        cnt = np.isfinite(x).sum(axis=-1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(x, axis=-1)
            sem = np.where(cnt >= 2, np.nanstd(x, axis=-1, ddof=1) / np.sqrt(np.maximum(cnt, 1)),
                           np.nan)
        res[f"{name}_pooled"] = xr.DataArray(mean, dims=dims3, attrs={"units": u})
        res[f"{name}_pooled_err"] = xr.DataArray(sem, dims=dims3, attrs={
            "units": u, "long_name": "standard error over replicas (NaN with one replica)"})


def _add_arrhenius(res):
    from rotorlab.analysis import arrhenius_fit

    mats, modes = list(res["material"].values), list(res["mode"].values)
    T = np.asarray(res["temperature"].values, float)
    out = {k: np.full((len(mats), len(modes)), np.nan) for k in (
        "Ea_sigmaT", "Ea_sigmaT_err", "prefactor_sigmaT", "prefactor_sigmaT_err",
        "Ea_D", "Ea_D_err", "prefactor_D", "prefactor_D_err", "arrhenius_n_points")}
    note = np.full((len(mats), len(modes)), "", dtype=object)
    for i in range(len(mats)):
        for j in range(len(modes)):
            msgs = []
            for q, name, un in (("sigmaT", "sigma", "mS K/cm"), ("D", "D_tr", "cm^2/s")):
                y = res[f"{name}_pooled"].values[i, j].copy()
                e = res[f"{name}_pooled_err"].values[i, j].copy()
                if q == "sigmaT":
                    y, e = y * T, e * T
                if np.isfinite(y).sum() < 2:
                    continue
                e = np.where(np.isfinite(e) & (e > 0), e, np.nan)
                use_err = bool(np.all(np.isfinite(e[np.isfinite(y)])))
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        f = arrhenius_fit(T, y, e if use_err else None, quantity=q, units=un)
                except (ValueError, np.linalg.LinAlgError) as exc:
                    msgs.append(f"{q}: {exc}")
                    continue
                for k in ("Ea", "Ea_err", "prefactor", "prefactor_err"):
                    base, _, tail = k.partition("_")
                    out[f"{base}_{q}" + (f"_{tail}" if tail else "")][i, j] = float(f[k])
                if q == "sigmaT":
                    out["arrhenius_n_points"][i, j] = float(f["n_points"])
            note[i, j] = "; ".join(msgs)
    units = {"Ea_sigmaT": "eV", "Ea_sigmaT_err": "eV", "prefactor_sigmaT": "mS K/cm",
             "prefactor_sigmaT_err": "mS K/cm", "Ea_D": "eV", "Ea_D_err": "eV",
             "prefactor_D": "cm^2/s", "prefactor_D_err": "cm^2/s", "arrhenius_n_points": "1"}
    for k, v in out.items():
        res[k] = xr.DataArray(v, dims=("material", "mode"), attrs={"units": units[k]})
    res["Ea_sigmaT"].attrs["long_name"] = ("activation energy from ln(sigma T) vs 1/kT over "
                                           "pooled values (bounds excluded)")
    res["arrhenius_note"] = xr.DataArray(note.astype(str), dims=("material", "mode"),
                                         attrs={"units": ""})


def _add_mode_contributions(res):
    from rotorlab.analysis import mode_contributions

    mats = list(res["material"].values)
    temps = res["temperature"]
    shape_c = (len(mats), 3, temps.size)
    shape_m = (len(mats), res.sizes["mode"], temps.size)
    delta, r, rlo, rhi = (np.full(shape_c, np.nan) for _ in range(4))
    dk = np.full(shape_c, "", dtype=object)
    rk = np.full(shape_c, "", dtype=object)
    drop = np.full(shape_m, np.nan)
    dropk = np.full(shape_m, "", dtype=object)
    modes = list(res["mode"].values)
    if all(m in modes for m in _MC_MODES):
        for i, mat in enumerate(mats):
            s = res["sigma_pooled"].isel(material=i).sel(mode=list(_MC_MODES))
            b = res["sigma_pooled_bound"].isel(material=i).sel(mode=list(_MC_MODES))
            ok = (np.isfinite(s.values) | np.isfinite(b.values)).all(axis=0)
            if not ok.any():
                continue
            sel = np.flatnonzero(ok)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mc = mode_contributions(s.isel(temperature=sel), b.isel(temperature=sel))
            for c in range(3):
                delta[i, c, sel] = mc["delta"].values[c]
                dk[i, c, sel] = mc["delta_kind"].values[c]
                r[i, c, sel] = mc["r"].values[c]
                rlo[i, c, sel] = mc["r_lo"].values[c]
                rhi[i, c, sel] = mc["r_hi"].values[c]
                rk[i, c, sel] = mc["r_kind"].values[c]
            for a, m in enumerate(_MC_MODES):
                drop[i, modes.index(m), sel] = mc["drop"].values[a]
                dropk[i, modes.index(m), sel] = mc["drop_kind"].values[a]
    cd = ("material", "contribution", "temperature")
    res.coords["contribution"] = list(_CONTRIB)
    res["delta"] = xr.DataArray(delta, dims=cd, attrs={
        "units": "decades", "long_name": "Delta log10 sigma of a motion (pooled sigma)"})
    res["delta_kind"] = xr.DataArray(dk.astype(str), dims=cd, attrs={"units": ""})
    res["r_mode"] = xr.DataArray(r, dims=cd, attrs={"units": "1",
                                                    "long_name": "mode contribution r_mode"})
    res["r_lo"] = xr.DataArray(rlo, dims=cd, attrs={"units": "1"})
    res["r_hi"] = xr.DataArray(rhi, dims=cd, attrs={"units": "1"})
    res["r_kind"] = xr.DataArray(rk.astype(str), dims=cd, attrs={"units": ""})
    md = ("material", "mode", "temperature")
    res["drop"] = xr.DataArray(drop, dims=md, attrs={
        "units": "decades", "long_name": "log10(sigma_UC / sigma_mode)"})
    res["drop_kind"] = xr.DataArray(dropk.astype(str), dims=md, attrs={"units": ""})


def _add_band_centre_change(res):
    shape = (res.sizes["material"], res.sizes["temperature"])
    out = np.full(shape, np.nan)
    modes = list(res["mode"].values)
    if "UC" in modes and "RTVC" in modes:
        bc = res["cation_band_centre_pooled"]
        out = (bc.sel(mode="RTVC") - bc.sel(mode="UC")).values
    res["band_centre_change"] = xr.DataArray(out, dims=("material", "temperature"), attrs={
        "units": "THz", "long_name": "cation band centre RTVC minus UC (pooled)"})
