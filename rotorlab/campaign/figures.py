"""The study's figure set from a campaign, and the HTML summary (``rotorlab report DIR``).

Figures (PNG + SVG in ``DIR/report/``), named after the reference study's figures:

* ``fig3_sigma_<material>`` σ against 1000/T per mode (Fig. 3a–e)
* ``fig3f_drop`` order-of-magnitude drop log10(σ_UC/σ_mode) against T (Fig. 3f)
* ``figS12_r_mode`` r_mode bars (Fig. S12)
* ``fig4a_Ea`` activation energy per mode (Fig. 4a)
* ``fig2f_hop_vs_reorientation`` cation hop vs anion reorientation frequency (Fig. 2f)
* ``fig2e_reorientation`` reorientation frequency against T (Fig. 2e)
* ``fig5_dos_<material>`` cation DOS per mode with band centres (Fig. 5)
* ``figS25_band_centre_change`` band-centre change UC → RTVC (Fig. S25)
* ``fig6_density_<material>`` mobile-ion density slices per mode (Fig. 6)
* ``fig4b_free_energy_<material>`` F(r) of the cation–anion COM distance (Fig. 4b)

Every bound is drawn as one: an upper bound of σ as an open marker with a downward arrow, a
lower/upper bound of a drop or Δ as an open marker with an arrow in its direction, an r_mode
known only within a range as a hatched bar with its feasible interval. A figure whose data
are absent from the campaign is skipped and the HTML page says why.
"""

from __future__ import annotations

import html
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from rotorlab.campaign.collect import CACHE_SUFFIX, RESULT_FILE
from rotorlab.campaign.runner import RUNS_DIR, CampaignState

__all__ = ["report", "draw_figures", "SkipFigure"]

_COLORS = {"UC": "#1f77b4", "TC": "#8c564b", "RC": "#ff7f0e", "RTC": "#2ca02c",
           "RTVC": "#d62728", "RVC": "#9467bd"}


class SkipFigure(Exception):
    """A figure cannot be drawn from this campaign; the message says why."""


def _color(mode):
    return _COLORS.get(str(mode), "#7f7f7f")


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, outdir: Path, name: str) -> list:
    paths = []
    for ext in ("png", "svg"):
        p = outdir / f"{name}.{ext}"
        fig.savefig(p, dpi=120 if ext == "png" else None, bbox_inches="tight")
        paths.append(p)
    _plt().close(fig)
    return paths


def _cache(outdir: Path, run_name: str):
    p = outdir / RUNS_DIR / (run_name + CACHE_SUFFIX)
    if not run_name or not p.is_file():
        return None
    with xr.open_dataset(p, engine="scipy") as c:
        return c.load()


# ------------------------------------------------------------------------------ figures


def fig_sigma(res, mat):
    """σ against 1000/T per mode for one material (Fig. 3a–e)."""
    plt = _plt()
    T = res["temperature"].values
    sub = res.sel(material=mat)
    fig, ax = plt.subplots(figsize=(5, 4))
    drawn = 0
    for mode in res["mode"].values:
        s = sub["sigma_pooled"].sel(mode=mode).values
        e = sub["sigma_pooled_err"].sel(mode=mode).values
        b = sub["sigma_pooled_bound"].sel(mode=mode).values
        x = 1000.0 / T
        c = _color(mode)
        ok = np.isfinite(s)
        if ok.any():
            ax.errorbar(x[ok], s[ok], yerr=np.where(np.isfinite(e[ok]), e[ok], 0), fmt="o-",
                        color=c, label=str(mode), capsize=3)
            drawn += 1
        bd = np.isfinite(b)
        if bd.any():
            ax.errorbar(x[bd], b[bd], yerr=0.5 * b[bd], uplims=True, fmt="v", mfc="none",
                        color=c, label=f"{mode} (upper bound)", capsize=3)
            drawn += 1
        reps = sub["sigma"].sel(mode=mode).values  # (temperature, replica)
        for k in range(reps.shape[1]):
            okk = np.isfinite(reps[:, k])
            ax.plot(x[okk], reps[okk, k], ".", color=c, alpha=0.35)
    if not drawn:
        raise SkipFigure(f"{mat}: no run has a conductivity (value or bound)")
    ax.set_yscale("log")
    ax.set_xlabel("1000 / T (1/K)")
    ax.set_ylabel("σ (mS/cm)")
    ax.set_title(f"{mat}: σ per constraint mode")
    ax.legend(fontsize=7)
    return fig


