"""Observers with an interval and an event, cooperative stop() from another thread, irun(),
live monitoring — and every way of ending a run leaves a store that resumes bit for bit."""

import threading
import time

import numpy as np
import pytest

from rotorlab.md.observers import LiveMonitor, RunEvent
from rotorlab.md.simulation import Simulation, SimulationExploded
from rotorlab.md.testing import tetrahedral_salt
from rotorlab.store import TrajectoryStore, open_store

KW = dict(mode="RC", temperature=300.0, timestep=0.5, thermostat="langevin",
          equilibration_steps=20, steps=400, frame_interval=5, checkpoint_interval=50,
          seed=11, progress=False, chunk_frames=4)


def _sim(path=None, **over):
    atoms, topo = tetrahedral_salt(a=6.4, seed=2)
    kw = dict(KW)
    kw.update(over)
    return Simulation(atoms, "reference", store=path, topology=topo, **kw)


def _frames(path):
    ds = open_store(path)
    return {k: ds[k].values for k in ("positions", "velocities", "conserved_energy",
                                      "temperature", "step", "time")}


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("obs") / "ref.zarr"
    _sim(path).run()
    return path


def _assert_same(path, ref):
    got, want = _frames(path), _frames(ref)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def test_intervals_and_events_are_counted_exactly(tmp_path):
    sim = _sim(tmp_path / "a.zarr")
    seen = {"progress": [], "frame": [], "checkpoint": [], "done": [], "error": []}
    sim.attach(lambda ev: seen["progress"].append(ev.step), interval=7)
    sim.attach(lambda ev: seen["frame"].append(ev.frames), interval=3, event="frame")
    sim.attach(lambda ev: seen["checkpoint"].append(ev.step), interval=2, event="checkpoint")
    sim.attach(lambda ev: seen["done"].append(ev), event="done")
    sim.attach(lambda ev: seen["error"].append(ev), event="error")
    sim.run()
    assert seen["progress"] == list(range(7, 421, 7))
    n_frames = 400 // 5 + 1
    assert seen["frame"] == list(range(3, n_frames + 1, 3))          # frames in the store
    cps = [s for s in range(1, 421) if s % 50 == 0 or s == 420]
    assert seen["checkpoint"] == cps[1::2]
    (done,) = seen["done"]
    assert done.reason == "completed" and done.step == 420 and done.frames == n_frames
    assert done.fraction == 1.0 and seen["error"] == []
    assert isinstance(done, RunEvent) and done.simulation is sim and sim.status == "completed"


def test_bad_observer_arguments():
    sim = _sim()
    with pytest.raises(ValueError, match="unknown event 'frames'"):
        sim.attach(print, event="frames")
    with pytest.raises(ValueError, match=">= 1"):
        sim.attach(print, interval=0)
    with pytest.raises(ValueError, match="whole number"):
        sim.attach(print, interval=2.5)
    with pytest.raises(TypeError, match="callable"):
        sim.attach(42)
    h = sim.attach(print)
    sim.detach(h)
    assert sim._observers == []


def test_error_event_on_explosion_keeps_data(tmp_path):
    sim = _sim(tmp_path / "b.zarr", thermostat="nve")
    errors = []
    sim.attach(lambda ev: errors.append(ev.error), event="error")

    def heat(ev):
        if ev.step == 33:
            ev.simulation.integrator.v *= 10.0

    sim.attach(heat)
    with pytest.raises(SimulationExploded):
        sim.run()
    assert len(errors) == 1 and isinstance(errors[0], SimulationExploded)
    assert sim.status == "failed"
    assert TrajectoryStore.open(tmp_path / "b.zarr").n_frames == (33 - 20) // 5 + 1


def test_stop_from_another_thread_then_resume_is_bit_for_bit(tmp_path, reference_run):
    path = tmp_path / "stopped.zarr"
    sim = _sim(path)
    mon = LiveMonitor(interval=1).attach_to(sim)
    slow = threading.Event()

    def throttle(ev):          # make the run slow enough to be watched and stopped mid-way
        if ev.step > 100:
            slow.set()
            time.sleep(0.002)

    sim.attach(throttle)
    worker = threading.Thread(target=sim.run)
    worker.start()
    assert slow.wait(60)
    # live state is visible from this (the second) thread while the run goes on
    first = mon.latest
    assert first is not None and np.isfinite(first.temperature) and first.frames >= 1
    time.sleep(0.05)
    assert mon.latest.step > first.step
    sim.stop()
    worker.join(60)
    assert not worker.is_alive()
    assert sim.status == "stopped" and sim.stopped and mon.reason == "stopped"
    stop_step = sim.step
    assert 100 < stop_step < 420
    ts = TrajectoryStore.open(path, mode="r")
    assert ts.read_checkpoint()[1]["integrator"]["step"] == stop_step    # checkpoint at stop
    assert ts.n_frames_committed == (stop_step - 20) // 5 + 1              # nothing lost
    assert len(mon.history()) >= stop_step - 1
    Simulation.resume(path, progress=False).run()
    _assert_same(path, reference_run)


def test_stop_before_run_ends_at_once_with_a_checkpoint(tmp_path):
    sim = _sim(tmp_path / "c.zarr")
    sim.stop()
    sim.run()
    assert sim.status == "stopped" and sim.step == 0
    # the stop request was consumed: a second run() continues to the end
    sim.run()
    assert sim.status == "completed" and sim.step == 420


def test_irun_yields_and_break_leaves_a_resumable_store(tmp_path, reference_run):
    path = tmp_path / "gen.zarr"
    sim = _sim(path)
    steps = []
    for ev in sim.irun(interval=25):
        steps.append(ev.step)
        if ev.step == 175:
            break
    assert steps == list(range(25, 176, 25))
    assert TrajectoryStore.open(path).read_checkpoint()[1]["integrator"]["step"] == 175
    Simulation.resume(path, progress=False).run()
    _assert_same(path, reference_run)
    evs = list(_sim(tmp_path / "full.zarr").irun(interval=100))
    assert [e.step for e in evs] == [100, 200, 300, 400, 420]
    assert evs[-1].event == "done" and evs[-1].reason == "completed"


def test_run_after_stop_in_the_same_object_continues_exactly(tmp_path, reference_run):
    path = tmp_path / "again.zarr"
    sim = _sim(path)
    sim.attach(lambda ev: ev.simulation.stop() if ev.step == 123 else None)
    sim.run()
    assert sim.status == "stopped" and sim.step == 123
    sim._observers.clear()
    sim.run()
    _assert_same(path, reference_run)
