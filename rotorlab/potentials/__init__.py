"""Force fields: the :class:`ForceField` protocol and the numba reference potential.

ML potentials (DeePMD-kit, any ASE calculator) are added by ``deepmd.py``/``ase.py``.
"""

from rotorlab.potentials.base import ForceField, check_species, split_result
from rotorlab.potentials.reference import ReferenceForceField

__all__ = ["ForceField", "ReferenceForceField", "check_species", "split_result"]
