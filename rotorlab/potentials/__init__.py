"""Force fields: the :class:`ForceField` protocol, its implementations and the registry.

* :func:`resolve` — the one place a potential spec (``"reference"``, ``"bundled"``, a model
  file, ``"a.pb,b.pb"``, ``"KIND:ARGUMENT"``) becomes a force field; :func:`to_spec` is the
  way back (what a store records); :func:`register` adds kinds (teachers, DFT codes, ...);
* :class:`ReferenceForceField` — rotorlab's numba test/demo potential;
* :class:`DeePMD`, :class:`DeePMDEnsemble` — DeePMD-kit models on arrays, ensembles with
  live model deviation (TensorFlow loads with the first model, not at import);
* :class:`ASECalculator` — any ASE calculator;
* :func:`bundled` — the bundled model of a material, with its card.
"""

from __future__ import annotations

import importlib

from rotorlab.potentials.base import ForceField, check_species, energy_forces

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
    "resolve": "rotorlab.potentials.registry",
    "load": "rotorlab.potentials.registry",
    "to_spec": "rotorlab.potentials.registry",
    "restore": "rotorlab.potentials.registry",
    "register": "rotorlab.potentials.registry",
    "unregister": "rotorlab.potentials.registry",
    "kinds": "rotorlab.potentials.registry",
    "PotentialSpecError": "rotorlab.potentials.registry",
    "bundled": "rotorlab.potentials.registry",
    "NoBundledModel": "rotorlab.potentials.registry",
    "BundledModel": "rotorlab.potentials.registry",
}

__all__ = ["ForceField", "check_species", "energy_forces", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rotorlab.potentials' has no attribute {name!r}")


def __dir__():
    return __all__
