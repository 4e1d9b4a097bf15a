"""The ForceField protocol shared by every potential (DESIGN §6).

A force field maps positions and a cell to an energy and forces (optionally the virial):

>>> energy, forces = ff.compute(positions, cell)[:2]

Units: positions and cell [Å], energy [eV], forces [eV/Å], virial [eV]
(``W = -∂E/∂ε``, so the stress is ``σ = -W / V``; ASE's sign convention).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["ForceField", "split_result", "energy_forces", "check_species"]


@runtime_checkable
class ForceField(Protocol):
    """Anything that computes energies and forces of a periodic configuration.

    Attributes
    ----------
    id : str
        Identifier stored with trajectories (e.g. ``"reference"`` or a model name).
    version : str
        Version of the model or parameter set.
    type_names : sequence of str or None
        Chemical elements the potential knows, ``None`` when it accepts any.

    Methods
    -------
    compute(positions, cell)
        ``positions`` (N, 3) Å (wrapped or unwrapped), ``cell`` (3, 3) Å with lattice
        vectors as rows. Returns ``(energy, forces)`` or ``(energy, forces, virial)``
        with energy [eV] float, forces (N, 3) [eV/Å], virial (3, 3) [eV].
    """

    id: str
    version: str
    type_names: tuple | None

    def compute(self, positions: np.ndarray, cell: np.ndarray): ...


def split_result(result):
    """Normalise a ``compute`` result to ``(energy, forces, virial_or_None)``.

    Raises
    ------
    ValueError
        If the result is not a 2- or 3-tuple.
    """
    if not isinstance(result, tuple) or len(result) not in (2, 3):
        raise ValueError("ForceField.compute must return (energy, forces[, virial])")
    if len(result) == 2:
        return float(result[0]), result[1], None
    return float(result[0]), result[1], result[2]


def energy_forces(ff):
    """The ``(positions, cell) -> (energy, forces)`` callable the integrator uses.

    Parameters
    ----------
    ff : ForceField
        Anything with ``compute(positions, cell)``.

    Returns
    -------
    callable
        ``f(positions (N, 3) Å, cell (3, 3) Å) -> (energy eV, forces (N, 3) eV/Å)``; its
        ``forcefield`` attribute is ``ff``.

    Raises
    ------
    TypeError
        ``ff`` has no ``compute``.
    """
    compute = getattr(ff, "compute", None)
    if not callable(compute):
        raise TypeError(f"{type(ff).__name__} is not a force field (no compute(positions, cell))")

    def call(positions, cell):
        e, f, _ = split_result(compute(positions, cell))
        return e, f

    call.forcefield = ff
    return call


def check_species(ff, symbols) -> None:
    """Raise ``ValueError`` if ``symbols`` contains elements the force field lacks."""
    known = getattr(ff, "type_names", None)
    if known is None:
        return
    missing = sorted(set(symbols) - set(known))
    if missing:
        raise ValueError(
            f"potential {getattr(ff, 'id', ff)!r} has no parameters for element(s) {missing}; "
            f"it knows {sorted(known)}")