def fig_drop(res):
    """log10(σ_UC/σ_mode) against T (Fig. 3f)."""
    if not np.isfinite(res["drop"].values).any():
        raise SkipFigure("needs UC, RC, RTC and RTVC runs at a common temperature")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4))
    T = res["temperature"].values
    ls = ["-", "--", ":", "-."]
    for i, mat in enumerate(res["material"].values):
        for mode in ("RC", "RTC", "RTVC"):
            d = res["drop"].sel(material=mat, mode=mode).values
            k = res["drop_kind"].sel(material=mat, mode=mode).values
            c = _color(mode)
            val = np.isfinite(d) & (k == "value")
            if val.any():
                ax.plot(T[val], d[val], "o" + ls[i % 4], color=c, label=f"{mat} {mode}")
            for kind, lolim, uplim in (("lower_bound", True, False),
                                       ("upper_bound", False, True)):
                m = np.isfinite(d) & (k == kind)
                if m.any():
                    ax.errorbar(T[m], d[m], yerr=0.3, lolims=lolim, uplims=uplim, fmt="s",
                                mfc="none", color=c, label=f"{mat} {mode} ({kind.replace('_', ' ')})")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("T (K)")
    ax.set_ylabel("log10(σ_UC / σ_mode) (decades)")
    ax.set_title("Order-of-magnitude drop of σ")
    ax.legend(fontsize=6)
    return fig


def fig_r_mode(res):
    """r_mode bars per material and temperature (Fig. S12)."""
    r = res["r_mode"].values
    if not np.isfinite(r).any():
        raise SkipFigure("needs UC, RC, RTC and RTVC runs at a common temperature with "
                         "determined contributions")
    plt = _plt()
    groups = [(i, j) for i in range(res.sizes["material"]) for j in range(res.sizes["temperature"])
              if np.isfinite(r[i, :, j]).any()]
    fig, ax = plt.subplots(figsize=(max(4, 1.4 * len(groups) + 2), 4))
    w = 0.25
    colors = {"Rot": "#ff7f0e", "Trs": "#2ca02c", "Vib": "#d62728"}
    for g, (i, j) in enumerate(groups):
        for c, name in enumerate(res["contribution"].values):
            v = r[i, c, j]
            kind = str(res["r_kind"].values[i, c, j])
            x = g + (c - 1) * w
            exact = kind == "value"
            ax.bar(x, v, w, color=colors[str(name)] if exact else "none",
                   edgecolor=colors[str(name)], hatch=None if exact else "//",
                   label=str(name) if g == 0 else None)
            if not exact:
                lo, hi = res["r_lo"].values[i, c, j], res["r_hi"].values[i, c, j]
                lo_c, hi_c = max(lo, -1.5), min(hi, 2.5)
                ax.errorbar(x, v, yerr=[[v - lo_c], [hi_c - v]], fmt="none",
                            color=colors[str(name)], capsize=3,
                            lolims=kind == "lower_bound", uplims=kind == "upper_bound")
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([f"{res['material'].values[i]}\n{res['temperature'].values[j]:g} K"
                        for i, j in groups], fontsize=7)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_ylabel("r_mode")
    ax.set_title("Mode contributions (hatched: bound/range)")
    ax.legend(fontsize=7)
    return fig


