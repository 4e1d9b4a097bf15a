"""Matplotlib helpers for analysis figures (Agg backend unless a notebook backend is active).

Two kinds of helpers:

* report figures (``plot_msd``, ``plot_arrhenius``, ``plot_mode_contributions``,
  ``plot_drop``, ``plot_dos``) return the :class:`~matplotlib.figure.Figure`;
* generic drawers used by ``Analyzer.plot`` (``plot_curves``, ``plot_histograms``,
  ``plot_bars``, ``plot_map``) take xarray objects with ``units`` attrs and return the
  :class:`~matplotlib.axes.Axes`.

``save`` writes PNG + SVG and closes the figure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        try:
            matplotlib.use("Agg")
        except Exception:  # pragma: no cover
            pass
    import matplotlib.pyplot as plt

    return plt


def _axes(ax, figsize=(5, 4)):
    plt = _plt()
    if ax is not None:
        return ax
    return plt.subplots(figsize=figsize)[1]


def _unit_label(da, fallback: str = "") -> str:
    u = str(da.attrs.get("units", "")) if hasattr(da, "attrs") else ""
    name = str(da.attrs.get("long_name") or da.name or fallback) if hasattr(da, "attrs") else fallback
    return f"{name} ({u})" if u and u != "1" else name


def plot_curves(curves, labels=None, ax=None, x: str | None = None, xscale: str = "linear",
                yscale: str = "linear", xlabel: str | None = None, ylabel: str | None = None,
                skip_first: bool = False, **kw):
    """Line plot of 1-D DataArrays against their (only) dimension coordinate or ``x``.

    Parameters
    ----------
    curves : sequence of xarray.DataArray
        1-D curves (values with ``units``; the coordinate ``x`` or the sole dim as abscissa).
    labels : sequence of str, optional
    ax : matplotlib.axes.Axes, optional
    x : str, optional
        Coordinate name for the abscissa.
    xscale, yscale : {"linear", "log"}
    skip_first : bool
        Drop the first point (lag 0 on log axes).
    **kw
        Passed to ``Axes.plot``.

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _axes(ax)
    labels = list(labels) if labels is not None else [None] * len(curves)
    for c, lab in zip(curves, labels):
        xn = x or c.dims[0]
        xs = np.asarray(c[xn].values if xn in c.coords else np.arange(c.sizes[c.dims[0]]), dtype=float)
        ys = np.asarray(c.values, dtype=float)
        if skip_first:
            xs, ys = xs[1:], ys[1:]
        if yscale == "log":
            ys = np.where(ys > 0, ys, np.nan)
        ax.plot(xs, ys, label=lab, **kw)
    ax.set_xscale(xscale)
    ax.set_yscale(yscale)
    if curves:
        c0 = curves[0]
        xn = x or c0.dims[0]
        ax.set_xlabel(xlabel or (_unit_label(c0[xn], xn) if xn in c0.coords else xn))
        ax.set_ylabel(ylabel or _unit_label(c0))
    if any(lab for lab in labels):
        ax.legend(fontsize=7)
    return ax


def plot_histograms(arrays, labels=None, ax=None, bins=36, xlabel: str | None = None, **kw):
    """Normalised histograms of the values of DataArrays (any shape); returns the Axes."""
    ax = _axes(ax)
    labels = list(labels) if labels is not None else [None] * len(arrays)
    for a, lab in zip(arrays, labels):
        v = np.asarray(a.values, dtype=float).ravel()
        ax.hist(v[np.isfinite(v)], bins=bins, density=True, histtype="step", label=lab, **kw)
    if arrays:
        ax.set_xlabel(xlabel or _unit_label(arrays[0]))
    ax.set_ylabel("probability density")
    if any(lab for lab in labels):
        ax.legend(fontsize=7)
    return ax


