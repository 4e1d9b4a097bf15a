"""Campaigns: material × mode × temperature × replica studies on Dask (issue 9).

>>> from rotorlab.campaign import CampaignSpec, run_campaign, collect
>>> spec = CampaignSpec.load("datasets/campaigns/demo.yaml")
>>> state = run_campaign(spec, "results/demo", workers=2)   # LocalCluster, resumable
>>> ds = collect("results/demo")                           # DIR/campaign.nc
>>> from rotorlab.campaign.figures import report; report("results/demo")

``rotorlab campaign SPEC.yaml -o DIR`` and ``rotorlab report DIR`` are the CLI
(:mod:`rotorlab.campaign.cli_commands`); ``python -m rotorlab.campaign`` works without it.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "CampaignSpec": "spec", "CampaignSpecError": "spec", "PlannedRun": "spec",
    "run_seed": "spec",
    "run_campaign": "runner", "CampaignState": "runner", "CampaignDirError": "runner",
    "store_status": "runner", "execute_run": "runner",
    "analyze_run_cached": "collect",
    "report": "figures",
}

__all__ = sorted([*_EXPORTS, "collect"])


# the submodule ``collect`` would shadow its function: import it once, then bind the function
from rotorlab.campaign import collect as _collect_module  # noqa: E402

collect = _collect_module.collect


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
