"""Visualisation: plotting helpers (:mod:`rotorlab.viz.plots`, matplotlib, Agg safe), the NGL.js
view used by the app (:mod:`rotorlab.viz.ngl`), the nglview adaptor for notebooks
(:mod:`rotorlab.viz.nglview_adaptor`) and ``rotorlab app`` (:mod:`rotorlab.viz.app_cli`).

Nothing here imports matplotlib, Panel or nglview until it is used: ``import rotorlab.viz``
is cheap. Analyzers draw themselves with ``analyzer.plot(ax=None)``, which imports this
package lazily.
"""

from __future__ import annotations

import importlib

_EXPORTS = ("save", "plot_msd", "plot_arrhenius", "plot_mode_contributions", "plot_drop", "plot_dos",
            "plot_curves", "plot_histograms", "plot_bars", "plot_map")
_SUBMODULES = ("plots", "ngl", "nglview_adaptor", "app_cli")

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.plots"), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__ + list(_SUBMODULES))
