"""Locations of the bundled data (structures, models) in a source tree or an installed wheel."""

from __future__ import annotations

from pathlib import Path


def datasets_dir() -> Path:
    """Directory holding ``structures/`` and ``models/``.

    In a source checkout (also an editable install) this is ``<repo>/datasets``; in a
    wheel the same files are installed as the package data ``rotorlab/_datasets``.
    """
    here = Path(__file__).resolve().parent
    for cand in (here / "_datasets", here.parent / "datasets"):
        if (cand / "structures").is_dir():
            return cand
    raise FileNotFoundError(
        "rotorlab's bundled datasets were not found (looked in "
        f"{here / '_datasets'} and {here.parent / 'datasets'}); reinstall rotorlab"
    )


def structures_dir() -> Path:
    return datasets_dir() / "structures"


def models_dir() -> Path:
    return datasets_dir() / "models"
