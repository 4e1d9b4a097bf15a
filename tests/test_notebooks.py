"""The six notebooks run top to bottom under nbmake (each in a scratch copy, so no outputs
or stores land in the repository), and notebook 01 renders its nglview view in a real
JupyterLab (nbmake only executes cells and cannot see a widget that fails to render)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, free_port, stop_process, wait_http

NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_six_notebooks_present():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06"]


def _env():
    return dict(os.environ, PYTHONPATH=str(REPO), MPLBACKEND="Agg")


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem[:2] for p in NOTEBOOKS])
def test_notebook_runs_under_nbmake(nb, tmp_path):
    pytest.importorskip("nbmake")
    work = tmp_path / "nb"
    work.mkdir()
    shutil.copy(nb, work / nb.name)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbmake",
         "--nbmake-timeout=600", str(work / nb.name)],
        cwd=work, env=_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert "1 passed" in proc.stdout
    # the original is untouched (no outputs written back into the repository)
    assert "outputs\": [\n     {" not in nb.read_text()


@pytest.mark.browser
def test_jupyterlab_runs_notebook_01_and_renders_nglview(browser, tmp_path):
    pytest.importorskip("jupyterlab")
    pytest.importorskip("nglview")
    from test_app_browser import _DEEP_TEXT, pixel_variance

    root = tmp_path / "lab"
    root.mkdir()
    nb = NOTEBOOKS[0]
    shutil.copy(nb, root / nb.name)
    port = free_port()
    token = "rotorlab-test-token"
    log = open(tmp_path / "lab.log", "w")
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
           f"--port={port}", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}", "--ServerApp.open_browser=False",
           "--LabApp.news_url=", "--LabApp.check_for_updates_class="
           "jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=root, env=_env())
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        wait_http(f"http://127.0.0.1:{port}/api/status?token={token}", 120, proc)
        page = ctx.new_page()
        console = []
        page.on("console", lambda m: console.append((m.type, m.text)))
        page.goto(f"http://127.0.0.1:{port}/lab/tree/{nb.name}?token={token}")
        page.wait_for_selector(".jp-Notebook", timeout=120_000)
        # wait for the kernel (status bar "... | Idle"), then Run > Run All Cells
        t0 = time.time()
        while time.time() - t0 < 120:
            if "Idle" in page.locator(".jp-StatusBar-Widget").all_inner_texts().__str__():
                break
            time.sleep(1)
        time.sleep(3)
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile("^Run All Cells$")).click()
        # the last cell shows the nglview widget: wait for its canvas (JupyterLab renders
        # cells lazily, so keep the last one in view)
        canvas = page.locator(".jp-OutputArea-output canvas")
        t0 = time.time()
        while time.time() - t0 < float(os.environ.get("ROTORLAB_LAB_WAIT", 400)) and canvas.count() == 0:
            page.locator(".jp-Cell").last.scroll_into_view_if_needed()
            time.sleep(2)
        assert canvas.count() > 0, "no nglview canvas: " + \
            page.locator(".jp-Notebook").evaluate(_DEEP_TEXT)[-2000:]
        canvas = canvas.last
        canvas.scroll_into_view_if_needed()
        t0 = time.time()
        var = 0.0
        while time.time() - t0 < 60:
            time.sleep(2)
            var = pixel_variance(canvas.screenshot())
            if var > 50:
                break
        text = page.locator(".jp-Notebook").evaluate(_DEEP_TEXT)
        assert "is not registered" not in text, "nglview frontend version mismatch"
        assert "Traceback" not in text, text[-3000:]
        assert var > 50, f"nglview canvas looks blank (pixel variance {var:.1f})"
        page.screenshot(path=str(REPO / "docs" / "screenshots" / "jupyterlab_nglview.png"))
        errors = [c for c in console if c[0] == "error" and "is not registered" in c[1]]
        assert errors == []
    finally:
        ctx.close()
        stop_process(proc)
        log.close()