def plot_bars(da, ax=None, xlabel: str | None = None, ylabel: str | None = None, **kw):
    """Bar chart of a 1-D DataArray against its dimension (rotor, ion, site …); returns the Axes."""
    ax = _axes(ax)
    d = da.dims[0]
    xs = np.asarray(da[d].values if d in da.coords else np.arange(da.sizes[d]))
    ax.bar(np.arange(xs.size), np.asarray(da.values, dtype=float), **kw)
    if xs.size <= 30:
        ax.set_xticks(np.arange(xs.size), [str(v) for v in xs], fontsize=6)
    ax.set_xlabel(xlabel or d)
    ax.set_ylabel(ylabel or _unit_label(da))
    return ax


def plot_map(da, ax=None, xdim: str | None = None, ydim: str | None = None, label: str | None = None,
             cmap: str = "viridis", **kw):
    """Colour map of a 2-D DataArray (e.g. F(θ, φ), a density slice) with a colour bar; returns the Axes."""
    ax = _axes(ax, figsize=(5.5, 4))
    if da.ndim != 2:
        raise ValueError(f"plot_map needs a 2-D DataArray, got dims {da.dims}")
    ydim = ydim or da.dims[0]
    xdim = xdim or [d for d in da.dims if d != ydim][0]
    v = da.transpose(ydim, xdim)
    xs = np.asarray(v[xdim].values if xdim in v.coords else np.arange(v.sizes[xdim]), dtype=float)
    ys = np.asarray(v[ydim].values if ydim in v.coords else np.arange(v.sizes[ydim]), dtype=float)
    m = ax.pcolormesh(xs, ys, np.asarray(v.values, dtype=float), shading="auto", cmap=cmap, **kw)
    ax.figure.colorbar(m, ax=ax, label=label or _unit_label(da))
    ax.set_xlabel(_unit_label(v[xdim], xdim) if xdim in v.coords else xdim)
    ax.set_ylabel(_unit_label(v[ydim], ydim) if ydim in v.coords else ydim)
    return ax


def save(fig, outdir, name: str) -> list[Path]:
    """Save ``fig`` as ``outdir/name.png`` and ``outdir/name.svg``; closes the figure."""
    plt = _plt()
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in ("png", "svg"):
        p = outdir / f"{name}.{ext}"
        fig.savefig(p, dpi=150 if ext == "png" else None, bbox_inches="tight")
        paths.append(p)
    plt.close(fig)
    return paths


def plot_msd(msds, labels, ax=None):
    """Log–log MSD curves (DataArrays with ``lag_time`` in ps, values in Å²)."""
    plt = _plt()
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5, 4))
    for m, lab in zip(msds, labels):
        t, y = m["lag_time"].values[1:], m.values[1:]
        ax.loglog(t, np.where(y > 0, y, np.nan), label=lab)
    ax.set_xlabel("lag time (ps)")
    ax.set_ylabel("MSD (Å$^2$)")
    ax.legend(fontsize=7)
    return fig


def plot_arrhenius(groups, ax=None):
    """``groups``: mapping label → (T [K], sigma [mS/cm], sigma_err, below_flags, sigma_bounds)."""
    plt = _plt()
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5, 4))
    for lab, (T, s, e, below, bnd) in groups.items():
        T = np.asarray(T, float)
        x = 1000.0 / T
        ok = ~np.asarray(below, bool)
        line = ax.errorbar(x[ok], np.asarray(s)[ok] * T[ok], yerr=np.asarray(e)[ok] * T[ok], marker="o",
                           label=lab, capsize=2)
        if (~ok).any():
            ax.scatter(x[~ok], np.asarray(bnd)[~ok] * T[~ok], marker="v", color=line[0].get_color(),
                       label=f"{lab} (upper bound)")
    ax.set_yscale("log")
    ax.set_xlabel("1000 / T (1/K)")
    ax.set_ylabel("σT (mS K / cm)")
    ax.legend(fontsize=7)
    return fig


