"""Trajectory store: schema, round trips, buffering, crash recovery, checkpoints, errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import zarr

from rotorlab.store import FRAME_VARS, REQUIRED_ATTRS, TrajectoryStore, open_store

SPECIES = ["Li", "B", "H", "H", "H", "H", "Li"]
MASSES = [6.94, 10.81, 1.008, 1.008, 1.008, 1.008, 6.94]
ROTOR_ID = [-1, 0, 0, 0, 0, 0, -1]
N = len(SPECIES)


def make_frames(i0: int, n: int, *, velocities=True, forces=False) -> dict[str, np.ndarray]:
    """Deterministic frames i0 .. i0+n-1 (values depend only on the frame index)."""
    idx = np.arange(i0, i0 + n)
    rng = np.random.default_rng(1234)
    base = rng.normal(size=(N, 3)) * 3.0
    drift = rng.normal(size=(N, 3))
    fr = {
        "positions": base[None] + 0.01 * idx[:, None, None] * drift[None]
        + np.sin(idx)[:, None, None] * 1e-3,
        "cell": np.array([[8.0, 0, 0], [1.0, 7.5, 0], [0.5, -0.3, 9.0]])[None]
        * (1 + 1e-4 * idx)[:, None, None],
        "time": idx * 0.0005,
        "step": idx.astype(np.int64),
        "potential_energy": -100.0 - 0.1 * np.cos(idx),
        "kinetic_energy": 0.5 + 0.01 * np.sin(idx),
        "conserved_energy": -99.5 + 1e-6 * idx,
        "temperature": 300.0 + np.sin(idx),
    }
    if velocities:
        fr["velocities"] = np.cos(idx)[:, None, None] * drift[None] * 1e-2
    if forces:
        fr["forces"] = np.sin(idx)[:, None, None] * drift[None]
    return fr


def new_store(path, chunk_frames=4, **kw) -> TrajectoryStore:
    attrs = {"material": "LiBH4", "constraint_mode": "RC", "target_temperature": 500.0,
             "timestep": 0.5, "thermostat": "nose-hoover-chain", "potential_id": "test",
             "potential_version": "0", "mobile_species": "Li", "mobile_charge": 1.0,
             "extra_note": {"a": [1, 2]}}
    return TrajectoryStore.create(path, species=SPECIES, masses=MASSES, rotor_id=ROTOR_ID,
                                  rotor_kind=["BH4"], orientation_atoms=[[1, 2]],
                                  attrs=attrs, chunk_frames=chunk_frames, **kw)


def assert_frames_equal(ds, fr, n):
    for k, v in fr.items():
        got = ds[k].values
        assert got.shape[0] == n, k
        np.testing.assert_array_equal(got, v[:n], err_msg=k)


# ------------------------------------------------------------------ schema/round trip
def test_roundtrip_schema_units_and_exact_values(tmp_path):
    st = new_store(tmp_path / "run.zarr", forces=True, model_deviation=True)
    fr = make_frames(0, 10, forces=True)
    fr["model_deviation"] = np.linspace(0.01, 0.2, 10)
    st.append(fr)
    st.flush()
    ds = open_store(tmp_path / "run.zarr")
    import dask.array as da

    assert isinstance(ds["positions"].data, da.Array)  # lazy
    assert ds.sizes == {"frame": 10, "atom": N, "xyz": 3, "cell_a": 3, "rotor": 1, "pair": 2}
    assert ds["positions"].dims == ("frame", "atom", "xyz")
    assert ds["cell"].dims == ("frame", "cell_a", "xyz")
    assert ds["orientation_atoms"].dims == ("rotor", "pair")
    assert_frames_equal(ds, fr, 10)
    assert ds["positions"].dtype == np.float64 and ds["step"].dtype == np.int64
    assert list(ds["species"].values) == SPECIES
    np.testing.assert_array_equal(ds["mass"].values, MASSES)
    assert ds["rotor_id"].dtype == np.int64
    np.testing.assert_array_equal(ds["rotor_id"].values, ROTOR_ID)
    assert list(ds["rotor_kind"].values) == ["BH4"]
    np.testing.assert_array_equal(ds["orientation_atoms"].values, [[1, 2]])
    for name in list(ds.data_vars) + list(ds.coords):
        assert "units" in ds[name].attrs, name
    assert ds["positions"].attrs["units"] == "Å"
    assert ds["velocities"].attrs["units"] == "Å/fs"
    assert ds["forces"].attrs["units"] == "eV/Å"
    assert ds["time"].attrs["units"] == "ps"
    assert ds["temperature"].attrs["units"] == "K"
    assert ds["mass"].attrs["units"] == "amu"
    for k in REQUIRED_ATTRS:
        assert k in ds.attrs, k
    assert ds.attrs["material"] == "LiBH4" and ds.attrs["target_temperature"] == 500.0
    assert ds.attrs["extra_note"] == {"a": [1, 2]}
    assert ds.attrs["rotorlab_version"]
    assert "n_frames_committed" not in ds.attrs  # bookkeeping stays internal


def test_optional_variables_absent_and_nan_for_unrecorded_energies(tmp_path):
    st = new_store(tmp_path / "r.zarr", velocities=False)
    fr = make_frames(0, 3, velocities=False)
    del fr["potential_energy"], fr["temperature"]
    st.append(fr)
    st.flush()
    ds = st.to_xarray()
    assert "velocities" not in ds and "forces" not in ds and "model_deviation" not in ds
    assert np.all(np.isnan(ds["potential_energy"].values))
    assert np.all(np.isnan(ds["temperature"].values))
    np.testing.assert_array_equal(ds["kinetic_energy"].values, fr["kinetic_energy"])
    # all-NaN chunks are real chunks on disk: reopening finds nothing missing
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert TrajectoryStore.open(tmp_path / "r.zarr").n_frames == 3


def test_buffered_chunks_partial_flush_and_reopen_append(tmp_path):
    p = tmp_path / "r.zarr"
    st = new_store(p, chunk_frames=4)
    fr = make_frames(0, 23)
    # single frames without the leading axis
    for i in range(3):
        st.append({k: v[i] for k, v in fr.items()})
    assert st.n_frames == 3 and st.n_frames_committed == 0
    assert st.to_xarray().sizes["frame"] == 0
    st.append({k: v[3:9] for k, v in fr.items()})  # crosses two chunk boundaries
    assert st.n_frames == 9 and st.n_frames_committed == 8
    st.flush()  # partial chunk 2 (frame 8)
    assert st.n_frames_committed == 9
    st.append({k: v[9:14] for k, v in fr.items()})  # completes chunk 2, then chunk 3 partly
    assert st.n_frames_committed == 12
    st.flush()
    del st
    st = TrajectoryStore.open(p, "a")
    assert st.n_frames == 14
    st.append({k: v[14:23] for k, v in fr.items()})
    st.close()
    assert_frames_equal(open_store(p), fr, 23)


def test_truncate_and_empty_append(tmp_path):
    p = tmp_path / "r.zarr"
    st = new_store(p)
    fr = make_frames(0, 10)
    st.append(fr)
    st.append({k: v[:0] for k, v in fr.items()})  # nothing
    st.flush()
    st.truncate(6)
    assert st.n_frames == 6
    st.append({k: v[6:10] for k, v in fr.items()})
    st.flush()
    assert_frames_equal(open_store(p), fr, 10)
    with pytest.raises(ValueError, match="truncate"):
        st.truncate(11)


# ------------------------------------------------------------------ errors
def test_open_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.zarr"):
        TrajectoryStore.open(tmp_path / "nope.zarr")
    with pytest.raises(FileNotFoundError, match="nope.zarr"):
        open_store(tmp_path / "nope.zarr")
    (tmp_path / "plain").mkdir()
    with pytest.raises(ValueError, match="not a rotorlab trajectory store"):
        TrajectoryStore.open(tmp_path / "plain")
    zarr.open_group(tmp_path / "other.zarr", mode="w").attrs["x"] = 1
    with pytest.raises(ValueError, match="not a rotorlab trajectory store"):
        TrajectoryStore.open(tmp_path / "other.zarr")
    (tmp_path / "file.zarr").write_text("x")
    with pytest.raises(ValueError, match="not a rotorlab trajectory store"):
        TrajectoryStore.open(tmp_path / "file.zarr")
    new_store(tmp_path / "r.zarr")
    with pytest.raises(ValueError, match="mode"):
        TrajectoryStore.open(tmp_path / "r.zarr", mode="w")


def test_create_errors(tmp_path):
    new_store(tmp_path / "r.zarr")
    with pytest.raises(FileExistsError, match="r.zarr"):
        new_store(tmp_path / "r.zarr")
    new_store(tmp_path / "r.zarr", overwrite=True)
    kw = dict(species=SPECIES, masses=MASSES, rotor_id=ROTOR_ID, rotor_kind=["BH4"])
    with pytest.raises(ValueError, match="masses"):
        TrajectoryStore.create(tmp_path / "a", **{**kw, "masses": MASSES[:-1]})
    with pytest.raises(ValueError, match="rotor_id"):
        TrajectoryStore.create(tmp_path / "b", **{**kw, "rotor_id": [3] * N})
    with pytest.raises(ValueError, match="orientation_atoms"):
        TrajectoryStore.create(tmp_path / "c", **kw, orientation_atoms=[[1, 2, 3]])
    with pytest.raises(TypeError, match="JSON"):
        TrajectoryStore.create(tmp_path / "d", **kw, attrs={"bad": object()})
    with pytest.raises(ValueError, match="managed by the store"):
        TrajectoryStore.create(tmp_path / "e", **kw, attrs={"n_frames_committed": 3})


def test_append_errors_name_variable_and_shape(tmp_path):
    st = new_store(tmp_path / "r.zarr")
    fr = make_frames(0, 2)
    with pytest.raises(ValueError, match=r"positions: expected shape \(n, 7, 3\)"):
        st.append({**fr, "positions": np.zeros((2, N + 1, 3))})
    with pytest.raises(ValueError, match=r"cell: expected shape \(n, 3, 3\)"):
        st.append({**fr, "cell": np.zeros((2, 3))})
    with pytest.raises(ValueError, match="temperature: has 3 frames"):
        st.append({**fr, "temperature": np.zeros(3)})
    with pytest.raises(ValueError, match="missing required.*velocities"):
        st.append({k: v for k, v in fr.items() if k != "velocities"})
    with pytest.raises(ValueError, match="forces.*not enabled"):
        st.append({**fr, "forces": fr["positions"]})
    with pytest.raises(ValueError, match="step must be integer"):
        st.append({**fr, "step": np.array([0.5, 1.0])})
    assert st.n_frames == 0  # nothing half-appended
    st.append(fr)
    st.flush()
    ro = TrajectoryStore.open(tmp_path / "r.zarr", "r")
    with pytest.raises(PermissionError):
        ro.append(fr)


# ------------------------------------------------------------------ crash recovery
def _written(p, n, chunk=4):
    st = new_store(p, chunk_frames=chunk)
    fr = make_frames(0, n)
    st.append(fr)
    st.flush()
    return fr


def _reopen_expect_drop(p, dropped, kept, mode="a"):
    with pytest.warns(RuntimeWarning, match=rf"dropped {dropped} frame\(s\).*keeping {kept} "):
        st = TrajectoryStore.open(p, mode)
    assert st.n_frames == kept
    return st


def test_uncommitted_extra_frames_are_dropped_and_append_resumes(tmp_path):
    p = tmp_path / "r.zarr"
    fr = _written(p, 8)
    # a writer killed after writing chunk 2's data but before committing the count
    g = zarr.open_group(p, mode="a")
    extra = make_frames(8, 4)
    for v in [v for v in FRAME_VARS if v in g.array_keys()]:
        a = g[v]
        a.resize((12,) + a.shape[1:])
        a[8:12] = extra[v] + 1.0  # garbage that must not survive
    assert g.attrs["n_frames_committed"] == 8
    st = _reopen_expect_drop(p, 4, 8)
    assert all(zarr.open_group(p)[v].shape[0] == 8 for v in ("positions", "time", "step"))
    nxt = make_frames(8, 6)
    st.append(nxt)
    st.flush()
    full = make_frames(0, 14)
    assert_frames_equal(open_store(p), full, 14)
    assert fr["positions"].shape[0] == 8


def test_arrays_disagreeing_in_length(tmp_path):
    p = tmp_path / "r.zarr"
    _written(p, 8)
    g = zarr.open_group(p, mode="a")
    g["positions"].resize((11, N, 3))  # killed after resizing one variable
    g.attrs["n_frames_committed"] = 11  # even a (wrong) count cannot hide it
    with pytest.warns(RuntimeWarning, match=r"dropped 3 frame\(s\).*disagree in length"):
        st = TrajectoryStore.open(p, "a")
    assert st.n_frames == 8
    assert_frames_equal(st.to_xarray(), make_frames(0, 8), 8)


@pytest.mark.parametrize("damage", ["truncate", "delete", "bitflip"])
def test_corrupt_last_chunk_is_cut(tmp_path, damage):
    p = tmp_path / "r.zarr"
    _written(p, 10)  # chunks: [0,4) [4,8) [8,10)
    chunk = p / "positions" / "c" / "2" / "0" / "0"
    raw = chunk.read_bytes()
    if damage == "truncate":
        chunk.write_bytes(raw[: len(raw) // 2])
    elif damage == "delete":
        chunk.unlink()
    else:
        b = bytearray(raw)
        b[len(b) // 2] ^= 0xFF
        chunk.write_bytes(bytes(b))
    st = _reopen_expect_drop(p, 2, 8)
    assert_frames_equal(st.to_xarray(), make_frames(0, 8), 8)
    st.append(make_frames(8, 5))
    st.flush()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        ds = TrajectoryStore.open(p, verify="all").to_xarray()
    assert_frames_equal(ds, make_frames(0, 13), 13)


def test_corrupt_middle_chunk_missing_and_verify_all(tmp_path):
    p = tmp_path / "r.zarr"
    _written(p, 12)
    (p / "step" / "c" / "1").unlink()  # chunk file of frames [4, 8)
    _reopen_expect_drop(p, 8, 4, mode="r")
    # read-only open leaves the disk alone
    assert zarr.open_group(p)["positions"].shape[0] == 12

    q = tmp_path / "q.zarr"
    _written(q, 12)
    c0 = q / "cell" / "c" / "0" / "0" / "0"
    b = bytearray(c0.read_bytes())
    b[-1] ^= 0x01  # checksum mismatch in the first chunk
    c0.write_bytes(bytes(b))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        TrajectoryStore.open(q)  # cheap check decodes only the last chunk
    with pytest.warns(RuntimeWarning, match=r"dropped 12 frame\(s\).*chunk 0 of 'cell'"):
        st = TrajectoryStore.open(q, verify="all")
    assert st.n_frames == 0


def test_readonly_view_of_damaged_store(tmp_path):
    p = tmp_path / "r.zarr"
    _written(p, 8)
    g = zarr.open_group(p, mode="a")
    g.attrs["n_frames_committed"] = 5  # e.g. a live writer mid-chunk
    with pytest.warns(RuntimeWarning, match=r"dropped 3 frame\(s\).*read-only view"):
        ds = open_store(p)
    assert ds.sizes["frame"] == 5
    assert zarr.open_group(p)["positions"].shape[0] == 8


CHILD = textwrap.dedent("""
    import sys, numpy as np
    sys.path.insert(0, {tests!r})
    from test_store import new_store, make_frames
    st = new_store({path!r}, chunk_frames=5)
    i = 0
    while True:
        st.append(make_frames(i, 1))
        i += 1
        if i % 5 == 0:
            st.write_checkpoint({{"positions": make_frames(i, 1)["positions"][0],
                                 "xi": np.full(3, float(i))}},
                                {{"step": i, "rng": np.random.default_rng(i).bit_generator.state}})
            print(st.n_frames_committed, flush=True)
