"""Campaign throughput on Dask: 1 vs 2 workers, and scheduling overhead per run.

Runs the same small campaign (N runs of the Li3PS4 quick cell, 128 atoms, reference force
field) on a LocalCluster with 1 worker and with 2 workers (one thread each, loopback) and
prints

* wall time of the campaign (cluster already started and warmed: rotorlab imported and its
  numba kernels loaded on every worker), throughput in runs/min, and the ratio
  throughput(2 workers) / throughput(1 worker) (target >= 1.8 on a machine with >= 2 free
  cores);
* scheduling overhead per run = (campaign wall time with 1 worker − sum of the task
  times measured inside the tasks) / N, and as a fraction of the mean task time;
* cluster start-up time (not part of the above).

Run: ``.venv/bin/python benchmarks/bench_campaign.py [--runs 4] [--steps 2000]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def _warm():
    import rotorlab.campaign.runner  # noqa: F401
    import rotorlab.md.simulation  # noqa: F401
    from rotorlab.md.simulation import min_pair_distance  # noqa: F401
    from rotorlab.potentials import reference  # noqa: F401

    return True


def measure(workers: int, runs: int, steps: int, root: Path) -> dict:
    from rotorlab.campaign import CampaignSpec, run_campaign
    from rotorlab.campaign.runner import _client

    temps = [600 + 25 * k for k in range(runs)]
    spec = CampaignSpec(name=f"bench{workers}", materials=["Li3PS4"], modes=["UC"],
                        temperatures=temps, size="quick", steps=steps, frame_interval=20,
                        checkpoint_interval=500, base_seed=1, retries=0)
    t0 = time.perf_counter()
    client, cluster = _client(workers, None, 1, None)
    try:
        client.run(_warm)
        # compile/load the numba kernels on every worker with one tiny run each
        warm = CampaignSpec(name=f"warm{workers}", materials=["Li3PS4"], modes=["UC"],
                            temperatures=[500 + k for k in range(workers)], size="quick",
                            steps=20, frame_interval=10, base_seed=2, retries=0)
        run_campaign(warm, root / f"warm{workers}", client=client, progress=False,
                     collect=False, out=open("/dev/null", "w"))
        startup = time.perf_counter() - t0
        t1 = time.perf_counter()
        state = run_campaign(spec, root / f"w{workers}", client=client, progress=False,
                             collect=False, out=open("/dev/null", "w"))
        wall = time.perf_counter() - t1
    finally:
        client.close()
        cluster.close()
    tasks = [r["wall_s"] for r in state.runs.values()]
    assert all(r["status"] == "done" for r in state.runs.values())
    return {"workers": workers, "wall_s": wall, "startup_s": startup, "task_s": tasks}


_PROBE = """
import os, time
os.environ["OMP_NUM_THREADS"] = "1"
import numpy as np
a = np.random.default_rng(0).normal(size=(4000, 256))
t0 = time.perf_counter()
for _ in range(40):
    np.fft.rfft(a, axis=1)
    a @ a[:256].T
print(time.perf_counter() - t0)
"""


def machine_parallel_ratio() -> dict:
    """What two independent single-threaded processes get from this machine: the same
    NumPy task (FFTs and matrix products, one BLAS thread) alone and twice at once.
    ``ratio = 2 t_alone / t_pair`` is the most any 2-worker campaign can reach here."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")

    def run(k):
        ps = [subprocess.Popen([sys.executable, "-c", _PROBE], stdout=subprocess.PIPE, text=True,
                               env=env) for _ in range(k)]
        t0 = time.perf_counter()
        for q in ps:
            q.wait()
        return time.perf_counter() - t0

    run(1)  # warm the file cache
    alone = min(run(1) for _ in range(2))
    pair = min(run(2) for _ in range(2))
    return {"alone_s": alone, "pair_s": pair, "ratio": 2 * alone / pair}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=4)
    p.add_argument("--steps", type=int, default=2000)
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rotorlab-bench-campaign-") as tmp:
        root = Path(tmp)
        one = measure(1, a.runs, a.steps, root)
        two = measure(2, a.runs, a.steps, root)
    n = a.runs
    print(f"{n} runs x {a.steps} steps, Li3PS4 quick cell (128 atoms), reference FF")
    print(f"{'workers':>7} {'wall s':>8} {'runs/min':>9} {'mean task s':>11} {'startup s':>9}")
    for m in (one, two):
        print(f"{m['workers']:>7} {m['wall_s']:>8.1f} {60 * n / m['wall_s']:>9.2f} "
              f"{sum(m['task_s']) / n:>11.2f} {m['startup_s']:>9.1f}")
    ratio = one["wall_s"] / two["wall_s"]
    over = (one["wall_s"] - sum(one["task_s"])) / n
    mean_task = sum(one["task_s"]) / n
    print(f"throughput ratio 2/1 workers: {ratio:.2f}x (target >= 1.8x)")
    print(f"scheduling overhead per run (1 worker): {over * 1000:.0f} ms = "
          f"{100 * over / mean_task:.2f} % of the mean run time ({mean_task:.2f} s)")
    slow = sum(two["task_s"]) / sum(one["task_s"])
    print(f"mean task time with 2 workers / with 1: {slow:.2f} (1.00 = no contention for "
          "cores or memory bandwidth)")
    m = machine_parallel_ratio()
    print(f"machine check: one single-threaded NumPy process {m['alone_s']:.2f} s, two at once "
          f"{m['pair_s']:.2f} s -> two processes get {m['ratio']:.2f}x the throughput of one "
          f"(the ceiling for the ratio above on this machine)")


if __name__ == "__main__":
    main()
