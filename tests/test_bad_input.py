"""Bad input, refused before any work: through the CLI every kind gives one clear line on
stderr (no traceback), a non-zero exit, and leaves a pre-existing store and user file
exactly as they were; through the Python API a clear exception of the documented type."""

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from rotorlab.cli import main


def _tree_digest(root: Path) -> dict:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A directory with a user's file, a finished rotorlab store and a structure file."""
    root = tmp_path_factory.mktemp("ws")
    (root / "notes.txt").write_text("my precious notes\n")
    (root / "garbage.xyz").write_text("this is not\nan xyz file at all\n")
    (root / "garbage.cif").write_text("data_x\n_cell_length_a banana\n")
    (root / "bad.yaml").write_text("mode: [unclosed\n")
    (root / "unknown.yaml").write_text("material: LiBH4\ntemperature: 300\ntemprature: 3\n")
    (root / "userdir").mkdir()
    (root / "userdir" / "data.csv").write_text("1,2,3\n")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        assert main(["run", "LiBH4", "--size", "1", "1", "1", "-T", "300", "--steps", "10",
                     "--frame-interval", "5", "--seed", "1", "-q", "-o", "keep.zarr"]) == 0
        assert main(["export", "keep.zarr", "-o", "keep.xyz"]) == 0
    finally:
        os.chdir(cwd)
    return root


RUN = ["run", "LiBH4", "--size", "1", "1", "1", "-q"]

