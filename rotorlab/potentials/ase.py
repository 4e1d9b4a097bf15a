"""Any ASE calculator as a rotorlab force field (CHGNet, MACE, EMT, ``deepmd.calculator.DP`` …).

>>> from ase.calculators.emt import EMT
>>> from rotorlab.potentials.ase import ASECalculator
>>> ff = ASECalculator(EMT(), symbols=atoms)
>>> energy, forces, virial = ff.compute(atoms.positions, atoms.cell.array)

The wrapper keeps one private :class:`ase.Atoms` whose positions and cell are updated on
every call, so calculators that cache results by configuration keep working. This is the
route for teachers and foundation models; DeePMD-kit models are faster through
:class:`rotorlab.potentials.deepmd.DeePMD` (no ASE round trip).
"""

from __future__ import annotations

import numpy as np

__all__ = ["ASECalculator"]


def _symbols_of(obj) -> list:
    if hasattr(obj, "get_chemical_symbols"):
        return list(obj.get_chemical_symbols())
    return [str(s) for s in obj]


class ASECalculator:
    """Wrap an ASE calculator as a :class:`~rotorlab.potentials.base.ForceField`.

    Parameters
    ----------
    calc : ase.calculators.calculator.BaseCalculator
        Any ASE calculator that implements ``energy`` and ``forces``.
    symbols : sequence of str or ase.Atoms, optional
        System species in atom order (N,) (or later via :meth:`bind`). When an ``Atoms``
        is given, its ``pbc`` and ``info`` are kept (some calculators read ``info``, e.g.
        charge/spin).
    virial : {"auto", True, False}, default "auto"
        Return the virial from the calculator's stress: "auto" when the calculator lists
        ``stress`` in ``implemented_properties``; ``True`` requires it; ``False`` returns
        ``None``.
    id : str, optional
        Identifier stored with trajectories; default ``"ase:<CalculatorClass>"``.
    version : str, optional
        Model/parameter version; default the calculator package's ``__version__``
        (or ``"unknown"``).

    Attributes
    ----------
    calc : ASE calculator
    atoms : ase.Atoms or None
        The private Atoms (None before :meth:`bind`).
    type_names : None
        Species checking is left to the calculator.
    """

    type_names = None

    def __init__(self, calc, symbols=None, *, virial="auto", id: str | None = None,
                 version: str | None = None):
        if not hasattr(calc, "get_property"):
            raise TypeError(f"expected an ASE calculator, got {type(calc).__name__}")
        self.calc = calc
        impl = set(getattr(calc, "implemented_properties", ()))
        if virial == "auto":
            virial = "stress" in impl
        elif virial and impl and "stress" not in impl:
            raise ValueError(f"{type(calc).__name__} does not implement 'stress'; use virial=False")
        self.want_virial = bool(virial)
        self.id = id or f"ase:{type(calc).__name__}"
        if version is None:
            import sys

            mod = sys.modules.get(type(calc).__module__.split(".")[0])
            version = str(getattr(mod, "__version__", "unknown"))
        self.version = version
        self.atoms = None
        if symbols is not None:
            self.bind(symbols)

    def check_species(self, symbols) -> None:
        """Accept any species (the calculator reports what it cannot handle)."""
        return None

    def bind(self, symbols) -> ASECalculator:
        """Fix the system's species (and pbc/info when given an Atoms); returns ``self``."""
        from ase import Atoms

        if hasattr(symbols, "get_chemical_symbols"):
            atoms = Atoms(symbols.get_chemical_symbols(), positions=symbols.get_positions(),
                          cell=symbols.cell, pbc=symbols.pbc)
            atoms.info.update(symbols.info)
        else:
            syms = _symbols_of(symbols)
            atoms = Atoms(syms, positions=np.zeros((len(syms), 3)), pbc=True)
        atoms.calc = self.calc
        self.atoms = atoms
        return self

    @property
    def n_atoms(self) -> int | None:
        return None if self.atoms is None else len(self.atoms)

    def compute(self, positions, cell):
        """Energy [eV], forces (N, 3) [eV/Å] and virial (3, 3) [eV] or None.

        Parameters
        ----------
        positions : ndarray, shape (N, 3)
            [Å].
        cell : ndarray, shape (3, 3) or None
            Lattice vectors as rows [Å]; None keeps the bound Atoms' cell.

        Returns
        -------
        energy, forces, virial
            ``virial = -stress · V`` (``W = -∂E/∂ε``), or None when not requested.
        """
        if self.atoms is None:
            raise RuntimeError(f"{self.id}: call bind(symbols) (or pass symbols=) before compute")
        x = np.asarray(positions, dtype=np.float64)
        if x.shape != (len(self.atoms), 3):
            raise ValueError(f"{self.id} is bound to {len(self.atoms)} atoms; got positions "
                             f"of shape {x.shape}")
        if cell is not None:
            c = np.asarray(cell, dtype=np.float64)
            if not np.array_equal(c, self.atoms.cell.array):
                self.atoms.set_cell(c, scale_atoms=False)
        self.atoms.set_positions(x)
        energy = float(self.atoms.get_potential_energy())
        forces = np.array(self.atoms.get_forces(), dtype=np.float64)
        virial = None
        if self.want_virial and self.atoms.cell.rank == 3:
            stress = np.asarray(self.atoms.get_stress(voigt=False), dtype=np.float64)
            virial = -stress * self.atoms.get_volume()
        return energy, forces, virial

    __call__ = compute

    def __repr__(self):
        bound = "unbound" if self.atoms is None else f"{len(self.atoms)} atoms"
        return f"ASECalculator({type(self.calc).__name__}, {bound})"
