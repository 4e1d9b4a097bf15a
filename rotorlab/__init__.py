"""rotorlab: which motion of a rotor anion drives cation transport?

Top-level names are imported lazily so ``import rotorlab`` stays fast and never
pulls in TensorFlow, numba compilation, Panel or nglview.

>>> import rotorlab
>>> atoms = rotorlab.materials.get("LiBH4", size="quick")
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = {"materials", "topology", "store", "md", "potentials", "analysis", "units", "cli"}
_LAZY = {
    "Simulation": ("rotorlab.md.simulation", "Simulation"),
    "SimulationExploded": ("rotorlab.md.simulation", "SimulationExploded"),
    "relax": ("rotorlab.md.relax", "relax"),
    "analyze": ("rotorlab.analysis", "analyze"),
    "detect": ("rotorlab.topology", "detect"),
    "open_store": ("rotorlab.store", "open_store"),
    "TrajectoryStore": ("rotorlab.store", "TrajectoryStore"),
}

__all__ = sorted(_SUBMODULES | set(_LAZY) | {"__version__"})


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"rotorlab.{name}")
    if name in _LAZY:
        mod, attr = _LAZY[name]
        return getattr(importlib.import_module(mod), attr)
    raise AttributeError(f"module 'rotorlab' has no attribute {name!r}")


def __dir__():
    return __all__