def fig_ea(res):
    """Activation energy per mode (Fig. 4a)."""
    ea = res["Ea_sigmaT"].values
    if not np.isfinite(ea).any():
        raise SkipFigure("needs a mode with measurable σ at two or more temperatures")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4))
    modes = list(res["mode"].values)
    n = res.sizes["material"]
    w = 0.8 / max(n, 1)
    for i, mat in enumerate(res["material"].values):
        x = np.arange(len(modes)) + (i - (n - 1) / 2) * w
        v = ea[i]
        err = res["Ea_sigmaT_err"].values[i]
        ok = np.isfinite(v)
        ax.bar(x[ok], v[ok], w, yerr=np.where(np.isfinite(err[ok]), err[ok], 0), capsize=3,
               label=str(mat))
    ax.set_xticks(range(len(modes)))
    ax.set_xticklabels(modes)
    ax.set_ylabel("E_a from σT (eV)")
    ax.set_title("Activation energy per mode")
    ax.legend(fontsize=7)
    return fig


def fig_hop_vs_reo(res):
    """Cation hop frequency against anion reorientation frequency (Fig. 2f)."""
    h = res["hop_frequency_pooled"].values
    o = res["reorientation_frequency_pooled"].values
    ok = np.isfinite(h) & np.isfinite(o)
    if not ok.any():
        raise SkipFigure("no run has both a hop and a reorientation frequency")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4))
    markers = "osD^vP*X"
    for i, mat in enumerate(res["material"].values):
        for j, mode in enumerate(res["mode"].values):
            m = ok[i, j]
            if m.any():
                ax.plot(o[i, j][m], h[i, j][m], markers[i % 8], color=_color(mode),
                        label=f"{mat} {mode}")
    ax.set_xlabel("anion reorientation frequency (1/ns)")
    ax.set_ylabel("cation hop frequency (1/ns)")
    if (o[ok] > 0).all() and (h[ok] > 0).all():
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_title("Cation hops vs anion reorientation")
    ax.legend(fontsize=6)
    return fig


def fig_reo_T(res):
    """Reorientation frequency against T (Fig. 2e)."""
    o = res["reorientation_frequency_pooled"].values
    if not np.isfinite(o).any():
        raise SkipFigure("no run has a reorientation frequency (no rotors, or rotation "
                         "analysis off)")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4))
    T = res["temperature"].values
    for i, mat in enumerate(res["material"].values):
        for j, mode in enumerate(res["mode"].values):
            v = o[i, j]
            e = res["reorientation_frequency_pooled_err"].values[i, j]
            m = np.isfinite(v)
            if m.any():
                ax.errorbar(T[m], v[m], yerr=np.where(np.isfinite(e[m]), e[m], 0), fmt="o-",
                            color=_color(mode), label=f"{mat} {mode}", capsize=3)
    ax.set_xlabel("T (K)")
    ax.set_ylabel("reorientation frequency (1/ns)")
    ax.set_title("Anion reorientation")
    ax.legend(fontsize=6)
    return fig


def _rep_runs(res, mat):
    """Per mode: the run name of replica 0 at the highest temperature with a done run."""
    out = {}
    sub = res.sel(material=mat)
    for mode in res["mode"].values:
        names = sub["run_name"].sel(mode=mode).values  # (temperature, replica)
        st = sub["status"].sel(mode=mode).values
        for j in range(names.shape[0] - 1, -1, -1):
            ks = [k for k in range(names.shape[1]) if st[j, k] == "done" and names[j, k]]
            if ks:
                out[str(mode)] = (str(names[j, ks[0]]), float(res["temperature"].values[j]))
                break
    return out


