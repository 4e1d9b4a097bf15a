"""The Explorer app in a real browser: ``panel serve apps/explorer.py`` on a free loopback
port, driven by Playwright in headless Chromium (see ENVIRONMENT.md for the flags).

Screenshots of every tab are written to docs/screenshots/ (linked from the README).
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, free_port, stop_process, wait_http

pytestmark = pytest.mark.browser

SHOTS = REPO / "docs" / "screenshots"
SHORT_STEPS = 300


def pixel_variance(png: bytes) -> float:
    """Variance of the grey levels of a PNG (0 for a blank image)."""
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float)
    return float(img.var())


#: The app's isosurface colour (apps/explorer.py ISO_COLOUR "#e377c2").
ISO_RGB = (0xE3, 0x77, 0xC2)


def colour_pixels(png: bytes, rgb, tol: float = 60.0) -> int:
    """Pixels within ``tol`` (RGB distance) of ``rgb``: the shaded, semi-transparent surface
    keeps its hue but not its exact value."""
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=float)
    d = np.linalg.norm(img - np.asarray(rgb, float), axis=-1)
    return int((d < tol).sum())


@pytest.fixture(scope="module")
def ngl_dir():
    from rotorlab.viz.ngl import NGLUnavailable, ngl_js_path

    try:
        return ngl_js_path().parent
    except NGLUnavailable as exc:
        pytest.skip(f"NGL.js is not installed ('make test' installs it): {exc}")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory, ngl_dir):
    work = tmp_path_factory.mktemp("appwork")
    port = free_port()
    env = dict(os.environ, ROTORLAB_APP_WORKDIR=str(work), PYTHONPATH=str(REPO),
               ROTORLAB_APP_MAX_STEPS="100000")
    log = open(work / "serve.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "panel", "serve", str(REPO / "apps" / "explorer.py"),
         "--port", str(port), "--address", "127.0.0.1", "--static-dirs", f"ngl={ngl_dir}"],
        stdout=log, stderr=subprocess.STDOUT, cwd=work, env=env)
    url = f"http://127.0.0.1:{port}/explorer"
    try:
        wait_http(url, 120, proc)
        yield url, work
    finally:
        stop_process(proc)
        log.close()
        text = (work / "serve.log").read_text(errors="replace")
        if "Traceback" in text:
            print(text[-5000:])


_DEEP_TEXT = """e => { const out = [];
  function walk(n) {
    if (n.nodeType === 3) { out.push(n.textContent); return; }
    if (n.nodeName === "STYLE" || n.nodeName === "SCRIPT") return;
    if (n.shadowRoot) walk(n.shadowRoot);
    for (const c of n.childNodes) walk(c);
  }
  walk(e); return out.join(' '); }"""


class Page:
    """A Playwright page on the app with the console recorded."""

    def __init__(self, context, url, query=""):
        self.page = context.new_page()
        self.console = []
        self.page.on("console", lambda m: self.console.append((m.type, m.text)))
        self.page.on("pageerror", lambda e: self.console.append(("pageerror", str(e))))
        self.page.goto(url + query)
        self.page.wait_for_selector(".rl-start button", timeout=90_000)

    def errors(self):
        return [c for c in self.console if c[0] in ("error", "pageerror")]

    def tab(self, name):
        self.page.locator(".bk-tab").filter(has_text=re.compile(f"^{name}$")).click()
        time.sleep(0.5)

    def text(self, cls):
        """Text of the first element with class ``cls``, shadow roots included."""
        return self.page.locator(f".{cls}").first.evaluate(_DEEP_TEXT)

    def set_number(self, cls, value):
        box = self.page.locator(f".{cls} input").first
        box.fill(str(value))
        box.press("Enter")
        time.sleep(0.4)

    def start(self):
        self.page.locator(".rl-start button").click()

    def wait_text(self, cls, pattern, timeout=120):
        t0 = time.time()
        last = ""
        while time.time() - t0 < timeout:
            try:
                last = self.text(cls)
            except Exception:
                last = ""
            if re.search(pattern, last):
                return last
            time.sleep(0.5)
        raise AssertionError(f"{cls}: {pattern!r} not seen in {timeout} s; last text: {last!r}")

    def shot(self, name):
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"))

    def body(self):
        return self.page.locator("body").evaluate(_DEEP_TEXT)

    def no_traceback(self):
        assert "Traceback" not in self.body()


def _start_run(pg, steps, seed):
    before = pg.text("rl-message")
    pg.set_number("rl-steps", steps)
    pg.set_number("rl-seed", seed)
    pg.start()
    t0 = time.time()
    while time.time() - t0 < 30:
        msg = pg.text("rl-message")
        m = re.search(r"started (\S+\.zarr)", msg)
        if m and msg != before:
            return m.group(1)
        time.sleep(0.3)
    raise AssertionError(f"run did not start: {pg.text('rl-message')!r}")


def _run_status(pg, name):
    row = pg.page.locator(f"tr[data-run='{name}']")
    return row.get_attribute("data-status") if row.count() else None


def _wait_status(pg, name, statuses, timeout):
    t0 = time.time()
    while time.time() - t0 < timeout:
        st = _run_status(pg, name)
        if st in statuses:
            return st
        time.sleep(0.5)
    raise AssertionError(f"run {name} not {statuses} in {timeout} s (status {st}); "
                         f"{pg.text('rl-progress')!r}")


def _steps_seen(pg):
    m = re.search(r"step (\d+) / (\d+)", pg.text("rl-progress"))
    return (int(m.group(1)), int(m.group(2))) if m else None


@pytest.fixture(scope="module")
def context(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 1000})
    yield ctx
    ctx.close()


def test_page_loads_without_console_errors(context, app_url):
    pg = Page(context, app_url[0])
    time.sleep(2)
    assert pg.errors() == []
    assert "LiBH4" in pg.text("rl-info") and "48 atoms" in pg.text("rl-info")
    # the potential's note follows the choice: the reference FF is not the material's physics
    assert "not the material's" in pg.text("rl-potential-info")
    pg.shot("setup")
    pg.page.close()


def test_bad_inputs_give_messages(context, app_url, tmp_path):
    pg = Page(context, app_url[0])
    pg.set_number("rl-temperature", -5)
    pg.start()
    pg.wait_text("rl-message", r"temperature must be above 0 K, got -5 K", timeout=20)
    pg.set_number("rl-temperature", 600)
    pg.set_number("rl-steps", 0)
    pg.start()
    pg.wait_text("rl-message", r"steps must be at least 1, got 0", timeout=20)
    garbage = tmp_path / "model.pb"
    garbage.write_bytes(os.urandom(4096))
    pg.page.locator(".rl-upload input[type=file]").set_input_files(str(garbage))
    pg.wait_text("rl-message", r"not a TensorFlow model", timeout=20)
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    pg.page.locator(".rl-upload input[type=file]").set_input_files(str(txt))
    pg.wait_text("rl-message", r"only frozen DeePMD models \(\.pb\)", timeout=20)
    pg.no_traceback()
    # nothing was started and nothing was kept from the garbage uploads
    pg.tab("Run")
    assert "No runs yet" in pg.text("rl-runs")
    assert not list(Path(app_url[1]).glob("sessions/*/uploads/*"))
    assert pg.errors() == []
    pg.page.close()
    # a model the server does not offer, asked for in the URL
    pg = Page(context, app_url[0], "?potential=../../etc/evil.pb")
    pg.wait_text("rl-message", r"unknown model '\.\./\.\./etc/evil\.pb'", timeout=20)
    assert pg.page.locator(".rl-potential select").input_value().startswith("reference")
    pg.no_traceback()
    pg.page.close()


def test_run_watch_analyse_compare(context, app_url, browser):
    pg = Page(context, app_url[0])
    name = _start_run(pg, SHORT_STEPS, seed=11)
    pg.tab("Run")
    first = None
    t0 = time.time()
    while time.time() - t0 < 180:  # progress advances
        s = _steps_seen(pg)
        if s and first is None and s[0] < s[1]:
            first = s[0]
        if s and first is not None and s[0] > first:
            break
        if _run_status(pg, name) == "completed":
            break
        time.sleep(0.3)
    assert _wait_status(pg, name, {"completed"}, 240) == "completed"
    step, total = _steps_seen(pg)
    assert step == total == SHORT_STEPS
    pg.shot("run")

    # Watch: the 3D view renders and scrubs through frames
    pg.tab("Watch")
    pg.page.locator(".rl-watch-select select").select_option(label=name)
    pg.page.locator(".rl-watch-load button").click()
    pg.page.wait_for_selector(".rl-ngl-watch [data-ngl-status=rendered]", timeout=60_000)
    canvas = pg.page.locator(".rl-ngl-watch canvas").first
    time.sleep(1.5)
    var0 = pixel_variance(canvas.screenshot())
    assert var0 > 50, f"3D view looks blank (pixel variance {var0:.1f})"
    pg.set_number("rl-frame", 40)
    pg.page.wait_for_selector(".rl-ngl-watch [data-ngl-frame='40']", timeout=20_000)
    pg.shot("watch")

    # Analyse: MSD, DOS plots and the isosurface
    pg.tab("Analyse")
    pg.page.locator(".rl-analyse-select select").select_option(label=name)
    pg.page.locator(".rl-analyse button").click()
    pg.wait_text("rl-analyse-summary", r"D_tr|below measurable", timeout=240)
    for cls in ("rl-msd-plot", "rl-dos-plot"):
        pg.page.wait_for_selector(f".{cls} canvas", timeout=30_000)
        time.sleep(0.5)
        v = pixel_variance(pg.page.locator(f".{cls}").first.screenshot())
        assert v > 50, f"{cls} looks blank ({v:.1f})"
    assert "band centres" in pg.text("rl-analyse-summary")
    pg.page.wait_for_selector(".rl-ngl-density [data-ngl-surface=yes]", timeout=60_000)
    time.sleep(1.5)
    png = pg.page.locator(".rl-ngl-density canvas").first.screenshot()
    v = pixel_variance(png)
    assert v > 50, f"density view looks blank ({v:.1f})"
    n_iso = colour_pixels(png, ISO_RGB)
    assert n_iso > 30, f"no isosurface-coloured pixels ({n_iso})"
    pg.no_traceback()
    pg.shot("analyse")

    # Compare: σ bars of the analysed run
    pg.tab("Compare")
    pg.page.locator(".rl-compare-select select").select_option(label=name)
    pg.page.locator(".rl-compare button").click()
    pg.wait_text("rl-compare-message", r"compared 1 runs", timeout=120)
    pg.page.wait_for_selector(".rl-sigma-bars canvas", timeout=30_000)
    assert "LiBH4 UC 600 K" in pg.text("rl-compare-table")
    pg.shot("compare")
    assert pg.errors() == []

    # Cancel a second run: it stops, stays listed as resumable and resumes from its checkpoint
    pg.tab("Set up")
    long_name = _start_run(pg, 40_000, seed=12)
    pg.tab("Run")
    pg.page.locator(".rl-run-select select").select_option(label=long_name)
    t0 = time.time()
    while time.time() - t0 < 180:
        s = _steps_seen(pg)
        if s and s[0] > 200:
            break
        time.sleep(0.3)
    pg.page.locator(".rl-cancel button").click()
    assert _wait_status(pg, long_name, {"stopped"}, 60) == "stopped"
    stopped_at = _steps_seen(pg)[0]
    assert 0 < stopped_at < 40_000
    pg.page.locator(".rl-resume button").click()
    t0 = time.time()
    while time.time() - t0 < 120:
        s = _steps_seen(pg)
        if _run_status(pg, long_name) == "running" and s and s[0] > stopped_at + 50:
            break
        time.sleep(0.3)
    else:
        raise AssertionError("resumed run did not advance")
    pg.page.locator(".rl-cancel button").click()
    assert _wait_status(pg, long_name, {"stopped"}, 60) == "stopped"
    store = next(Path(app_url[1]).glob(f"sessions/*/runs/{long_name}"))
    from rotorlab import Simulation

    sim = Simulation.resume(store, progress=False)
    assert sim.step == _steps_seen(pg)[0]
    sim.close()

    # Another browser context (another user) sees none of these runs
    other = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        pg2 = Page(other, app_url[0])
        pg2.tab("Run")
        time.sleep(1.5)
        assert "No runs yet" in pg2.text("rl-runs")
        assert name not in pg2.body()
        assert pg2.errors() == []
    finally:
        other.close()
    # ... while this one still lists both
    assert _run_status(pg, name) == "completed" and _run_status(pg, long_name) == "stopped"
