"""``rotorlab app``: serve the Explorer (``apps/explorer.py``) with ``panel serve`` on
localhost; ``rotorlab app --install-ngl`` fetches NGL.js for its 3D views.

:func:`add_parsers` is registered by :mod:`rotorlab.cli`. Panel is not imported here: the
command runs ``python -m panel serve`` in a child process.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["app_path", "load_explorer", "serve_command", "add_parsers"]


def app_path() -> Path:
    """The Explorer app file: ``<checkout>/apps/explorer.py`` or, installed,
    ``rotorlab/_apps/explorer.py`` (the same file shipped as package data)."""
    here = Path(__file__).resolve().parent.parent
    for cand in (here / "_apps" / "explorer.py", here.parent / "apps" / "explorer.py"):
        if cand.is_file():
            return cand
    raise FileNotFoundError(f"the Explorer app was not found (looked in {here / '_apps'} and "
                            f"{here.parent / 'apps'}); reinstall rotorlab with the app extra")


def load_explorer():
    """Import the Explorer module (for notebooks: ``load_explorer().Explorer()``)."""
    path = app_path()
    name = "rotorlab_explorer_app"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def serve_command(port: int = 5006, address: str = "127.0.0.1", ngl_dir=None,
                  show: bool = False, allow_websocket_origin=None, prefix=None) -> list[str]:
    """The ``panel serve`` command line of the app (a list for :mod:`subprocess`).

    Parameters
    ----------
    port : int
    address : str
        Interface to bind (default loopback only).
    ngl_dir : path, optional
        Directory holding ``ngl.js``, served as ``/ngl``.
    show : bool
        Open a browser.
    allow_websocket_origin : str, optional
        Extra allowed origin (behind a proxy).
    prefix : str, optional
        URL prefix (behind jupyter-server-proxy).
    """
    cmd = [sys.executable, "-m", "panel", "serve", str(app_path()), "--port", str(int(port)),
           "--address", address]
    if ngl_dir is not None:
        cmd += ["--static-dirs", f"ngl={ngl_dir}"]
    if show:
        cmd.append("--show")
    if allow_websocket_origin:
        cmd += ["--allow-websocket-origin", allow_websocket_origin]
    if prefix:
        cmd += ["--prefix", prefix]
    return cmd


def _cmd_app(args) -> int:
    from rotorlab.viz.ngl import NGLUnavailable, install_ngl, ngl_js_path

    if args.install_ngl:
        path = install_ngl()
        print(f"NGL.js installed: {path}")
        return 0
    try:
        ngl = ngl_js_path(install=True)
    except NGLUnavailable as exc:
        print(f"rotorlab app: the 3D views are off: {exc}", file=sys.stderr)
        ngl = None
    env = dict(os.environ)
    if args.workdir:
        env["ROTORLAB_APP_WORKDIR"] = str(Path(args.workdir).resolve())
    if args.shared_results:
        env["ROTORLAB_APP_SHARED"] = str(Path(args.shared_results).resolve())
    if args.model:
        for m in args.model:
            if not Path(m).is_file():
                raise FileNotFoundError(f"--model {m}: no such file")
        env["ROTORLAB_APP_MODELS"] = os.pathsep.join(str(Path(m).resolve()) for m in args.model)
    if args.address not in ("127.0.0.1", "localhost", "::1"):
        print(f"rotorlab app: WARNING: listening on {args.address}: anyone who can reach this "
              "address can start runs on this machine", file=sys.stderr)
    cmd = serve_command(args.port, args.address, None if ngl is None else ngl.parent,
                        show=args.show, allow_websocket_origin=args.allow_websocket_origin,
                        prefix=args.prefix)
    print(f"serving the rotorlab Explorer on http://{args.address}:{args.port}/explorer "
          "(Ctrl-C stops it)")
    try:
        return subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        return 130


def add_parsers(sub) -> None:
    """Add the ``app`` command to the ``rotorlab`` CLI's subparsers."""
    a = sub.add_parser("app", help="serve the interactive Explorer (Panel) on localhost")
    a.add_argument("--port", type=int, default=5006)
    a.add_argument("--address", default="127.0.0.1",
                   help="interface to bind (default 127.0.0.1: this machine only)")
    a.add_argument("--workdir", default=None,
                   help="folder for the sessions' runs and uploads (default ./rotorlab-app)")
    a.add_argument("--shared-results", default=None,
                   help="a results folder every browser session sees (default: runs are "
                        "private to each session)")
    a.add_argument("--model", action="append", default=[],
                   help="a model file (.pb) offered to every session (repeatable)")
    a.add_argument("--show", action="store_true", help="open a browser")
    a.add_argument("--allow-websocket-origin", default=None)
    a.add_argument("--prefix", default=None, help="URL prefix (behind a proxy)")
    a.add_argument("--install-ngl", action="store_true",
                   help="fetch NGL.js (npm pack ngl) for the 3D views and exit")
    a.set_defaults(func=_cmd_app)