def fig_dos(res, mat, outdir):
    """Cation DOS per mode with band centres (Fig. 5)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4))
    n = 0
    for mode, (name, T) in _rep_runs(res, mat).items():
        c = _cache(outdir, name)
        if c is None or "cation_dos" not in c:
            continue
        g = c["cation_dos"]
        ax.plot(g["dos_frequency"].values, g.values, color=_color(mode), label=f"{mode} {T:g} K")
        bc = float(c["cation_band_centre"])
        if np.isfinite(bc):
            ax.axvline(bc, color=_color(mode), ls="--", lw=1)
        n += 1
    if not n:
        _plt().close(fig)
        raise SkipFigure(f"{mat}: no cation DOS (runs without velocities or vibrations off)")
    ax.set_xlabel("frequency (THz)")
    ax.set_ylabel("cation DOS (1/THz)")
    ax.set_xlim(left=0)
    ax.set_title(f"{mat}: cation DOS (dashed: band centres)")
    ax.legend(fontsize=7)
    return fig


def fig_band_centre_change(res):
    """Band-centre change UC → RTVC (Fig. S25)."""
    d = res["band_centre_change"].values
    if not np.isfinite(d).any():
        raise SkipFigure("needs UC and RTVC runs with a cation DOS at a common temperature")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4))
    T = res["temperature"].values
    labels, vals = [], []
    for i, mat in enumerate(res["material"].values):
        for j in range(T.size):
            if np.isfinite(d[i, j]):
                labels.append(f"{mat}\n{T[j]:g} K")
                vals.append(d[i, j])
    ax.bar(range(len(vals)), vals, color=["#d62728" if v > 0 else "#1f77b4" for v in vals])
    ax.set_xticks(range(len(vals)))
    ax.set_xticklabels(labels, fontsize=7)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_ylabel("band centre RTVC − UC (THz)")
    ax.set_title("Cation band-centre change UC → RTVC")
    return fig


def fig_density(res, mat, outdir):
    """Mobile-ion density slices (projection on a–b) per mode (Fig. 6)."""
    items = []
    for mode, (name, T) in _rep_runs(res, mat).items():
        c = _cache(outdir, name)
        if c is not None and "density_ab" in c:
            items.append((mode, T, c))
    if not items:
        raise SkipFigure(f"{mat}: no density grid (density analysis off or failed)")
    plt = _plt()
    fig, axes = plt.subplots(1, len(items), figsize=(3.2 * len(items), 3.2), squeeze=False)
    for ax, (mode, T, c) in zip(axes[0], items):
        a, b = float(c.attrs.get("cell_a", 1.0)), float(c.attrs.get("cell_b", 1.0))
        ax.imshow(c["density_ab"].values.T, origin="lower", extent=(0, a, 0, b),
                  cmap="viridis", aspect="equal")
        ax.set_title(f"{mode} {T:g} K", fontsize=8)
        ax.set_xlabel("a (Å)")
        ax.set_ylabel("b (Å)")
    fig.suptitle(f"{mat}: mobile-ion probability (summed over c)")
    return fig


def fig_free_energy(res, mat, outdir):
    """F(r) of the cation–anion centre-of-mass distance per mode (Fig. 4b)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4))
    n = 0
    for mode, (name, T) in _rep_runs(res, mat).items():
        c = _cache(outdir, name)
        if c is None or "free_energy" not in c:
            continue
        F = c["free_energy"]
        ok = np.isfinite(F.values)
        ax.plot(F["fr_r"].values[ok], F.values[ok], color=_color(mode), label=f"{mode} {T:g} K")
        n += 1
    if not n:
        _plt().close(fig)
        raise SkipFigure(f"{mat}: no F(r) (no rotors, or the free-energy analysis is off)")
    ax.set_xlabel("cation–anion COM distance r (Å)")
    ax.set_ylabel("F(r) (eV)")
    ax.set_title(f"{mat}: cation–anion free energy")
    ax.legend(fontsize=7)
    return fig


