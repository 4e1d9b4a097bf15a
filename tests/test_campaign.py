"""Campaigns on Dask (issue 9): spec expansion, runner, fault tolerance, collection, report.

The Dask tests run tiny LiBH4 (1x1x1, 12 atoms) runs with the reference force field on
loopback: a 2-worker LocalCluster, a real scheduler + two worker processes (one of them
SIGKILLed mid-run), and a whole campaign SIGKILLed and restarted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from rotorlab.campaign import CampaignDirError, CampaignSpec, CampaignSpecError, run_seed
from rotorlab.campaign.collect import pool
from rotorlab.campaign.runner import STATE_FILE, prepare_dir, store_status

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

TINY = dict(materials=["LiBH4"], size=[1, 1, 1], temperatures=[600], frame_interval=5,
            checkpoint_interval=50, base_seed=11)


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _frames(store):
    from rotorlab.store import open_store

    ds = open_store(store)
    return {k: np.asarray(ds[k].values) for k in ("positions", "velocities", "step")}


def _reference_run(spec, store):
    """The same run, uninterrupted, in this process."""
    from rotorlab.md.simulation import Simulation

    Simulation.from_spec(spec, store=store, progress=False).run()
    return _frames(store)


def _assert_identical(a, b):
    assert a["positions"].shape == b["positions"].shape
    np.testing.assert_array_equal(a["step"], b["step"])
    np.testing.assert_array_equal(a["positions"], b["positions"])
    np.testing.assert_array_equal(a["velocities"], b["velocities"])


# ------------------------------------------------------------------------------ spec


def test_expand_grid_per_material_and_mode_with_deterministic_seeds():
    spec = CampaignSpec(materials=["LiBH4", "Li3PS4"], modes=["UC", "RC", "RTC"],
                        temperatures={"LiBH4": {"UC": [450, 500], "RC": [500]},
                                      "Li3PS4": [650, 700]},
                        replicas={"LiBH4": {"UC": 3, "RC": 2}, "Li3PS4": 1},
                        steps={"Li3PS4": 100, "LiBH4": 200}, base_seed=5)
    runs = spec.expand()
    # LiBH4: UC 2T x3, RC 1T x2, RTC absent; Li3PS4: 3 modes x 2T x 1
    assert len(runs) == 6 + 2 + 6
    assert {(r.material, r.mode) for r in runs if r.material == "LiBH4"} == {
        ("LiBH4", "UC"), ("LiBH4", "RC")}
    assert all(r.spec.steps == (200 if r.material == "LiBH4" else 100) for r in runs)
    # the documented seed rule, computed independently
    r = runs[1]
    key = f"{r.material}|{r.mode}|{r.temperature:g}|{r.replica}".encode()
    assert r.spec.seed == (5 + int(hashlib.sha256(key).hexdigest()[:15], 16)) % 2 ** 63
    assert r.spec.seed == run_seed(5, r.material, r.mode, r.temperature, r.replica)
    seeds = [x.spec.seed for x in runs]
    assert len(set(seeds)) == len(seeds)
    names = [x.name for x in runs]
    assert len(set(names)) == len(names)
    again = CampaignSpec.from_text(spec.to_yaml())
    assert again == spec
    assert [x.name for x in again.expand()] == names
    assert CampaignSpec.from_text(spec.to_json(), "json") == spec


@pytest.mark.parametrize("kw, field", [
    (dict(materials=["Unobtainium"]), "materials"),
    (dict(replicas=0), "replicas"),
    (dict(temperatures={"LiBH4": [500], "UC": [600]}), "temperatures"),
    (dict(temperatures=[-5]), "temperatures"),
    (dict(modes=["XX"]), "modes"),
    (dict(timestep=50.0), "timestep"),
    (dict(retries=-1), "retries"),
    (dict(run_options={"seed": 3}), "run_options"),
    (dict(analysis={"nonsense": True}), "analysis"),
    (dict(temperatures={"Li3PS4": [600]}), "temperatures"),  # empty grid for LiBH4
])
def test_invalid_spec_names_the_field(kw, field):
    base = dict(materials=["LiBH4"], temperatures=[500])
    with pytest.raises(CampaignSpecError, match=field):
        CampaignSpec(**{**base, **kw})


def test_unknown_key_and_fallback_are_reported(material_without_model):
    with pytest.raises(CampaignSpecError, match="unknown field.*temprature"):
        CampaignSpec.from_dict({"materials": ["LiBH4"], "temprature": [500]})
    spec = CampaignSpec(materials=[material_without_model], temperatures=[600],
                        potential="bundled",
                        potential_fallback="reference")
    runs = spec.expand()
    assert all(r.fallback and r.spec.potential == "reference"
               and r.requested_potential == "bundled" for r in runs)
    assert "fallback" in spec.describe()


def test_pool_replicas_mean_sem_and_bounds():
    v, e, b, kind, n = pool([1.0, 2.0, 4.0], [0.1, 0.1, 0.1], [0, 0, 0], [np.nan] * 3)
    assert kind == "value" and n == 3
    assert v == pytest.approx(7 / 3)
    assert e == pytest.approx(np.std([1, 2, 4], ddof=1) / np.sqrt(3))
    # one replica: its own error
    assert pool([2.0], [0.3], [0], [np.nan])[1] == pytest.approx(0.3)
    # one replica below measurable: the pooled value becomes an upper bound
    v, e, b, kind, n = pool([1.0, np.nan], [0.1, np.nan], [0, 1], [np.nan, 0.5])
    assert np.isnan(v) and kind == "upper_bound" and b == pytest.approx(0.75)
    # missing runs (below is NaN) are not counted
    assert pool([np.nan, 3.0], [np.nan, 0.2], [np.nan, 0], [np.nan, np.nan])[3:] == ("value", 1)
    assert pool([np.nan], [np.nan], [np.nan], [np.nan])[3] == "missing"


def test_refuses_directory_with_foreign_content(tmp_path):
    spec = CampaignSpec(**TINY, modes=["UC"], steps=100)
    d = tmp_path / "mine"
    d.mkdir()
    (d / "thesis.tex").write_text("precious")
    with pytest.raises(CampaignDirError, match="thesis.tex"):
        prepare_dir(d, spec)
    assert (d / "thesis.tex").read_text() == "precious"
    assert sorted(p.name for p in d.iterdir()) == ["thesis.tex"]
    # a campaign directory with someone else's file in it is refused too
    ok = tmp_path / "camp"
    prepare_dir(ok, spec)
    assert (ok / STATE_FILE).is_file()
    (ok / "notes.txt").write_text("x")
    with pytest.raises(CampaignDirError, match="notes.txt"):
        prepare_dir(ok, spec)
    assert (ok / "notes.txt").read_text() == "x"


def test_cli_parsers_and_dry_run(tmp_path, capsys):
    from rotorlab.campaign.cli_commands import add_parsers, main

    p = argparse.ArgumentParser()
    add_parsers(p.add_subparsers(dest="cmd"))
    a = p.parse_args(["campaign", "demo", "-o", "x", "--workers", "3", "--retries", "0",
                      "--scheduler", "tcp://127.0.0.1:8786"])
    assert (a.workers, a.retries, a.scheduler, a.output) == (3, 0, "tcp://127.0.0.1:8786", "x")
    assert p.parse_args(["report", "d"]).directory == "d"
    spec = CampaignSpec(**TINY, modes=["UC", "RC"], steps=100)
    f = spec.save(tmp_path / "c.yaml")
    out = tmp_path / "out"
    assert main(["campaign", str(f), "-o", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    for r in spec.expand():
        assert r.name in text and str(r.spec.seed) in text
    assert "nothing was run" in text and not out.exists()
    assert main(["campaign", str(tmp_path / "missing.yaml"), "-o", str(out)]) == 2


def test_bundled_specs_are_valid():
    from rotorlab.campaign.cli_commands import _resolve_spec, bundled_specs

    names = bundled_specs()
    assert "demo" in names
    for mat in ("LiBH4", "Na2B10H10", "Na3OBH4", "Li3PS4", "Na4P2S6", "Na11Sn2PS12"):
        assert f"study_{mat}" in names
    for n in names:
        spec = CampaignSpec.load(_resolve_spec(n))
        assert spec.expand()
    demo = CampaignSpec.load(_resolve_spec("demo"))
    assert demo.materials == ("Li3PS4",) and demo.mode_labels == ("UC", "RC", "RTC", "RTVC")
    assert demo.potential.split(":")[0] == "bundled" and demo.potential_fallback == "reference"
    li = CampaignSpec.load(_resolve_spec("study_LiBH4"))
    assert li.temperatures_of("LiBH4", "RTC") == [575.0]
    assert len([r for r in li.expand() if r.mode == "UC"]) == 5 * 3
    assert all(r.spec.size == "paper" for r in li.expand())


def test_slurm_example_job_script():
    pytest.importorskip("dask_jobqueue")
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import slurm_campaign
    finally:
        sys.path.pop(0)
    cluster = slurm_campaign.slurm_cluster(cores=4, memory="8GB", walltime="01:00:00",
                                           queue="compute", scheduler_host="127.0.0.1")
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "#SBATCH" in script and "-p compute" in script and "01:00:00" in script
    assert "export NUMBA_NUM_THREADS=1" in script and "export OMP_NUM_THREADS=1" in script
    assert "--nworkers 4" in script or "--nprocs 4" in script
    assert "127.0.0.1" in script


# ------------------------------------------------------------------------------ Dask


@pytest.mark.slow
def test_local_cluster_campaign_collect_report_and_failed_run(tmp_path):
    """2-worker LocalCluster: four modes complete, a run that always fails is reported."""
    from rotorlab.campaign import collect, run_campaign
    from rotorlab.campaign.figures import report
    from rotorlab.campaign.runner import _client

    pots = {m: "reference" for m in ("UC", "RC", "RTC", "RTVC")}
    pots["TC"] = str(tmp_path / "no_such_model.pb")
    temps = {m: [600] for m in pots}
    temps["UC"] = [500, 600]
    spec = CampaignSpec(**{**TINY, "temperatures": temps}, name="tiny",
                        modes=["UC", "TC", "RC", "RTC", "RTVC"], steps=250, potential=pots,
                        retries=1)
    out = tmp_path / "camp"
    client, cluster = _client(2, None, 1, None)
    try:
        state = run_campaign(spec, out, client=client, progress=False, collect=False)
        envs = client.run(lambda: (os.environ.get("NUMBA_NUM_THREADS"),
                                   os.environ.get("OMP_NUM_THREADS")))
        assert len(envs) == 2 and set(envs.values()) == {("1", "1")}
        res = collect(out, client=client)  # per-run analyses on the cluster
    finally:
        client.close()
        cluster.close()
    runs = {r["mode"]: r for r in state.runs.values()}
    failed = runs["TC"]
    assert failed["status"] == "failed"
    assert failed["attempts"] == 2 == len(failed["errors"])  # retries=1: two tries, no more
    assert "no_such_model.pb" in failed["errors"][-1]["message"]
    for m in ("UC", "RC", "RTC", "RTVC"):
        r = runs[m]
        assert r["status"] == "done" and r["attempts"] == 1 and r["actions"] == ["started"]
        assert r["frames"] == 250 // 5 + 1 and r["step"] == 250
    saved = json.loads((out / STATE_FILE).read_text())
    assert saved["runs"][[k for k in saved["runs"] if "-TC-" in k][0]]["status"] == "failed"
    # campaign.nc: the failure is in it, units on every variable, physics bookkeeping
    nc = xr.open_dataset(out / "campaign.nc", engine="scipy")
    assert set(nc["sigma"].dims) == {"material", "mode", "temperature", "replica"}
    cell = dict(material="LiBH4", temperature=600.0, replica=0)
    assert str(nc["status"].sel(mode="TC", **cell).values) == "failed"
    assert "no_such_model.pb" in str(nc["error"].sel(mode="TC", **cell).values)
    assert all("units" in v.attrs for v in nc.data_vars.values())
    s = nc["sigma"].sel(mode="UC", **cell)
    assert float(s) > 0 and float(nc["sigma_pooled"].sel(mode="UC", material="LiBH4",
                                                        temperature=600.0)) == float(s)
    # RTVC freezes the anions completely: no reorientation
    assert float(nc["reorientation_frequency"].sel(mode="RTVC", **cell)) == 0.0
    # Δ_Rot + Δ_Trs + Δ_Vib = log10 σ_UC - log10 σ_RTVC (independent check)
    sp = {m: float(nc["sigma_pooled"].sel(mode=m, material="LiBH4", temperature=600.0))
          for m in ("UC", "RTVC")}
    dl = nc["delta"].sel(material="LiBH4", temperature=600.0).values
    kinds = nc["delta_kind"].sel(material="LiBH4", temperature=600.0).values
    if all(k == "value" for k in kinds):
        assert dl.sum() == pytest.approx(np.log10(sp["UC"] / sp["RTVC"]))
        assert nc["r_mode"].sel(material="LiBH4", temperature=600.0).sum() == pytest.approx(1.0)
    assert np.isfinite(res["cation_band_centre"].sel(mode="UC", **cell))
    # Arrhenius of UC through two temperatures: exact line in ln(sigma T) vs 1/(kB T)
    kB = 8.617333262e-5
    T = np.array([500.0, 600.0])
    y = np.array([float(nc["sigma_pooled"].sel(material="LiBH4", mode="UC", temperature=t))
                  for t in T]) * T
    slope = np.polyfit(1 / (kB * T), np.log(y), 1)[0]
    assert float(nc["Ea_sigmaT"].sel(material="LiBH4", mode="UC")) == pytest.approx(-slope,
                                                                                   rel=1e-6)
    assert nc["Ea_sigmaT"].attrs["units"] == "eV"
    assert np.isnan(nc["Ea_sigmaT"].sel(material="LiBH4", mode="RC"))  # one temperature
    assert str(nc["status"].sel(mode="RC", material="LiBH4", temperature=500.0,
                                replica=0).values) == "absent"
    # the per-run cache is reused: collecting again does not rewrite it
    caches = sorted((out / "runs").glob("*.analysis.nc"))
    assert len(caches) == 5  # the done runs (UC at two temperatures)
    mt = [c.stat().st_mtime_ns for c in caches]
    page = report(out)
    assert [c.stat().st_mtime_ns for c in caches] == mt
    html = page.read_text()
    assert "Failed runs" in html and "no_such_model.pb" in html
    assert (out / "report" / "fig3_sigma_LiBH4.png").is_file()
    assert (out / "report" / "fig3_sigma_LiBH4.svg").is_file()
    for name in ("fig3f_drop", "fig4a_Ea", "fig5_dos_LiBH4", "fig4b_free_energy_LiBH4",
                 "fig6_density_LiBH4"):
        assert (out / "report" / f"{name}.png").is_file(), name
    # a figure without data is skipped with its reason in the page
    from rotorlab.campaign.figures import SkipFigure, draw_figures

    blank = res.copy()
    blank["Ea_sigmaT"] = blank["Ea_sigmaT"] * np.nan
    with pytest.raises(SkipFigure, match="two or more temperatures"):
        from rotorlab.campaign.figures import fig_ea

        fig_ea(blank)
    drawn, skipped = draw_figures(blank, out, tmp_path / "fig2")
    assert ("fig4a_Ea", "needs a mode with measurable σ at two or more temperatures") in skipped


def _start_cluster(tmp_path):
    sched_file = tmp_path / "scheduler.json"
    logs = []
    procs = []

    def spawn(args, name):
        log = open(tmp_path / f"{name}.log", "w")
        logs.append(log)
        p = subprocess.Popen([PY, "-m", *args], env=_env(), stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
        procs.append(p)
        return p

    spawn(["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
           "--scheduler-file", str(sched_file), "--no-dashboard"], "scheduler")
    t0 = time.time()
    while not sched_file.is_file():
        assert time.time() - t0 < 60, "scheduler did not start"
        time.sleep(0.2)
    workers = [spawn(["distributed.cli.dask_worker", "--scheduler-file", str(sched_file),
                      "--nthreads", "1", "--no-nanny", "--host", "127.0.0.1",
                      "--no-dashboard", "--name", f"w{i}"], f"worker{i}") for i in range(2)]
    return sched_file, procs, workers, logs


def _stop(procs, logs):
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    for f in logs:
        f.close()


@pytest.mark.slow
def test_external_cluster_survives_killed_worker(tmp_path):
    """Real scheduler + 2 workers over loopback; the worker of a run is SIGKILLed mid-run:
    the campaign completes and the run, resumed from its checkpoint elsewhere, is identical
    frame for frame to an uninterrupted run."""
    from distributed import Client

    from rotorlab.campaign import run_campaign

    spec = CampaignSpec(**TINY, name="kill", modes=["UC", "RC"], steps=1500, retries=0)
    target = next(r for r in spec.expand() if r.mode == "UC")
    out = tmp_path / "camp"
    sched_file, procs, workers, logs = _start_cluster(tmp_path)
    try:
        with Client(scheduler_file=str(sched_file), timeout=60) as c:
            c.wait_for_workers(2, timeout=120)
            pids = c.run(os.getpid)
        box = {}

        def go():
            try:
                box["state"] = run_campaign(spec, out, scheduler=str(sched_file),
                                            progress=False, collect=False)
            except BaseException as exc:  # surfaced below
                box["error"] = exc

        th = threading.Thread(target=go)
        th.start()
        store = out / "runs" / target.name
        killed = None
        t0 = time.time()
        with Client(scheduler_file=str(sched_file), timeout=60) as c:
            while killed is None and time.time() - t0 < 240:
                st = store_status(store, target.spec) if store.exists() else None
                if st is not None and st.state == "partial" and st.step >= 300:
                    proc = c.processing()
                    addr = [a for a, keys in proc.items()
                            if any(target.name in str(k) for k in keys)]
                    if addr:
                        killed = pids[addr[0]]
                        os.kill(killed, signal.SIGKILL)
                time.sleep(0.05)
        assert killed is not None, "the run finished before it could be interrupted"
        th.join(300)
        assert not th.is_alive()
        assert "error" not in box, box.get("error")
        # before the teardown stops the survivor: exactly the one worker was killed
        codes = [w.poll() for w in workers]
    finally:
        _stop(procs, logs)
    state = box["state"]
    entry = state.runs[target.name]
    assert all(r["status"] == "done" for r in state.runs.values())
    assert entry["attempts"] == 1  # Dask rescheduled it; no retry was needed
    assert entry["starts"] >= 2 and entry["actions"][-1] == "resumed"
    assert entry["start_states"][0] == "absent" and "partial" in entry["start_states"][1:]
    assert entry["host"].split(":")[-1] != str(killed)
    assert codes.count(-signal.SIGKILL) == 1 and codes.count(None) == 1
    got = _frames(out / "runs" / target.name)
    assert got["positions"].shape[0] == 1500 // 5 + 1
    np.testing.assert_array_equal(got["step"], np.arange(0, 1501, 5))  # continuous
    _assert_identical(got, _reference_run(target.spec, tmp_path / "ref.zarr"))


@pytest.mark.slow
def test_campaign_killed_and_restarted_recomputes_nothing_finished(tmp_path):
    from rotorlab.campaign import run_campaign

    spec = CampaignSpec(**TINY, name="restart", modes=["UC", "RC"],
                        steps={"UC": 100, "RC": 1500}, retries=0)
    f = spec.save(tmp_path / "c.yaml")
    out = tmp_path / "camp"
    short, long_ = spec.expand()
    log = open(tmp_path / "campaign.log", "w")
    p = subprocess.Popen([PY, "-m", "rotorlab.campaign", "campaign", str(f), "-o", str(out),
                          "--workers", "1", "--no-progress", "--no-collect"],
                         env=_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        t0 = time.time()
        while time.time() - t0 < 240 and p.poll() is None:
            try:
                st = json.loads((out / STATE_FILE).read_text())["runs"]
            except (FileNotFoundError, json.JSONDecodeError, KeyError):
                st = {}
            if st.get(short.name, {}).get("status") == "done":
                s = store_status(out / "runs" / long_.name, long_.spec)
                if s.state == "partial" and s.step >= 200:
                    break
            time.sleep(0.05)
        assert p.poll() is None, "the campaign ended before it could be killed"
        os.killpg(p.pid, signal.SIGKILL)  # the client, its cluster and its workers
        p.wait(30)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
        log.close()
    killed_state = json.loads((out / STATE_FILE).read_text())["runs"]
    assert killed_state[long_.name]["status"] == "running"
    done_store = out / "runs" / short.name
    mtimes = {q: q.stat().st_mtime_ns for q in done_store.rglob("*")}
    state = run_campaign(spec, out, workers=1, progress=False, collect=False)
    a, b = state.runs[short.name], state.runs[long_.name]
    # the finished run was not resubmitted: started once, skipped on the restart
    assert a["attempts"] == 1 and a["actions"] == ["started", "skipped"]
    assert {q: q.stat().st_mtime_ns for q in done_store.rglob("*")} == mtimes
    assert b["status"] == "done" and b["attempts"] == 2 and b["actions"][-1] == "resumed"
    _assert_identical(_frames(out / "runs" / long_.name),
                      _reference_run(long_.spec, tmp_path / "ref.zarr"))
    # a third submission finds everything complete and starts no cluster at all
    again = run_campaign(spec, out, workers=1, progress=False, collect=False)
    assert [r["attempts"] for r in again.runs.values()] == [1, 2]


def test_bounds_are_drawn_as_bounds():
    """σ below measurable appears as a downward arrow at its bound, never as a point."""
    import matplotlib.lines as mlines

    from rotorlab.campaign.figures import fig_drop, fig_sigma

    T = np.array([500.0, 600.0])
    co = {"material": ["LiBH4"], "mode": ["UC", "RC", "RTC", "RTVC"], "temperature": T}
    sig = np.array([[[1.0, 2.0], [0.5, 1.0], [np.nan, 0.3], [np.nan, np.nan]]])
    bnd = np.where(np.isnan(sig), 0.05, np.nan)
    dims = ("material", "mode", "temperature")
    res = xr.Dataset({"sigma_pooled": (dims, sig), "sigma_pooled_err": (dims, sig * 0.1),
                      "sigma_pooled_bound": (dims, bnd),
                      "sigma": (dims + ("replica",), sig[..., None])}, coords=co)
    fig = fig_sigma(res, "LiBH4")
    ax = fig.axes[0]
    carets = [ln for ln in ax.lines if ln.get_marker() == mlines.CARETDOWNBASE]
    assert carets, "upper bounds must be drawn with downward arrows"
    ys = np.concatenate([np.asarray(ln.get_ydata(), float) for ln in carets])
    assert np.all(ys <= 0.05 + 1e-12)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "RTC (upper bound)" in labels and "RTVC (upper bound)" in labels
    assert "RTVC" not in labels  # no value is drawn for an all-bound mode
    # drops: a lower bound gets an upward arrow
    res["drop"] = (dims, np.array([[[0.0, 0.0], [0.3, 0.3], [1.0, 0.8], [1.2, 1.6]]]))
    res["drop_kind"] = (dims, np.array([[["value"] * 2, ["value"] * 2,
                                         ["lower_bound", "value"],
                                         ["lower_bound", "lower_bound"]]]))
    ax = fig_drop(res).axes[0]
    assert [ln for ln in ax.lines if ln.get_marker() == mlines.CARETUPBASE]
