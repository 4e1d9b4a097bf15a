"""``analyze``: run the analysis suite over several trajectories and write results.nc + figures.

``rotorlab analyze STORE... -o DIR`` calls :func:`analyze`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from rotorlab import units as U

from . import _data
from .transport import MODES, Transport, arrhenius_fit, mode_contributions, sigma_table

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


def analyze_run(ds: xr.Dataset, *, rotation: bool = True, hops: bool = True, vibrations: bool = True,
                transport_kw: dict | None = None, reorientation_kw: dict | None = None,
                hops_kw: dict | None = None, dos_kw: dict | None = None,
                memory: float = _data.DEFAULT_MEMORY) -> tuple[dict, dict]:
    """Analyse one trajectory.

    Returns
    -------
    scalars : dict
        The per-run numbers of ``results.nc`` (NaN when not applicable).
    curves : dict
        ``msd`` and (when velocities exist) ``dos`` DataArrays for figures, plus ``notes``.
    """
    notes = []
    vals = {k: np.nan for k in RUN_VARS}
    tr = Transport(memory=memory, **(transport_kw or {})).compute(ds)
    r = tr.result
    for k in ("D_tr", "D_tr_err", "D_tr_bound", "sigma", "sigma_err", "sigma_bound", "n_ions", "volume"):
        vals[k] = float(r[k])
    vals["below_measurable"] = bool(r["below_measurable"])
    vals["msd_exponent"] = float(r["msd_exponent"])
    vals["diffusive"] = bool(r["diffusive"])
    if not vals["diffusive"] and not vals["below_measurable"]:
        notes.append(f"MSD not diffusive (log-log slope {vals['msd_exponent']:.2f}): D_tr reflects "
                     "local motion; run longer")
    nf = _data.n_frames(ds)
    vals["n_frames"] = nf
    vals["duration"] = float((nf - 1) * _data.frame_dt_ps(ds))
    curves = {"msd": tr.msd}
    if rotation and "rotor" in ds.dims and ds.sizes["rotor"] > 0 and "orientation_atoms" in ds:
        from .rotation import Reorientation

        vals["reorientation_frequency"] = Reorientation(memory=memory, **(reorientation_kw or {})).compute(ds).mean_frequency
    if hops:
        from .hops import SiteHops

        try:
            vals["hop_frequency"] = SiteHops(memory=memory, **(hops_kw or {})).compute(ds).mean_frequency
        except ValueError as exc:
            notes.append(f"hops skipped: {exc}")
    if vibrations:
        if "velocities" in ds.variables:
            from .vibrations import PhononDOS

            sp = str(r.attrs["mobile_species"])
            d = PhononDOS(species=sp, memory=memory, **(dos_kw or {})).compute(ds)
            bc = d.band_centre_of(sp)
            vals["cation_band_centre"] = bc
            vals["cation_band_centre_meV"] = bc * U.THZ_TO_MEV
            vals["cation_band_centre_cm1"] = bc * U.THZ_TO_CM1
            curves["dos"] = d.pdos.sel(species=sp)
        else:
            notes.append("no velocities: cation band centre not computed")
    curves["notes"] = notes
    return vals, curves


def analyze(paths_or_datasets: Iterable, outdir, *, rotation: bool = True, hops: bool = True,
            vibrations: bool = True, figures: bool = True, memory: float = _data.DEFAULT_MEMORY,
            **kw) -> xr.Dataset:
    """Analyse trajectories and write ``outdir/results.nc`` and PNG+SVG figures.

    Parameters
    ----------
    paths_or_datasets : iterable of path or xarray.Dataset
        Store directories (opened with :func:`rotorlab.store.open_store`) or Datasets.
    outdir : path
    rotation, hops, vibrations : bool
        Switch analyses off.
    figures : bool
        Write ``msd``, ``dos``, ``arrhenius``, ``mode_contributions`` and ``conductivity_drop``
        figures (where there is data for them).
    memory : float
        Bytes per materialised block.
    **kw
        ``transport_kw``, ``reorientation_kw``, ``hops_kw``, ``dos_kw`` passed on.

    Returns
    -------
    xarray.Dataset
        Dim ``run`` with coordinates ``material``, ``constraint_mode``, ``target_temperature``
        and variables D_tr, D_tr_err (block standard error), D_tr_bound, below_measurable,
        sigma, sigma_err, sigma_bound, reorientation_frequency, hop_frequency,
        cation_band_centre (THz, meV, cm⁻¹) …; when complete UC/RC/RTC/RTVC sets exist for one
        material also ``r_mode``/``delta``/``drop`` (temperature_mc); Arrhenius fits per
        (material, mode) group along ``arrhenius_group``.
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    items = list(paths_or_datasets)
    if not items:
        raise ValueError("analyze needs at least one store or dataset")
    names, rows, curves_all, meta = [], [], [], []
    for i, it in enumerate(items):
        ds, name = _open(it, i)
        vals, curves = analyze_run(ds, rotation=rotation, hops=hops, vibrations=vibrations, memory=memory, **kw)
        if name in names:
            name = f"{name}_{i}"
        names.append(name)
        rows.append(vals)
        curves_all.append(curves)
        meta.append((str(ds.attrs.get("material") or "unknown"), str(ds.attrs.get("constraint_mode") or "UC").upper(),
                     _data.temperature_K(ds)))
    res = xr.Dataset(coords={"run": names,
                             "material": ("run", [m[0] for m in meta]),
                             "constraint_mode": ("run", [m[1] for m in meta]),
                             "target_temperature": ("run", np.array([m[2] for m in meta], float), {"units": "K"})})
    for k, u in RUN_VARS.items():
        v = np.array([r[k] for r in rows])
        res[k] = xr.DataArray(v.astype(bool) if k in ("below_measurable", "diffusive") else v.astype(float), dims="run",
                              attrs={"units": u})
    res["D_tr"].attrs["method"] = ("slope/6 of the all-origin FFT MSD; drift: system COM removed for UC/RC, "
                                   "none for T-constrained modes; error: standard error over independent time blocks")
    res["below_measurable"].attrs["threshold_cm2_s"] = U.D_MEASURABLE_CM2_S
    site_rule = (kw.get("hops_kw") or {}).get("sites", "density")
    res["hop_frequency"].attrs["method"] = (
        "sites: " + ("mobile-ion positions of the first frame (reference structure)"
                     if isinstance(site_rule, str) and site_rule == "reference" else
                     "given by the caller" if not isinstance(site_rule, str) else
                     "time-averaged density maxima") + "; residence filter")
    res["reorientation_frequency"].attrs["method"] = "turn > 70 deg from previous resting direction, librations smoothed"
    notes = [f"{n}: {x}" for n, c in zip(names, curves_all) for x in c["notes"]]
    res.attrs["notes"] = "; ".join(notes) if notes else "none"
    res.attrs["sigma_method"] = "Nernst-Einstein sigma = N q^2 D_tr / (V kB T)"

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
    P.save(P.plot_msd([c["msd"] for c in curves_all], labels), outdir, "msd")
    dl = [(c["dos"], lab) for c, lab in zip(curves_all, labels) if "dos" in c]
    if dl:
        sp = {str(d["species"].values) for d, _ in dl if "species" in d.coords}
        P.save(P.plot_dos([d for d, _ in dl], [lab for _, lab in dl],
                          species=sp.pop() if len(sp) == 1 else None), outdir, "dos")
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
            if "diffusive" in r and not bool(r["diffusive"]):
                s += (f"  [NOT diffusive: MSD log-log slope {float(r['msd_exponent']):.2f}; "
                      "local motion, run longer]")
        print(f"{str(r['run'].values)}: {s}")
    print(f"wrote {Path(outdir) / 'results.nc'}")
    return res
