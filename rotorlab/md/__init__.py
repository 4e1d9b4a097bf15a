"""Constrained molecular dynamics: rotor constraints, integrator, thermostats, run loop.

Heavy pieces are imported lazily (``from rotorlab.md import Simulation`` works, but
``import rotorlab.md`` compiles nothing).
"""

from __future__ import annotations

import importlib

_LAZY = {
    "Constraints": "rotorlab.md.constraints",
    "MODES": "rotorlab.md.constraints",
    "Integrator": "rotorlab.md.integrate",
    "maxwell_boltzmann": "rotorlab.md.integrate",
    "make_thermostat": "rotorlab.md.thermostats",
    "NoseHooverChain": "rotorlab.md.thermostats",
    "CSVR": "rotorlab.md.thermostats",
    "Langevin": "rotorlab.md.thermostats",
    "NVE": "rotorlab.md.thermostats",
    "Simulation": "rotorlab.md.simulation",
    "SimulationExploded": "rotorlab.md.simulation",
    "relax": "rotorlab.md.relax",
    "RelaxationError": "rotorlab.md.relax",
    "ForceFieldCalculator": "rotorlab.md.relax",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rotorlab.md' has no attribute {name!r}")


def __dir__():
    return __all__
