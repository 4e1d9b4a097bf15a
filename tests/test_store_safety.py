"""Store safety (issue 8): ownership marker and overwrite policy, the writer lock, verify,
repair without loss, read errors that name store and variable, bad import input."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import zarr

from rotorlab.store import (NotAStore, StoreDamaged, StoreExists, StoreLocked, TrajectoryStore,
                            frame_validity, import_trajectory, open_store)
from rotorlab.store.chunks import LocalChunks

sys.path.insert(0, str(Path(__file__).parent))
from test_store import N, assert_frames_equal, make_frames, new_store  # noqa: E402

TESTS = str(Path(__file__).parent)


def snapshot(path: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file below ``path`` (to prove nothing changed)."""
    return {str(f.relative_to(path)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(path.rglob("*")) if f.is_file()}


def lock_is_held(store: Path) -> bool:
    """Whether some open file description holds the store's writer lock."""
    fd = os.open(store / "writer_lock" / "holder", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


# ----------------------------------------------------------------- ownership/overwrite
def test_overwrite_refuses_a_user_directory_and_keeps_its_files(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    for k in range(3):
        (d / f"user{k}.txt").write_text(f"precious {k}")
    with pytest.raises(NotAStore, match=r"d exists and is not a rotorlab store \(it holds 3 "
                                        r"files\); choose another -o path — rotorlab only ever "
                                        r"overwrites its own stores"):
        new_store(d, overwrite=True)
    assert sorted(p.name for p in d.iterdir()) == ["user0.txt", "user1.txt", "user2.txt"]
    assert (d / "user1.txt").read_text() == "precious 1"
    f = tmp_path / "file.zarr"
    f.write_text("a file")
    with pytest.raises(NotAStore, match="is a file, not a rotorlab store"):
        new_store(f, overwrite=True)
    assert f.read_text() == "a file"
    # no hidden leftovers of the refused attempts
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "file.zarr"]


def test_overwrite_never_replaces_cwd_or_its_parents(tmp_path, monkeypatch):
    work = tmp_path / "a" / "work"
    work.mkdir(parents=True)
    (work / "notes.txt").write_text("keep")
    monkeypatch.chdir(work)
    for target in (".", "..", str(work), "/"):
        with pytest.raises(NotAStore, match="working directory|file-system root"):
            new_store(Path(target), overwrite=True)
    assert (work / "notes.txt").read_text() == "keep"
    assert sorted(os.listdir(work)) == ["notes.txt"]


def test_store_with_foreign_files_or_symlink_is_not_replaced(tmp_path):
    s = tmp_path / "s.zarr"
    new_store(s).append(make_frames(0, 3))
    (s / "my_notes.txt").write_text("mine")
    with pytest.raises(NotAStore, match="rotorlab did not create .*my_notes.txt"):
        new_store(s, overwrite=True)
    assert (s / "my_notes.txt").read_text() == "mine"
    (s / "my_notes.txt").unlink()
    link = tmp_path / "link.zarr"
    os.symlink(s, link)
    with pytest.raises(NotAStore, match="symbolic link"):
        new_store(link, overwrite=True)
    assert TrajectoryStore.open(s).n_frames == 0  # (frames were buffered, never flushed)


def test_existing_store_message_and_replacement(tmp_path):
    s = tmp_path / "s.zarr"
    st = new_store(s)
    st.append(make_frames(0, 8))
    st.close()
    with pytest.raises(StoreExists) as ei:
        new_store(s)
    msg = str(ei.value)
    assert "pass --overwrite (CLI) / overwrite=True (Python) to replace this rotorlab store" in msg
    assert "Errno" not in msg and isinstance(ei.value, FileExistsError)
    # invalid arguments with overwrite=True: refused before the old store is touched
    before = snapshot(s)
    with pytest.raises(ValueError, match="masses"):
        TrajectoryStore.create(s, species=["Li"], masses=[1.0, 2.0], rotor_id=[-1],
                               overwrite=True)
    assert snapshot(s) == before
    st = new_store(s, overwrite=True)
    assert st.n_frames == 0 and open_store(s).sizes["frame"] == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp leftovers
    # the marker: schema in the root zarr.json and the writer_lock group's attributes
    root = json.loads((s / "zarr.json").read_text())
    assert root["attributes"]["rotorlab_schema"].startswith("rotorlab.trajectory/")
    lock_meta = json.loads((s / "writer_lock" / "zarr.json").read_text())
    assert lock_meta["attributes"]["rotorlab_store"] == root["attributes"]["rotorlab_schema"]


def test_empty_directory_may_become_a_store(tmp_path):
    d = tmp_path / "out.zarr"
    d.mkdir()
    new_store(d).append(make_frames(0, 4))
    assert open_store(d).sizes["frame"] == 4


def test_import_overwrite_refuses_user_directory_before_reading(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "thesis.tex").write_text("years of work")
    src = tmp_path / "missing-but-never-read.xyz"
    src.write_text("garbage that would fail to parse")
    with pytest.raises(NotAStore, match="not a rotorlab store"):
        import_trajectory(src, "extxyz", store_path=d, timestep_fs=1.0, overwrite=True)
    assert (d / "thesis.tex").read_text() == "years of work"
    s = tmp_path / "s.zarr"
    new_store(s)
    with pytest.raises(StoreExists, match=r"--overwrite \(CLI\) / overwrite=True \(Python\)"):
        import_trajectory(src, "extxyz", store_path=s, timestep_fs=1.0)
    with pytest.raises(ValueError, match="input"):  # never write the store into its input
        import_trajectory(src, "extxyz", store_path=src, timestep_fs=1.0, overwrite=True)
    assert src.read_text() == "garbage that would fail to parse"


# ------------------------------------------------------------------ writer lock
HOLDER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    from rotorlab.store import TrajectoryStore
    from test_store import make_frames
    st = TrajectoryStore.open({path!r}, mode="a")
    st.append(make_frames(st.n_frames, 4))
    st.flush()
    print("ready", flush=True)
    time.sleep(120)
""")


def _start_holder(path):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER.format(tests=TESTS, path=str(path))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise AssertionError(f"holder did not start: {proc.stderr.read()}")
    return proc


def test_second_writer_is_refused_readers_are_not_and_stale_lock_is_taken_over(tmp_path):
    s = tmp_path / "s.zarr"
    st = new_store(s)
    st.append(make_frames(0, 8))
    st.close()
    assert not lock_is_held(s)
    proc = _start_holder(s)
    try:
        assert lock_is_held(s)
        before = snapshot(s)
        with pytest.raises(StoreLocked, match=rf"store .*s.zarr is being written by pid "
                                              rf"{proc.pid} since .*; wait for it"):
            new_store(s, overwrite=True)  # refused BEFORE anything is removed
        with pytest.raises(StoreLocked, match=f"pid {proc.pid}"):
            TrajectoryStore.open(s, mode="a")
        assert snapshot(s) == before
        # readers never take or wait on the lock
        ds = open_store(s)
        assert_frames_equal(ds, make_frames(0, 12), 12)
        assert TrajectoryStore.open(s, "r").verify().ok
        assert snapshot(s) == before
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # the dead writer's lock is gone by construction; its info is reported on take-over
    assert not lock_is_held(s)
    st = TrajectoryStore.open(s, mode="a")
    assert st.previous_writer is not None and st.previous_writer["pid"] == proc.pid
    st.append(make_frames(12, 3))
    st.close()
    assert not lock_is_held(s)
    assert_frames_equal(open_store(s), make_frames(0, 15), 15)
    # a clean close leaves no stale info behind
    assert TrajectoryStore.open(s, mode="a").previous_writer is None


def test_second_simulation_overwrite_on_live_run_is_refused(tmp_path):
    """The issue's scenario: a second run with --overwrite on a store a live run writes."""
    from rotorlab.md.simulation import Simulation
    from rotorlab.md.testing import tetrahedral_salt

    s = tmp_path / "live.zarr"
    code = textwrap.dedent(f"""
        import sys, time
        from rotorlab.md.simulation import Simulation
        from rotorlab.md.testing import tetrahedral_salt
        atoms, topo = tetrahedral_salt(a=6.4, seed=1)
        def pause(ev):
            if ev.step == 30:
                print("ready", flush=True)
                time.sleep(120)
        sim = Simulation(atoms, "reference", store={str(s)!r}, topology=topo, mode="RC",
                         temperature=300.0, steps=60, frame_interval=5, seed=1, progress=False,
                         chunk_frames=4, observers=[pause])
        sim.run()
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        before = snapshot(s)
        atoms, topo = tetrahedral_salt(a=6.4, seed=2)
        with pytest.raises(StoreLocked, match=f"pid {proc.pid}"):
            Simulation(atoms, "reference", store=s, topology=topo, mode="UC", temperature=300.0,
                       steps=10, overwrite=True, progress=False)
        assert snapshot(s) == before
    finally:
        proc.kill()
        proc.wait()


def test_in_process_newer_handle_supersedes_older_one(tmp_path):
    s = tmp_path / "s.zarr"
    old = new_store(s)
    old.append(make_frames(0, 5))  # 4 committed + 1 buffered
    new = TrajectoryStore.open(s, mode="a")  # e.g. Simulation.resume in the same notebook
    assert new.n_frames == 5  # the older handle's buffered frame was flushed, not lost
    assert new.is_writer and not old.is_writer
    with pytest.raises(StoreLocked, match="no longer owns the writer lock"):
        old.append(make_frames(5, 1))
    new.append(make_frames(5, 3))
    new.close()
    assert not lock_is_held(s)
    with pytest.raises(ValueError, match="was closed"):
        new.append(make_frames(8, 1))
    assert_frames_equal(open_store(s), make_frames(0, 8), 8)
    with new_store(tmp_path / "ctx.zarr") as st:
        st.append(make_frames(0, 2))
        assert lock_is_held(tmp_path / "ctx.zarr")
    assert not lock_is_held(tmp_path / "ctx.zarr")
    assert open_store(tmp_path / "ctx.zarr").sizes["frame"] == 2


# ------------------------------------------------------------ verify and repair
def build_501(path, chunk=50):
    """A 501-frame store (chunks of 50) with velocities, energies and a checkpoint."""
    st = new_store(path, chunk_frames=chunk)
    fr = make_frames(0, 501)
    st.append(fr)
    st.write_checkpoint({"x": np.arange(3.0)}, {"step": 500})
    st.close()
    return fr


def _damage(chunk: Path, kind: str) -> bytes | None:
    raw = chunk.read_bytes()
    if kind == "delete":
        chunk.unlink()
        return None
    if kind == "truncate":
        bad = raw[: len(raw) // 3]
    else:
        b = bytearray(raw)
        b[len(b) // 2] ^= 0x10
        bad = bytes(b)
    chunk.write_bytes(bad)
    return bad


@pytest.mark.parametrize("kind", ["delete", "truncate", "bitflip"])
def test_early_chunk_damage_refused_then_repaired_without_loss(tmp_path, kind, capsys):
    from rotorlab.cli import main

    p = tmp_path / "run.zarr"
    fr = build_501(p)
    bad = _damage(p / "positions" / "c" / "1" / "0" / "0", kind)  # frames 50-99

    # info --verify names store, variable, frames; exit 1
    assert main(["info", "--verify", str(p)]) == 1
    out = capsys.readouterr().out
    assert "DAMAGED" in out and "chunk 1 of 'positions' (frames 50–99" in out
    # resume (open for appending) refuses and changes nothing
    before = snapshot(p)
    with pytest.raises(StoreDamaged) as ei:
        TrajectoryStore.open(p, mode="a")
    msg = str(ei.value)
    assert str(p) in msg and "'positions'" in msg and "frames 50–99" in msg
    assert "--repair (CLI) / repair=True" in msg and "nothing was changed" in msg
    assert not ei.value.report.ok and ei.value.report.damage[0].variable == "positions"
    assert snapshot(p) == before
    assert not lock_is_held(p)  # the refused open released the lock

    with pytest.warns(RuntimeWarning, match="repaired, keeping all 501 committed frame"):
        st = TrajectoryStore.open(p, mode="a", repair=True)
    assert st.n_frames == 501 and st.checkpoint_n_frames == 501
    ds = st.to_xarray()
    for v in ("velocities", "potential_energy", "kinetic_energy", "conserved_energy",
              "temperature", "cell", "step", "time"):
        np.testing.assert_array_equal(ds[v].values, fr[v], err_msg=v)
    pos = ds["positions"].values
    keep = np.r_[0:50, 100:501]
    np.testing.assert_array_equal(pos[keep], fr["positions"][keep])  # 451 intact frames
    assert np.isnan(pos[50:100]).all()
    assert ds["positions"].attrs["missing_frames"] == [[50, 100]]
    valid = frame_validity(ds)
    assert valid.attrs["units"] == "1" and int(valid.sum()) == 451
    assert not valid.values[50:100].any()
    # the damaged chunk file was moved aside, not deleted
    (aside,) = [d for d in (p / "damaged").iterdir() if d.is_dir()]
    readme = json.loads((aside / "README.json").read_text())
    assert readme["damage"][0]["variable"] == "positions"
    moved = aside / "positions" / "c" / "1" / "0" / "0"
    if bad is None:
        assert not moved.exists()
    else:
        assert moved.read_bytes() == bad
    assert st.attrs["repairs"][0]["moved_to"] == str(aside.relative_to(p))
    # the checkpoint is intact and consistent; the store verifies clean and appends on
    arrays, meta = st.read_checkpoint()
    assert meta["step"] == 500
    rep = st.verify()
    assert rep.ok and rep.missing == {"positions": [[50, 100]]}
    assert "marked missing by an earlier repair" in str(rep)
    st.append(make_frames(501, 10))
    st.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        st = TrajectoryStore.open(p, mode="a")
    assert st.n_frames == 511
    np.testing.assert_array_equal(st.to_xarray()["positions"].values[501:],
                                  make_frames(501, 10)["positions"])
    st.close()
    assert main(["info", "--verify", str(p)]) == 0


def test_damaged_step_and_time_are_reconstructed(tmp_path):
    p = tmp_path / "r.zarr"
    fr = build_501(p)
    _damage(p / "step" / "c" / "3", "bitflip")
    (p / "time" / "c" / "7").unlink()
    with pytest.raises(StoreDamaged, match="'step'.*'time'|'time'.*'step'"):
        TrajectoryStore.open(p, mode="a")
    with pytest.warns(RuntimeWarning, match="repaired"):
        st = TrajectoryStore.open(p, mode="a", repair=True)
    ds = st.to_xarray()
    np.testing.assert_array_equal(ds["step"].values, fr["step"])  # evenly spaced: exact
    np.testing.assert_allclose(ds["time"].values, fr["time"], rtol=1e-12)
    assert ds["step"].attrs["reconstructed_frames"] == [[150, 200]]
    assert ds["time"].attrs["reconstructed_frames"] == [[350, 400]]
    assert "missing_frames" not in ds["positions"].attrs
    assert bool(frame_validity(ds, None).all())


def test_bitflip_found_by_verify_and_read_errors_name_store_and_variable(tmp_path):
    p = tmp_path / "run.zarr"
    build_501(p)
    _damage(p / "velocities" / "c" / "2" / "0" / "0", "bitflip")
    # the cheap default check of a reader misses an early bit flip ...
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        ds = open_store(p)
    # ... but reading it names store, variable and frames instead of a bare checksum error
    with pytest.raises(StoreDamaged, match=rf"store {p}: variable 'velocities', frames "
                                           rf"100–149 \(chunk 2\) cannot be read"):
        ds["velocities"].mean().compute()
    np.testing.assert_array_equal(ds["positions"].values, make_frames(0, 501)["positions"])
    rep = TrajectoryStore.open(p).verify()
    assert not rep.ok
    (d,) = rep.damage
    assert (d.variable, d.chunk, d.start, d.stop) == ("velocities", 2, 100, 150)
    assert d.file == "velocities/c/2/0/0" and "checksum" in d.reason
    assert rep.to_dict()["damage"][0]["variable"] == "velocities"


def test_damage_in_last_incomplete_chunk_is_the_crash_loss_unit(tmp_path):
    p = tmp_path / "r.zarr"
    st = new_store(p, chunk_frames=50)
    st.append(make_frames(0, 120))
    st.write_checkpoint({"x": np.zeros(1)}, {"step": 100})  # checkpoint at 120 frames
    st.append(make_frames(120, 5))
    st.close()  # 125 committed
    _damage(p / "positions" / "c" / "2" / "0" / "0", "bitflip")  # frames 100-124
    # the checkpoint needs frames up to 120: cutting would break it -> refuse
    with pytest.raises(StoreDamaged, match="frames 100–124"):
        TrajectoryStore.open(p, mode="a")
    q = tmp_path / "q.zarr"
    st = new_store(q, chunk_frames=50)
    st.append(make_frames(0, 100))
    st.write_checkpoint({"x": np.zeros(1)}, {"step": 100})
    st.append(make_frames(100, 7))
    st.close()  # chunk 2 holds 7 frames written after the checkpoint
    bad = _damage(q / "velocities" / "c" / "2" / "0" / "0", "truncate")
    with pytest.warns(RuntimeWarning, match=r"dropped 7 frame\(s\).*keeping 100 .*crash-loss "
                                            r"unit.*moved to damaged"):
        st = TrajectoryStore.open(q, mode="a")
    assert st.n_frames == 100 and st.checkpoint_n_frames == 100
    (moved,) = (q / "damaged").rglob("velocities/c/2/0/0")
    assert moved.read_bytes() == bad


def test_verify_reports_unreadable_checkpoint_and_uncommitted_frames(tmp_path):
    p = tmp_path / "r.zarr"
    st = new_store(p)
    st.append(make_frames(0, 8))
    st.write_checkpoint({"x": np.arange(5.0)}, {"step": 8})
    st.close()
    g = zarr.open_group(p, mode="a")
    for v in ("positions", "time"):
        g[v].resize((10,) + g[v].shape[1:])  # an interrupted write: not damage
    with pytest.warns(RuntimeWarning, match="read-only view"):
        ro = TrajectoryStore.open(p)
    rep = ro.verify()
    assert rep.ok and rep.uncommitted == 2 and "not damage" in str(rep)
    (chunk,) = [f for f in (p / "checkpoint").rglob("packed/c/*") if f.is_file()]
    _damage(chunk, "bitflip")
    rep = ro.verify()
    assert not rep.ok and rep.damage[0].variable == "checkpoint"
    assert "cannot be resumed" in str(rep)


def test_open_argument_errors(tmp_path):
    p = tmp_path / "r.zarr"
    new_store(p)
    with pytest.raises(ValueError, match="repair=True needs mode='a'"):
        TrajectoryStore.open(p, "r", repair=True)
    with pytest.raises(ValueError, match="verify must be"):
        TrajectoryStore.open(p, "r", verify="some")
    with pytest.raises(NotAStore):
        TrajectoryStore.open(tmp_path, "a")


# ------------------------------------------------------------ import: bad input
def _dump(path, n_frames=3):
    lines = []
    for t in range(n_frames):
        lines += ["ITEM: TIMESTEP", str(10 * t), "ITEM: NUMBER OF ATOMS", "2",
                  "ITEM: BOX BOUNDS pp pp pp", "0 5", "0 5", "0 5", "ITEM: ATOMS id type x y z",
                  f"1 1 {0.1 * t} 0 0", "2 2 1 1 1"]
    path.write_text("\n".join(lines) + "\n")


def test_lammps_dump_without_species_is_refused(tmp_path):
    f = tmp_path / "d.lammpstrj"
    _dump(f)
    with pytest.raises(ValueError, match=r"no element names; pass specorder=.*species="):
        import_trajectory(f, "lammps-dump-text", store_path=tmp_path / "a.zarr",
                          timestep_fs=1.0)
    assert not (tmp_path / "a.zarr").exists()
    st = import_trajectory(f, "lammps-dump-text", store_path=tmp_path / "b.zarr",
                           timestep_fs=1.0, specorder=["Li", "S"])
    assert list(st.to_xarray()["species"].values) == ["Li", "S"]
    st = import_trajectory(f, "lammps-dump-text", store_path=tmp_path / "c.zarr",
                           timestep_fs=1.0, species=["Na", "Cl"])
    assert list(st.to_xarray()["species"].values) == ["Na", "Cl"]
    with pytest.raises(ValueError, match="specorder= applies to LAMMPS dumps only"):
        import_trajectory(f, "extxyz", store_path=tmp_path / "e.zarr", timestep_fs=1.0,
                          specorder=["Li"])


@pytest.mark.parametrize("dt", [0, -0.5, float("nan"), float("inf"), "fast"])
def test_bad_timestep_is_refused(tmp_path, dt):
    f = tmp_path / "d.lammpstrj"
    _dump(f)
    with pytest.raises(ValueError, match="timestep_fs must be a"):
        import_trajectory(f, "lammps-dump-text", store_path=tmp_path / "a.zarr",
                          timestep_fs=dt, specorder=["Li", "S"])
    assert not (tmp_path / "a.zarr").exists()


def test_bad_frame_stride_and_non_increasing_time(tmp_path):
    import ase.io
    from ase import Atoms

    images = [Atoms("LiH", positions=[[0, 0, 0], [1, 0, 0]], cell=np.eye(3) * 5, pbc=True)
              for _ in range(3)]
    for a in images:
        a.info["step"] = 7  # the same step three times
    ase.io.write(tmp_path / "same.xyz", images, format="extxyz")
    with pytest.raises(ValueError, match="time axis does not increase"):
        import_trajectory(tmp_path / "same.xyz", store_path=tmp_path / "s.zarr", timestep_fs=1.0)
    with pytest.raises(ValueError, match="frame_stride"):
        import_trajectory(tmp_path / "same.xyz", store_path=tmp_path / "t.zarr", timestep_fs=1.0,
                          frame_stride=0)


def test_store_layer_does_not_import_materials_or_topology():
    import ast

    root = Path(__file__).parent.parent / "rotorlab" / "store"
    for f in ("io.py", "trajectory.py"):
        tree = ast.parse((root / f).read_text())
        mods = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                mods.add(node.module)
        assert not {m for m in mods if m.startswith(("rotorlab.materials", "rotorlab.topology",
                                                     "rotorlab.md", "rotorlab.analysis"))}, f
    code = ("import sys, rotorlab.store.io, rotorlab.store.trajectory; "
            "print(sorted(m for m in sys.modules if m.startswith(('rotorlab.materials', "
            "'rotorlab.topology'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_export_refuses_existing_file_and_never_writes_into_the_store(tmp_path):
    from rotorlab._safety import OutputExists, UnsafeOutput
    from rotorlab.store import export_extxyz, export_netcdf

    s = tmp_path / "s.zarr"
    st = new_store(s)
    st.append(make_frames(0, 4))
    st.close()
    out = tmp_path / "old.xyz"
    out.write_text("my old file")
    for fn in (export_extxyz, export_netcdf):
        with pytest.raises(OutputExists, match="--overwrite"):
            fn(s, out)
        assert out.read_text() == "my old file"
        with pytest.raises(UnsafeOutput, match="inside the input"):
            fn(s, s / "x.out", overwrite=True)
    before = snapshot(s)
    export_extxyz(s, out, overwrite=True)
    assert out.read_text().startswith(str(N))  # replaced by a real extxyz
    export_netcdf(s, tmp_path / "t.nc")
    assert snapshot(s) == before
    assert not [p for p in tmp_path.iterdir() if "rotorlab-tmp" in p.name]


@pytest.mark.parametrize("kind", ["delete", "truncate", "bitflip"])
def test_analysis_fast_reads_of_a_damaged_chunk_name_store_and_variable(tmp_path, kind):
    """Analyses read a store's chunk files directly in large blocks; a damaged chunk found
    there must still raise StoreDamaged naming store and variable, not a bare codec error
    (nor, for a deleted chunk, zarr's silent fill value)."""
    from rotorlab.analysis import _data

    p = tmp_path / "run.zarr"
    build_501(p)
    ds = open_store(p)
    z = _data._zarr_source(ds, "positions")
    assert z is not None                                         # the fast path is taken
    assert LocalChunks.for_array(z[0]) is not None        # and reads the files itself
    _damage(p / "positions" / "c" / "2" / "0" / "0", kind)
    # damaged after the store was opened (the view still spans all 501 frames)
    with pytest.raises(StoreDamaged, match=rf"store {p}: variable 'positions'"):
        _data.read_block(ds, "positions", slice(0, 501))
    _data._ZARR_CACHE.clear()
    if kind == "delete":
        # found when opening: the view is cut before the missing chunk, with a warning
        with pytest.warns(RuntimeWarning, match="chunk file missing"):
            ds = open_store(p)
        assert ds.sizes["frame"] == 100
        assert np.isfinite(_data.read_block(ds, "positions", slice(0, 100))).all()
        return
    ds = open_store(p)
    with pytest.raises(StoreDamaged, match=rf"store {p}: variable 'positions'"):
        _data.read_block(ds, "positions", slice(0, 501))
