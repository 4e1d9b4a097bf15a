"""Simulation run loop: store contents, checkpoints, bit-for-bit resume after SIGKILL and
Ctrl-C, explosion detection and bad inputs."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from rotorlab.md.simulation import Simulation, SimulationExploded, min_pair_distance
from rotorlab.md.testing import tetrahedral_salt
from rotorlab.store import TrajectoryStore, open_store

KW = dict(mode="RC", temperature=300.0, timestep=0.5, thermostat="csvr",
          equilibration_steps=40, steps=360, frame_interval=8, checkpoint_interval=50,
          seed=42, progress=False, chunk_frames=5)


def _sim(path, **over):
    atoms, topo = tetrahedral_salt(a=6.4, seed=1)
    kw = dict(KW)
    kw.update(over)
    return Simulation(atoms, "reference", store=path, topology=topo, **kw)


def _frames(path):
    ds = open_store(path)
    return {k: ds[k].values for k in ("positions", "velocities", "conserved_energy",
                                      "temperature", "step")}


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("ref") / "ref.zarr"
    _sim(path).run()
    return path


def test_store_contents(reference_run):
    ds = open_store(reference_run)
    assert ds.sizes["frame"] == 360 // 8 + 1
    assert ds.attrs["constraint_mode"] == "RC"
    assert ds.attrs["target_temperature"] == 300.0
    assert ds.attrs["potential_id"] == "reference"
    assert ds.attrs["n_dof"] == 3 * 24 - 4 * 3 - 3
    assert ds.attrs["com_removed"] is True or ds.attrs["com_removed"] == 1
    np.testing.assert_allclose(ds["time"].values, np.arange(46) * 8 * 0.5 / 1000)
    assert np.isfinite(ds["temperature"].values).all()
    assert 100 < ds["temperature"].values.mean() < 600
    # unwrapped positions: rotors stay whole (B–H ≈ 1.2 Å) even after crossing the box
    x = ds["positions"].values
    bh = np.linalg.norm(x[:, 5] - x[:, 4], axis=-1)
    assert bh.max() < 1.6
    ts = TrajectoryStore.open(reference_run)
    arrays, meta = ts.read_checkpoint()
    assert meta["integrator"]["step"] == 400


def test_killed_run_resumes_bit_for_bit(tmp_path, reference_run):
    path = tmp_path / "killed.zarr"
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from test_md_simulation import _sim
        def killer(sim):
            if sim.step == 237:                       # mid-chunk, between checkpoints
                os.kill(os.getpid(), signal.SIGKILL)
        sim = _sim({str(path)!r})
        sim.attach(lambda ev: killer(ev.simulation))
        sim.run()
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    ts = TrajectoryStore.open(path, mode="r")
    assert ts.read_checkpoint()[1]["integrator"]["step"] == 200
    Simulation.resume(path, progress=False).run()
    got, want = _frames(path), _frames(reference_run)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def test_ctrl_c_leaves_consistent_store_and_resumes(tmp_path, reference_run):
    path = tmp_path / "int.zarr"
    sim = _sim(path)

    def interrupt(s):
        if s.step == 123:
            os.kill(os.getpid(), signal.SIGINT)

    sim.attach(lambda ev: interrupt(ev.simulation))
    with pytest.raises(KeyboardInterrupt, match="consistent"):
        sim.run()
    ts = TrajectoryStore.open(path, mode="r")
    assert ts.read_checkpoint()[1]["integrator"]["step"] == 123
    assert ts.n_frames == (123 - 40) // 8 + 1
    Simulation.resume(path, progress=False).run()
    got, want = _frames(path), _frames(reference_run)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def test_resume_extends_run(tmp_path):
    path = tmp_path / "ext.zarr"
    _sim(path, steps=80).run()
    sim = Simulation.resume(path, steps=40, progress=False)
    sim.run()
    ds = open_store(path)
    assert ds.sizes["frame"] == 120 // 8 + 1
    assert list(ds["step"].values) == list(range(0, 121, 8))


def test_explosion_is_detected_and_data_kept(tmp_path):
    path = tmp_path / "boom.zarr"
    sim = _sim(path, timestep=6.0, thermostat="nve", equilibration_steps=0, steps=2000,
               frame_interval=2, checkpoint_interval=10)
    with pytest.raises(SimulationExploded, match="exploded at step"):
        sim.run()
    ts = TrajectoryStore.open(path, mode="r")
    assert ts.n_frames >= 1
    assert ts.has_checkpoint
    ds = open_store(path)
    assert np.isfinite(ds["positions"].values).all()


def test_min_pair_distance_matches_brute_force():
    atoms, _ = tetrahedral_salt(repeat=(1, 2, 1), shear=0.2, seed=3, wrap=True)
    x = atoms.positions
    cell = atoms.cell.array
    d = atoms.get_all_distances(mic=True)
    np.fill_diagonal(d, np.inf)
    assert min_pair_distance(x, cell, 3.0) == pytest.approx(d.min(), rel=1e-12)
    assert min_pair_distance(x, cell, 0.5) == 0.5


@pytest.mark.parametrize("over,exc,match", [
    ({"mode": "XC"}, ValueError, "unknown constraint mode"),
    ({"constrain_species": "PS4"}, ValueError, "no rotors"),
    ({"timestep": 0.0}, ValueError, "timestep"),
    ({"timestep": -1.0}, ValueError, "timestep"),
    ({"temperature": -5.0}, ValueError, "temperature"),
    ({"thermostat": "berendsen"}, ValueError, "unknown thermostat"),
    ({"frame_interval": 0}, ValueError, "frame_interval"),
])
def test_bad_inputs(tmp_path, over, exc, match):
    with pytest.raises(exc, match=match):
        _sim(tmp_path / "bad.zarr", **over)


def test_missing_potential_and_store(tmp_path):
    atoms, topo = tetrahedral_salt()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Simulation(atoms, tmp_path / "nope.pb", temperature=300, timestep=0.5, topology=topo)
    with pytest.raises(FileNotFoundError, match="no trajectory store"):
        Simulation.resume(tmp_path / "missing.zarr")
    _sim(tmp_path / "x.zarr", steps=8).run()
    with pytest.raises(FileExistsError):
        _sim(tmp_path / "x.zarr", steps=8)


def test_material_quick_run():
    pytest.importorskip("rotorlab.materials")
    sim = Simulation("LiBH4", "reference", mode="RTC", temperature=500, steps=20,
                     progress=False, seed=0)
    assert sim.config["timestep"] == 0.5
    sim.run()
    assert sim.step == 20
    e, c = sim.constraints.residuals(sim.integrator.x)
    assert e.max() < 1e-12 and c.max() < 1e-12


@pytest.mark.parametrize("mode, removed", [("UC", True), ("RVC", True), ("TC", False),
                                           ("RTVC", False)])
def test_store_records_whether_total_momentum_is_removed(tmp_path, mode, removed):
    """Analyses remove COM drift exactly when the run conserved total momentum."""
    _sim(tmp_path / "s.zarr", mode=mode, equilibration_steps=0, steps=8).run()
    assert bool(open_store(tmp_path / "s.zarr").attrs["com_removed"]) is removed