def plot_mode_contributions(mc, ax=None):
    """Per-mode conductivity drops Δ_mode = Δlog10 σ (bars) with r_mode annotated.

    Bars are grouped by temperature, one per contribution (Rot, Trs, Vib); a hatched
    bar is a bound (a "below measurable" σ on one side), an empty slot an undetermined
    Δ. Each bar is labelled with r_mode, its [r_lo, r_hi] range when only bounds are
    known, or "?" when undetermined.
    """
    plt = _plt()
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5.5, 4))
    T = mc["temperature"].values
    contribs = list(mc["contribution"].values)
    width = 0.8 / max(len(contribs), 1)
    x0 = np.arange(T.size)
    for k, c in enumerate(contribs):
        d = mc["delta"].sel(contribution=c).values
        dk = mc["delta_kind"].sel(contribution=c).values
        r = mc["r"].sel(contribution=c).values
        lo = mc["r_lo"].sel(contribution=c).values
        hi = mc["r_hi"].sel(contribution=c).values
        xs = x0 + (k - (len(contribs) - 1) / 2) * width
        bars = ax.bar(xs, np.nan_to_num(d), width=width * 0.95, label=f"Δ_{c}")
        for b, kind, dv, rv, l, h in zip(bars, dk, d, r, lo, hi):
            if kind != "value":
                b.set_hatch("//")
            if np.isfinite(rv):
                txt = f"r={rv:.2f}"
            elif np.isfinite(l) or np.isfinite(h):
                txt = f"r∈[{np.nan_to_num(l, nan=0):.2f},{np.nan_to_num(h, nan=1):.2f}]"
            else:
                txt = "r=?"
            if kind == "lower_bound":
                txt = "≥" + f"{dv:.2f}\n" + txt
            ax.annotate(txt, (b.get_x() + b.get_width() / 2, max(np.nan_to_num(dv), 0)),
                        ha="center", va="bottom", fontsize=6)
    ax.set_xticks(x0, [f"{t:g}" for t in T])
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("T (K)")
    ax.set_ylabel("Δ log10 σ per frozen motion")
    ax.legend(fontsize=7, title="hatched: bound", title_fontsize=7)
    return fig


def plot_drop(mc, ax=None):
    """Order-of-magnitude drop log10(σ_UC/σ_mode) against temperature (Fig. 3f style)."""
    plt = _plt()
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5, 4))
    T = mc["temperature"].values
    for m in mc["mode"].values[1:]:
        d = mc["drop"].sel(mode=m).values
        k = mc["drop_kind"].sel(mode=m).values
        line, = ax.plot(T, d, marker="o", label=m)
        lb = k == "lower_bound"
        if lb.any():
            ax.scatter(T[lb], d[lb], marker="^", s=60, color=line.get_color())
    ax.set_xlabel("T (K)")
    ax.set_ylabel("log10(σ_UC / σ_mode)  (▲ lower bound)")
    ax.legend(fontsize=7)
    return fig


def plot_dos(doses, labels, ax=None, unit: str = "THz", species: str | None = None,
             coverage: float = 0.995):
    """Phonon DOS curves (DataArrays with ``frequency`` in THz).

    The frequency axis is cut where ``coverage`` of every curve's weight lies below it
    (the VACF's Nyquist range is usually far wider than the spectrum).
    """
    plt = _plt()
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5, 4))
    xmax = 0.0
    for d, lab in zip(doses, labels):
        x = d["frequency"].values if unit == "THz" else d["energy"].values if unit == "meV" else d["wavenumber"].values
        y = np.nan_to_num(np.asarray(d.values, dtype=float))
        ax.plot(x, y, label=lab, lw=1)
        c = np.cumsum(np.clip(y, 0, None))
        if c[-1] > 0:
            xmax = max(xmax, float(x[min(np.searchsorted(c, coverage * c[-1]) + 1, x.size - 1)]))
    if xmax > 0:
        ax.set_xlim(0, xmax * 1.1)
    ax.set_xlabel({"THz": "frequency (THz)", "meV": "energy (meV)"}.get(unit, "wavenumber (cm$^{-1}$)"))
    ax.set_ylabel(f"{species + ' ' if species else ''}DOS (1/{unit})")
    ax.legend(fontsize=7)
    return fig
