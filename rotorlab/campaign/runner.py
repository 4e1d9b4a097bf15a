"""Run a campaign on Dask distributed: one task per run, resumable, retried, observed.

>>> from rotorlab.campaign import CampaignSpec, run_campaign
>>> state = run_campaign(CampaignSpec.load("demo.yaml"), "results/demo", workers=2)

Layout of a campaign directory ``DIR``::

    DIR/campaign.json      state file: every run, its status, attempts, starts, errors
    DIR/campaign.yaml      the campaign spec (as last submitted)
    DIR/runs/NAME.zarr     one trajectory store per run (NAME = RunSpec.store_name)
    DIR/runs/NAME.analysis.nc   cached per-run analysis (rotorlab.campaign.collect)
    DIR/campaign.nc        all results (rotorlab.campaign.collect)
    DIR/report/            figures and index.html (rotorlab report DIR)

Every task looks at its store first: complete → nothing is recomputed; a checkpoint but not
finished → :meth:`Simulation.resume` (bit-for-bit continuation); no store →
:meth:`Simulation.from_spec`. So a campaign killed as a whole and submitted again continues
where it stopped, and when a worker dies Dask reschedules its task on another worker, which
resumes the run from its last checkpoint (the writer lock of a store is released when the
process holding it dies). A task that raises is resubmitted up to ``retries`` times; then the
run is reported as failed with its error (state file, summary, ``campaign.nc``).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from rotorlab.campaign.spec import CampaignSpec

__all__ = ["run_campaign", "CampaignState", "CampaignDirError", "store_status", "execute_run",
           "ThreadLimits", "thread_env", "STATE_FILE", "SPEC_FILE", "RUNS_DIR"]

STATE_FILE = "campaign.json"
SPEC_FILE = "campaign.yaml"
RUNS_DIR = "runs"
STATE_FORMAT = "rotorlab-campaign"
STATE_VERSION = 1
#: Files and folders a campaign writes into its directory (anything else: not ours).
OWN_ENTRIES = (STATE_FILE, SPEC_FILE, RUNS_DIR, "campaign.nc", "report", STATE_FILE + ".tmp",
               "campaign.nc.tmp")


class CampaignDirError(RuntimeError):
    """The output directory cannot hold this campaign (it holds something else)."""


# ------------------------------------------------------------------------------ threads


def thread_env(threads: int = 1) -> dict:
    """Environment that caps OpenMP/BLAS, numba and TensorFlow/DeePMD at ``threads``.

    Returns
    -------
    dict of str to str
    """
    n = str(int(threads))
    return {"OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n,
            "NUMBA_NUM_THREADS": n, "TF_NUM_INTRAOP_THREADS": n, "TF_NUM_INTEROP_THREADS": "1",
            "DP_INTRA_OP_PARALLELISM_THREADS": n, "DP_INTER_OP_PARALLELISM_THREADS": "1"}


def _limit_threads(threads: int) -> None:
    os.environ.update(thread_env(threads))
    if "numba" in sys.modules:
        try:
            import numba

            numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
        except Exception:  # numba without a threading layer: nothing to cap
            pass


try:
    from distributed.diagnostics.plugin import WorkerPlugin as _WorkerPlugin
except ImportError:  # pragma: no cover - distributed is a hard dependency of campaigns
    _WorkerPlugin = object


class ThreadLimits(_WorkerPlugin):
    """Worker plugin: cap the threads of every library a run uses (see :func:`thread_env`).

    Registered on every worker of the cluster a campaign runs on (also workers that join
    later), so runs sharing a node do not oversubscribe its cores.
    """

    name = "rotorlab-thread-limits"

    def __init__(self, threads: int = 1):
        self.threads = int(threads)

    def setup(self, worker):
        _limit_threads(self.threads)


# ------------------------------------------------------------------------------ store state


@dataclass(frozen=True)
class StoreStatus:
    """What a run's store holds: ``state`` is absent, complete, partial or broken."""

    state: str
    step: int = 0
    total_steps: int = 0
    frames: int = 0
    detail: str = ""


