"""The main job on the bundled defaults (``rotorlab demo`` / ``make demo``).

1. Builds every catalog material at its quick size and detects its rotors.
2. Runs the demo campaign ``datasets/campaigns/demo.yaml`` (α-Li3PS4 quick cell, UC, RC, RTC
   and RTVC at two of the study's temperatures) on a local Dask cluster with the bundled
   potential — the material's DeePMD model when one is bundled, otherwise rotorlab's
   reference force field (a documented test/demo potential, not a physics-grade model: the
   numbers then show the workflow, not Li3PS4's conductivity, and the output says so).
3. Collects the runs (``campaign.nc``), draws the study's figure set with an HTML summary,
   and prints where everything is and how to open the app on it.

Runs are resumable: a second call recomputes nothing that finished and continues what was
interrupted, from its checkpoints.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def _stage_catalog() -> list[str]:
    from rotorlab import materials
    from rotorlab.materials import detect

    print("== 1. materials catalog (quick cells, rotor detection)")
    lines = []
    for name in materials.names():
        mat = materials.catalog(name)
        atoms = materials.get(name, "quick")
        top = detect(atoms)
        line = (f"   {name:<12} {len(atoms):>4} atoms (paper {mat.paper_atoms:>4}), "
                f"trust {mat.trust:<4} {top.summary()}")
        print(line)
        lines.append(line)
    return lines


def demo_spec(steps: int | None = None):
    """The demo campaign spec (``datasets/campaigns/demo.yaml``), optionally shortened.

    Parameters
    ----------
    steps : int, optional
        Production steps per run; equilibration is then at most a quarter of it.
    """
    from rotorlab._paths import datasets_dir
    from rotorlab.campaign.spec import CampaignSpec

    spec = CampaignSpec.load(datasets_dir() / "campaigns" / "demo.yaml")
    if steps is None:
        return spec
    steps = int(steps)
    if steps < 1:
        raise ValueError(f"--steps must be >= 1, got {steps}")
    d = spec.to_dict()
    d["steps"] = steps
    d["equilibration_steps"] = min(int(d.get("equilibration_steps") or 0), steps // 4)
    if d.get("checkpoint_interval"):
        fi = int(d.get("frame_interval") or 10)
        ci = min(int(d["checkpoint_interval"]), max(fi, steps - steps % fi))
        d["checkpoint_interval"] = ci
    return CampaignSpec.from_dict(d)


def _cell(r) -> str:
    """sigma of one (material, mode, temperature): a value, a bound, or why there is none."""
    kind = str(r["sigma_pooled_kind"].values) if "sigma_pooled_kind" in r else "value"
    val = float(r["sigma_pooled"]) if "sigma_pooled" in r else np.nan
    if kind == "value" and np.isfinite(val):
        err = float(r["sigma_pooled_err"]) if "sigma_pooled_err" in r else np.nan
        diff = float(r["diffusive_pooled"]) if "diffusive_pooled" in r else 1.0
        return f"{val:.3g} ± {err:.2g}" + ("*" if np.isfinite(diff) and diff < 1 else "")
    bound = float(r["sigma_pooled_bound"]) if "sigma_pooled_bound" in r else np.nan
    if "bound" in kind and np.isfinite(bound):
        return f"{'<' if 'upper' in kind else '>'} {bound:.2g} (bound)"
    return "no value (see notes)"


def _summarise(res) -> None:
    print("\n   conductivity sigma [mS/cm] (pooled over replicas):")
    mats = [str(m) for m in res["material"].values]
    modes = [str(m) for m in res["mode"].values]
    temps = [float(t) for t in res["temperature"].values]
    print("   " + f"{'T [K]':<8}" + "".join(f"{m:>22}" for m in modes))
    for mat in mats:
        for t in temps:
            cells = [_cell(res.sel(material=mat, mode=m, temperature=t)) for m in modes]
            print("   " + f"{t:<8g}" + "".join(f"{c:>22}" for c in cells))
    print("   * MSD not in the diffusive regime over the fit window: local motion, not "
          "long-range transport")
    notes = sorted({str(n) for n in np.ravel(res["notes"].values) if str(n)}) \
        if "notes" in res else []
    for n in notes[:5]:
        print(f"   note: {n}")
    if "r_mode" in res:
        print("\n   contribution of each frozen motion (r_mode):")
        for mat in mats:
            for c in res["contribution"].values:
                for t in temps:
                    r = res.sel(material=mat, contribution=c, temperature=t)
                    kind = str(r["r_kind"].values) if "r_kind" in r else "value"
                    val = float(r["r_mode"])
                    lo, hi = float(r["r_lo"]), float(r["r_hi"])
                    if np.isfinite(val):
                        txt = f"{val:.2f}"
                    elif np.isfinite(lo) or np.isfinite(hi):
                        txt = f"in [{lo:.2f}, {hi:.2f}] ({kind})"
                    else:
                        txt = "undetermined (runs below measurable or not diffusive)"
                    print(f"   {mat} {t:g} K  r_{c}: {txt}")


def run_demo(outdir="results/demo", steps: int | None = None, workers: int = 2,
             progress: bool = True) -> int:
    """Run the demo job and print where results are.

    Parameters
    ----------
    outdir : path
        Campaign directory (created; a second call resumes it).
    steps : int, optional
        Production steps per run (default the demo campaign's 15000 × 2 fs).
    workers : int
        Dask workers of the local cluster.
    progress : bool
        Show the campaign's progress bar.

    Returns
    -------
    int
        Exit status (0 on success, 1 when a run failed; failures are listed).
    """
    from rotorlab.campaign.figures import report
    from rotorlab.campaign.runner import run_campaign

    outdir = Path(outdir)
    t0 = time.perf_counter()
    _stage_catalog()
    spec = demo_spec(steps)
    print(f"\n== 2. the demo campaign ({spec.name}): {spec.describe()}")
    state = run_campaign(spec, outdir, workers=workers, progress=progress)
    print("\n== 3. results (campaign.nc) and the study's figure set")
    html = report(outdir, collect=False)
    import xarray as xr

    with xr.open_dataset(outdir / "campaign.nc") as res:
        _summarise(res.load())
    print(f"\nDone in {time.perf_counter() - t0:.0f} s. Results:")
    print(f"   trajectories : {outdir}/runs/*.zarr  (rotorlab info STORE; "
          "xarray: rotorlab.open_store(STORE))")
    print(f"   results      : {outdir / 'campaign.nc'}  (xarray.open_dataset)")
    print(f"   report       : {html}  (figures as PNG and SVG beside it)")
    print(f"   re-run       : rotorlab campaign demo -o {outdir}  (recomputes nothing finished)")
    print(f"   explore      : rotorlab app --shared-results {outdir / 'runs'}   "
          "(then open http://127.0.0.1:5006/explorer)")
    return 1 if state.failed() else 0
