"""The main job on the bundled defaults (``rotorlab demo`` / ``make demo``).

1. Builds every catalog material at its quick size and detects its rotors.
2. Runs LiBH4 (quick cell) under the four constraint modes of the reference study
   (UC, RC, RTC, RTVC) at 600 K with the bundled potential — a DeePMD model when one is
   bundled for the material, otherwise rotorlab's reference force field (a documented
   test/demo potential, not a physics-grade model: the numbers show the workflow, they
   are not LiBH4's conductivity).
3. Analyses the four runs side by side (``results.nc`` + figures) and prints where
   everything is.

Runs are resumable: stores that are already complete are reused, interrupted ones are
continued from their checkpoints.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

MODES = ("UC", "RC", "RTC", "RTVC")


def _stage_catalog() -> list[str]:
    from rotorlab import materials
    from rotorlab.materials import StructureError
    from rotorlab.topology import detect

    print("== 1. materials catalog (quick cells, rotor detection)")
    lines = []
    for name in materials.names():
        mat = materials.catalog(name)
        try:
            atoms = materials.get(name, "quick")
        except StructureError:
            print(f"   {name:<12} no bundled structure — bring an ordered CIF "
                  f"(rotorlab.materials.from_cif(path, material='{name}'))")
            continue
        top = detect(atoms)
        line = (f"   {name:<12} {len(atoms):>4} atoms (paper {mat.paper_atoms:>4}), "
                f"trust {mat.trust:<4} {top.summary()}")
        print(line)
        lines.append(line)
    return lines


def _potential_for(material: str):
    from rotorlab import materials

    mat = materials.catalog(material)
    if mat.bundled_model:
        return "bundled", f"bundled DeePMD model {mat.bundled_model}"
    return "reference", ("rotorlab reference force field — a test/demo potential, not LiBH4 physics: "
                         "the numbers below illustrate the workflow only (no DeePMD model is "
                         "bundled for LiBH4 yet)")


def _run_modes(outdir: Path, material: str, temperature: float, eq_steps: int, steps: int,
               frame_interval: int) -> list[Path]:
    from rotorlab.md.simulation import Simulation
    from rotorlab.spec import RunSpec
    from rotorlab.store import TrajectoryStore

    potential, label = _potential_for(material)
    print(f"\n== 2. constrained MD: {material} quick cell, {temperature:g} K, "
          f"{steps} production steps per mode\n   potential: {label}")
    stores = []
    for mode in MODES:
        spec = RunSpec(material=material, size="quick", mode=mode, temperature=temperature,
                       equilibration_steps=eq_steps, steps=steps,
                       frame_interval=frame_interval, potential=potential, seed=2025)
        path = outdir / spec.store_name
        stores.append(path)
        t0 = time.perf_counter()
        if path.exists():
            n = TrajectoryStore.open(path, mode="r").n_frames_committed
            if n >= steps // frame_interval + 1:
                print(f"   {mode:<5} complete ({n} frames) — reused")
                continue
            print(f"   {mode:<5} incomplete ({n} frames) — resuming from its checkpoint")
            sim = Simulation.resume(path, steps=None)
        else:
            sim = Simulation.from_spec(spec, store=path)
        sim.run()
        print(f"   {mode:<5} done in {time.perf_counter() - t0:5.1f} s -> {path}")
    return stores


def _summarise(res) -> None:
    print("\n   run                      D_tr [cm2/s]          sigma [mS/cm]     "
          "reorient [1/ns]  hops [1/ns]")
    for i in range(res.sizes["run"]):
        r = res.isel(run=i)
        mode = str(r["constraint_mode"].values)
        below = bool(r["below_measurable"].values) if "below_measurable" in r else False
        if below:
            d_txt = f"< {float(r['D_tr_bound'].values):.1e} (below measurable)"
            s_txt = f"< {float(r['sigma_bound'].values):.2g}"
        else:
            d_txt = f"{float(r['D_tr'].values):.2e} ± {float(r['D_tr_err'].values):.1e}"
            if "diffusive" in r and not bool(r["diffusive"].values):
                d_txt += "*"
            s_txt = f"{float(r['sigma'].values):.3g} ± {float(r['sigma_err'].values):.2g}"
        rf = float(r["reorientation_frequency"].values) if "reorientation_frequency" in r else np.nan
        hf = float(r["hop_frequency"].values) if "hop_frequency" in r else np.nan
        print(f"   {mode:<24} {d_txt:<22} {s_txt:<17} {rf:>10.3g}  {hf:>10.3g}")
    if "diffusive" in res and not bool(np.all(res["diffusive"].values | res["below_measurable"].values)):
        print("   * MSD not in the diffusive regime (log-log slope outside [0.8, 1.3] or MSD < 1 Å² over the fit "
              "window): local motion, not long-range transport — run longer (--full / --steps)")
    if "delta" in res:
        print("\n   frozen motion -> conductivity drop (log10 sigma), contribution r_mode:")
        for c in res["contribution"].values:
            for t in res["temperature_mc"].values:
                d = float(res["delta"].sel(contribution=c, temperature_mc=t))
                kind = str(res["delta_kind"].sel(contribution=c, temperature_mc=t).values)
                r = float(res["r_mode"].sel(contribution=c, temperature_mc=t))
                lo = float(res["r_mode_lo"].sel(contribution=c, temperature_mc=t))
                hi = float(res["r_mode_hi"].sel(contribution=c, temperature_mc=t))
                d_txt = {"value": f"{d:.2f}", "lower_bound": f">= {d:.2f}",
                         "upper_bound": f"<= {d:.2f}"}.get(kind, "undetermined (both runs "
                                                           "below measurable)")
                if np.isfinite(r):
                    r_txt = f"{r:.2f}"
                elif np.isfinite(lo) or np.isfinite(hi):
                    r_txt = f"in [{lo:.2f}, {hi:.2f}]"
                else:
                    r_txt = "undetermined"
                print(f"   {t:g} K  Delta_{c:<3} = {d_txt:<12}  r_{c} {r_txt}")


def run_demo(outdir="results/demo", quick: bool = True, steps: int | None = None,
             equilibration_steps: int | None = None, frame_interval: int = 10) -> int:
    """Run the demo job and print where results are.

    Parameters
    ----------
    outdir : path
        Output directory (created).
    quick : bool
        Short runs (about five minutes on a laptop) when True; 5x longer otherwise.
    steps, equilibration_steps : int, optional
        Override the production / equilibration steps per mode (0.5 fs each).
    frame_interval : int
        Steps between stored frames.

    Returns
    -------
    int
        Exit status (0 on success).
    """
    from rotorlab.analysis import analyze

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    _stage_catalog()
    scale = 1 if quick else 5
    steps = 6000 * scale if steps is None else int(steps)
    eq = 1000 * scale if equilibration_steps is None else int(equilibration_steps)
    stores = _run_modes(outdir, "LiBH4", 600.0, eq_steps=eq, steps=steps,
                        frame_interval=int(frame_interval))
    print("\n== 3. analysis (transport, rotors, hops, vibrations), side by side")
    res = analyze(stores, outdir / "analysis")
    _summarise(res)
    print(f"\nDone in {time.perf_counter() - t0:.0f} s. Results:")
    print(f"   trajectories : {outdir}/*.zarr   (rotorlab info STORE; "
          "xarray: rotorlab.open_store(STORE))")
    print(f"   analysis     : {outdir / 'analysis' / 'results.nc'}  (xarray.open_dataset)")
    print(f"   figures      : {outdir / 'analysis'}/*.png, *.svg")
    print("   re-analyse   : rotorlab analyze " + " ".join(str(s) for s in stores)
          + f" -o {outdir / 'analysis'}")
    print(f"   explore      : rotorlab app --shared-results {outdir}   "
          "(then open http://127.0.0.1:5006/explorer)")
    return 0
