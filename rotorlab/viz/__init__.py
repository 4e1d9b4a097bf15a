"""Plotting for rotorlab results (matplotlib, Agg safe).

Nothing here imports matplotlib until a drawing function is called: ``import rotorlab.viz``
is cheap.  The helpers live in :mod:`rotorlab.viz.plots`; analyzers draw themselves with
``analyzer.plot(ax=None)``, which imports this package lazily.
"""

from __future__ import annotations

import importlib

_EXPORTS = ("save", "plot_msd", "plot_arrhenius", "plot_mode_contributions", "plot_drop", "plot_dos",
            "plot_curves", "plot_histograms", "plot_bars", "plot_map")

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.plots"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