def store_status(store, spec) -> StoreStatus:
    """Inspect a run's store without changing it.

    Parameters
    ----------
    store : path
    spec : RunSpec
        The run the store should hold.

    Returns
    -------
    StoreStatus
        ``complete``: the checkpoint is at ``spec.total_steps``; ``partial``: a checkpoint
        before that (resume); ``broken``: a directory that is no usable store (moved aside
        and restarted); ``absent``.
    """
    import warnings

    from rotorlab.store import TrajectoryStore

    path = Path(store)
    total = spec.equilibration_steps + spec.steps
    if not path.exists():
        return StoreStatus("absent", total_steps=total)
    try:
        with warnings.catch_warnings():
            # a killed writer's torn tail / *.partial leftovers: cut from the view, not an error
            warnings.simplefilter("ignore")
            ts = TrajectoryStore.open(path, mode="r")
    except Exception as exc:
        return StoreStatus("broken", total_steps=total, detail=str(exc))
    try:
        if not ts.has_checkpoint:
            return StoreStatus("broken", total_steps=total, frames=ts.n_frames,
                               detail="no checkpoint")
        try:
            _, meta = ts.read_checkpoint()
        except Exception as exc:
            return StoreStatus("broken", total_steps=total, detail=str(exc))
        step = int(meta["integrator"]["step"])
        n_cp = ts.checkpoint_n_frames or 0
        state = "complete" if step >= total and ts.n_frames >= n_cp else "partial"
        return StoreStatus(state, step=step, total_steps=total, frames=ts.n_frames)
    finally:
        ts.close()


def _move_aside(path: Path) -> Path:
    k = 1
    while (dest := path.with_name(f"{path.name}.broken-{k}")).exists():
        k += 1
    path.rename(dest)
    return dest


# ------------------------------------------------------------------------------ the task


def _emit(topic, msg):
    if not topic:
        return
    try:
        from distributed import get_worker

        get_worker().log_event(topic, msg)
    except Exception:  # not on a worker (serial execution) or no scheduler: no live progress
        pass


def execute_run(spec_json: str, store: str, *, threads: int = 1, topic: str | None = None,
                progress_interval_s: float = 1.0) -> dict:
    """Run (or finish) one campaign run; the body of every Dask task.

    Parameters
    ----------
    spec_json : str
        :meth:`RunSpec.to_json` of the run.
    store : str
        Store directory.
    threads : int
        Thread cap (:func:`thread_env`).
    topic : str, optional
        Dask event topic for live progress (``start``, ``progress``, ``done`` messages).
    progress_interval_s : float
        Smallest wall-clock time between two progress messages [s].

    Returns
    -------
    dict
        ``action`` (``skipped``, ``resumed``, ``started``, ``restarted``), ``step``,
        ``frames``, ``wall_s``, ``steps_per_second``, ``host``, ``pid``.

    Raises
    ------
    Exception
        Whatever the run raised (the store keeps what was written; a retry resumes it).
    """
    _limit_threads(threads)
    import socket

    from rotorlab.md.simulation import Simulation
    from rotorlab.spec import RunSpec

    t0 = time.perf_counter()
    spec = RunSpec.from_json(spec_json)
    path = Path(store)
    name = path.name
    info = {"host": socket.gethostname(), "pid": os.getpid()}
    st = store_status(path, spec)
    _emit(topic, {"kind": "start", "run": name, "state": st.state, "step": st.step, **info})
    if st.state == "complete":
        return {"action": "skipped", "step": st.step, "frames": st.frames, "wall_s": 0.0,
                "steps_per_second": float("nan"), **info}
    if st.state == "partial":
        sim = Simulation.resume(path, progress=False)
        action = "resumed"
    else:
        action = "started"
        if st.state == "broken":
            _move_aside(path)
            action = "restarted"
        sim = Simulation.from_spec(spec, store=path, progress=False)
    step0 = sim.step
    last = [0.0]

    def _progress(ev):
        now = time.perf_counter()
        if now - last[0] >= progress_interval_s:
            last[0] = now
            _emit(topic, {"kind": "progress", "run": name, "step": ev.step,
                          "total": ev.total_steps, "frames": ev.frames,
                          "rate": ev.steps_per_second})

    sim.attach(_progress, interval=max(1, min(100, spec.frame_interval)), event="progress")
    t1 = time.perf_counter()
    sim.run()
    wall = time.perf_counter() - t1
    if sim.status != "completed":
        raise RuntimeError(f"run {name} ended with status {sim.status!r} at step {sim.step}")
    out = {"action": action, "step": sim.step, "frames": int(sim.store.n_frames),
           "wall_s": time.perf_counter() - t0, "md_wall_s": wall,
           "steps_per_second": (sim.step - step0) / wall if wall > 0 else float("nan"), **info}
    _emit(topic, {"kind": "done", "run": name, **out})
    return out


