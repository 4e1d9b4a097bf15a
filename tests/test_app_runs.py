"""Server side of the app without a browser: uploads, specs from widget values, per-session
runs with cancel/resume, the NGL helpers, the nglview version fix and the ``app`` command."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO
from rotorlab.app.runs import (AppConfig, InputError, RunManager, build_spec,
                               check_model_upload, pb_node_names, potential_choices)
from rotorlab.viz.ngl import display_positions, iso_level, styles_for

MODEL = REPO / "datasets" / "models" / "tiny-LiBH4" / "model.pb"


# ---------------------------------------------------------------- protobuf / uploads

#: atoms of the LiBH4 unit cell the tests run (the study's 48-atom HT cell)
N_LIBH4 = 48

def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _ld(field, payload):  # a length-delimited protobuf field
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _graph(*names):
    nodes = b"".join(_ld(1, _ld(1, n.encode()) + _ld(2, b"Const")) for n in names)
    return nodes + _varint(4 << 3 | 0) + _varint(27)  # + a varint field (versions)


def test_pb_node_names_reads_a_handmade_graphdef():
    assert pb_node_names(_graph("a/b", "descrpt_attr/rcut", "x")) == ["a/b", "descrpt_attr/rcut", "x"]
    assert pb_node_names(b"") == []


def test_pb_node_names_of_the_bundled_deepmd_model():
    names = pb_node_names(MODEL.read_bytes())
    assert "model_attr/tmap" in names and len(names) > 100


@pytest.mark.parametrize("name,data,msg", [
    ("model.pb", b"", "is empty"),
    ("model.pb", bytes([0x0F, 1, 2, 3]), "not a TensorFlow model"),
    ("model.pb", b"\x0a\xff\xff\xff\xff\x0f", "not a TensorFlow model"),   # length past the end
    ("model.pb", _graph("foo", "bar"), "not a frozen DeePMD model"),
    ("model.txt", b"x", "only frozen DeePMD models"),
    ("", b"x", "only frozen DeePMD models"),
])
def test_bad_uploads_are_refused(name, data, msg):
    with pytest.raises(InputError, match=msg):
        check_model_upload(name, data)


def test_upload_size_limit():
    with pytest.raises(InputError, match="limit is 1e-06 MB"):
        check_model_upload("m.pb", _graph("descrpt_attr/rcut"), max_mb=1e-6)


def test_good_upload_gets_a_safe_name_and_stays_in_its_session(tmp_path):
    data = MODEL.read_bytes()
    assert check_model_upload("../../evil dir/my model.pb", data) == "my_model.pb"
    cfg = AppConfig(workdir=tmp_path)
    a, b = RunManager(cfg, "sessA"), RunManager(cfg, "sessB")
    p = a.add_upload("../x/my model.pb", data)
    assert p.parent == tmp_path / "sessions" / "sessA" / "uploads" and p.read_bytes() == data
    # a different file of the same name is kept next to it, never overwritten
    other = _graph("descrpt_attr/rcut", "y")
    p2 = a.add_upload("my model.pb", other)
    assert p2 != p and p.read_bytes() == data and p2.read_bytes() == other
    assert f"uploaded {p.name}" in a.choices("LiBH4")
    assert not any(k.startswith("uploaded") for k in b.choices("LiBH4"))


def test_potential_choices_are_server_side_only(tmp_path):
    extra = tmp_path / "server.pb"
    extra.write_bytes(MODEL.read_bytes())
    ch = potential_choices("LiBH4", AppConfig(workdir=tmp_path, models=[extra]))
    assert ch["reference force field (tests only, not physics-grade)"] == "reference"
    assert ch["server model server.pb"] == str(extra.resolve())
    assert "installed model tiny-LiBH4" in ch
    # a model for another material is not offered
    assert not any("tiny-LiBH4" in k for k in potential_choices("Li3PS4", AppConfig(workdir=tmp_path)))


# ---------------------------------------------------------------- specs from widget values
def _spec(**kw):
    cfg = kw.pop("config", AppConfig(workdir="/nonexistent-rotorlab"))
    base = dict(material="LiBH4", size=(1, 1, 1), mode="RC", temperature=600, steps=100,
                frame_interval=5, potential_label="ref", choices={"ref": "reference"},
                config=cfg)
    base.update(kw)
    return build_spec(**base)


@pytest.mark.parametrize("kw,msg", [
    ({"temperature": -5}, r"temperature must be above 0 K, got -5 K"),
    ({"temperature": "hot"}, "temperature must be a number"),
    ({"steps": 0}, "steps must be at least 1, got 0"),
    ({"steps": 10**9}, "at most 1000000"),
    ({"potential_label": "/etc/passwd"}, "unknown model '/etc/passwd'"),
    ({"size": (40, 40, 40)}, "this server allows at most 5000"),
    ({"mode": "XYZ"}, "unknown constraint mode"),
    ({"material": "Unobtainium"}, "structure: .*unknown material"),
    ({"frame_interval": 0}, "frame_interval"),
])
def test_bad_widget_values_give_messages(kw, msg):
    with pytest.raises(InputError, match=msg):
        _spec(**kw)


def test_good_widget_values_give_the_spec():
    s = _spec(mode={"BH4": "RTC"}, seed=7)
    assert (s.material, s.size, s.mode, s.temperature, s.steps, s.seed) == \
        ("LiBH4", (1, 1, 1), (("BH4", "RTC"),), 600.0, 100, 7)
    assert s.potential == "reference"


# ---------------------------------------------------------------- runs
def _wait_step(rec, step, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        ev = rec.monitor.latest if rec.monitor is not None else None
        if ev is not None and ev.step >= step:
            return ev.step
        if not rec.alive and rec.status in ("failed", "completed"):
            break
        time.sleep(0.05)
    raise AssertionError(f"run did not reach step {step}: {rec.status} {rec.message}")


def test_runs_complete_are_private_and_cancel_resumes_exactly(tmp_path):
    from rotorlab.store import open_store

    cfg = AppConfig(workdir=tmp_path)
    a, b = RunManager(cfg, "alice"), RunManager(cfg, "bob!/..")
    assert b.session == "bob"
    spec = _spec(steps=1500, seed=5, config=cfg)
    ref = a.start(spec.replace(replica=1))           # the uninterrupted reference
    rec = a.start(spec)
    _wait_step(rec, 100)
    a.cancel(rec.name)
    assert a.wait(rec.name, 60)
    assert rec.status == "stopped" and "resumable" in rec.message
    stopped = rec.monitor.latest.step
    assert 100 <= stopped < 1500
    with pytest.raises(InputError, match="exists already"):
        a.start(spec)
    assert [r["name"] for r in b.list()] == []                      # bob sees nothing
    assert {r["name"] for r in a.list()} == {ref.name, rec.name}
    # a new manager of the same session finds the stopped run on disk as resumable
    again = RunManager(cfg, "alice")
    assert {r["name"]: r["status"] for r in again.list()}[rec.name] == "resumable"
    a.resume(rec.name)
    assert a.wait(rec.name, 300) and a.wait(ref.name, 300)
    assert rec.status == "completed" and ref.status == "completed", (rec.message, ref.message)
    x1 = open_store(rec.path)["positions"].values
    x2 = open_store(ref.path)["positions"].values
    assert x1.shape == (1500 // 5 + 1, N_LIBH4, 3)
    np.testing.assert_array_equal(x1, x2)       # cancel + resume == uninterrupted, bit for bit
    with pytest.raises(InputError, match="nothing to resume"):
        a.resume(rec.name)
    # a shared results folder is seen by every session
    shared = AppConfig(workdir=tmp_path, shared_results=tmp_path / "sessions" / "alice" / "runs")
    assert {r["name"] for r in RunManager(shared, "carol").list()} == {ref.name, rec.name}


def test_a_failing_run_reports_instead_of_raising(tmp_path):
    cfg = AppConfig(workdir=tmp_path)
    m = RunManager(cfg, "s")
    bad = tmp_path / "gone.pb"
    rec = m.start(_spec(potential_label="x", choices={"x": str(bad)}, config=cfg))
    assert m.wait(rec.name, 120)
    assert rec.status == "failed" and "gone.pb" in rec.message


# ---------------------------------------------------------------- NGL helpers
def test_display_positions_keep_rotors_whole_inside_the_cell():
    cell = np.diag([10.0, 10.0, 10.0])
    x = np.array([[10.5, 0.2, 0.1],      # rotor 0 centre just outside +a
                  [11.5, 0.2, 0.1],
                  [-0.5, 5.0, 5.0],      # a lone atom outside -a
                  [3.0, 3.0, 23.0]])     # lone atom two cells up c
    rid = np.array([0, 0, -1, -1])
    y = display_positions(x, cell, rid)
    np.testing.assert_allclose(y[0], [0.5, 0.2, 0.1])
    np.testing.assert_allclose(y[1] - y[0], x[1] - x[0])       # rotor still whole
    np.testing.assert_allclose(y[2], [9.5, 5.0, 5.0])
    np.testing.assert_allclose(y[3], [3.0, 3.0, 3.0])


def test_iso_level_encloses_the_requested_share():
    d = np.array([4.0, 3.0, 2.0, 1.0]).reshape(1, 2, 2)
    assert iso_level(d, 0.5) == 3.0        # voxels >= 3 hold 7/10 >= 1/2; >= 4 only 4/10
    assert iso_level(d, 0.3) == 4.0
    rng = np.random.default_rng(0)
    g = rng.random((8, 8, 8)) ** 4
    lv = iso_level(g, 0.8)
    assert g[g >= lv].sum() >= 0.8 * g.sum() > g[g > lv].sum()
    with pytest.raises(ValueError):
        iso_level(np.zeros((2, 2, 2)), 0.5)


def test_styles_colour_rotors_by_mode_and_highlight_cations():
    from rotorlab.viz.ngl import CATION_COLOUR, MODE_COLOURS

    symbols = ["Li", "P", "S", "Sn", "S", "O"]
    rid = np.array([-1, 0, 0, 1, 1, -1])
    rows = styles_for(symbols, rid, ["PS4", "SnS4"], {"PS4": "RC", "SnS4": "UC"}, "Li")
    got = {r[1]: r[0] for r in rows}
    assert got[MODE_COLOURS["RC"]] == "@1,2" and got[MODE_COLOURS["UC"]] == "@3,4"
    assert got[CATION_COLOUR] == "@0" and got["element"] == "@5"
    one = styles_for(symbols, rid, ["PS4", "SnS4"], "RTVC", "Li")
    assert [r[0] for r in one if r[1] == MODE_COLOURS["RTVC"]] == ["@1,2,3,4"]


def test_cube_text_round_trips_through_ase(tmp_path):
    from ase.io.cube import read_cube_data

    from rotorlab.viz.ngl import cube_text

    rng = np.random.default_rng(1)
    d = rng.random((4, 5, 6))
    cell = np.array([[4.0, 0, 0], [1.0, 5.0, 0], [0, 0, 6.0]])
    f = tmp_path / "d.cube"
    f.write_text(cube_text(d, cell, ["B", "H"], np.array([[1.0, 1, 1], [2.0, 2, 2]])))
    data, atoms = read_cube_data(str(f))
    np.testing.assert_allclose(data, d, rtol=1e-5)
    assert atoms.get_chemical_symbols() == ["B", "H"]


def test_store_frames_are_read_lazily(tmp_path):
    from rotorlab import Simulation
    from rotorlab.viz.ngl import StoreFrames

    spec = _spec(steps=50, seed=2)
    sim = Simulation.from_spec(spec, store=tmp_path / "s.zarr", progress=False)
    sim.run()
    fr = StoreFrames(tmp_path / "s.zarr")
    assert fr.n_frames == 11 and fr.mode == "RC" and fr.mobile == "Li"
    raw = np.asarray(fr.ds["positions"][7].values)
    y = fr.positions(7)
    frac = y @ np.linalg.inv(fr.cell(7))
    shift = (y - raw) @ np.linalg.inv(fr.cell(7))
    np.testing.assert_allclose(shift, np.round(shift), atol=1e-9)   # whole-cell shifts only
    assert (frac[fr.rotor_id < 0] >= 0).all() and (frac[fr.rotor_id < 0] < 1).all()
    pdb = fr.pdb(0)
    assert pdb.startswith("CRYST1") and pdb.count("ATOM ") == N_LIBH4
    with pytest.raises(IndexError):
        fr.positions(11)


# ---------------------------------------------------------------- imports, nglview, CLI
def test_nothing_imports_panel_or_nglview_at_import_time():
    code = ("import sys, rotorlab.viz, rotorlab.viz.ngl, rotorlab.viz.nglview_adaptor, "
            "rotorlab.viz.app_cli, rotorlab.app.runs; "
            "bad = [m for m in ('panel', 'nglview', 'bokeh', 'ipywidgets') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stdout + r.stderr


def test_nglview_version_fix_covers_every_widget():
    from rotorlab.viz.nglview_adaptor import installed_extension_version

    ext = installed_extension_version()
    if ext is None:
        pytest.skip("nglview's JupyterLab extension is not installed")
    code = ("import rotorlab.viz.nglview_adaptor as a, nglview, nglview.color as c, ipywidgets; "
            "w = nglview.NGLWidget(); "
            "seen = {w._view_module_version, w._model_module_version, "
            "c.ColormakerRegistry._view_module_version, c.ColormakerRegistry._model_module_version}; "
            "print(sorted(seen), a.fix_versions())")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split("]")[0] == f"['{ext}'"


def test_store_trajectory_for_nglview(tmp_path):
    import importlib.util

    if importlib.util.find_spec("nglview") is None:   # not importorskip: the adaptor goes first
        pytest.skip("nglview is not installed")
    from rotorlab import Simulation
    from rotorlab.viz.ngl import StoreFrames
    from rotorlab.viz.nglview_adaptor import StoreTrajectory, show_store

    sim = Simulation.from_spec(_spec(steps=20, seed=3), store=tmp_path / "t.zarr", progress=False)
    sim.run()
    tr = StoreTrajectory(tmp_path / "t.zarr", stride=2)
    assert tr.n_frames == 3
    np.testing.assert_allclose(tr.get_coordinates(2), StoreFrames(tmp_path / "t.zarr").positions(4),
                               atol=1e-5)
    view = show_store(tmp_path / "t.zarr")
    assert view.max_frame == 4


def test_app_command_parser_and_serve_line():
    from rotorlab.viz.app_cli import add_parsers, app_path, serve_command

    p = argparse.ArgumentParser()
    add_parsers(p.add_subparsers(dest="command"))
    a = p.parse_args(["app"])
    assert a.address == "127.0.0.1" and a.port == 5006 and callable(a.func)
    a = p.parse_args(["app", "--port", "6001", "--shared-results", "res", "--model", "m.pb"])
    assert (a.port, a.shared_results, a.model) == (6001, "res", ["m.pb"])
    cmd = serve_command(6001, ngl_dir="/x")
    assert cmd[1:4] == ["-m", "panel", "serve"] and "127.0.0.1" in cmd and "ngl=/x" in cmd
    assert app_path().read_text() == (REPO / "apps" / "explorer.py").read_text()


def test_explorer_in_process_messages(tmp_path):
    """The app object without a browser: form validation ends in the page's message."""
    pytest.importorskip("panel")
    from rotorlab.viz.app_cli import load_explorer

    mod = load_explorer()
    ex = mod.Explorer(config=AppConfig(workdir=tmp_path), session_id="inproc")
    ex.setup.temperature = -5
    ex.setup._start()
    assert "temperature must be above 0 K" in ex.setup.message.object and ex.setup.message.visible
    ex.setup.temperature = 600
    ex.setup.potential = "a path typed by someone"
    ex.setup._start()
    assert "unknown model" in ex.setup.message.object
    assert ex.runs.list() == []
    ex.setup.potential = ex.setup.pot_select.options[0]     # a label the server offers
    assert ex.setup.spec().potential == "reference"
    assert "not the material's" in ex.setup.pot_info.object
    # the bundled model's card and caveats are shown next to the choice, for its material
    from rotorlab.potentials.registry import bundled

    ex.setup.material = "LiBH4"
    label = next(k for k in ex.setup.pot_select.options if k.startswith("bundled"))
    ex.setup.pot_select.value = label
    note = ex.setup.pot_info.object
    assert "Bundled model **LiBH4**" in note and "sevenn:7net-0" in note
    assert all(c in note for c in bundled("LiBH4").caveats())
    assert f"{bundled('LiBH4').card['force_rmse_test_meV_A']:.1f} meV/Å" in note
    # a path typed in the browser is never looked up
    ex.setup.potential = "/etc/passwd"
    assert ex.setup.pot_info.object == ""