""")


@pytest.mark.parametrize("delay", [0.0, 0.013, 0.031])
def test_sigkill_mid_append_leaves_consistent_store(tmp_path, delay):
    p = tmp_path / "run.zarr"
    code = CHILD.format(tests=str(Path(__file__).parent), path=str(p))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while True:
            line = proc.stdout.readline()
            if not line:
                raise AssertionError(f"child died: {proc.stderr.read()}")
            if int(line) >= 30 or time.time() > deadline:
                break
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        st = TrajectoryStore.open(p, "a", verify="all")
    for w in rec:
        assert issubclass(w.category, RuntimeWarning) and "dropped" in str(w.message)
    n = st.n_frames
    assert n >= 30
    g = zarr.open_group(p)
    assert {g[v].shape[0] for v in g.array_keys() if v in FRAME_VARS} == {n}
    assert_frames_equal(st.to_xarray(), make_frames(0, n), n)
    arrays, meta = st.read_checkpoint()
    i = meta["step"]
    assert i % 5 == 0 and i <= n + 5
    np.testing.assert_array_equal(arrays["xi"], np.full(3, float(i)))
    np.testing.assert_array_equal(arrays["positions"], make_frames(i, 1)["positions"][0])
    assert meta["rng"] == np.random.default_rng(i).bit_generator.state
    st.append(make_frames(n, 7))
    st.flush()
    assert_frames_equal(open_store(p), make_frames(0, n + 7), n + 7)


# ------------------------------------------------------------------ checkpoint
def test_checkpoint_roundtrip_bit_exact_and_rng_continuation(tmp_path):
    p = tmp_path / "r.zarr"
    st = new_store(p)
    assert not st.has_checkpoint
    with pytest.raises(LookupError):
        st.read_checkpoint()
    rng = np.random.default_rng(42)
    rng.normal(size=5)
    arrays = {"positions": np.random.default_rng(1).normal(size=(N, 3)),
              "velocities": np.random.default_rng(2).normal(size=(N, 3)) * 1e-3,
              "nhc_xi": np.array([1e-300, -0.0, np.pi]), "count": np.arange(4, dtype=np.int32),
              "empty": np.zeros((0, 3)), "scalar": np.array(2.5)}
    meta = {"step": 123456789012, "rng": rng.bit_generator.state,
            "thermostat": {"eta": 0.1 + 0.2, "nan": float("nan")}, "t": np.float64(1 / 3)}
    st.append(make_frames(0, 3))  # buffered; the checkpoint flushes them
    st.write_checkpoint(arrays, meta)
    assert st.n_frames_committed == 3 and st.checkpoint_n_frames == 3
    expected_next = rng.normal(size=4)

    st2 = TrajectoryStore.open(p, "r")
    got, m = st2.read_checkpoint()
    assert set(got) == set(arrays)
    for k, a in arrays.items():
        assert got[k].dtype == a.dtype and got[k].shape == a.shape
        assert got[k].tobytes() == a.tobytes(), k
    assert m["step"] == 123456789012 and m["thermostat"]["eta"] == 0.1 + 0.2
    assert np.isnan(m["thermostat"]["nan"]) and m["t"] == 1 / 3
    g = np.random.default_rng()
    g.bit_generator.state = m["rng"]
    np.testing.assert_array_equal(g.normal(size=4), expected_next)

    with pytest.raises(TypeError, match="JSON"):
        st.write_checkpoint(arrays, {"bad": object()})
    with pytest.raises(TypeError, match="numeric"):
        st.write_checkpoint({"s": np.array(["a"])}, {})
    with pytest.raises(PermissionError):
        st2.write_checkpoint(arrays, meta)


def test_checkpoint_interrupted_write_keeps_previous(tmp_path):
    p = tmp_path / "r.zarr"
    st = new_store(p)
    st.write_checkpoint({"x": np.arange(3.0)}, {"step": 1})
    st.write_checkpoint({"x": np.arange(3.0) * 2}, {"step": 2})
    versions = sorted(k for k in zarr.open_group(p)["checkpoint"].group_keys())
    # older versions are removed after the pointer moves; the previous one stays for
    # readers that read the pointer just before it moved
    assert versions == ["v000001", "v000002"]
    st.write_checkpoint({"x": np.arange(3.0) * 2}, {"step": 2})
    assert sorted(zarr.open_group(p)["checkpoint"].group_keys()) == ["v000002", "v000003"]
    # simulate a kill half-way through the next checkpoint: new version, no pointer
    cp = zarr.open_group(p, mode="a")["checkpoint"]
    sub = cp.create_group("v000099")
    sub.create_array("x", shape=(3,), dtype="f8")[...] = np.array([9.0, 9, 9])
    arrays, meta = TrajectoryStore.open(p, "a").read_checkpoint()
    assert meta["step"] == 2
    np.testing.assert_array_equal(arrays["x"], np.arange(3.0) * 2)
    st = TrajectoryStore.open(p, "a")
    st.write_checkpoint({"x": np.ones(2)}, {"step": 3})
    keys = sorted(zarr.open_group(p)["checkpoint"].group_keys())
    assert keys == ["v000003", "v000100"]  # leftover cleaned, numbering never reuses a name
    assert st.read_checkpoint()[1] == {"step": 3}


def test_checkpoint_readers_never_fail_while_the_writer_rotates(tmp_path):
    # CI once saw a reader (the campaign's store_status) find the pointer, then the version
    # it named already removed: KeyError.  A writer process rotates checkpoints as fast as
    # it can while this process reads them; every read sees a complete checkpoint.
    p = tmp_path / "r.zarr"
    st = new_store(p)
    st.write_checkpoint({"x": np.zeros(64)}, {"step": 0})
    st.close()
    code = textwrap.dedent(f"""
        import numpy as np, sys
        from rotorlab.store import TrajectoryStore
        st = TrajectoryStore.open({str(p)!r}, "a")
        for i in range(1, 400):
            st.write_checkpoint({{"x": np.full(64, float(i))}}, {{"step": i}})
        st.close()
    """)
    w = subprocess.Popen([sys.executable, "-c", code])
    reads, errors, last = 0, [], -1
    try:
        while w.poll() is None or reads == 0:
            r = TrajectoryStore.open(p, "r")
            try:
                assert r.has_checkpoint
                arrays, meta = r.read_checkpoint()
                # a version is whole: its arrays belong to its own step, never zeros of a
                # removed chunk; steps never go backwards
                assert np.all(arrays["x"] == float(meta["step"])), meta
                assert meta["step"] >= last
                last = meta["step"]
                reads += 1
            except Exception as exc:  # noqa: BLE001 - collected and reported below
                errors.append(repr(exc))
            if w.poll() is not None and reads:
                break
    finally:
        w.wait(timeout=120)
    assert w.returncode == 0
    assert not errors, errors[:3]
    assert reads > 5


def test_checkpoint_is_one_packed_array_and_detects_damage(tmp_path):
    p = tmp_path / "r.zarr"
    st = new_store(p)
    arrays = {f"a{i:02d}": np.arange(i + 1, dtype=np.float64) * 0.1 for i in range(25)}
    arrays["be"] = np.arange(6, dtype=">i4").reshape(2, 3)  # non-native byte order kept
    arrays["b"] = np.array([True, False])
    st.write_checkpoint(arrays, {"step": 1})
    cp_dir = p / "checkpoint"
    (version,) = [d for d in cp_dir.iterdir() if d.is_dir()]
    assert [d.name for d in version.iterdir() if d.is_dir()] == ["packed"]  # one array, not 27
    got, _ = TrajectoryStore.open(p, "r").read_checkpoint()
    assert set(got) == set(arrays)
    for k, a in arrays.items():
        assert got[k].dtype == a.dtype and got[k].shape == a.shape and got[k].tobytes() == a.tobytes()
        assert got[k].flags.writeable
    # a damaged chunk is a clear error, not silently wrong state
    (chunk,) = [f for f in (version / "packed").rglob("*") if f.is_file() and f.name != "zarr.json"]
    raw = bytearray(chunk.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    chunk.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="unreadable"):
        TrajectoryStore.open(p, "r").read_checkpoint()


def test_checkpoint_of_older_layout_still_reads(tmp_path):
    # stores written before the packed layout: one zarr array per checkpoint array
    p = tmp_path / "r.zarr"
    new_store(p)
    g = zarr.open_group(p, mode="a")
    cp = g.create_group("checkpoint")
    sub = cp.create_group("v000001")
    sub.create_array("x", shape=(3,), dtype="f8")[...] = np.array([1.0, 2, 3])
    sub.create_array("n", shape=(2, 2), dtype="i8")[...] = np.arange(4).reshape(2, 2)
    sub.attrs.update({"meta_json": json.dumps({"step": 7}), "arrays": ["n", "x"],
                      "shapes": {"x": [3], "n": [2, 2]}, "n_frames": 0, "complete": True})
    cp.attrs["current"] = "v000001"
    st = TrajectoryStore.open(p, "a")
    arrays, meta = st.read_checkpoint()
    assert meta == {"step": 7}
    np.testing.assert_array_equal(arrays["n"], np.arange(4).reshape(2, 2))
    st.write_checkpoint({"x": np.zeros(1)}, {"step": 8})  # and is replaced by the new layout
    assert st.read_checkpoint()[1] == {"step": 8}
    assert sorted(zarr.open_group(p)["checkpoint"].group_keys()) == ["v000001", "v000002"]
    st.write_checkpoint({"x": np.zeros(1)}, {"step": 9})
    assert sorted(zarr.open_group(p)["checkpoint"].group_keys()) == ["v000002", "v000003"]


def test_no_pickle_in_store(tmp_path):
    p = tmp_path / "r.zarr"
    st = new_store(p)
    st.append(make_frames(0, 5))
    st.write_checkpoint({"x": np.arange(3)}, {"step": 5})
    for f in p.rglob("zarr.json"):
        meta = json.loads(f.read_text())
        assert "pickle" not in json.dumps(meta).lower(), f


def test_read_views_see_a_store_recreated_at_the_same_path(tmp_path):
    # read-only opens keep static variables (species, masses...) they decoded before; a
    # store replaced at the same path must never be shown with the old one's values
    p = tmp_path / "r.zarr"
    new_store(p).close()
    assert list(open_store(p)["species"].values) == list(SPECIES)
    other = ["Na" if s == "Li" else s for s in SPECIES]
    TrajectoryStore.create(p, species=other, masses=np.asarray(MASSES) * 2, rotor_id=ROTOR_ID,
                           rotor_kind=["BH4"], orientation_atoms=[[1, 2]],
                           attrs={"material": "x", "constraint_mode": "UC", "target_temperature": 1.0,
                                  "timestep": 0.5, "thermostat": "nve", "potential_id": "t",
                                  "potential_version": "0", "mobile_species": "Na",
                                  "mobile_charge": 1.0},
                           overwrite=True).close()
    ds = open_store(p)
    assert list(ds["species"].values) == other
    np.testing.assert_allclose(ds["mass"].values, np.asarray(MASSES) * 2)
