"""Shared pytest configuration for rotorlab."""

import os

# Keep numba/BLAS from oversubscribing the small CI machine.
os.environ.setdefault("NUMBA_NUM_THREADS", "2")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")


# ---------------------------------------------------------------- browser fixtures (app tests)
import shutil as _shutil
import socket as _socket
import subprocess as _subprocess
import sys as _sys
import time as _time
import urllib.request as _urlreq
from pathlib import Path as _Path

import pytest as _pytest

#: Headless Chromium flags measured on the CI machines (WebGL 2 through SwiftShader).
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--headless=new",
                  "--disable-background-networking", "--disable-component-update",
                  "--no-first-run", "--disable-sync", "--use-gl=swiftshader",
                  "--enable-unsafe-swiftshader"]
REPO = _Path(__file__).resolve().parent.parent


def chromium_path():
    for name in ("chromium", "chromium-browser"):
        p = _shutil.which(name)
        if p:
            return p
    return None


def free_port() -> int:
    with _socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float, proc=None) -> None:
    t0 = _time.time()
    while _time.time() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before {url} answered")
        try:
            with _urlreq.urlopen(url, timeout=5) as r:
                if r.status < 500:
                    return
        except Exception:
            _time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout:g} s")


def stop_process(proc) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except _subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@_pytest.fixture(scope="session")
def browser():
    """A headless Chromium driven by Playwright (skips when either is missing)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _pytest.skip("playwright is not installed (pip install 'rotorlab[test,app]')")
    exe = chromium_path()
    if exe is None:
        _pytest.skip("chromium is not installed (.ci/run installs it with apt)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_FLAGS)
        try:
            yield b
        finally:
            b.close()


@_pytest.fixture
def material_without_model(monkeypatch):
    """Name of a catalog material whose bundled model is taken away for this test.

    Every catalog material ships a model now; the paths for a material without one (a
    clear ``NoBundledModel``, the campaign's reference fallback) must stay tested, so this
    gives one material a copy of its catalog entry with ``bundled_model=None``.
    """
    import dataclasses

    from rotorlab.materials.catalog import MATERIALS

    name = next((m for m, mat in MATERIALS.items() if mat.bundled_model is None), None)
    if name is None:
        name = "Na2B10H10"
        monkeypatch.setitem(MATERIALS, name,
                            dataclasses.replace(MATERIALS[name], bundled_model=None))
    return name
