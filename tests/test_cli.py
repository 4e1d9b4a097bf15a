"""The `rotorlab` command line: catalog, build, info, and clear one-line errors."""

import subprocess
import sys

import ase.io
import pytest

from rotorlab.cli import main


def test_materials_list(capsys):
    assert main(["materials"]) == 0
    out = capsys.readouterr().out
    for name in ["LiBH4", "Na2B10H10", "Na3OBH4", "Li3PS4", "Na4P2S6", "Na11Sn2PS12"]:
        assert name in out
    assert "768" in out and "1125" in out and "832" in out and "none" not in out


def test_materials_show(capsys):
    assert main(["materials", "show", "na11sn2ps12"]) == 0
    out = capsys.readouterr().out
    assert "study/Na11Sn2PS12.poscar" in out and "208-atom" in out


def test_build_writes_structure(tmp_path, capsys):
    out = tmp_path / "libh4.xyz"
    assert main(["build", "LiBH4", "--size", "2", "2", "1", "-o", str(out)]) == 0
    atoms = ase.io.read(out)
    assert len(atoms) == 192  # 2x2x1 of the study's 48-atom cell
    assert "32 BH4 rotors" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["build", "LiAlH4", "-o", "x.cif"], "unknown material 'LiAlH4'"),
        (["build", "LiBH4", "--size", "big", "-o", "x.cif"], "size"),
        (["build", "LiBH4", "--size", "0", "1", "1", "-o", "x.cif"], "positive integers"),
        (["build", "LiBH4", "--cif", "missing.cif", "-o", "x.cif"], "not found: missing.cif"),
        (["materials", "show", "Foo"], "unknown material"),
    ],
)
def test_errors_are_one_clear_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_console_script_runs():
    r = subprocess.run([sys.executable, "-m", "rotorlab.cli", "--version"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("rotorlab ")


def test_info_summarises_a_store(tmp_path, capsys):
    import numpy as np

    from rotorlab.store import TrajectoryStore

    st = TrajectoryStore.create(tmp_path / "s.zarr", species=["Li", "H"], masses=[6.94, 1.008],
                                rotor_id=[-1, -1], attrs={"material": "toy",
                                                          "constraint_mode": "RC"},
                                chunk_frames=2)
    n = 3
    st.append({"positions": np.zeros((n, 2, 3)), "velocities": np.zeros((n, 2, 3)),
               "cell": np.tile(np.eye(3) * 5, (n, 1, 1)), "time": np.arange(n) * 0.01,
               "step": np.arange(n), "temperature": np.array([290.0, 300.0, 310.0])})
    st.flush()
    assert main(["info", str(tmp_path / "s.zarr")]) == 0
    out = capsys.readouterr().out
    assert "RC" in out and "mean 300.0 K" in out and "0 – 0.02 ps" in out
    assert "checkpoint         : none" in out


def test_info_missing_store(capsys, tmp_path):
    assert main(["info", str(tmp_path / "none.zarr")]) == 2
    assert "none.zarr" in capsys.readouterr().err
