"""Binder's install steps on a clean virtual environment: the same commands ``postBuild``
runs (it is executed as is, with the new venv first on PATH and a scratch HOME).

Slow (a full install of rotorlab[app], TensorFlow included, from the pip cache: minutes).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow


def _copy_tracked(dst: Path) -> None:
    files = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True,
                           check=True).stdout.decode().split("\0")
    for f in filter(None, files):
        src = REPO / f
        out = dst / f
        out.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            out.symlink_to(os.readlink(src))
        elif src.is_file():
            shutil.copy2(src, out)


def test_postbuild_installs_the_app_on_a_clean_venv(tmp_path):
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs a git checkout (postBuild runs on the repository's files)")
    src = tmp_path / "repo"
    _copy_tracked(src)
    assert (src / "rotorlab" / "_apps" / "explorer.py").is_file()
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PATH=f"{env_dir / 'bin'}{os.pathsep}{env['PATH']}", HOME=str(home),
               VIRTUAL_ENV=str(env_dir),
               # re-use the pip cache and an installed NGL.js (no network needed for them)
               XDG_CACHE_HOME=os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache")))
    r = subprocess.run(["bash", "binder/postBuild"], cwd=src, env=env, capture_output=True,
                       text=True, timeout=3000)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert "rotorlab app:" in r.stdout
    py = env_dir / "bin" / "python"
    check = ("import rotorlab, panel, nglview, jupyter_server_proxy, jupyterlab; "
             "from rotorlab.viz.app_cli import app_path; print(app_path())")
    r = subprocess.run([str(py), "-c", check], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert Path(r.stdout.strip()).read_text() == (src / "apps" / "explorer.py").read_text()
    # the server-proxy entry: a panel serve command bound to localhost under the prefix
    cfg = home / ".jupyter" / "jupyter_server_config.py"
    code = ("import runpy, types\n"
            "class C(dict):\n"
            "    def __getattr__(self, k):\n"
            "        return self.setdefault(k, types.SimpleNamespace())\n"
            "c = C()\n"
            f"runpy.run_path({str(cfg)!r}, init_globals={{'get_config': lambda: c}})\n"
            "srv = c.ServerProxy.servers['rotorlab-explorer']\n"
            "print(' '.join(srv['command'](port=7001, base_url='/user/x/')))\n"
            "print(srv['launcher_entry']['title'])\n")
    r = subprocess.run([str(py), "-c", code], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    line = r.stdout.splitlines()[0]
    assert "-m panel serve" in line and "--port 7001" in line and "--address 127.0.0.1" in line
    assert "--prefix /user/x/rotorlab-explorer" in line
    assert "rotorlab Explorer" in r.stdout
