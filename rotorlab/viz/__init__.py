"""Visualisation: the NGL.js view used by the app (:mod:`rotorlab.viz.ngl`) and the nglview
adaptor for notebooks (:mod:`rotorlab.viz.nglview_adaptor`).

Submodules are imported lazily; nothing here imports Panel or nglview at import time.
"""

from __future__ import annotations

import importlib

_SUBMODULES = ("ngl", "nglview_adaptor", "app_cli", "plots")


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
