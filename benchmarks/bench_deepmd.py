"""DeePMD through rotorlab versus ``deepmd.calculator.DP`` inside ASE's MD loop.

For LiBH4 supercells of ~100, ~400 and ~800 atoms (2×2×2, 4×4×2, 4×4×4 → 96, 384,
768 atoms) it measures, in one process and with the same model and thread settings:

* ms per force call: ``DeePMD.compute`` on arrays vs ``atoms.get_forces()`` with ``DP``;
* ms per MD step: ``rotorlab.Simulation`` (NVE, UC, no store) vs ASE ``VelocityVerlet``
  with ``DP``; and rotorlab RC (rotation constrained) for the constraint cost;
* driver overhead = (ms per step − ms per force call) / ms per force call.

Timings are taken in interleaved rounds (blocks of ``--block`` calls or steps of each
method in turn); the minimum over rounds is reported (the least disturbed sample on a
shared machine), medians are kept in the JSON output. Ratios are the point (DESIGN §8): absolute times depend on the machine and the model.
By default the tiny test model ``datasets/models/tiny-LiBH4/model.pb`` is used, which is
far cheaper than a production model, so the *relative* overheads shown here are upper
bounds of what a production model sees.

Usage::

    python benchmarks/bench_deepmd.py [--model PATH] [--threads 1] [--rounds 8] [--block 5]
                                      [--sizes 2,2,2 4,4,2 4,4,4] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=ROOT / "datasets/models/tiny-LiBH4/model.pb")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=8, help="interleaved timing rounds per size")
    ap.add_argument("--block", type=int, default=5, help="calls/steps per timed block")
    ap.add_argument("--sizes", nargs="+", default=["2,2,2", "4,4,2", "4,4,4"])
    ap.add_argument("--json", type=Path, default=None)
    return ap.parse_args(argv)


def _block(fn, n):
    """Time ``n`` calls of ``fn`` [s per call]."""
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def main(argv=None):
    args = _parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # threads must be fixed before TensorFlow initialises
    from rotorlab.potentials.deepmd import DeePMD, set_threads, thread_settings

    set_threads(args.threads, 1)
    import numpy as np
    from ase import units
    from ase.md.verlet import VelocityVerlet
    from deepmd.calculator import DP

    from rotorlab import materials
    from rotorlab.md.simulation import Simulation

    rows = []
    rng = np.random.default_rng(0)
    for size in args.sizes:
        sc = tuple(int(s) for s in size.split(","))
        atoms = materials.get("LiBH4", sc)
        n = len(atoms)
        ff = DeePMD(args.model, atoms)
        cell = atoms.cell.array
        xs = [atoms.positions + rng.normal(0, 0.01, atoms.positions.shape) for _ in range(8)]

        ff.compute(xs[0], cell)  # warm-up (graph, neighbour buffers)
        a = atoms.copy()
        a.calc = DP(str(args.model))
        a.get_forces()
        it = {"rl": 0, "ase": 0}

        def rl_call():
            it["rl"] = (it["rl"] + 1) % len(xs)
            ff.compute(xs[it["rl"]], cell)

        def ase_call():
            it["ase"] = (it["ase"] + 1) % len(xs)
            a.positions = xs[it["ase"]]
            a.get_forces()

        # MD: rotorlab NVE (UC and RC, no store), ASE VelocityVerlet with DP; same timestep
        dt = 0.5
        sims = {}
        for mode in ("UC", "RC"):
            sim = Simulation(atoms, ff, mode=mode, temperature=300.0, thermostat="nve",
                             timestep=dt, steps=2, store=None, progress=False, seed=1)
            sim.run()  # warm-up: numba compilation and first steps
            sims[mode] = sim

        def rl_md(mode, n):
            def go():
                sim = sims[mode]
                sim.config["steps"] += n
                sim.run()
            return go

        b = atoms.copy()
        b.calc = DP(str(args.model))
        kT = 300.0 * units.kB
        p = np.random.default_rng(1).normal(size=(n, 3)) * np.sqrt(b.get_masses() * kT)[:, None]
        b.set_momenta(p - p.sum(axis=0) / n)
        md = VelocityVerlet(b, dt * units.fs)
        md.run(2)

        # interleaved rounds, so that load changes on a shared machine hit all methods alike
        blk = args.block
        samples = {k: [] for k in ("rl_call", "ase_call", "rl_uc", "rl_rc", "ase_md")}
        for _ in range(args.rounds):
            samples["rl_call"].append(_block(rl_call, blk))
            samples["ase_call"].append(_block(ase_call, blk))
            samples["rl_uc"].append(_block(rl_md("UC", blk), 1) / blk)
            samples["rl_rc"].append(_block(rl_md("RC", blk), 1) / blk)
            samples["ase_md"].append(_block(lambda: md.run(blk), 1) / blk)
        est = {k: (float(np.min(v)), float(np.median(v))) for k, v in samples.items()}
        t_rl_call, t_ase_call = est["rl_call"][0], est["ase_call"][0]
        t_rl_uc, t_rl_rc, t_ase_md = est["rl_uc"][0], est["rl_rc"][0], est["ase_md"][0]
        medians = {k: 1e3 * v[1] for k, v in est.items()}

        row = {
            "supercell": "x".join(map(str, sc)), "atoms": n,
            "rotorlab_force_ms": 1e3 * t_rl_call, "ase_dp_force_ms": 1e3 * t_ase_call,
            "rotorlab_md_uc_ms": 1e3 * t_rl_uc, "rotorlab_md_rc_ms": 1e3 * t_rl_rc,
            "ase_md_ms": 1e3 * t_ase_md,
            "rotorlab_uc_overhead": (t_rl_uc - t_rl_call) / t_rl_call,
            "rotorlab_rc_overhead": (t_rl_rc - t_rl_call) / t_rl_call,
            "ase_md_overhead_vs_rotorlab_force": (t_ase_md - t_rl_call) / t_rl_call,
            "ase_md_overhead_vs_ase_force": (t_ase_md - t_ase_call) / t_ase_call,
            "medians_ms": medians,
        }
        rows.append(row)
        print(f"{row['supercell']:>6} {n:4d} atoms | force: rotorlab {row['rotorlab_force_ms']:7.2f} ms"
              f"  ASE+DP {row['ase_dp_force_ms']:7.2f} ms | MD step: rotorlab UC "
              f"{row['rotorlab_md_uc_ms']:7.2f} ms  RC {row['rotorlab_md_rc_ms']:7.2f} ms  ASE VV+DP "
              f"{row['ase_md_ms']:7.2f} ms | overhead: rotorlab UC "
              f"{100 * row['rotorlab_uc_overhead']:5.1f} %  RC {100 * row['rotorlab_rc_overhead']:5.1f} %"
              f"  ASE {100 * row['ase_md_overhead_vs_rotorlab_force']:5.1f} %", flush=True)

    import deepmd

    meta = {"model": str(args.model), "threads": thread_settings(), "deepmd": deepmd.__version__,
            "python": sys.version.split()[0], "cpu_count": os.cpu_count(),
            "rounds": args.rounds, "block": args.block, "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(meta, indent=2))
    return meta


if __name__ == "__main__":
    main()
