"""Analysis suite (DESIGN §5): transport, rotation, rotor dynamics, hops, structure, vibrations,
replicas, report.

Analyzers derive from :class:`~rotorlab.analysis.base.Analyzer`: construct with options,
``.compute(ds)`` returns ``self``, results are xarray objects with ``attrs["units"]``
(dimensionless ``"1"``) exposed as guarded attributes (they raise
:class:`~rotorlab.analysis.base.NotComputedError` before ``compute``), ``.results`` gathers
them in one Dataset, ``from_dataset``/``from_store`` are shortcuts and ``.plot()`` draws
with :mod:`rotorlab.viz`.  Inputs are the trajectory Datasets of :mod:`rotorlab.store`
(possibly dask-backed); every analysis reads them block by block so stores larger than
memory work.

The registry (:mod:`rotorlab.analysis.registry`) lists the analyses, what they need and
return; :func:`available` says which can run on a store, and ``rotorlab analyze`` runs them.

Submodules are imported lazily (numba kernels compile on first use; matplotlib only when
drawing).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Transport": "transport", "msd": "transport", "fit_diffusion": "transport",
    "nernst_einstein": "transport", "arrhenius_fit": "transport", "arrhenius_from_results": "transport",
    "mode_contributions": "transport", "sigma_table": "transport", "collective_msd": "transport",
    "RotorDynamics": "rotor_dynamics", "ligand_vectors": "rotor_dynamics", "fit_ivanov": "rotor_dynamics",
    "ivanov_tau": "rotor_dynamics", "ReplicaSet": "replicas", "check_condition": "replicas",
    "kabsch": "rotation",
    "RotorOrientation": "rotation", "Reorientation": "rotation", "OrientationACF": "rotation",
    "RotationalFreeEnergy": "rotation", "P2S6Dihedral": "rotation", "orientation_vectors": "rotation",
    "angle_projections": "rotation",
    "SiteHops": "hops", "DisplacementHops": "hops", "find_sites": "hops",
    "RDF": "structure", "AnionFreeEnergy": "structure", "MobileIonDensity": "structure",
    "density_profile": "structure", "write_cube": "structure",
    "PhononDOS": "vibrations", "vacf": "vibrations", "band_centre_shift": "vibrations",
    "analyze": "report",
    "Analyzer": "base", "Result": "base", "NotComputedError": "base",
    "available": "registry", "register": "registry", "registry": None,
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        if _EXPORTS[name] is None:
            return importlib.import_module(f"{__name__}.{name}")
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