def draw_figures(res: xr.Dataset, outdir, figdir) -> tuple[list, list]:
    """Draw every figure of the set that the campaign's data allow.

    Returns
    -------
    drawn : list of (name, caption, [png, svg])
    skipped : list of (name, reason)
    """
    outdir, figdir = Path(outdir), Path(figdir)
    figdir.mkdir(parents=True, exist_ok=True)
    jobs = []
    for mat in res["material"].values:
        mat = str(mat)
        jobs.append((f"fig3_sigma_{mat}", f"Fig. 3a–e: σ vs 1000/T per mode, {mat}",
                     lambda m=mat: fig_sigma(res, m)))
    jobs += [("fig3f_drop", "Fig. 3f: order-of-magnitude drop of σ", lambda: fig_drop(res)),
             ("figS12_r_mode", "Fig. S12: r_mode", lambda: fig_r_mode(res)),
             ("fig4a_Ea", "Fig. 4a: activation energy per mode", lambda: fig_ea(res)),
             ("fig2f_hop_vs_reorientation", "Fig. 2f: cation hop vs anion reorientation",
              lambda: fig_hop_vs_reo(res)),
             ("fig2e_reorientation", "Fig. 2e: reorientation frequency vs T",
              lambda: fig_reo_T(res)),
             ("figS25_band_centre_change", "Fig. S25: band-centre change UC → RTVC",
              lambda: fig_band_centre_change(res))]
    for mat in res["material"].values:
        mat = str(mat)
        jobs += [(f"fig5_dos_{mat}", f"Fig. 5: cation DOS with band centres, {mat}",
                  lambda m=mat: fig_dos(res, m, outdir)),
                 (f"fig6_density_{mat}", f"Fig. 6: mobile-ion density, {mat}",
                  lambda m=mat: fig_density(res, m, outdir)),
                 (f"fig4b_free_energy_{mat}", f"Fig. 4b: F(r) cation–anion COM, {mat}",
                  lambda m=mat: fig_free_energy(res, m, outdir))]
    drawn, skipped = [], []
    for name, caption, fn in jobs:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fig = fn()
                drawn.append((name, caption, _save(fig, figdir, name)))
        except SkipFigure as exc:
            skipped.append((name, str(exc)))
        except Exception as exc:  # a figure bug must not hide the others: report it
            skipped.append((name, f"failed to draw: {type(exc).__name__}: {exc}"))
    return drawn, skipped


# ------------------------------------------------------------------------------ report


def _fmt_sigma(r):
    if np.isfinite(r["sigma"]):
        return f"{r['sigma']:.3g} ± {r['sigma_err']:.2g}"
    if np.isfinite(r["sigma_bound"]):
        return f"&lt; {r['sigma_bound']:.3g} (bound)"
    return "–"


def report(outdir, *, collect: bool = True, client=None, out=None) -> Path:
    """Collect (cached) and draw the figure set plus ``DIR/report/index.html``.

    Parameters
    ----------
    outdir : path
        Campaign directory.
    collect : bool
        Re-collect ``campaign.nc`` first (cheap: per-run analyses are cached); otherwise
        read the existing file.
    client : distributed.Client, optional
        Run the per-run analyses on this cluster.
    out : file, optional
        Where the one-line summary goes (default stdout).

    Returns
    -------
    pathlib.Path
        The HTML page.
    """
    import sys

    out = out or sys.stdout
    outdir = Path(outdir)
    state = CampaignState.load(outdir)
    if collect:
        from rotorlab.campaign.collect import collect as _collect

        res = _collect(outdir, client=client)
    else:
        if not (outdir / RESULT_FILE).is_file():
            raise FileNotFoundError(f"no {RESULT_FILE} in {outdir}; collect first")
        with xr.open_dataset(outdir / RESULT_FILE, engine="scipy") as f:
            res = f.load()
    figdir = outdir / "report"
    drawn, skipped = draw_figures(res, outdir, figdir)
    page = figdir / "index.html"
    page.write_text(_html(res, state, drawn, skipped))
    print(f"report: {page} ({len(drawn)} figures, {len(skipped)} skipped)", file=out)
    return page


