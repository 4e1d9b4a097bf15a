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


if __name__ == "__main__":
    main()
