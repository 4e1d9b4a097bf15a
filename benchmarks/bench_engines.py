"""rotorlab's two DeePMD engines on the same model and cell: DeePMD-kit's C API with a
Verlet list (``engine="c"``) against DeePMD-kit's Python ``DeepPot`` (``engine="python"``).

For every bundled model (or ``--model PATH --material NAME``) and cell (``quick``,
``paper``) it times ``DeePMD.compute`` on a sequence of configurations that drift like an
MD run (each call moves every atom by a random 0.01 Å step, so the Verlet list is rebuilt
as it would be in MD), in interleaved rounds, and prints ms per call and the ratio
python / c (> 1: the C engine is faster). Both engines' energies and forces are compared
on the last configuration. One thread unless ``--threads``.

Usage::

    python benchmarks/bench_engines.py [--materials Li3PS4 LiBH4 Na4P2S6] [--sizes quick paper]
                                       [--calls 40] [--rounds 5] [--threads 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--materials", nargs="*", default=None,
                    help="bundled models to time (default: every bundled model)")
    ap.add_argument("--model", type=Path, default=None, help="a model file instead")
    ap.add_argument("--material", default=None, help="its material (with --model)")
    ap.add_argument("--sizes", nargs="*", default=["quick", "paper"])
    ap.add_argument("--calls", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    t = str(args.threads)
    for v in ("DP_INTRA_OP_PARALLELISM_THREADS", "OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        os.environ[v] = t
    for v in ("DP_INTER_OP_PARALLELISM_THREADS", "TF_NUM_INTEROP_THREADS"):
        os.environ[v] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import numpy as np

    from rotorlab import materials
    from rotorlab.potentials.deepmd import DeePMD, thread_settings

    if args.model is not None:
        if not args.material:
            raise SystemExit("--model needs --material")
        jobs = [(args.material, args.model.expanduser().resolve())]
    else:
        from rotorlab.materials import catalog, names as material_names
        from rotorlab.potentials.registry import bundled

        names = args.materials or [m for m in material_names()
                                   if catalog(m).bundled_model is not None]
        # the compressed driving model (made once into the cache, as --potential bundled
        # with compressed=True uses it)
        jobs = [(name, bundled(name).compressed_path()) for name in names]
    rows = []
    print(f"{'material':>12} {'cell':>6} {'atoms':>6} | {'python ms':>9} {'c ms':>7} | "
          f"{'python/c':>8} | max |dF| eV/Å")
    for name, model in jobs:
        for size in args.sizes:
            atoms = materials.get(name, size)
            ffs = {e: DeePMD(model, atoms, engine=e) for e in ("python", "c")}
            if ffs["c"].engine != "c":
                raise SystemExit(f"the C engine did not load: {ffs['c'].engine_note}")
            rng = np.random.default_rng(7)
            x0, cell = atoms.positions.copy(), atoms.cell.array.copy()
            steps = [rng.normal(0.0, 0.01, x0.shape) for _ in range(args.calls)]
            pos = {e: x0.copy() for e in ffs}
            for e, ff in ffs.items():  # warm-up (graph start, numba, first list)
                for _ in range(3):
                    ff.compute(pos[e], cell)
            times = {e: [] for e in ffs}
            for r in range(args.rounds):
                order = ("python", "c") if r % 2 == 0 else ("c", "python")
                for e in order:
                    ff, x = ffs[e], pos[e]
                    c0 = time.perf_counter()
                    for d in steps:
                        x += d
                        ff.compute(x, cell)
                    times[e].append((time.perf_counter() - c0) / len(steps))
            ep, fp, _ = ffs["python"].compute(pos["c"], cell)
            ec, fc, _ = ffs["c"].compute(pos["c"], cell)
            tp, tc = min(times["python"]), min(times["c"])
            row = {"material": name, "size": size, "atoms": len(atoms), "model": str(model),
                   "python_ms": 1e3 * tp, "c_ms": 1e3 * tc, "ratio_python_over_c": tp / tc,
                   "python_rounds_ms": [1e3 * v for v in times["python"]],
                   "c_rounds_ms": [1e3 * v for v in times["c"]],
                   "c_list_builds": ffs["c"]._c.builds, "calls_per_engine":
                   args.rounds * args.calls + 3, "max_force_diff_eV_A": float(np.abs(fp - fc).max()),
                   "energy_diff_eV": float(ec - ep)}
            rows.append(row)
            print(f"{name:>12} {size:>6} {len(atoms):6d} | {1e3 * tp:9.2f} {1e3 * tc:7.2f} | "
                  f"{tp / tc:8.3f} | {row['max_force_diff_eV_A']:.1e}", flush=True)
    meta = {"threads": thread_settings(), "rounds": args.rounds, "calls": args.calls,
            "cpu_count": os.cpu_count(), "python": sys.version.split()[0], "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(meta, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
