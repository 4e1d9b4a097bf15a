"""Analysis-suite benchmarks: rotorlab vs MDAnalysis / freud / tidynamics / pymatgen-analysis-diffusion.

Prints time ratios (other / rotorlab; > 1 means rotorlab is faster) on the same synthetic
trajectory, then an out-of-core demo: a zarr store several times larger than the memory
budget analysed block by block, with peak memory measured in a fresh subprocess.

    NUMBA_NUM_THREADS=1 python benchmarks/bench_analysis.py [--quick] [--ooc-mb 2048 --budget-mb 128 --cap-mb 500]

All libraries run single-threaded (numba and freud threads set to 1) for a like-for-like
comparison.  Libraries that are not installed are skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402


def best_of(fn, repeat=3):
    ts = []
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return min(ts), out


def trajectory(n_ions, n_frames, box, seed=0, D=0.5, dt_ps=0.01):
    rng = np.random.default_rng(seed)
    steps = rng.normal(0, np.sqrt(2 * D * dt_ps), size=(n_frames, n_ions, 3))
    steps[0] = 0
    return (rng.uniform(0, box, size=(1, n_ions, 3)) + steps.cumsum(0)).astype(np.float64)


def report(name, t_ours, others):
    print(f"\n{name}: rotorlab {t_ours * 1e3:.1f} ms")
    for lib, t, err in others:
        if t is None:
            print(f"  {lib:<34} skipped ({err})")
        else:
            print(f"  {lib:<34} {t * 1e3:9.1f} ms   ratio other/rotorlab = {t / t_ours:6.2f}   max|Δ| = {err:.2e}")


def bench_msd(n_ions, n_frames, box):
    from rotorlab.analysis._kernels import msd_fft

    x = trajectory(n_ions, n_frames, box)
    t_ours, ref = best_of(lambda: msd_fft(x).mean(axis=1))
    others = []
    try:
        import tidynamics

        def td():
            return np.mean([tidynamics.msd(x[:, i]) for i in range(n_ions)], axis=0)

        t, m = best_of(td)
        others.append(("tidynamics.msd (per ion)", t, float(np.abs(m - ref).max())))
    except ImportError as e:
        others.append(("tidynamics.msd", None, str(e)))
    try:
        import MDAnalysis as mda
        from MDAnalysis.analysis.msd import EinsteinMSD
        from MDAnalysis.coordinates.memory import MemoryReader

        u = mda.Universe.empty(n_ions, trajectory=False)
        u.load_new(x.astype(np.float32), format=MemoryReader, dimensions=[box, box, box, 90, 90, 90])

        def md():
            return EinsteinMSD(u, select="all", msd_type="xyz", fft=True).run().results.timeseries

        t, m = best_of(md)
        others.append(("MDAnalysis EinsteinMSD(fft=True)", t, float(np.abs(m - ref).max() / ref.max())))
    except ImportError as e:
        others.append(("MDAnalysis EinsteinMSD", None, str(e)))
    try:
        from pymatgen.analysis.diffusion.analyzer import DiffusionAnalyzer
        from pymatgen.core import Lattice, Structure

        n_fw = 8  # pymatgen needs static framework atoms for its drift correction
        fw = np.random.default_rng(9).uniform(0, 1, size=(n_fw, 3))
        s = Structure(Lattice.cubic(box), ["Li"] * n_ions + ["S"] * n_fw,
                      np.vstack([(x[0] / box) % 1.0, fw]), coords_are_cartesian=False)
        disp = np.concatenate([(x - x[0]).transpose(1, 0, 2), np.zeros((n_fw, n_frames, 3))])

        def pm():
            a = DiffusionAnalyzer(s, disp, "Li", 600, 10, 1, smoothed="max")
            return a.msd, np.rint(a.dt / 10).astype(int)

        t, (msd_pm, lag) = best_of(pm, repeat=1)
        m = msd_pm
        ref_pm = ref[lag]
        others.append(("pymatgen DiffusionAnalyzer(smoothed='max')", t, float(np.abs(m - ref_pm).max() / ref.max())))
    except Exception as e:  # noqa: BLE001 - optional library, any failure → skip
        others.append(("pymatgen-analysis-diffusion", None, f"{type(e).__name__}: {e}"))
    report(f"MSD all origins ({n_ions} ions x {n_frames} frames)", t_ours, others)


def bench_rdf(n_atoms, n_frames, box, nbins=100):
    from rotorlab.analysis.structure import rdf_arrays

    rng = np.random.default_rng(1)
    x = rng.uniform(0, box, size=(n_frames, n_atoms, 3))
    cells = np.broadcast_to(np.eye(3) * box, (n_frames, 3, 3)).copy()
    r_max = 0.5 * box * 0.999
    rdf_arrays(x[:1], x[:1], cells[:1], r_max, nbins, True)  # JIT warm-up (compile/cache load)

    def ours():
        h, e, nf = rdf_arrays(x, x, cells, r_max, nbins, True)
        shell = 4 / 3 * np.pi * (e[1:] ** 3 - e[:-1] ** 3)
        return h / (nf * n_atoms * (n_atoms - 1) * shell)

    t_ours, ref = best_of(ours)
    others = []
    try:
        import freud

        freud.parallel.set_num_threads(1)
        fb = freud.box.Box.cube(box)

        def fr():
            r = freud.density.RDF(bins=nbins, r_max=r_max)
            for t in range(n_frames):
                r.compute((fb, x[t].astype(np.float32)), reset=False)
            return r.rdf

        t, g = best_of(fr)
        others.append(("freud.density.RDF (1 thread)", t, float(np.abs(g - ref)[10:].max())))
    except ImportError as e:
        others.append(("freud RDF", None, str(e)))
    try:
        import MDAnalysis as mda
        from MDAnalysis.analysis.rdf import InterRDF
        from MDAnalysis.coordinates.memory import MemoryReader

        u = mda.Universe.empty(n_atoms, trajectory=False)
        u.load_new(x.astype(np.float32), format=MemoryReader, dimensions=[box, box, box, 90, 90, 90])
        ag = u.atoms

        def md():
            return InterRDF(ag, ag, nbins=nbins, range=(0.0, r_max), exclusion_block=(1, 1)).run().results.rdf

        t, g = best_of(md)
        others.append(("MDAnalysis InterRDF", t, float(np.abs(g - ref)[10:].max())))
    except ImportError as e:
        others.append(("MDAnalysis InterRDF", None, str(e)))
    report(f"g(r) ({n_atoms} atoms x {n_frames} frames, {nbins} bins, r_max = L/2)", t_ours, others)


OOC_CHILD = r"""
import json, os, resource, sys, time, tracemalloc
import numpy as np
path, budget = sys.argv[1], float(sys.argv[2])
import xarray as xr
from rotorlab.analysis import Transport, RDF, MobileIonDensity
from rotorlab.analysis._kernels import msd_fft, histogram_grid, rdf_hist
try:
    from rotorlab.store import open_store
    ds = open_store(path)
