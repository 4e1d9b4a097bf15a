"""Matplotlib helpers for analysis figures (Agg backend, imported lazily)."""

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
