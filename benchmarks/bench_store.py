"""Trajectory-store write/read speed relative to raw numpy I/O of the same bytes.

Run: ``.venv/bin/python benchmarks/bench_store.py [n_atoms] [n_frames]``.  Prints ratios
(store time / raw ``np.save`` time in the same process), never absolute pass/fail.
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from rotorlab.store import TrajectoryStore, open_store


def main(n_atoms: int = 768, n_frames: int = 500, chunk: int = 50) -> None:
    rng = np.random.default_rng(0)
    pos = rng.normal(size=(n_frames, n_atoms, 3)) * 10
    vel = rng.normal(size=(n_frames, n_atoms, 3)) * 1e-2
    cell = np.repeat(np.eye(3)[None] * 20, n_frames, 0)
    scal = rng.normal(size=n_frames)
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        t0 = time.perf_counter()
        for name, a in (("p", pos), ("v", vel), ("c", cell), ("s", scal)):
            np.save(d / f"{name}.npy", a)
        raw_w = time.perf_counter() - t0
        t0 = time.perf_counter()
        for name in ("p", "v", "c", "s"):
            np.load(d / f"{name}.npy")
        raw_r = time.perf_counter() - t0

        t0 = time.perf_counter()
        st = TrajectoryStore.create(d / "run.zarr", species=["Li"] * n_atoms,
                                    masses=np.full(n_atoms, 6.94), rotor_id=np.full(n_atoms, -1),
                                    chunk_frames=chunk)
        for i in range(n_frames):  # one frame at a time, as an MD loop does
            st.append({"positions": pos[i], "velocities": vel[i], "cell": cell[i],
                       "time": i * 1e-3, "step": i, "potential_energy": scal[i],
                       "kinetic_energy": scal[i], "conserved_energy": scal[i],
                       "temperature": scal[i]})
        st.flush()
        store_w = time.perf_counter() - t0
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            TrajectoryStore.open(d / "run.zarr", verify="all")
        verify_all = time.perf_counter() - t0
        t0 = time.perf_counter()
        ds = open_store(d / "run.zarr")
        ds["positions"].values, ds["velocities"].values
        store_r = time.perf_counter() - t0
    mb = (pos.nbytes + vel.nbytes) / 2**20
    print(f"{n_frames} frames x {n_atoms} atoms ({mb:.0f} MiB of positions+velocities), "
          f"chunk_frames={chunk}")
    print(f"write (append frame by frame + flush) / np.save : {store_w / raw_w:6.1f}")
    print(f"lazy open + load positions,velocities / np.load : {store_r / raw_r:6.1f}")
    print(f"open(verify='all') / np.load                    : {verify_all / raw_r:6.1f}")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    main(*args)
