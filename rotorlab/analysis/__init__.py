"""Analysis suite (DESIGN §5): transport, rotation, hops, structure, vibrations, report.

Analyzers follow one pattern: construct with options, ``.compute(ds)`` returns ``self``,
results are xarray objects with ``attrs["units"]`` exposed as properties (which raise a clear
error before ``compute``); ``from_dataset``/``from_store`` are shortcuts.  Inputs are the
trajectory Datasets of :mod:`rotorlab.store` (possibly dask-backed); every analysis reads
them block by block so stores larger than memory work.

Submodules are imported lazily (numba kernels compile on first use).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Transport": "transport", "msd": "transport", "fit_diffusion": "transport",
    "nernst_einstein": "transport", "arrhenius_fit": "transport", "arrhenius_from_results": "transport",
    "mode_contributions": "transport", "sigma_table": "transport",
    "RotorOrientation": "rotation", "Reorientation": "rotation", "OrientationACF": "rotation",
    "RotationalFreeEnergy": "rotation", "P2S6Dihedral": "rotation", "orientation_vectors": "rotation",
    "angle_projections": "rotation",
    "SiteHops": "hops", "DisplacementHops": "hops", "find_sites": "hops",
    "RDF": "structure", "AnionFreeEnergy": "structure", "MobileIonDensity": "structure",
    "density_profile": "structure", "write_cube": "structure",
    "PhononDOS": "vibrations", "vacf": "vibrations", "band_centre_shift": "vibrations",
    "analyze": "report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