CLI_CASES = [
    # run: values
    ("T zero", RUN + ["-T", "0", "--steps", "5", "-o", "keep.zarr"], "> 0 K"),
    ("T negative", RUN + ["-T", "-5", "--steps", "5", "-o", "new.zarr"], "> 0 K"),
    ("T absurd", RUN + ["-T", "1e9", "--steps", "5", "-o", "new.zarr"], "not a physical"),
    ("huge supercell", ["run", "LiBH4", "--size", "1000", "1000", "1000", "-T", "300",
                        "--steps", "5", "-o", "new.zarr"], "limit 50000"),
    ("two-number size", ["run", "LiBH4", "--size", "2", "2", "-T", "300", "--steps", "5",
                         "-o", "new.zarr"], "--size takes"),
    ("zero size", ["run", "LiBH4", "--size", "0", "1", "1", "-T", "300", "--steps", "5",
                   "-o", "new.zarr"], "--size takes"),
    ("word size", ["run", "LiBH4", "--size", "big", "-T", "300", "--steps", "5",
                   "-o", "new.zarr"], "--size takes"),
    ("dt huge", RUN + ["-T", "300", "--steps", "5", "--dt", "1e6", "-o", "new.zarr"],
     "timestep"),
    ("dt zero", RUN + ["-T", "300", "--steps", "5", "--dt", "0", "-o", "new.zarr"], "timestep"),
    ("steps negative", RUN + ["-T", "300", "--steps", "-1", "-o", "new.zarr"], "steps"),
    ("equilibration negative", RUN + ["-T", "300", "--steps", "5", "--equilibration", "-4",
                                      "-o", "new.zarr"], "equilibration_steps"),
    ("frame interval 0", RUN + ["-T", "300", "--steps", "5", "--frame-interval", "0",
                                "-o", "new.zarr"], "frame_interval"),
    ("checkpoint interval 0", RUN + ["-T", "300", "--steps", "5", "--checkpoint-interval", "0",
                                     "-o", "new.zarr"], "checkpoint_interval"),
    ("unknown mode", RUN + ["-T", "300", "--steps", "5", "--mode", "XYZ", "-o", "new.zarr"],
     "unknown constraint mode"),
    ("bad per-species mode", RUN + ["-T", "300", "--steps", "5", "--mode", "BH4=ZZ",
                                    "-o", "new.zarr"], "unknown constraint mode"),
    ("malformed per-species", RUN + ["-T", "300", "--steps", "5", "--mode", "BH4=RC=UC",
                                     "-o", "new.zarr"], "KIND=MODE"),
    ("unknown thermostat", RUN + ["-T", "300", "--steps", "5", "--thermostat", "berendsen",
                                  "-o", "new.zarr"], "unknown thermostat"),
    ("tau zero", RUN + ["-T", "300", "--steps", "5", "--tau", "0", "-o", "new.zarr"],
     "thermostat_tau"),
    ("chain zero", RUN + ["-T", "300", "--steps", "5", "--chain", "0", "-o", "new.zarr"],
     "thermostat_chain"),
    ("negative seed", RUN + ["-T", "300", "--steps", "5", "--seed", "-3", "-o", "new.zarr"],
     "seed"),
    ("species without rotors", RUN + ["-T", "300", "--steps", "5", "--constrain-species", "PS4",
                                      "--mode", "RC", "-o", "new.zarr"], "PS4"),
    ("unknown rotor unit", RUN + ["-T", "300", "--steps", "5", "--rotors", "XY9",
                                  "-o", "new.zarr"], "XY9"),
    ("missing temperature", RUN + ["--steps", "5", "-o", "new.zarr"], "--temperature"),
    # run: materials, structures, potentials, specs
    ("unknown material", ["run", "Unobtainium", "-T", "300", "--steps", "5", "-o", "new.zarr"],
     "unknown material"),
    ("missing structure file", ["run", "missing.cif", "-T", "300", "--steps", "5",
                                "-o", "new.zarr"], "not found"),
    ("garbage structure", ["run", "garbage.xyz", "-T", "300", "--steps", "5", "-o", "new.zarr"],
     "garbage.xyz"),
    ("garbage cif", ["build", "LiBH4", "--cif", "garbage.cif", "-o", "x.cif"], "garbage.cif"),
    # a material with a structure but no bundled model ({WITHOUT}: the fixture
    # material_without_model takes one material's model away for the test)
    ("no bundled model", ["run", "{WITHOUT}", "--size", "1", "1", "1", "-q", "-T", "300",
                          "--steps", "5", "--potential", "bundled", "-o", "new.zarr"],
     "no DeePMD model is bundled"),
    ("missing model file", RUN + ["-T", "300", "--steps", "5", "--potential", "nope.pb",
                                  "-o", "new.zarr"], "does not exist"),
    ("unknown potential", RUN + ["-T", "300", "--steps", "5", "--potential", "nonsense",
                                 "-o", "new.zarr"], "unrecognised potential"),
    ("bad ase factory", RUN + ["-T", "300", "--steps", "5", "--potential", "ase:nomodule_q:f",
                               "-o", "new.zarr"], "cannot import"),
    ("missing ensemble member", RUN + ["-T", "300", "--steps", "5", "--potential",
                                       "a_missing.pb,b_missing.pb", "-o", "new.zarr"],
     "does not exist"),
    ("type map with the reference potential", RUN + ["-T", "300", "--steps", "5", "--type-map",
                                                     "Li,B,H", "-o", "new.zarr"],
     "DeePMD models only"),
    ("type map with repeats", RUN + ["-T", "300", "--steps", "5", "--potential", "tiny-LiBH4",
                                     "--type-map", "Li,Li,H", "-o", "new.zarr"], "repeated"),
    ("missing spec file", ["run", "--spec", "nospec.yaml", "-o", "new.zarr"], "nospec.yaml"),
    ("invalid yaml spec", ["run", "--spec", "bad.yaml", "-o", "new.zarr"], "not valid YAML"),
    ("unknown spec field", ["run", "--spec", "unknown.yaml", "-o", "new.zarr"], "temprature"),
    ("spec plus options", ["run", "--spec", "unknown.yaml", "-T", "300", "-o", "new.zarr"],
     "do not combine"),
    # overwrite only ever replaces a rotorlab store
    ("overwrite a user directory", RUN + ["-T", "300", "--steps", "5", "-o", "userdir",
                                          "--overwrite"], "not a rotorlab store"),
    ("overwrite the working directory", RUN + ["-T", "300", "--steps", "5", "-o", ".",
                                               "--overwrite"], "working directory"),
    ("overwrite a user file", RUN + ["-T", "300", "--steps", "5", "-o", "notes.txt",
                                     "--overwrite"], "notes.txt"),
    ("existing store without overwrite", RUN + ["-T", "300", "--steps", "5", "-o", "keep.zarr"],
     "--overwrite"),
    ("analyze into the store", ["analyze", "keep.zarr", "-o", "keep.zarr/an"], "input store"),
    ("analyze missing store", ["analyze", "none.zarr", "-o", "an"], "none.zarr"),
    # resume
    ("resume missing store", ["resume", "nothere.zarr"], "no trajectory store"),
    ("resume a user directory", ["resume", "userdir"], "userdir"),
    ("resume negative steps", ["resume", "keep.zarr", "--steps", "-3"], "steps"),
    # build
    ("build unknown format", ["build", "LiBH4", "-o", "x.weird"], "format"),
    ("build over a user file", ["build", "LiBH4", "-o", "notes.txt"], "notes.txt"),
    ("build over existing output", ["build", "LiBH4", "-o", "keep.xyz"], "--overwrite"),
    ("build into a directory", ["build", "LiBH4", "-o", "userdir"], "userdir"),
    ("build unknown material", ["build", "LiAlH4", "-o", "x.cif"], "unknown material"),
    # import / export
    ("import missing file", ["import", "none.xyz", "-o", "imp.zarr"], "none.xyz"),
    ("import zero timestep", ["import", "keep.xyz", "-o", "imp.zarr", "--timestep", "0"],
     "--timestep"),
    ("import negative timestep", ["import", "keep.xyz", "-o", "imp.zarr", "--timestep", "-2"],
     "--timestep"),
    ("import garbage", ["import", "garbage.xyz", "-o", "imp.zarr", "--timestep", "1"],
     "garbage.xyz"),
    ("import unknown material", ["import", "keep.xyz", "-o", "imp.zarr", "--material", "Foo"],
     "unknown material"),
    ("import zero stride", ["import", "keep.xyz", "-o", "imp.zarr", "--frame-stride", "0"],
     "--frame-stride"),
    ("import over a store", ["import", "keep.xyz", "-o", "keep.zarr"], "keep.zarr"),
    ("import negative temperature", ["import", "keep.xyz", "-o", "imp.zarr", "--temperature",
                                     "-1"], "--temperature"),
    ("export missing store", ["export", "none.zarr", "-o", "out.xyz"], "none.zarr"),
    ("export into the store", ["export", "keep.zarr", "-o", "keep.zarr/x.xyz"], "inside"),
    ("export unknown format", ["export", "keep.zarr", "-o", "out.pdf"], ".nc"),
    ("export over a user file", ["export", "keep.zarr", "-o", "keep.xyz"], "--overwrite"),
    ("export bad frames", ["export", "keep.zarr", "-o", "out.xyz", "--frames", "a:b"],
     "--frames"),
    # info
    ("info missing store", ["info", "none.zarr"], "none.zarr"),
]