# ------------------------------------------------------------------------------ state file


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class CampaignState:
    """The campaign's state file ``DIR/campaign.json`` (thread-safe, written atomically).

    ``runs[name]`` holds ``material, mode, temperature, replica, seed, store, potential,
    requested_potential, fallback, status`` (pending, running, done, failed), ``attempts``
    (submissions), ``starts`` (task executions, >attempts when a lost worker's task was
    rescheduled), ``errors`` (one entry per failed attempt), ``actions`` (what each
    execution did: started, resumed, skipped...), ``wall_s``, ``frames``, ``step``.
    """

    def __init__(self, outdir, data: dict):
        self.outdir = Path(outdir)
        self.data = data
        self._lock = threading.RLock()

    @property
    def path(self) -> Path:
        return self.outdir / STATE_FILE

    @property
    def runs(self) -> dict:
        return self.data["runs"]

    @classmethod
    def load(cls, outdir) -> "CampaignState":
        """Read ``DIR/campaign.json``.

        Raises
        ------
        FileNotFoundError, CampaignDirError
        """
        p = Path(outdir) / STATE_FILE
        if not p.is_file():
            raise FileNotFoundError(f"no campaign state file {p} (run `rotorlab campaign` "
                                    "first)")
        try:
            data = json.loads(p.read_text())
        except json.JSONDecodeError as exc:
            raise CampaignDirError(f"{p} is not a readable campaign state file: {exc}") from None
        if data.get("format") != STATE_FORMAT:
            raise CampaignDirError(f"{p} is not a rotorlab campaign state file")
        return cls(outdir, data)

    def save(self) -> None:
        with self._lock:
            self.data["updated"] = _now()
            tmp = self.path.with_name(STATE_FILE + ".tmp")
            tmp.write_text(json.dumps(self.data, indent=1, allow_nan=True))
            os.replace(tmp, self.path)

    def update(self, name: str, **changes) -> None:
        with self._lock:
            self.runs[name].update(changes)

    def append(self, name: str, key: str, value) -> None:
        with self._lock:
            self.runs[name].setdefault(key, []).append(value)

    def counts(self) -> dict:
        with self._lock:
            out = {"pending": 0, "running": 0, "done": 0, "failed": 0}
            for r in self.runs.values():
                if r.get("in_spec", True):
                    out[r["status"]] = out.get(r["status"], 0) + 1
            return out

    def failed(self) -> dict:
        return {k: r for k, r in self.runs.items() if r["status"] == "failed"
                and r.get("in_spec", True)}