except Exception:
    ds = xr.open_zarr(path)
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
# warm the JIT on tiny inputs so compilation memory is not counted
Transport(memory=budget).compute(ds.isel(frame=slice(0, 200)))
MobileIonDensity(memory=budget).compute(ds.isel(frame=slice(0, 4)))
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return float(line.split()[1]) / 1024
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return float(line.split()[1]) / 1024
def reset_hwm():
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass
rss1 = rss()
reset_hwm()
tracemalloc.start()
t0 = time.perf_counter()
tr = Transport(memory=budget).compute(ds)
t1 = time.perf_counter()
peak_tr = tracemalloc.get_traced_memory()[1] / 2**20
hwm_tr = hwm()
tracemalloc.reset_peak()
dens = MobileIonDensity(memory=budget).compute(ds)
t2 = time.perf_counter()
peak_py = max(peak_tr, tracemalloc.get_traced_memory()[1] / 2**20)
rss2 = max(hwm(), hwm_tr)
print(json.dumps({"D_tr": float(tr.D), "D_err": float(tr.D_err), "t_transport_s": t1 - t0, "t_density_s": t2 - t1,
                  "rss_after_import_MB": rss0, "rss_after_warmup_MB": rss1, "peak_rss_MB": rss2,
                  "tracemalloc_peak_MB": peak_py, "tracemalloc_transport_MB": peak_tr}))