@pytest.mark.parametrize("name,argv,needle", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_bad_input_is_one_clear_line_and_touches_nothing(name, argv, needle, workspace,
                                                             capsys, monkeypatch,
                                                             material_without_model):
    argv = [a.replace("{WITHOUT}", material_without_model) for a in argv]
    monkeypatch.chdir(workspace)
    before = _tree_digest(workspace)
    code = main(argv)
    err = capsys.readouterr().err
    assert code != 0, f"{name}: accepted"
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, f"{name}: {err!r}"
    assert needle in lines[0], f"{name}: {lines[0]!r}"
    assert "Traceback" not in err and "[Errno" not in err and "np.str_" not in err
    assert _tree_digest(workspace) == before, f"{name}: files changed"
    assert not (workspace / "new.zarr").exists() and not (workspace / "imp.zarr").exists()


def test_there_are_at_least_forty_kinds():
    assert len(CLI_CASES) + len(API_CASES) >= 40


def _salt():
    from rotorlab.md.testing import tetrahedral_salt

    return tetrahedral_salt(a=6.4, seed=1)


def _sim(**kw):
    from rotorlab.md.simulation import Simulation

    atoms, topo = _salt()
    base = dict(temperature=300.0, timestep=0.5, steps=10, topology=topo, progress=False)
    base.update(kw)
    return Simulation(atoms, "reference", **base)


API_CASES = [
    ("fractional steps", lambda: _sim(steps=1.5), ValueError, "whole number"),
    ("zero kelvin nhc", lambda: _sim(temperature=0.0), ValueError, "> 0 K"),
    ("bool steps", lambda: _sim(steps=True), ValueError, "whole number"),
    ("nan timestep", lambda: _sim(timestep=float("nan")), ValueError, "finite"),
    ("no potential", lambda: __import__("rotorlab").Simulation("LiBH4", None, temperature=300),
     ValueError, "no potential given"),
    ("bundled without material", lambda: __import__(
        "rotorlab.potentials.registry", fromlist=["x"]).resolve("bundled", symbols=["Li"]),
     ValueError, "material"),
    ("resume missing", lambda: __import__("rotorlab").Simulation.resume("/nonexistent/x.zarr"),
     FileNotFoundError, "no trajectory store"),
    ("observer bad event", lambda: _sim().attach(print, event="tick"), ValueError,
     "unknown event"),
    ("irun bad interval", lambda: next(_sim().irun(interval=0)), ValueError, ">= 1"),
    ("spec not a mapping", lambda: __import__("rotorlab.spec", fromlist=["x"]).RunSpec.from_dict(
        [1, 2]), ValueError, "mapping"),
]


@pytest.mark.parametrize("name,call,exc,needle", API_CASES, ids=[c[0] for c in API_CASES])
def test_python_api_bad_input(name, call, exc, needle):
    with pytest.raises(exc, match=needle):
        call()


def test_deepmd_startup_noise_is_silenced_and_shown_with_debug(workspace, tmp_path):
    pytest.importorskip("deepmd")
    import subprocess
    import sys

    model = Path(__file__).resolve().parents[1] / "datasets" / "models" / "tiny-LiBH4" / "model.pb"
    base = [sys.executable, "-m", "rotorlab.cli"]
    run = ["run", "LiBH4", "--size", "1", "1", "1", "-T", "300", "--steps", "4",
           "--frame-interval", "2", "-q", "--potential", str(model)]
    quiet = subprocess.run(base + run + ["-o", str(tmp_path / "q.zarr")], capture_output=True,
                           text=True, timeout=300)
    assert quiet.returncode == 0, quiet.stderr
    assert "libcudart" not in quiet.stderr and "best performance" not in quiet.stderr
    loud = subprocess.run(base + ["--debug"] + run + ["-o", str(tmp_path / "l.zarr")],
                          capture_output=True, text=True, timeout=300)
    assert loud.returncode == 0 and "libcudart" in loud.stderr + loud.stdout
    assert np.isfinite(float(__import__("rotorlab").open_store(tmp_path / "q.zarr")
                             ["potential_energy"].values[-1]))


def test_type_map_reaches_the_model(workspace, tmp_path, capsys):
    """--type-map names a DeePMD model's types: the right order runs, a wrong length is one
    clear line (the tiny test model has types Li, B, H)."""
    pytest.importorskip("deepmd")
    run = ["run", "LiBH4", "--variant", "P63mc-12", "--size", "2", "2", "2", "-T", "300",
           "--steps", "4", "--frame-interval", "2", "-q", "--potential", "tiny-LiBH4"]
    assert main(run + ["--type-map", "Li,B,H", "-o", str(tmp_path / "ok.zarr")]) == 0
    from rotorlab.spec import RunSpec
    from rotorlab.store import open_store

    spec = RunSpec.from_dict(open_store(tmp_path / "ok.zarr").attrs["run_spec"])
    assert spec.type_map == ("Li", "B", "H")
    assert main(run + ["--type-map", "Li,B", "-o", str(tmp_path / "bad.zarr")]) == 2
    err = capsys.readouterr().err
    assert "type_map has 2 entries" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad.zarr").exists()