def prepare_dir(outdir, spec: CampaignSpec, *, create: bool = True) -> CampaignState:
    """Open or create the campaign directory and merge the spec's runs into its state.

    Raises
    ------
    CampaignDirError
        ``outdir`` is a file, or a directory holding anything that is not a campaign's
        (nothing is deleted or overwritten).
    """
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise CampaignDirError(f"{outdir} exists and is not a directory")
    if outdir.is_dir():
        entries = sorted(p.name for p in outdir.iterdir())
        if entries and STATE_FILE not in entries:
            raise CampaignDirError(
                f"{outdir} is not empty and holds no campaign ({STATE_FILE} missing): "
                f"{', '.join(entries[:6])}{' ...' if len(entries) > 6 else ''}. Choose a new "
                "or empty directory; nothing was changed")
        foreign = [e for e in entries if e not in OWN_ENTRIES]
        if foreign and STATE_FILE in entries:
            raise CampaignDirError(
                f"{outdir} holds files a campaign did not write ({', '.join(foreign[:6])}); "
                "move them away or choose another directory; nothing was changed")
    if (outdir / STATE_FILE).is_file():
        state = CampaignState.load(outdir)
    else:
        if not create:
            raise FileNotFoundError(f"no campaign in {outdir}")
        outdir.mkdir(parents=True, exist_ok=True)
        state = CampaignState(outdir, {"format": STATE_FORMAT, "version": STATE_VERSION,
                                       "created": _now(), "runs": {}})
    (outdir / RUNS_DIR).mkdir(exist_ok=True)
    state.data.update({"name": spec.name, "spec": spec.to_dict(), "spec_digest": spec.digest()})
    planned = spec.expand()
    names = {r.name for r in planned}
    for r in state.runs.values():
        r["in_spec"] = False
    for r in planned:
        entry = state.runs.get(r.name)
        base = {"material": r.material, "mode": r.mode, "temperature": r.temperature,
                "replica": r.replica, "seed": r.spec.seed, "store": f"{RUNS_DIR}/{r.name}",
                "potential": r.spec.potential_string, "requested_potential": r.requested_potential,
                "fallback": r.fallback, "in_spec": True, "spec": r.spec.to_dict()}
        if entry is None:
            state.runs[r.name] = {**base, "status": "pending", "attempts": 0, "starts": 0,
                                  "errors": [], "actions": []}
        else:
            entry.update(base)
            if entry["status"] in ("running", "failed"):
                # a new submission gives failed runs a fresh set of retries
                entry["status"] = "pending"
    assert names <= set(state.runs)
    spec.save(outdir / SPEC_FILE)
    state.save()
    return state


# ------------------------------------------------------------------------------ progress


class _Progress:
    """tqdm bar of runs, postfix done/running/failed and summed steps/s (fed by events)."""

    def __init__(self, state: CampaignState, total: int, enabled: bool):
        self.state = state
        self.rates: dict = {}
        self.lock = threading.Lock()
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, unit="run", desc=f"campaign {state.data['name']}",
                            dynamic_ncols=True)

    def handle(self, event):
        msg = event[1] if isinstance(event, tuple) and len(event) == 2 else event
        if not isinstance(msg, dict) or "run" not in msg:
            return
        name = msg["run"]
        known = name in self.state.runs
        if msg.get("kind") == "start":
            if known:
                with self.state._lock:
                    e = self.state.runs[name]
                    e["starts"] = e.get("starts", 0) + 1
                    e["last_host"] = f"{msg.get('host')}:{msg.get('pid')}"
                    e.setdefault("start_states", []).append(msg.get("state"))
        elif msg.get("kind") == "progress":
            with self.lock:
                self.rates[name] = float(msg.get("rate") or 0.0)
            if known:
                self.state.update(name, step=int(msg.get("step", 0)))
        elif msg.get("kind") == "done":
            with self.lock:
                self.rates.pop(name, None)
        self.refresh()

    def refresh(self):
        if self.bar is None:
            return
        c = self.state.counts()
        with self.lock:
            rate = sum(r for r in self.rates.values() if r == r)
        self.bar.n = c["done"] + c["failed"]
        self.bar.set_postfix_str(f"done {c['done']} running {c['running']} failed "
                                 f"{c['failed']} | {rate:,.0f} steps/s", refresh=True)

    def drop(self, name):
        with self.lock:
            self.rates.pop(name, None)

    def close(self):
        if self.bar is not None:
            self.refresh()
            self.bar.close()


# ------------------------------------------------------------------------------ campaign