"""


def bench_out_of_core(store_mb, budget_mb, workdir, cap_mb=500.0):
    import xarray as xr

    n_atoms, n_li = 2000, 400
    per_frame = n_atoms * 3 * 8
    n_frames = int(store_mb * 2**20 / per_frame)
    path = Path(workdir) / "ooc.zarr"
    chunk = 256
    print(f"\nOut of core: writing {n_frames} frames x {n_atoms} atoms "
          f"({n_frames * per_frame / 2**20:.0f} MB of positions) to {path} ...", flush=True)
    rng = np.random.default_rng(3)
    box = 30.0
    species = np.array(["Li"] * n_li + ["S"] * (n_atoms - n_li))
    attrs = {"material": "bench", "constraint_mode": "RTC", "target_temperature": 600.0, "timestep": 10.0,
             "mobile_species": "Li", "mobile_charge": 1.0}
    t0 = time.perf_counter()
    pos0 = rng.uniform(0, box, size=(n_atoms, 3))
    last = pos0.copy()
    try:
        from rotorlab.store import TrajectoryStore

        st = TrajectoryStore.create(path, species=species.tolist(), masses=np.where(species == "Li", 6.94, 32.06),
                                    rotor_id=np.full(n_atoms, -1), attrs=attrs, chunk_frames=chunk, velocities=False,
                                    overwrite=True)
        writer = "rotorlab.store"
    except Exception:  # noqa: BLE001
        st = None
        writer = "xarray.to_zarr"
    for a in range(0, n_frames, chunk):
        n = min(chunk, n_frames - a)
        steps = rng.normal(0, 0.1, size=(n, n_atoms, 3))
        steps[:, n_li:] *= 0.05
        blk = last + steps.cumsum(0)
        last = blk[-1].copy()
        fr = {"positions": blk, "cell": np.broadcast_to(np.eye(3) * box, (n, 3, 3)),
              "time": (a + np.arange(n)) * 0.01, "step": a + np.arange(n)}
        if st is not None:
            st.append(fr)
        else:
            ds = xr.Dataset({"positions": (("frame", "atom", "xyz"), blk, {"units": "Å"}),
                             "cell": (("frame", "cell_a", "xyz"), np.array(fr["cell"]), {"units": "Å"})},
                            coords={"time": ("frame", fr["time"], {"units": "ps"}), "species": ("atom", species),
                                    "mass": ("atom", np.where(species == "Li", 6.94, 32.06)),
                                    "rotor_id": ("atom", np.full(n_atoms, -1))}, attrs=attrs)
            ds.to_zarr(path, mode="w" if a == 0 else "a", append_dim=None if a == 0 else "frame")
    if st is not None:
        st.close()
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20
    print(f"  wrote with {writer} in {time.perf_counter() - t0:.1f} s; store on disk {size:.0f} MB; "
          f"budget {budget_mb} MB per block", flush=True)
    out = subprocess.run([sys.executable, "-c", OOC_CHILD, str(path), str(budget_mb * 2**20)],
                         capture_output=True, text=True, env={**os.environ, "NUMBA_NUM_THREADS": "1"})
    if out.returncode != 0:
        print(out.stderr[-3000:])
        return
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"  Transport (MSD, D_tr, sigma) over {n_li} Li: {r['t_transport_s']:.1f} s; "
          f"3D density: {r['t_density_s']:.1f} s; D_tr = {r['D_tr']:.3e} ± {r['D_err']:.1e} cm^2/s")
    print(f"  RSS before analysis {r['rss_after_warmup_MB']:.0f} MB (imports + JIT); peak RSS during analysis "
          f"{r['peak_rss_MB']:.0f} MB → increment {r['peak_rss_MB'] - r['rss_after_warmup_MB']:.0f} MB "
          f"for a {size:.0f} MB store (budget {budget_mb:.0f} MB per block)")
    print(f"  tracemalloc peak (numpy + python allocations): transport {r['tracemalloc_transport_MB']:.0f} MB, "
          f"overall {r['tracemalloc_peak_MB']:.0f} MB")
    total = r["peak_rss_MB"]
    print(f"  total peak RSS of the analysing process {total:.0f} MB for a {size:.0f} MB store: "
          f"{'within' if total <= cap_mb else 'ABOVE'} the {cap_mb:.0f} MB cap")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes")
    p.add_argument("--ooc-mb", type=float, default=1024.0, help="store size for the out-of-core demo (0: skip)")
    p.add_argument("--budget-mb", type=float, default=128.0, help="per-block memory budget of the analyses")
    p.add_argument("--cap-mb", type=float, default=500.0, help="total RSS cap the out-of-core run is checked against")
    p.add_argument("--workdir", default=None)
    a = p.parse_args(argv)
    print(f"numba threads = {os.environ.get('NUMBA_NUM_THREADS')}; python {sys.version.split()[0]}")
    if a.quick:
        bench_msd(100, 1000, 25.0)
        bench_rdf(300, 20, 20.0)
    else:
        bench_msd(256, 5000, 25.0)
        bench_rdf(1000, 50, 25.0)
        bench_rdf(200, 500, 15.0)
    if a.ooc_mb > 0:
        with tempfile.TemporaryDirectory(dir=a.workdir) as d:
            bench_out_of_core(a.ooc_mb, a.budget_mb, d, a.cap_mb)


if __name__ == "__main__":
    main()
