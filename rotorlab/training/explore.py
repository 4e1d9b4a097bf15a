"""Exploration: rotorlab's own (constrained) MD driven by a model ensemble, with live model
deviation, and DP-GEN candidate selection.

Each run is a :class:`rotorlab.Simulation` with a
:class:`~rotorlab.potentials.deepmd.DeePMDEnsemble` (the first member drives; all members
give ε_f, the maximum per-atom force deviation, every ``frame_interval`` steps, so every
stored frame has its own ε_f). Frames with σ_low ≤ ε_f < σ_high are *candidates* for
labelling; ε_f < σ_low is *accurate*; ε_f ≥ σ_high is *failed* (too far from the data to
label usefully, DP-GEN's rule).

>>> runs = explore(["m0.pb", "m1.pb", "m2.pb", "m3.pb"], atoms, modes=["UC", "RTVC"],
...                temperatures=[650, 900], steps=2000, workdir="explore")
>>> cands = select_candidates(runs, max_candidates=100, rng=0)
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

__all__ = ["explore", "explore_run", "select_candidates", "summarize"]


def explore_run(models, atoms, mode, temperature, steps, store, *, frame_interval=10,
                timestep=None, seed=0, sigma_low=0.11, sigma_high=0.26, equilibration_steps=0,
                thermostat="nhc"):
    """One exploration MD run; returns its per-frame model deviation and frames.

    Parameters
    ----------
    models : sequence of path
        Ensemble members (frozen DeePMD models).
    atoms : ase.Atoms
        Start structure (``info["material"]`` for topology detection).
    mode : str
        Constraint mode (``UC``, ``RC``, ``RTC``, ``RTVC``, ...).
    temperature : float
        [K].
    steps : int
        Production MD steps.
    store : path
        Trajectory store (created; an existing one is replaced only if this code made it).
    frame_interval : int
        Steps between frames (= steps between model-deviation checks).

    Returns
    -------
    dict
        ``mode``, ``temperature``, ``steps_done``, ``exploded`` (str or None),
        ``model_deviation`` (F,) [eV/Å], ``positions`` (F, N, 3) [Å, wrapped], ``cells``
        (F, 3, 3), ``seconds``, ``ms_per_step``, counts ``accurate``, ``candidate``,
        ``failed``.
    """
    import time

    from rotorlab.md.simulation import Simulation, SimulationExploded
    from rotorlab.potentials.deepmd import DeePMDEnsemble, ModelDeviationWarning
    from rotorlab.store import open_store

    ens = DeePMDEnsemble([str(m) for m in models], atoms.get_chemical_symbols(),
                         k=int(frame_interval), sigma_low=sigma_low, sigma_high=sigma_high)
    exploded = None
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelDeviationWarning)
        sim = Simulation(atoms, potential=ens, mode=mode, temperature=float(temperature),
                         timestep=timestep, steps=int(steps), store=str(store),
                         frame_interval=int(frame_interval), seed=int(seed), progress=False,
                         overwrite=True, equilibration_steps=int(equilibration_steps),
                         thermostat=thermostat, chunk_frames=20)
        try:
            sim.run()
        except SimulationExploded as exc:
            exploded = str(exc)
    seconds = time.perf_counter() - t0
    ds = open_store(store)
    eps = np.asarray(ds["model_deviation"].values, dtype=float)
    pos = np.asarray(ds["positions"].values, dtype=float)
    cells = np.asarray(ds["cell"].values, dtype=float)
    n = len(eps)
    # wrap positions into the cell
    frac = np.einsum("fni,fij->fnj", pos, np.linalg.inv(cells))
    frac -= np.floor(frac)
    pos = np.einsum("fni,fij->fnj", frac, cells)
    ok = np.isfinite(eps)
    return {"mode": str(mode), "temperature": float(temperature), "steps": int(steps),
            "frames": int(n), "exploded": exploded, "model_deviation": eps, "positions": pos,
            "cells": cells, "seconds": round(seconds, 2),
            "ms_per_step": round(1e3 * seconds / max(int(steps), 1), 3),
            "accurate": int(np.sum(ok & (eps < sigma_low))),
            "candidate": int(np.sum(ok & (eps >= sigma_low) & (eps < sigma_high))),
            "failed": int(np.sum(~ok | (eps >= sigma_high))),
            "max_deviation": float(np.nanmax(eps)) if n else float("nan")}


def explore(models, atoms, modes=("UC", "RC", "RTC", "RTVC"), temperatures=(650, 900),
            steps=2000, workdir="explore", *, frame_interval=10, timestep=None, seed=0,
            sigma_low=0.11, sigma_high=0.26, skip_frames=0):
    """Run every (mode, temperature) and collect model deviations.

    Runs already finished in ``workdir`` (a ``run.json`` next to the store) are reused, so
    a killed exploration continues with the next run.

    Parameters
    ----------
    skip_frames : int
        Leading frames of each run not counted (equilibration).

    Returns
    -------
    list of dict
        One :func:`explore_run` result per run (with ``name``).
    """
    wd = Path(workdir)
    wd.mkdir(parents=True, exist_ok=True)
    runs = []
    k = 0
    for mode in modes:
        for temp in temperatures:
            name = f"{mode}-{int(round(temp))}K"
            rd = wd / name
            done = rd / "run.json"
            npz = rd / "frames.npz"
            if done.is_file() and npz.is_file():
                info = json.loads(done.read_text())
                with np.load(npz) as z:
                    info.update({key: z[key] for key in z.files})
            else:
                rd.mkdir(parents=True, exist_ok=True)
                info = explore_run(models, atoms, mode, temp, steps, rd / "traj.zarr",
                                   frame_interval=frame_interval, timestep=timestep,
                                   seed=seed + k, sigma_low=sigma_low, sigma_high=sigma_high)
                np.savez_compressed(npz, model_deviation=info["model_deviation"],
                                    positions=info["positions"], cells=info["cells"])
                meta = {key: v for key, v in info.items()
                        if key not in ("model_deviation", "positions", "cells")}
                done.write_text(json.dumps(meta, indent=2) + "\n")
            info["name"] = name
            info["skip_frames"] = int(skip_frames)
            runs.append(info)
            k += 1
    return runs


def summarize(runs, sigma_low=0.11, sigma_high=0.26) -> dict:
    """Exploration statistics: frames accurate / candidate / failed overall and per run."""
    tot = {"accurate": 0, "candidate": 0, "failed": 0}
    per = []
    for r in runs:
        eps = np.asarray(r["model_deviation"], float)[int(r.get("skip_frames", 0)):]
        ok = np.isfinite(eps)
        c = {"accurate": int(np.sum(ok & (eps < sigma_low))),
             "candidate": int(np.sum(ok & (eps >= sigma_low) & (eps < sigma_high))),
             "failed": int(np.sum(~ok | (eps >= sigma_high)))}
        for key in tot:
            tot[key] += c[key]
        per.append({"name": r.get("name", f"{r['mode']}-{r['temperature']}"), **c,
                    "frames": int(eps.size), "exploded": r.get("exploded"),
                    "max_deviation": float(np.nanmax(eps)) if eps.size else None,
                    "ms_per_step": r.get("ms_per_step")})
    n = sum(tot.values())
    return {"frames": n, **tot,
            "fraction_accurate": tot["accurate"] / n if n else 0.0,
            "fraction_candidate": tot["candidate"] / n if n else 0.0,
            "fraction_failed": tot["failed"] / n if n else 0.0,
            "runs": per}


def select_candidates(runs, template, max_candidates=100, *, sigma_low=0.11, sigma_high=0.26,
                      rng=None, fallback=True) -> list:
    """Candidate frames (σ_low ≤ ε_f < σ_high) as ``ase.Atoms``, at most ``max_candidates``.

    Candidates are drawn uniformly at random without replacement over all runs. When there
    is no candidate but some frames failed (ε_f ≥ σ_high: early iterations whose models
    are far from converged), ``fallback`` takes the failed frames closest to the trust
    region (smallest ε_f) instead, so the loop can still improve (marked
    ``info["fallback"] = True``).

    Parameters
    ----------
    template : ase.Atoms
        The explored structure (species, order, ``info``).

    Returns
    -------
    list of ase.Atoms
        ``info["source"] = "explore"``, ``info["run"]``, ``info["frame"]``,
        ``info["model_deviation"]``.
    """
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    pool = []
    for r in runs:
        eps = np.asarray(r["model_deviation"], float)
        skip = int(r.get("skip_frames", 0))
        for f in np.flatnonzero((eps >= sigma_low) & (eps < sigma_high)):
            if f >= skip:
                pool.append((r, int(f)))
    used_fallback = False
    if not pool and fallback:
        failed = []
        for r in runs:
            eps = np.asarray(r["model_deviation"], float)
            skip = int(r.get("skip_frames", 0))
            failed += [(float(eps[f]), k, int(f)) for f in np.flatnonzero(eps >= sigma_high)
                       if f >= skip and np.isfinite(eps[f]) for k in [runs.index(r)]]
        failed.sort()
        pool = [(runs[k], f) for _, k, f in failed[:int(max_candidates)]]
        used_fallback = bool(pool)
    if len(pool) > max_candidates:
        pick = np.sort(rng.choice(len(pool), size=int(max_candidates), replace=False))
        pool = [pool[i] for i in pick]
    out = []
    for r, f in pool:
        a = template.copy()
        a.set_cell(r["cells"][f])
        a.positions = r["positions"][f]
        a.calc = None
        a.info.update(source="explore", run=r.get("name", r["mode"]), frame=f,
                      model_deviation=float(r["model_deviation"][f]),
                      temperature=float(r["temperature"]), fallback=used_fallback)
        out.append(a)
    return out
