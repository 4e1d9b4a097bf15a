"""``analyze``: run the registered analyses over several trajectories, write results.nc + figures.

``rotorlab analyze STORE... -o DIR`` calls :func:`analyze`.  Which analyses run comes from the
registry (:mod:`rotorlab.analysis.registry`): by default every registered analysis that is
applicable to a store; an analysis that is not applicable or fails is recorded in
``analysis_status`` (dims run, analysis) and in the notes, and the others still run.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from rotorlab import units as U

from . import _data
from . import registry as R
from .transport import MODES, arrhenius_fit, mode_contributions, sigma_table

#: legacy per-analysis keyword arguments of :func:`analyze`
LEGACY_KW = {"transport_kw": "transport", "reorientation_kw": "reorientation", "hops_kw": "hops",
             "dos_kw": "dos"}
_BOOL_VARS = ("below_measurable", "diffusive")

RUN_VARS = {
    "D_tr": "cm^2/s", "D_tr_err": "cm^2/s", "D_tr_bound": "cm^2/s", "below_measurable": "1",
    "sigma": "mS/cm", "sigma_err": "mS/cm", "sigma_bound": "mS/cm",
    "reorientation_frequency": "1/ns", "hop_frequency": "1/ns",
    "cation_band_centre": "THz", "cation_band_centre_meV": "meV", "cation_band_centre_cm1": "cm^-1",
    "n_ions": "1", "volume": "Å^3", "n_frames": "1", "duration": "ps",
    "msd_exponent": "1", "diffusive": "1",
}


def _open(item, i):
    if isinstance(item, xr.Dataset):
        name = str(item.attrs.get("name") or item.attrs.get("run_name") or f"run{i}")
        return item, name
    from rotorlab.store import open_store  # lazy: sibling package

    p = Path(item)
    return open_store(p), p.name


def _clean_attrs(attrs: dict) -> dict:
    out = {}
    for k, v in attrs.items():
        if v is None:
            continue
        if isinstance(v, (bool, np.bool_)):
            v = int(v)
        if isinstance(v, (list, tuple)):
            v = [float(x) if isinstance(x, (int, float, np.number)) else str(x) for x in v]
            if not v:
                continue
            if any(isinstance(x, str) for x in v):
                v = ", ".join(map(str, v))
        elif not isinstance(v, (int, float, str, np.number)):
            v = str(v)
        out[k] = v
    return out


def select_analyses(analyses: str | Sequence[str] | None = None, *, rotation: bool = True, hops: bool = True,
                    vibrations: bool = True) -> list[R.AnalysisSpec]:
    """Registry entries to run: ``analyses`` (names, or a comma-separated string) or all registered.

    ``rotation``/``hops``/``vibrations`` False drop those groups from the default selection
    (and from an explicit one).  Unknown names raise ValueError listing the registered ones.
    """
    if analyses is None or analyses == "all":
        chosen = R.specs()
    else:
        names = [a.strip() for a in analyses.split(",")] if isinstance(analyses, str) else list(analyses)
        names = [n for n in names if n]
        if not names:
            raise ValueError("no analyses selected")
        chosen = [R.get(n) for n in dict.fromkeys(names)]
    off = {g for g, on in (("rotation", rotation), ("hops", hops), ("vibrations", vibrations)) if not on}
    return [s for s in chosen if s.group not in off]


def _accepts(cls, name: str) -> bool:
    if cls.__init__ is object.__init__:
        return False
    try:
        params = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return False
    return name in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


def analyze_run(ds: xr.Dataset, *, analyses: str | Sequence[str] | None = None, rotation: bool = True,
                hops: bool = True, vibrations: bool = True, options: Mapping[str, Mapping] | None = None,
                memory: float = _data.DEFAULT_MEMORY, **legacy_kw) -> tuple[dict, dict]:
    """Run the selected registered analyses on one trajectory.

    Parameters
    ----------
    ds : xarray.Dataset
        Trajectory.
    analyses, rotation, hops, vibrations
        Selection, see :func:`select_analyses`.
    options : mapping, optional
        Analysis name → constructor options (override the registry defaults).
    memory : float
        Bytes per materialised block (passed to every analyzer that takes ``memory``).
    **legacy_kw
        ``transport_kw``, ``reorientation_kw``, ``hops_kw``, ``dos_kw``: options of those analyses.

    Returns
    -------
    scalars : dict
        Per-run numbers for ``results.nc``: name → 0-d DataArray with units.
    curves : dict
        ``curves`` (analysis name → 1-D DataArray for the report figures), ``status``
        (analysis name → "ok", "not applicable: …" or "failed: …") and ``notes``.
    """
    opts = {k: dict(v) for k, v in (options or {}).items()}
    for k, v in legacy_kw.items():
        if k not in LEGACY_KW:
            raise TypeError(f"analyze_run() got an unexpected keyword argument {k!r}")
        if v:
            opts.setdefault(LEGACY_KW[k], {}).update(v)
    chosen = select_analyses(analyses, rotation=rotation, hops=hops, vibrations=vibrations)
    unknown = set(opts) - {s.name for s in R.specs()}
    if unknown:
        raise ValueError(f"options given for unknown analyses {sorted(unknown)}; registered: {R.names()}")
    notes, status, curves, extra = [], {}, {}, {}
    vals: dict[str, xr.DataArray] = {}
    nf = _data.n_frames(ds)
    vals["n_frames"] = xr.DataArray(nf, attrs={"units": "1"})
    try:
        dur = float((nf - 1) * _data.frame_dt_ps(ds))
    except ValueError:
        dur = float("nan")
    vals["duration"] = xr.DataArray(dur, attrs={"units": "ps"})
    for spec in chosen:
        chk = spec.applicable(ds)
        if not chk:
            status[spec.name] = f"not applicable: {chk.reason}"
            continue
        o = dict(opts.get(spec.name, {}))
        try:
            cls = spec.cls
            if "memory" not in o and _accepts(cls, "memory"):
                o["memory"] = memory
            a = spec.run(ds, **o)
            summ = spec.summary(a) if spec.summary is not None else {}
            for k, v in summ.items():
                if k in vals and k not in ("n_frames", "duration"):
                    raise ValueError(f"summary variable {k!r} is produced by two analyses")
                if not isinstance(v, xr.DataArray) or v.ndim != 0 or "units" not in v.attrs:
                    raise TypeError(f"summary {k!r} of {spec.name!r} must be a 0-d DataArray with units")
                vals[k] = v
            if spec.curve is not None:
                curves[spec.name] = spec.curve(a)
        except Exception as exc:  # one analysis failing never stops the others
            status[spec.name] = f"failed: {type(exc).__name__}: {exc}"
            continue
        status[spec.name] = "ok"
        if spec.name == "transport":
            r = a.result
            if not bool(r["diffusive"]) and not bool(r["below_measurable"]):
                why = r["diffusive"].attrs.get("reason") or f"log-log slope {float(r['msd_exponent']):.2f}"
                notes.append(f"MSD not diffusive ({why}): D_tr reflects local motion; run longer")
                extra["diffusive_reason"] = why
            if not np.isfinite(float(r["temperature"])):
                notes.append("no temperature: D and the MSDs computed, sigma needs a temperature "
                             "(temperature=... / --temperature)")
    by_reason: dict[str, list[str]] = {}
    for name, st in status.items():
        if st.startswith("failed"):
            notes.append(f"{name} {st}")
        elif st != "ok":
            by_reason.setdefault(st, []).append(name)
    notes += [f"{', '.join(n)} {st}" for st, n in by_reason.items()]
    return vals, {"curves": curves, "status": status, "notes": notes, **extra}


def _check_output(outdir: Path, items: list, overwrite: bool) -> None:
    """Refuse to write into an input store or a zarr store, or to replace results.nc unasked."""
    out = outdir.resolve()
    for it in items:
        if isinstance(it, xr.Dataset):
            continue
        p = Path(it).resolve()
        if out == p or p in out.parents:
            raise ValueError(f"refusing to write the analysis into the input store {it}: "
                             "choose an output directory outside it (nothing written)")
    if (out / "zarr.json").exists() or (out / ".zgroup").exists():
        raise ValueError(f"refusing to write the analysis into {outdir}: it is a zarr store (nothing written)")
    if (out / "results.nc").exists() and not overwrite:
        raise FileExistsError(f"{outdir / 'results.nc'} exists; pass --overwrite (overwrite=True) to replace it "
                              "(nothing written)")


def _temperature_or_nan(ds: xr.Dataset) -> float:
    try:
        return _data.temperature_K(ds)
    except ValueError:
        return float("nan")


#: per-run numbers pooled over replicas of one condition
REPLICA_VARS = ("D_tr", "sigma", "D_sigma", "sigma_collective", "haven_ratio", "reorientation_frequency",
                "rotor_tau_c1_int", "rotor_tau_c2_int", "rotor_tau0", "rotor_delta", "hop_frequency")


def _replica_groups(res: xr.Dataset, meta) -> xr.Dataset:
    """Add mean and standard error over the replicas of each condition (material, mode, T).

    Runs with the same material, constraint mode and target temperature are replicas; for
    every condition with >= 2 runs the results gain dim ``condition`` with ``<var>_mean``,
    ``<var>_sem`` (std ddof=1 / sqrt(n_valid)) and ``n_replicas``.
    """
    keys = [(m, mode, T) for m, mode, T in meta]
    conds = []
    for k in keys:
        if k not in conds and sum(1 for q in keys if q == k) >= 2 and np.isfinite(k[2]):
            conds.append(k)
    if not conds:
        return res
    labels = [f"{m}/{mode}/{T:g}K" for m, mode, T in conds]
    res = res.assign_coords(condition=labels)
    res["n_replicas"] = xr.DataArray([sum(1 for q in keys if q == c) for c in conds], dims="condition",
                                     attrs={"units": "1"})
    for v in REPLICA_VARS:
        if v not in res:
            continue
        mean, sem = [], []
        for c in conds:
            x = np.asarray(res[v].values, dtype=float)[[q == c for q in keys]]
            x = x[np.isfinite(x)]
            mean.append(x.mean() if x.size else np.nan)
            sem.append(x.std(ddof=1) / np.sqrt(x.size) if x.size >= 2 else np.nan)
        u = res[v].attrs.get("units", "1")
        res[f"{v}_mean"] = xr.DataArray(mean, dims="condition", attrs={"units": u, "method": "mean over replicas"})
        res[f"{v}_sem"] = xr.DataArray(sem, dims="condition", attrs={
            "units": u, "method": "standard error over replicas, std(ddof=1)/sqrt(n)"})
    return res


def _validate_options(selected, options, kw) -> None:
    """Construct every selected analyzer that has options once, so bad options fail before any I/O."""
    opts = {k: dict(v) for k, v in (options or {}).items()}
    for k, v in kw.items():
        if k in LEGACY_KW and v:
            opts.setdefault(LEGACY_KW[k], {}).update(v)
    for spec in selected:
        if spec.name in opts:
            try:
                spec.cls(**opts[spec.name])
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{spec.name}: {exc} (nothing written)") from None


def _override(ds: xr.Dataset, name: str, mobile_species, charge, temperature) -> xr.Dataset:
    """A view of ``ds`` with user-given species/charge/temperature attributes (the store is untouched)."""
    new = {}
    for key, val in (("mobile_species", mobile_species), ("mobile_charge", charge),
                     ("target_temperature", temperature)):
        if val is None:
            continue
        have = ds.attrs.get(key)
        if have not in (None, "") and (str(have) != str(val) if key == "mobile_species"
                                       else not np.isclose(float(have), float(val))):
            raise ValueError(f"{name} records {key} = {have!r}; refusing to override it with {val!r} "
                             "(the option is for stores that do not record it; nothing written)")
        new[key] = str(val) if key == "mobile_species" else float(val)
    if "mobile_species" in new and "species" in ds.variables:
        present = {str(x) for x in ds["species"].values}
        if new["mobile_species"] not in present:
            raise ValueError(f"{name}: mobile species {new['mobile_species']!r} not in the store "
                             f"(species present: {sorted(present)}; nothing written)")
    return ds.assign_attrs(**new) if new else ds


def analyze(paths_or_datasets: Iterable, outdir, *, analyses: str | Sequence[str] | None = None,
            rotation: bool = True, hops: bool = True, vibrations: bool = True, figures: bool = True,
            memory: float = _data.DEFAULT_MEMORY, options: Mapping[str, Mapping] | None = None,
            overwrite: bool = False, mobile_species: str | None = None, charge: float | None = None,
            temperature: float | None = None, **kw) -> xr.Dataset:
    """Run the registered analyses over trajectories; write ``outdir/results.nc`` and PNG+SVG figures.

    Parameters
    ----------
    paths_or_datasets : iterable of path or xarray.Dataset
        Store directories (opened with :func:`rotorlab.store.open_store`) or Datasets.
    outdir : path
        Output directory; never inside an input store.
    analyses : str or sequence of str, optional
        Registry names (or ``"a,b"``); default: every registered analysis, each run where
        applicable (:func:`rotorlab.analysis.available`).
    rotation, hops, vibrations : bool
        Switch those groups of analyses off.
    figures : bool
        Write ``msd``, ``dos``, ``rdf``, ``orientation_acf``, ``arrhenius``,
        ``mode_contributions`` and ``conductivity_drop`` figures (where there is data).
    memory : float
        Bytes per materialised block.
    options : mapping, optional
        Analysis name → constructor options.
    overwrite : bool
        Replace an existing ``results.nc`` (default False; the CLI passes ``--overwrite``).
    mobile_species, charge : optional
        Mobile species and its charge (e) for stores that do not record them (imported
        trajectories); a store that records a different value is refused.
    temperature : float, optional
        Temperature (K) for stores without one (σ, free energies); a store that records a
        different target temperature is refused.  D, MSD, g(r), DOS and rotation never
        need it.
    **kw
        ``transport_kw``, ``reorientation_kw``, ``hops_kw``, ``dos_kw`` (legacy options).

    Returns
    -------
    xarray.Dataset
        Dim ``run`` with coordinates ``material``, ``constraint_mode``, ``target_temperature``
        and variables D_tr, D_tr_err (block standard error), D_tr_bound, below_measurable,
        sigma, sigma_err, sigma_bound, reorientation_frequency, hop_frequency,
        cation_band_centre (THz, meV, cm⁻¹), the summaries of the other analyses …,
        ``analysis_status`` (run, analysis); when complete UC/RC/RTC/RTVC sets exist for one
        material also ``r_mode``/``delta``/``drop`` (temperature_mc); Arrhenius fits per
        (material, mode) group along ``arrhenius_group``.

    Raises
    ------
    ValueError
        No input, unknown analysis, or an output directory inside an input store.
    FileExistsError
        ``results.nc`` exists and ``overwrite`` is False.
    """
    outdir = Path(outdir)
    items = list(paths_or_datasets)
    if not items:
        raise ValueError("analyze needs at least one store or dataset")
    if not memory > 0:
        raise ValueError(f"memory must be > 0 bytes, got {memory!r} (nothing written)")
    if temperature is not None and not (np.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a positive number of kelvin, got {temperature!r} (nothing written)")
    if charge is not None and not (np.isfinite(charge) and charge != 0):
        raise ValueError(f"charge must be a non-zero number (units of e), got {charge!r} (nothing written)")
    selected = select_analyses(analyses, rotation=rotation, hops=hops, vibrations=vibrations)
    _validate_options(selected, options, kw)
    _check_output(outdir, items, overwrite)
    opened = [_open(it, i) for i, it in enumerate(items)]
    opened = [(_override(ds, name, mobile_species, charge, temperature), name) for ds, name in opened]
    names, rows, curves_all, meta = [], [], [], []
    for i, (ds, name) in enumerate(opened):
        vals, curves = analyze_run(ds, analyses=[s.name for s in selected], memory=memory, options=options, **kw)
        if name in names:
            name = f"{name}_{i}"
        names.append(name)
        rows.append(vals)
        curves_all.append(curves)
        meta.append((str(ds.attrs.get("material") or "unknown"), str(ds.attrs.get("constraint_mode") or "UC").upper(),
                     _temperature_or_nan(ds)))
    outdir.mkdir(parents=True, exist_ok=True)
    res = xr.Dataset(coords={"run": names,
                             "material": ("run", [m[0] for m in meta]),
                             "constraint_mode": ("run", [m[1] for m in meta]),
                             "target_temperature": ("run", np.array([m[2] for m in meta], float), {"units": "K"})})
    units = dict(RUN_VARS)
    for r in rows:
        for k, v in r.items():
            units.setdefault(k, str(v.attrs["units"]))
    for k, u in units.items():
        if k in _BOOL_VARS:
            v = np.array([bool(r[k]) if k in r else False for r in rows])
        else:
            v = np.array([float(r[k]) if k in r else np.nan for r in rows], dtype=float)
        res[k] = xr.DataArray(v, dims="run", attrs={"units": u})
    sel_names = [s.name for s in selected]
    res = res.assign_coords(analysis=sel_names)
    res["analysis_status"] = xr.DataArray(
        np.array([[c["status"].get(n, "not run") for n in sel_names] for c in curves_all], dtype=str),
        dims=("run", "analysis"), attrs={"units": "1", "long_name": "ok, not applicable: why, or failed: why"})
    res["D_tr"].attrs["method"] = ("slope/6 of the all-origin FFT MSD; drift: system COM removed for UC/RC, "
                                   "none for T-constrained modes; error: standard error over independent time blocks")
    res["below_measurable"].attrs["threshold_cm2_s"] = U.D_MEASURABLE_CM2_S
    site_rule = {**(kw.get("hops_kw") or {}), **((options or {}).get("hops") or {})}.get("sites", "density")
    res["hop_frequency"].attrs["method"] = (
        "sites: " + ("mobile-ion positions of the first frame (reference structure)"
                     if isinstance(site_rule, str) and site_rule == "reference" else
                     "given by the caller" if not isinstance(site_rule, str) else
                     "time-averaged density maxima") + "; residence filter")
    res["reorientation_frequency"].attrs["method"] = "turn > 70 deg from previous resting direction, librations smoothed"
    res["diffusive_reason"] = xr.DataArray(np.array([c.get("diffusive_reason", "") for c in curves_all], dtype=str),
                                           dims="run", attrs={"units": "1",
                                                              "long_name": "failed diffusive-regime condition"})
    notes = [f"{n}: {x}" for n, c in zip(names, curves_all) for x in c["notes"]]
    mats = sorted(set(m[0] for m in meta))
    if len(mats) > 1:
        by = {m: [n for n, mm in zip(names, meta) if mm[0] == m] for m in mats}
        notes.append("several materials, analysed separately (Arrhenius per material and mode, mode "
                     "contributions per material): " + "; ".join(f"{m}: {', '.join(r)}" for m, r in by.items()))
    res.attrs["notes"] = "; ".join(notes) if notes else "none"
    res.attrs["sigma_method"] = "Nernst-Einstein sigma = N q^2 D_tr / (V kB T)"

    res = _replica_groups(res, meta)

    # Arrhenius per (material, mode)
    groups = {}
    for mat, mode, T in meta:
        groups.setdefault((mat, mode), [])
    arr = []
    for (mat, mode) in groups:
        sel = (res["material"].values == mat) & (res["constraint_mode"].values == mode)
        T = res["target_temperature"].values[sel]
        if np.unique(T).size < 2:
            continue
        out = {"group": f"{mat}/{mode}"}
        for q, y, e, un in (("D", res["D_tr"].values[sel], res["D_tr_err"].values[sel], "cm^2/s"),
                            ("sigmaT", res["sigma"].values[sel] * T, res["sigma_err"].values[sel] * T, "mS K/cm")):
            try:
                f = arrhenius_fit(T, y, e, quantity=q, units=un)
                out.update({f"Ea_{q}": float(f["Ea"]), f"Ea_{q}_err": float(f["Ea_err"]),
                            f"prefactor_{q}": float(f["prefactor"]), f"prefactor_{q}_err": float(f["prefactor_err"])})
            except ValueError as exc:
                notes.append(f"Arrhenius {mat}/{mode} {q}: {exc}")
        if len(out) > 1:
            arr.append(out)
    if arr:
        keys = ["Ea_D", "Ea_D_err", "prefactor_D", "prefactor_D_err",
                "Ea_sigmaT", "Ea_sigmaT_err", "prefactor_sigmaT", "prefactor_sigmaT_err"]
        units = ["eV", "eV", "cm^2/s", "cm^2/s", "eV", "eV", "mS K/cm", "mS K/cm"]
        res = res.assign_coords(arrhenius_group=[a["group"] for a in arr])
        for k, u in zip(keys, units):
            res[k] = xr.DataArray([a.get(k, np.nan) for a in arr], dims="arrhenius_group", attrs={"units": u})

    # mode contributions per material
    mcs = {}
    for mat in sorted(set(m[0] for m in meta)):
        if "transport" not in sel_names:
            break
        sub = res.isel(run=np.flatnonzero(res["material"].values == mat))
        if not set(MODES) <= set(sub["constraint_mode"].values.tolist()):
            continue
        s, b = sigma_table(sub)
        complete = (np.isfinite(s.values) | np.isfinite(b.values)).all(axis=0)
        if not complete.any():
            continue
        s, b = s.isel(temperature=np.flatnonzero(complete)), b.isel(temperature=np.flatnonzero(complete))
        mc = mode_contributions(s, b)
        mcs[mat] = mc
        mc.to_netcdf(outdir / f"mode_contributions_{mat}.nc", engine="scipy")
    if len(mcs) == 1:
        mc = next(iter(mcs.values())).rename({"temperature": "temperature_mc"})
        for k in ("delta", "delta_kind", "r", "r_lo", "r_hi", "r_kind", "drop", "drop_kind"):
            res[k if k.startswith(("delta", "drop")) else k.replace("r", "r_mode", 1)] = mc[k]
        res = res.assign_coords(contribution=mc["contribution"], mode=mc["mode"])
    res.attrs["notes"] = "; ".join(notes) if notes else "none"
    res.attrs = _clean_attrs(res.attrs)
    for v in res.variables.values():
        v.attrs = _clean_attrs(v.attrs)
    res.to_netcdf(outdir / "results.nc", engine="scipy")

    if figures:
        _figures(res, names, curves_all, mcs, outdir)
    return res


def _figures(res, names, curves_all, mcs, outdir):
    from rotorlab.viz import plots as P

    labels = [f"{n} ({m}, {t:g} K)" for n, m, t in zip(names, res["constraint_mode"].values,
                                                       res["target_temperature"].values)]
    per = {}
    for c, lab in zip(curves_all, labels):
        for name, cv in c["curves"].items():
            per.setdefault(name, []).append((cv, lab))
    for name, cl in per.items():
        cvs, labs = [cv for cv, _ in cl], [lab for _, lab in cl]
        if name == "transport":
            P.save(P.plot_msd(cvs, labs), outdir, "msd")
        elif name == "dos":
            sp = {str(d["species"].values) for d in cvs if "species" in d.coords}
            P.save(P.plot_dos(cvs, labs, species=sp.pop() if len(sp) == 1 else None), outdir, "dos")
        else:
            style = dict(R.get(name).curve_style) if name in R.names() else {}
            ax = P.plot_curves(cvs, labs, **style)
            P.save(ax.figure, outdir, name)
    groups = {}
    for mat in np.unique(res["material"].values):
        for mode in np.unique(res["constraint_mode"].values):
            sel = (res["material"].values == mat) & (res["constraint_mode"].values == mode)
            if sel.sum() >= 2:
                T = res["target_temperature"].values[sel]
                o = np.argsort(T)
                groups[f"{mat} {mode}"] = (T[o], res["sigma"].values[sel][o], res["sigma_err"].values[sel][o],
                                           res["below_measurable"].values[sel][o], res["sigma_bound"].values[sel][o])
    if groups:
        P.save(P.plot_arrhenius(groups), outdir, "arrhenius")
    for mat, mc in mcs.items():
        suffix = "" if len(mcs) == 1 else f"_{mat}"
        P.save(P.plot_mode_contributions(mc), outdir, f"mode_contributions{suffix}")
        P.save(P.plot_drop(mc), outdir, f"conductivity_drop{suffix}")


def main_analyze(stores: Sequence[str], outdir: str, **kw) -> xr.Dataset:
    """CLI entry: analyse stores and print a one-line summary per run."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = analyze(stores, outdir, **kw)
    for i in range(res.sizes["run"]):
        r = res.isel(run=i)
        if bool(r["below_measurable"]):
            s = f"D_tr < {U.D_MEASURABLE_CM2_S:g} cm^2/s (below measurable), sigma < {float(r['sigma_bound']):.3g} mS/cm"
        else:
            s = (f"D_tr = {float(r['D_tr']):.3g} ± {float(r['D_tr_err']):.2g} cm^2/s, "
                 f"sigma = {float(r['sigma']):.3g} ± {float(r['sigma_err']):.2g} mS/cm")
            if not np.isfinite(float(r["sigma"])) and not np.isfinite(float(r["target_temperature"])):
                s = (f"D_tr = {float(r['D_tr']):.3g} ± {float(r['D_tr_err']):.2g} cm^2/s, "
                     "sigma needs a temperature (--temperature)")
            if "diffusive" in r and not bool(r["diffusive"]):
                why = str(r["diffusive_reason"].values) if "diffusive_reason" in r else ""
                s += f"  [NOT diffusive: {why or 'see results.nc notes'}; local motion, run longer]"
        st = {str(a): str(x) for a, x in zip(res["analysis"].values, r["analysis_status"].values)}
        if st.get("transport", "ok") != "ok":
            s = f"transport {st['transport']}"
        elif "transport" not in st:
            s = "transport not selected"
        print(f"{str(r['run'].values)} [{str(r['material'].values)}]: {s}")
        ok = [a for a, x in st.items() if x == "ok"]
        print(f"    ran: {', '.join(ok) if ok else 'nothing'}")
        for a, x in st.items():
            if x != "ok" and a != "transport":
                print(f"    {a}: {x}")
    print(f"wrote {Path(outdir) / 'results.nc'}")
    return res
