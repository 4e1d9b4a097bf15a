"""Independent replicas of one condition: per-replica results, their mean and standard error,
and the pooled-curve estimate.

The reference study ran 3–6 independent replicas per (material, mode, T) and quotes the
standard error over replicas.  :class:`ReplicaSet` runs one analyzer on every replica and
stacks every 0-d result along a ``replica`` dimension; ``mean`` and ``sem``
(``std(ddof=1)/sqrt(n)``) are over replicas.  For :class:`~rotorlab.analysis.transport.Transport`
the pooled estimate fits D_tr, D_σ and the Haven ratio to the replica-averaged tracer and
collective MSDs; for :class:`~rotorlab.analysis.rotor_dynamics.RotorDynamics` the
integrated times and the Ivanov fit are repeated on the replica-averaged C1/C2.

Replicas must be of one condition: material, constraint mode, target temperature and
mobile species (where recorded) must agree, otherwise a ValueError names what differs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import xarray as xr

from . import _data
from .base import Analyzer, Result

__all__ = ["ReplicaSet", "check_condition", "CONDITION_ATTRS"]

#: Store attributes that define one condition.
CONDITION_ATTRS = ("material", "constraint_mode", "target_temperature", "mobile_species")


def _norm(v):
    if v is None:
        return None
    if isinstance(v, (float, np.floating, int, np.integer)) and not isinstance(v, bool):
        return round(float(v), 6)
    return str(v).strip().upper() if isinstance(v, str) else v


def check_condition(datasets: Sequence[xr.Dataset], names: Sequence[str] | None = None,
                    attrs: Sequence[str] = CONDITION_ATTRS) -> dict:
    """Verify that trajectories share one condition; return it.

    Parameters
    ----------
    datasets : sequence of xarray.Dataset
    names : sequence of str, optional
        Labels used in the error message.
    attrs : sequence of str
        Attributes that must agree (missing on every replica is allowed).

    Returns
    -------
    dict
        attribute → common value (None where no replica records it).

    Raises
    ------
    ValueError
        If an attribute differs (or is recorded on some replicas only).
    """
    names = list(names) if names is not None else [f"replica {i}" for i in range(len(datasets))]
    out = {}
    for a in attrs:
        vals = [ds.attrs.get(a) for ds in datasets]
        norm = [_norm(v) for v in vals]
        if len(set(map(repr, norm))) > 1:
            shown = ", ".join(f"{n}: {v!r}" for n, v in zip(names, vals))
            raise ValueError(f"replicas must be one condition, but '{a}' differs ({shown}); "
                             "analyse each condition separately")
        out[a] = vals[0]
    return out


def _open(item, i):
    if isinstance(item, xr.Dataset):
        return item, str(item.attrs.get("name") or item.attrs.get("run_name") or f"replica{i}")
    from pathlib import Path

    from rotorlab.store import open_store  # lazy: sibling package

    return open_store(item), Path(item).name


def _scalars(a: Analyzer) -> xr.Dataset:
    """Every 0-d numeric variable of an analyzer's results."""
    res = a.results
    keep = {k: v for k, v in res.data_vars.items() if v.ndim == 0 and v.dtype.kind in "biuf"}
    return xr.Dataset(keep)


def _stack_curves(curves: list[xr.DataArray], dim: str) -> xr.DataArray:
    n = min(c.sizes[dim] for c in curves)
    return xr.concat([c.isel({dim: slice(0, n)}) for c in curves], dim="replica", coords="minimal",
                     compat="override", join="override")