def _html(res, state, drawn, skipped) -> str:
    e = html.escape
    spec = state.data.get("spec", {})
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'>",
             f"<title>rotorlab campaign {e(str(res.attrs.get('campaign')))}</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
             "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;"
             "padding:2px 6px}.warn{background:#fee;border:2px solid #c00;padding:8px}"
             "img{max-width:520px}figure{display:inline-block;margin:8px}</style></head><body>",
             f"<h1>Campaign {e(str(res.attrs.get('campaign')))}</h1>",
             f"<p>{e(str(spec.get('description') or ''))}</p>",
             f"<p>{res.attrs.get('n_done')} of {res.attrs.get('n_runs')} runs done, "
             f"{res.attrs.get('n_failed')} failed. Results: <code>campaign.nc</code>; "
             f"state: <code>campaign.json</code>.</p>"]
    fb = str(res.attrs.get("potential_fallback_materials", "none"))
    if fb != "none":
        parts.append(f"<p class='warn'><b>Fallback potential:</b> no bundled DeePMD model "
                     f"exists for {e(fb)}; those runs used "
                     f"<code>{e(str(spec.get('potential_fallback')))}</code> — rotorlab's "
                     "test force field, not a physics-grade model. Numbers and figures show "
                     "the workflow, not the material.</p>")
    pots = sorted({str(r.get("potential")) for r in state.runs.values()})
    if "reference" in pots and fb == "none":
        parts.append("<p class='warn'>Runs used the <code>reference</code> force field "
                     "(a test potential, not a physics-grade model).</p>")
    failed = state.failed()
    if failed:
        parts.append("<h2>Failed runs</h2><ul>")
        for k, r in failed.items():
            err = r["errors"][-1] if r.get("errors") else {"type": "?", "message": "?"}
            parts.append(f"<li><code>{e(k)}</code> after {r['attempts']} attempt(s): "
                         f"{e(err['type'])}: {e(err['message'])}</li>")
        parts.append("</ul>")
    parts.append("<h2>Figures</h2>")
    for name, caption, paths in drawn:
        png, svg = paths[0].name, paths[1].name
        parts.append(f"<figure><a href='{e(svg)}'><img src='{e(png)}' alt='{e(name)}'></a>"
                     f"<figcaption>{e(caption)} (<a href='{e(svg)}'>SVG</a>)</figcaption>"
                     "</figure>")
    if skipped:
        parts.append("<h2>Skipped figures</h2><ul>")
        for name, why in skipped:
            parts.append(f"<li><code>{e(name)}</code>: {e(why)}</li>")
        parts.append("</ul>")
    parts.append("<h2>Runs</h2><table><tr><th>material</th><th>mode</th><th>T (K)</th>"
                 "<th>replica</th><th>status</th><th>attempts</th><th>σ (mS/cm)</th>"
                 "<th>diffusive</th><th>notes / error</th></tr>")
    dims = ("material", "mode", "temperature", "replica")
    st = res["status"].transpose(*dims).values
    for ix in np.ndindex(*st.shape):
        if st[ix] == "absent":
            continue
        g = {v: float(res[v].transpose(*dims).values[ix])
             for v in ("sigma", "sigma_err", "sigma_bound", "diffusive")}
        note = str(res["error"].transpose(*dims).values[ix]) or \
            str(res["notes"].transpose(*dims).values[ix])
        diff = "–" if not np.isfinite(g["diffusive"]) else ("yes" if g["diffusive"] else "no")
        parts.append(
            f"<tr><td>{e(str(res['material'].values[ix[0]]))}</td>"
            f"<td>{e(str(res['mode'].values[ix[1]]))}</td>"
            f"<td>{res['temperature'].values[ix[2]]:g}</td><td>{ix[3]}</td>"
            f"<td>{e(str(st[ix]))}</td>"
            f"<td>{int(res['attempts'].transpose(*dims).values[ix])}</td>"
            f"<td>{_fmt_sigma(g)}</td><td>{diff}</td><td>{e(note)}</td></tr>")
    parts.append("</table></body></html>")
    return "\n".join(parts)
