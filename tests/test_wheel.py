"""Release readiness: the sdist and wheel build, and the wheel installs and runs from a clean
virtual environment with no source tree on the path.

Slow (it installs the dependencies into a fresh venv: minutes, mostly TensorFlow; pip's
cache and the machine's package sources make repeats faster). The run uses a material's
bundled model when the registry reports one, else the reference force field; a second short
run uses the bundled DeePMD test model by id, which proves the model files ship in the wheel.
"""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _run(cmd, cwd, env, timeout=1200):
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, (f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n"
                               f"{r.stdout[-3000:]}\n{r.stderr[-6000:]}")
    return r.stdout


def _copy_source(dst: Path) -> Path:
    """The files a build needs, copied (the package's ``_datasets`` link kept as a link)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "*.zarr")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, dst / name)
    shutil.copytree(ROOT / "rotorlab", dst / "rotorlab", symlinks=True, ignore=ignore)
    shutil.copytree(ROOT / "datasets", dst / "datasets", ignore=ignore)
    return dst


def _clean_env(tmp: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONSTARTUP")}
    env.update(HOME=env.get("HOME", str(tmp)), OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="2",
               TF_CPP_MIN_LOG_LEVEL="3", MPLBACKEND="Agg", PYTHONNOUSERSITE="1")
    return env


def test_wheel_installs_and_runs_in_a_fresh_venv(tmp_path):
    t_start = time.perf_counter()
    env = _clean_env(tmp_path)
    (tmp_path / "src").mkdir()
    src = _copy_source(tmp_path / "src")
    dist = tmp_path / "dist"
    if importlib.util.find_spec("build") is not None:
        _run([sys.executable, "-m", "build", "--outdir", str(dist), str(src)], tmp_path, env)
        sdists = list(dist.glob("rotorlab-*.tar.gz"))
        assert len(sdists) == 1, list(dist.iterdir())
        built = "sdist + wheel (python -m build)"
    else:   # the build frontend is in the docs extra; pip builds the wheel the same way
        _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(dist), str(src)],
             tmp_path, env)
        built = "wheel (pip wheel; python -m build not installed)"
    t_build = time.perf_counter() - t_start
    wheels = list(dist.glob("rotorlab-*.whl"))
    assert len(wheels) == 1, list(dist.iterdir())
    wheel = wheels[0]
    import rotorlab

    assert wheel.name.startswith(f"rotorlab-{rotorlab.__version__}-")

    # the wheel carries the data and every licence notice of the bundled data
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in (ROOT / "datasets").rglob("*"):
        if f.is_file() and f.name.upper().startswith(("LICENSE", "NOTICE", "COPYING")):
            rel = "rotorlab/_datasets/" + f.relative_to(ROOT / "datasets").as_posix()
            assert rel in names, f"licence notice {rel} not shipped in the wheel"
    assert "rotorlab/_datasets/structures/PROVENANCE.md" in names
    assert any(n.endswith("dist-info/licenses/LICENSE") for n in names)
    for card in (ROOT / "datasets" / "models").glob("*/card.json"):
        for m in json.loads(card.read_text()).get("models", []):
            rel = f"rotorlab/_datasets/models/{card.parent.name}/{m['file']}"
            assert rel in names, f"model file {rel} not shipped"
        if (card.parent / "data.tar.xz").is_file():  # the labelled data, for retraining
            assert f"rotorlab/_datasets/models/{card.parent.name}/data.tar.xz" in names
    # the training loops' state stays in the repository
    assert not [n for n in names if n.startswith("rotorlab/_datasets/training/")]

    # a fresh venv (no system site-packages), dependencies resolved by pip
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path, env)
    py, rl = venv / "bin" / "python", venv / "bin" / "rotorlab"
    t0 = time.perf_counter()
    _run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)],
         tmp_path, env, timeout=2400)
    t_install = time.perf_counter() - t0

    work = tmp_path / "work"          # no source tree here or on the path
    work.mkdir()
    where = _run([str(py), "-c", "import rotorlab, sys; print(rotorlab.__file__); "
                  "print(rotorlab.__version__); print(any('src' in p for p in sys.path))"],
                 work, env).split()
    assert where[0].startswith(str(venv)), where
    assert where[1] == rotorlab.__version__ and where[2] == "False"
    assert _run([str(rl), "--version"], work, env).strip() == f"rotorlab {rotorlab.__version__}"

    listing = _run([str(rl), "materials"], work, env)
    for name in rotorlab.materials.names():
        assert name in listing

    bundled = json.loads(_run([str(py), "-c", (
        "import json; from rotorlab import materials; from rotorlab.potentials import registry;"
        "print(json.dumps([m for m in materials.names() if registry.has_bundled(m)]))")],
        work, env).strip().splitlines()[-1])
    material, potential = (bundled[0], "bundled") if bundled else ("LiBH4", "reference")
    t0 = time.perf_counter()
    out = _run([str(rl), "run", material, "--size", "quick", "-T", "300", "--steps", "50",
                "--frame-interval", "1", "--potential", potential, "--seed", "1", "-q",
                "-o", "run.zarr"], work, env)
    t_run = time.perf_counter() - t0
    info = _run([str(rl), "info", "run.zarr"], work, env)
    frames = re.search(r"^frames\s*:\s*(\d+)", info, re.M)
    assert frames and int(frames.group(1)) >= 50, info
    _run([str(rl), "analyze", "run.zarr", "-o", "analysis", "--no-figures"], work, env)
    assert (work / "analysis" / "results.nc").is_file()

    # the bundled DeePMD test model, by id, from inside the installed package
    _run([str(rl), "run", "LiBH4", "--size", "2", "2", "2", "-T", "300", "--steps", "10",
          "--frame-interval", "5", "--potential", "tiny-LiBH4", "--seed", "1", "-q",
          "-o", "dp.zarr"], work, env)
    assert "deepmd:model.pb" in _run([str(rl), "info", "dp.zarr"], work, env)
    spec = _run([str(py), "-c", "import rotorlab; "
                 "print(rotorlab.open_store('dp.zarr').attrs['potential_spec'])"],
                work, env).strip().splitlines()[-1]
    assert spec.startswith(str(venv)) and spec.endswith("_datasets/models/tiny-LiBH4/model.pb")

    total = time.perf_counter() - t_start
    print(f"\nwheel test: {built} {t_build:.0f} s, install {t_install:.0f} s, 50-step run of "
          f"{material} with the {potential} potential {t_run:.1f} s, total {total:.0f} s; "
          f"{out.strip().splitlines()[-1] if out.strip() else ''}")
