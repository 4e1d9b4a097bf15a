"""Force fields: the :class:`ForceField` protocol and its implementations.

* :class:`ReferenceForceField` — rotorlab's numba test/demo potential;
* :class:`DeePMD`, :class:`DeePMDEnsemble` — DeePMD-kit models on arrays, ensembles with
  live model deviation (imported lazily: TensorFlow loads with the first model);
* :class:`ASECalculator` — any ASE calculator;
* :func:`load`, :func:`bundled` — build a force field from a short specification or the
  bundled model of a material.
"""

from __future__ import annotations

import importlib

from rotorlab.potentials.base import ForceField, check_species, split_result

_LAZY = {
    "ReferenceForceField": "rotorlab.potentials.reference",
    "DeePMD": "rotorlab.potentials.deepmd",
    "DeePMDEnsemble": "rotorlab.potentials.deepmd",
    "ModelDeviationWarning": "rotorlab.potentials.deepmd",
    "ModelDeviationError": "rotorlab.potentials.deepmd",
    "max_force_deviation": "rotorlab.potentials.deepmd",
    "force_deviation": "rotorlab.potentials.deepmd",
    "set_threads": "rotorlab.potentials.deepmd",
    "thread_settings": "rotorlab.potentials.deepmd",
    "ASECalculator": "rotorlab.potentials.ase",
    "load": "rotorlab.potentials.registry",
    "bundled": "rotorlab.potentials.registry",
    "NoBundledModel": "rotorlab.potentials.registry",
    "BundledModel": "rotorlab.potentials.registry",
}

__all__ = ["ForceField", "check_species", "split_result", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rotorlab.potentials' has no attribute {name!r}")


def __dir__():
    return __all__