def _client(workers, scheduler, threads, cluster_kwargs):
    from distributed import Client, LocalCluster

    if scheduler is not None:
        if isinstance(scheduler, (str, os.PathLike)) and Path(scheduler).is_file():
            return Client(scheduler_file=str(scheduler), set_as_default=False), None
        return Client(scheduler, set_as_default=False), None
    n = workers or max(1, (os.cpu_count() or 1) // max(1, threads))
    kw = {"n_workers": int(n), "threads_per_worker": 1, "host": "127.0.0.1",
          "processes": True, "env": thread_env(threads),
          "dashboard_address": "127.0.0.1:0"}
    kw.update(cluster_kwargs or {})
    cluster = LocalCluster(**kw)
    # not the default client: dask computations of the caller (lazy stores) stay local
    return Client(cluster, set_as_default=False), cluster


def run_campaign(spec, outdir, *, workers: int | None = None, scheduler=None, client=None,
                 retries: int | None = None, progress: bool = True, dry_run: bool = False,
                 collect: bool = True, cluster_kwargs: dict | None = None,
                 poll_s: float = 0.25, out=None) -> CampaignState:
    """Run every run of a campaign on Dask; resume what was interrupted, skip what finished.

    Parameters
    ----------
    spec : CampaignSpec, mapping or path
        The campaign (a YAML/JSON file is read with :meth:`CampaignSpec.load`).
    outdir : path
        Campaign directory (new, empty, or an earlier run of a campaign).
    workers : int, optional
        Workers of the default ``LocalCluster`` (one thread each, bound to 127.0.0.1);
        default ``cpu_count // threads_per_worker``.
    scheduler : str, optional
        ``tcp://HOST:PORT`` or a scheduler file of an existing cluster to join instead.
    client : distributed.Client, optional
        Use this client (its cluster is not closed).
    retries : int, optional
        Override ``spec.retries``: resubmissions of a failed run.
    progress : bool
        Terminal tqdm bar (runs, done/running/failed, steps/s).
    dry_run : bool
        List the runs (and what their stores hold) and return without running.
    collect : bool
        Collect the results into ``DIR/campaign.nc`` at the end.
    cluster_kwargs : dict, optional
        Extra ``LocalCluster`` arguments.
    poll_s : float
        [s] between checks of the futures.
    out : file, optional
        Where the summary goes (default stdout).

    Returns
    -------
    CampaignState
        With every run ``done`` or ``failed`` (errors recorded).

    Raises
    ------
    CampaignDirError
        ``outdir`` holds something that is not a campaign.
    """
    out = out or sys.stdout
    if isinstance(spec, (str, os.PathLike)):
        spec = CampaignSpec.load(spec)
    elif isinstance(spec, dict):
        spec = CampaignSpec.from_dict(spec)
    retries = spec.retries if retries is None else int(retries)
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    outdir = Path(outdir).resolve()
    planned = spec.expand()
    if dry_run:
        _print_dry_run(spec, planned, outdir, out)
        return None
    state = prepare_dir(outdir, spec)
    fb = sorted({r.material for r in planned if r.fallback})
    if fb:
        print(f"WARNING: no bundled DeePMD model for {', '.join(fb)}: these runs use the "
              f"fallback potential {spec.potential_fallback!r} (NOT a physics-grade model; "
              "see the report)", file=out)
    from rotorlab.potentials.registry import has_bundled

    nob = sorted({r.material for r in planned if r.spec.potential_string.startswith("bundled")
                  and not has_bundled(r.material)})
    if nob:
        print(f"WARNING: no bundled DeePMD model for {', '.join(nob)} and no "
              "potential_fallback: those runs will fail (and be reported); give a model "
              "file as `potential` or set potential_fallback", file=out)

    # runs whose stores are already complete are not submitted at all
    todo = []
    for r in planned:
        st = store_status(outdir / RUNS_DIR / r.name, r.spec)
        entry = state.runs[r.name]
        if st.state == "complete":
            # the last action always describes this submission (the summary counts them)
            entry["actions"].append("found complete" if entry["status"] != "done" else "skipped")
            entry.update(status="done", step=st.step, frames=st.frames)
        else:
            entry.update(status="pending")
            todo.append(r)
    state.save()

    own_client = client is None
    cluster = None
    prog = _Progress(state, len(planned), progress)
    prog.bar and prog.refresh()
    if not todo:
        print(f"campaign {spec.name}: all {len(planned)} runs are complete; nothing to do",
              file=out)
    else:
        if own_client:
            client, cluster = _client(workers, scheduler, spec.threads_per_worker,
                                      cluster_kwargs)
    try:
        if todo:
            _run_tasks(client, state, todo, outdir, spec, retries, prog, poll_s, out)
        prog.close()
        state.data["finished"] = _now()
        state.save()
        _print_summary(state, spec, out)
        if collect:
            _collect_safely(outdir, client, out)
    finally:
        prog.close()
        state.save()
        if own_client and client is not None:
            client.close()
            if cluster is not None:
                cluster.close()
    return state


def _collect_safely(outdir, client, out):
    from rotorlab.campaign.collect import collect as _collect

    try:
        # per-run analyses as tasks on the cluster when there is one (cached per run)
        _collect(outdir, client=client)
        print(f"results: {outdir / 'campaign.nc'}", file=out)
    except Exception as exc:  # the runs are safe in their stores; say what failed
        print(f"collecting results failed: {type(exc).__name__}: {exc} "
              f"(run `rotorlab report {outdir}` after fixing it)", file=out)


def _run_tasks(client, state, todo, outdir, spec, retries, prog, poll_s, out):
    token = f"rotorlab-campaign-{spec.digest(8)}-{os.getpid()}-{id(state) & 0xffff:x}"
    try:
        client.register_plugin(ThreadLimits(spec.threads_per_worker))
    except Exception as exc:  # an old scheduler: the task caps threads itself
        print(f"note: could not register the thread-limit plugin ({exc})", file=out)
    try:
        client.subscribe_topic(token, prog.handle)
    except Exception:
        pass
    link = getattr(client, "dashboard_link", None)
    print(f"Dask dashboard: {link}" if link else "Dask dashboard: not available", file=out)

    def submit(r):
        entry = state.runs[r.name]
        entry["attempts"] = entry.get("attempts", 0) + 1
        entry["status"] = "running"
        entry["submitted"] = _now()
        return client.submit(execute_run, r.spec.to_json(), str(outdir / RUNS_DIR / r.name),
                             threads=spec.threads_per_worker, topic=token, pure=False,
                             key=f"rotorlab-run-{r.name}-a{entry['attempts']}")

    futures = {submit(r): r for r in todo}
    state.save()
    prog.refresh()
    while futures:
        done = [f for f in futures if f.done()]
        if not done:
            time.sleep(poll_s)
            prog.refresh()
            continue
        for f in done:
            r = futures.pop(f)
            entry = state.runs[r.name]
            prog.drop(r.name)
            if f.status == "finished":
                res = f.result()
                entry["actions"].append(res["action"])
                entry.update(status="done", step=res["step"], frames=res["frames"],
                             wall_s=res["wall_s"], steps_per_second=res["steps_per_second"],
                             host=f"{res['host']}:{res['pid']}", finished=_now())
            else:
                try:
                    exc = f.exception()
                except BaseException as lost:  # cancelled: the scheduler lost the task
                    exc = lost
                if exc is None:
                    exc = RuntimeError(f"task ended with status {f.status!r}")
                tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                entry["errors"].append({"attempt": entry["attempts"], "time": _now(),
                                        "type": type(exc).__name__, "message": str(exc),
                                        "traceback": tb[-4000:]})
                if entry["attempts"] <= retries:
                    futures[submit(r)] = r
                else:
                    entry["status"] = "failed"
            f.release()
        state.save()
        prog.refresh()


def _print_dry_run(spec, planned, outdir, out):
    print(spec.describe(), file=out)
    print(f"{'run':<52} {'seed':>20} potential  store", file=out)
    for r in planned:
        st = store_status(outdir / RUNS_DIR / r.name, r.spec).state
        pot = r.spec.potential_string + (" (fallback)" if r.fallback else "")
        print(f"{r.name:<52} {r.spec.seed:>20} {pot:<10} {st}", file=out)
    print(f"{len(planned)} runs; nothing was run (--dry-run)", file=out)


def _print_summary(state, spec, out):
    c = state.counts()
    runs = [r for r in state.runs.values() if r.get("in_spec", True)]
    acts = [r["actions"][-1] if r.get("actions") else "-" for r in runs]
    print(f"campaign {spec.name}: {c['done']} done, {c['failed']} failed of {len(runs)} runs "
          f"(this submission: {acts.count('started') + acts.count('restarted')} started, "
          f"{acts.count('resumed')} resumed, "
          f"{acts.count('skipped') + acts.count('found complete')} already complete)", file=out)
    for name, r in state.failed().items():
        e = r["errors"][-1] if r["errors"] else {"type": "?", "message": "?"}
        print(f"  FAILED {name} after {r['attempts']} attempt(s): {e['type']}: {e['message']}",
              file=out)
    fb = sorted({r["material"] for r in runs if r.get("fallback")})
    if fb:
        print(f"  WARNING: {', '.join(fb)} ran with the fallback potential "
              f"{spec.potential_fallback!r} because no bundled model exists", file=out)
    print(f"state: {state.path}", file=out)