class ReplicaSet(Analyzer):
    """Run one analyzer on several replicas of one condition and pool them.

    Parameters
    ----------
    analyzer : type or str
        An :class:`~rotorlab.analysis.base.Analyzer` subclass or a registry name
        (``"transport"``, ``"rotor_dynamics"``, …).
    **options
        Constructor options of that analyzer.

    Notes
    -----
    ``compute(items)`` takes a sequence of Datasets or store paths (at least 2).  Results:

    ``replicas``
        Dataset of every 0-d numeric result, dims (replica,), with units.
    ``mean``, ``sem``
        Mean and standard error ``std(ddof=1)/sqrt(n)`` over replicas (NaN replicas ignored,
        ``n_valid`` per variable).
    ``pooled``
        Estimates from the replica-averaged curves (Transport: ``D_tr``, ``D_sigma``,
        ``sigma``, ``sigma_collective``, ``haven_ratio`` from the mean tracer/collective MSD;
        RotorDynamics: its ``result`` recomputed on the mean C1/C2); empty for other analyzers.
    ``curves``
        The replicas' main curves stacked along ``replica`` (MSD or C1/C2), shortest length.
    """

    replicas = Result(None, "0-d results of every replica, dims (replica,).")
    mean = Result(None, "Mean over replicas of every 0-d result.")
    sem = Result(None, "Standard error over replicas (std ddof=1 / sqrt(n_valid)).")
    pooled = Result(None, "Estimates from the replica-averaged curves.")
    curves = Result(None, "Main curves of every replica, dims (replica, lag_time).")

    def __init__(self, analyzer, **options):
        self.analyzer = analyzer
        self.analyzer_options = dict(options)

    def _cls(self):
        a = self.analyzer
        if isinstance(a, str):
            from . import registry as R

            return R.get(a).cls
        if not (isinstance(a, type) and issubclass(a, Analyzer)):
            raise TypeError(f"analyzer must be an Analyzer subclass or a registry name, got {a!r}")
        return a

    def options(self):
        return {"analyzer": getattr(self.analyzer, "__name__", self.analyzer), **self.analyzer_options}

    def compute(self, items: Iterable) -> "ReplicaSet":
        cls = self._cls()
        opened = [_open(it, i) for i, it in enumerate(items)]
        if len(opened) < 2:
            raise ValueError(f"a replica set needs at least 2 replicas, got {len(opened)}")
        dss, names = [d for d, _ in opened], [n for _, n in opened]
        if len(set(names)) < len(names):
            names = [f"{n}#{i}" for i, n in enumerate(names)]
        cond = check_condition(dss, names)
        runs = [cls(**self.analyzer_options).compute(ds) for ds in dss]
        per = xr.concat([_scalars(a) for a in runs], dim="replica", join="outer", combine_attrs="override")
        per = per.assign_coords(replica=names)
        for k in per.data_vars:
            per[k].attrs = dict(runs[0].results[k].attrs)
        mean = per.mean("replica", skipna=True, keep_attrs=True)
        nvalid = per.notnull().sum("replica")
        sem = per.std("replica", ddof=1, skipna=True, keep_attrs=True) / np.sqrt(nvalid.where(nvalid > 0))
        for k in sem.data_vars:
            sem[k].attrs = {"units": per[k].attrs.get("units", "1"),
                            "method": "standard error over replicas, std(ddof=1)/sqrt(n_valid)"}
            mean[k].attrs = {"units": per[k].attrs.get("units", "1"), "method": "mean over replicas"}
            mean[f"{k}_n_valid"] = nvalid[k].assign_attrs(units="1")
        attrs = {k: ("" if v is None else v) for k, v in cond.items()}
        attrs.update({"analyzer": cls.__name__, "n_replicas": len(runs)})
        per.attrs, mean.attrs, sem.attrs = dict(attrs), dict(attrs), dict(attrs)
        pooled, curves = self._pool(cls, runs, dss)
        if curves.data_vars:
            curves = curves.assign_coords(replica=names)
        pooled.attrs.update(attrs)
        self._set(replicas=per, mean=mean, sem=sem, pooled=pooled, curves=curves)
        return self

    # ------------------------------------------------------------------ pooling
    def _pool(self, cls, runs, dss):
        from .rotor_dynamics import RotorDynamics
        from .transport import Transport, _fit_diffusion, nernst_einstein

        if issubclass(cls, Transport):
            msd = _stack_curves([a.msd for a in runs], "lag_time")
            cmsd = _stack_curves([a.msd_collective for a in runs], "lag_time")
            r0 = runs[0]
            nb = r0.n_blocks
            L = min(a.block_msd.sizes["block_lag_time"] for a in runs)
            lag = msd["lag_time"].values
            N = np.array([int(a.result["n_ions"]) for a in runs], dtype=float)
            m = msd.mean("replica").values
            cm = (cmsd / xr.DataArray(N, dims="replica")).mean("replica").values
            D = _fit_diffusion(lag[:L], m[:L], r0.window)[0]
            Dc = _fit_diffusion(lag[:L], cm[:L], r0.window)[0]
            V = float(np.mean([float(a.result["volume"]) for a in runs]))
            T = float(np.mean([float(a.result["temperature"]) for a in runs]))
            q = float(r0.result.attrs["charge_e"])
            n = int(round(N.mean()))
            ne = (lambda d: float(nernst_einstein(d, n, V, T, q))) if np.isfinite(T) else (lambda d: np.nan)
            meth = (f"fit of the replica-averaged MSD ({len(runs)} replicas) over lag window {r0.window} x "
                    f"block duration ({nb} blocks)")
            out = xr.Dataset({
                "D_tr": xr.DataArray(D, attrs={"units": "cm^2/s", "method": meth}),
                "D_sigma": xr.DataArray(Dc, attrs={"units": "cm^2/s", "method": meth.replace("MSD", "collective MSD")}),
                "sigma": xr.DataArray(ne(D), attrs={"units": "mS/cm"}),
                "sigma_collective": xr.DataArray(ne(Dc), attrs={"units": "mS/cm"}),
                "haven_ratio": xr.DataArray(D / Dc if Dc > 0 else np.nan, attrs={"units": "1"}),
            })
            curves = xr.Dataset({"msd": msd, "msd_collective": cmsd})
            return out, curves
        if issubclass(cls, RotorDynamics):
            c1 = _stack_curves([a.c1 for a in runs], "lag_time")
            c2 = _stack_curves([a.c2 for a in runs], "lag_time")
            nv = np.array([int(a.result["n_vectors"]) for a in runs], dtype=float)
            w = xr.DataArray(nv / nv.sum(), dims="replica")
            pooled = cls(**self.analyzer_options).estimates(
                c1["lag_time"].values, (c1 * w).sum("replica").values, (c2 * w).sum("replica").values,
                int(nv.sum()))[2]
            pooled.attrs["method"] = f"estimators on the vector-weighted mean C1/C2 of {len(runs)} replicas"
            return pooled, xr.Dataset({"c1": c1, "c2": c2})
        return xr.Dataset(), xr.Dataset()

    def _plot(self, P, ax=None, **kw):
        c = self.curves
        if not c.data_vars:
            raise NotImplementedError("no curves to draw for this analyzer")
        v = c[list(c.data_vars)[0]]
        return P.plot_curves([v.isel(replica=k) for k in range(v.sizes["replica"])],
                             [str(x) for x in v["replica"].values], ax=ax, **kw)
