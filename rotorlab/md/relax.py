"""Zero-temperature relaxation of positions (and cell) before MD, through ASE optimizers.

The reference study fixed each volume to a zero-temperature relaxation; :func:`relax` does
the same with the run's own potential, using ``ase.filters.FrechetCellFilter`` for the cell.
"""

from __future__ import annotations

import numpy as np

from rotorlab.potentials.base import split_result

__all__ = ["relax", "RelaxationError", "ForceFieldCalculator"]


class RelaxationError(RuntimeError):
    """The optimizer did not reach ``fmax`` within ``steps``; ``.atoms`` holds the last
    structure."""

    def __init__(self, message, atoms=None):
        super().__init__(message)
        self.atoms = atoms


def _calculator_base():
    from ase.calculators.calculator import Calculator, all_changes

    return Calculator, all_changes


class ForceFieldCalculator(_calculator_base()[0]):
    """Thin ASE calculator around a rotorlab :class:`~rotorlab.potentials.ForceField`.

    Provides ``energy``, ``free_energy``, ``forces`` and, when the force field returns a
    virial, ``stress`` (``σ = −W/V``, Voigt order, eV/Å³).
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, forcefield, **kw):
        super().__init__(**kw)
        self.forcefield = forcefield

    def calculate(self, atoms=None, properties=("energy",), system_changes=None):
        Calculator, all_changes = _calculator_base()
        Calculator.calculate(self, atoms, properties, system_changes or all_changes)
        cell = np.asarray(self.atoms.cell.array, dtype=np.float64)
        e, f, w = split_result(self.forcefield.compute(self.atoms.positions, cell))
        self.results = {"energy": e, "free_energy": e, "forces": np.asarray(f)}
        if w is not None:
            s = -np.asarray(w) / abs(np.linalg.det(cell))
            self.results["stress"] = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2],
                                               s[0, 1]])
        elif "stress" in properties:
            from ase.calculators.calculator import PropertyNotImplementedError

            raise PropertyNotImplementedError(
                f"potential {getattr(self.forcefield, 'id', '?')!r} returns no virial; "
                "relax with cell=False")


def relax(atoms, potential, cell: bool = True, fmax: float = 0.05, steps: int = 500,
          optimizer: str = "FIRE", logfile=None, raise_on_failure: bool = True):
    """Relax positions (and the cell) with a rotorlab force field.

    Parameters
    ----------
    atoms : ase.Atoms
        Periodic structure; not modified.
    potential : ForceField
        ``compute(positions, cell)``; must return a virial for ``cell=True``.
    cell : bool
        Also relax the cell (``FrechetCellFilter``, hydrostatic + shear).
    fmax : float
        Convergence threshold on forces [eV/Å] (and the filter's cell forces).
    steps : int
        Maximum optimizer steps.
    optimizer : {"FIRE", "BFGS", "LBFGS"}
    logfile : str or None
        ASE optimizer log (``"-"`` for stdout).
    raise_on_failure : bool
        Raise :class:`RelaxationError` when not converged (default), else return the last
        structure with ``atoms.info["relax_converged"] = False``.

    Returns
    -------
    ase.Atoms
        Relaxed copy; ``info["relax_converged"]``, ``info["relax_steps"]``,
        ``info["relax_energy"]`` [eV] are set.
    """
    from ase import optimize
    from ase.filters import FrechetCellFilter

    if fmax <= 0 or steps < 1:
        raise ValueError("fmax must be > 0 and steps >= 1")
    opts = {"FIRE": optimize.FIRE, "BFGS": optimize.BFGS, "LBFGS": optimize.LBFGS}
    key = optimizer.upper()
    if key not in opts:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {list(opts)}")
    work = atoms.copy()
    work.constraints = []
    work.calc = ForceFieldCalculator(potential)
    target = FrechetCellFilter(work) if cell else work
    opt = opts[key](target, logfile=logfile)
    converged = bool(opt.run(fmax=fmax, steps=steps))
    nsteps = int(opt.nsteps)
    energy = float(work.get_potential_energy())
    out = work.copy()
    out.calc = None
    out.info.update(relax_converged=converged, relax_steps=nsteps, relax_energy=energy)
    if not converged:
        fnow = float(np.sqrt((target.get_forces() ** 2).sum(axis=1)).max())
        msg = (f"relaxation did not converge in {steps} {key} steps: max force {fnow:.3g} eV/Å "
               f"> fmax {fmax} eV/Å. Increase steps, loosen fmax, or check the structure/"
               "potential")
        if raise_on_failure:
            raise RelaxationError(msg, out)
    return out
