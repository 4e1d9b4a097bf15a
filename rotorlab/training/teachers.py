"""Teachers: the labellers of the training data (energies, forces, stresses).

A teacher turns a configuration (``ase.Atoms``) into a labelled one (an ``ase.Atoms``
with a ``SinglePointCalculator`` holding energy [eV], forces [eV/Å] and stress [eV/Å³],
ASE's Voigt order and sign). Every teacher has an ``id`` (e.g. ``"sevenn:7net-0"``) that
is stored with the data it labels; data sets of different teachers are never mixed
(:mod:`rotorlab.training.data` refuses it), because teachers differ in their energy
reference (SevenNet-0: uncorrected MPtrj energies; CHGNet: MP2020-corrected).

Specifications accepted by :func:`make_teacher`:

* ``"7net-0"`` (default), ``"7net-l3i5"``, ``"7net-mf-0"`` (PBE modal) — SevenNet
  (``sevenn``, weights inside the wheel, offline);
* ``"chgnet"`` — CHGNet 0.3.0 (``chgnet``, weights inside the wheel);
* ``"ase:module:factory"`` — any ASE calculator: ``module.factory()`` must return it
  (e.g. a VASP, CP2K or GPAW calculator set up by the user, for DFT labels);
* ``"reference"`` — rotorlab's reference force field (tests and demos only: not physics).

>>> t = make_teacher("7net-0")
>>> labelled = t.label(atoms)
>>> labelled.get_forces(), labelled.get_stress(), labelled.info["teacher"]
"""

from __future__ import annotations

import importlib
import math

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

__all__ = ["Teacher", "SevenNetTeacher", "CHGNetTeacher", "ASETeacher", "ReferenceTeacher",
           "ForceFieldCalculator", "make_teacher", "TEACHERS", "label_frames"]

#: Short names of the built-in teachers.
TEACHERS = ("7net-0", "7net-l3i5", "7net-mf-0", "chgnet", "reference")


def _set_torch_threads(threads):
    if threads is None:
        return
    try:
        import torch
    except ImportError:  # pragma: no cover - only teachers that use torch call this
        return
    torch.set_num_threads(int(threads))
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already set in this process


class Teacher:
    """Base class: an ASE calculator factory with a recorded identity.

    Attributes
    ----------
    id : str
        Stored with every labelled frame (``atoms.info["teacher"]``) and data set.
    package, version : str
        Software that computes the labels and its version.
    model : str
        Model name inside the package.
    """

    id = "teacher"
    package = ""
    version = ""
    model = ""

    def __init__(self):
        self._calc = None
        self._calc_natoms = None

    # subclasses build the calculator once
    def _make_calculator(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def prepare(self, atoms) -> None:
        """Register an unperturbed reference structure (only the reference teacher needs it)."""

    def calculator(self, atoms):
        """The ASE calculator for ``atoms`` (reset when the atom count changes)."""
        if self._calc is None:
            self._calc = self._make_calculator()
        if self._calc_natoms is not None and self._calc_natoms != len(atoms):
            # CHGNet (and others) cache graph data per structure: reset between cell sizes
            self._calc.reset()
        self._calc_natoms = len(atoms)
        return self._calc

    def label(self, atoms):
        """Label one configuration.

        Parameters
        ----------
        atoms : ase.Atoms
            Periodic configuration.

        Returns
        -------
        ase.Atoms
            A copy with a ``SinglePointCalculator`` (``energy`` [eV], ``forces`` (N, 3)
            [eV/Å], ``stress`` (6,) [eV/Å³], ASE Voigt order) and ``info["teacher"]``.

        Raises
        ------
        ValueError
            Non-finite labels.
        """
        from ase.calculators.singlepoint import SinglePointCalculator

        work = atoms.copy()
        work.calc = self.calculator(work)
        energy = float(work.get_potential_energy())
        forces = np.array(work.get_forces(), dtype=float)
        # atoms.get_stress() always gives Voigt (6,); CHGNet's raw result is 3×3
        stress = np.array(work.get_stress(voigt=True), dtype=float)
        if not (math.isfinite(energy) and np.isfinite(forces).all() and np.isfinite(stress).all()):
            raise ValueError(f"teacher {self.id} returned non-finite labels")
        out = atoms.copy()
        out.calc = SinglePointCalculator(out, energy=energy, forces=forces, stress=stress)
        out.info["teacher"] = self.id
        return out

    def describe(self) -> dict:
        """JSON-able identity: ``id``, ``package``, ``version``, ``model``."""
        return {"id": self.id, "package": self.package, "version": self.version,
                "model": self.model}

    def __repr__(self):
        return f"{type(self).__name__}(id={self.id!r}, version={self.version!r})"


class SevenNetTeacher(Teacher):
    """SevenNet (``sevenn``): ``7net-0`` (default), ``7net-l3i5``, ``7net-mf-0``.

    Parameters
    ----------
    model : str
        SevenNet model keyword.
    modal : str, optional
        Modality of multi-fidelity models (``"PBE"`` for ``7net-mf-0`` by default).
    threads : int, optional
        ``torch.set_num_threads``.
    """

    package = "sevenn"

    def __init__(self, model="7net-0", modal=None, threads=None):
        super().__init__()
        import sevenn

        self.model = str(model)
        self.modal = modal if modal is not None else ("PBE" if "mf" in self.model else None)
        self.version = str(getattr(sevenn, "__version__", "unknown"))
        self.id = f"sevenn:{self.model}" + (f":{self.modal}" if self.modal else "")
        self.threads = threads
        _set_torch_threads(threads)

    def _make_calculator(self):
        from sevenn.calculator import SevenNetCalculator

        kw = {"modal": self.modal} if self.modal else {}
        return SevenNetCalculator(self.model, device="cpu", **kw)


class CHGNetTeacher(Teacher):
    """CHGNet 0.3.0 (``chgnet``); reset between cell sizes. Energies MP2020-corrected."""

    package = "chgnet"
    model = "CHGNet-0.3.0"

    def __init__(self, threads=None):
        super().__init__()
        import chgnet

        self.version = str(getattr(chgnet, "__version__", "unknown"))
        self.id = "chgnet:0.3.0"
        _set_torch_threads(threads)

    def _make_calculator(self):
        from chgnet.model.dynamics import CHGNetCalculator

        return CHGNetCalculator(use_device="cpu")


class ASETeacher(Teacher):
    """Any ASE calculator from ``module.factory()`` (spec ``"ase:module:factory"``).

    Parameters
    ----------
    module, factory : str
        Importable module and the name of a callable in it returning an ASE calculator.
    """

    package = "ase"

    def __init__(self, module, factory):
        super().__init__()
        self.module_name, self.factory_name = str(module), str(factory)
        mod = importlib.import_module(self.module_name)
        if not hasattr(mod, self.factory_name):
            raise ValueError(f"module {self.module_name!r} has no {self.factory_name!r}")
        self._factory = getattr(mod, self.factory_name)
        self.id = f"ase:{self.module_name}:{self.factory_name}"
        self.model = self.id
        top = importlib.import_module(self.module_name.split(".")[0])
        self.version = str(getattr(mod, "__version__", getattr(top, "__version__", "unknown")))

    def _make_calculator(self):
        calc = self._factory()
        if not hasattr(calc, "get_potential_energy") and not hasattr(calc, "calculate"):
            raise TypeError(f"{self.id}() did not return an ASE calculator: {calc!r}")
        return calc


class ForceFieldCalculator(Calculator):
    """An ASE calculator around a rotorlab force field (``compute -> E, F[, virial]``).

    ``stress = -virial / V`` [eV/Å³] (ASE sign and Voigt order).

    Parameters
    ----------
    ff : ForceField
        Anything with ``compute(positions, cell)``.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, ff):
        super().__init__()
        self.ff = ff

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        from rotorlab.potentials.base import split_result

        e, f, w = split_result(self.ff.compute(
            np.ascontiguousarray(self.atoms.positions, dtype=float),
            np.ascontiguousarray(self.atoms.cell.array, dtype=float)))
        res = {"energy": e, "free_energy": e, "forces": np.array(f, dtype=float)}
        if w is not None:
            s = -np.asarray(w, dtype=float) / abs(self.atoms.get_volume())
            res["stress"] = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
        self.results = res


class ReferenceTeacher(Teacher):
    """rotorlab's reference force field as a labeller (tests and demos: **not physics**).

    The reference force field takes its bond lengths and angles from a structure, so the
    unperturbed structure of every cell size is registered once (:meth:`prepare`) and all
    configurations of that size are labelled with the same parameters.

    Parameters
    ----------
    material : str, optional
        Catalog material (selects units and reference settings); default
        ``atoms.info["material"]``.
    """

    package = "rotorlab"
    model = "reference"

    def __init__(self, material=None):
        super().__init__()
        import rotorlab

        self.material = material
        self.version = f"rotorlab-{rotorlab.__version__}:reference-1"
        self.id = "rotorlab:reference"
        self._ffs = {}

    @staticmethod
    def _key(atoms):
        return (len(atoms), tuple(atoms.get_chemical_symbols()))

    def prepare(self, atoms) -> None:
        from rotorlab.potentials.reference import ReferenceForceField
        from rotorlab.materials import detect

        key = self._key(atoms)
        if key in self._ffs:
            return
        material = self.material or atoms.info.get("material")
        topo = detect(atoms, material=material)
        self._ffs[key] = ReferenceForceField.from_topology(
            topo, np.asarray(atoms.positions, float), np.asarray(atoms.cell.array, float),
            material=material)

    def calculator(self, atoms):
        key = self._key(atoms)
        if key not in self._ffs:
            raise ValueError(
                f"reference teacher: no reference structure registered for {len(atoms)} atoms "
                f"({atoms.get_chemical_formula()}); call prepare(unperturbed_atoms) first")
        return ForceFieldCalculator(self._ffs[key])


def make_teacher(spec="7net-0", *, threads=None, material=None) -> Teacher:
    """Build a teacher from a short specification (see the module docstring).

    Parameters
    ----------
    spec : str
        ``"7net-0"``, ``"7net-l3i5"``, ``"7net-mf-0"``, ``"sevenn:<model>"``, ``"chgnet"``,
        ``"ase:module:factory"`` or ``"reference"``.
    threads : int, optional
        torch threads (SevenNet, CHGNet).
    material : str, optional
        For the reference teacher.

    Raises
    ------
    ValueError
        Unknown specification.
    ImportError
        The teacher's package is not installed (``pip install 'rotorlab[train]'``).
    """
    s = str(spec).strip()
    low = s.lower()
    if low.startswith("ase:"):
        parts = s.split(":")
        if len(parts) != 3 or not all(parts[1:]):
            raise ValueError(f"ASE teacher spec must be 'ase:module:factory', got {spec!r}")
        return ASETeacher(parts[1], parts[2])
    if low == "reference" or low == "rotorlab:reference":
        return ReferenceTeacher(material=material)
    if low in ("chgnet", "chgnet:0.3.0"):
        return _needs("chgnet", lambda: CHGNetTeacher(threads=threads))
    if low.startswith("sevenn:"):
        low = low.split(":", 1)[1]
    if low.startswith("7net"):
        return _needs("sevenn", lambda: SevenNetTeacher(low, threads=threads))
    raise ValueError(f"unknown teacher {spec!r}; use one of {', '.join(TEACHERS)} or "
                     "'ase:module:factory'")


def _needs(package, build):
    try:
        importlib.import_module(package)
    except ImportError as exc:
        raise ImportError(f"teacher needs the {package!r} package: pip install "
                          f"'rotorlab[train]' ({exc})") from exc
    return build()


def label_frames(teacher: Teacher, frames, progress=None):
    """Label a list of configurations with one teacher (see :meth:`Teacher.label`).

    Returns
    -------
    list of ase.Atoms
        Labelled copies; ``info`` (source etc.) is kept.
    """
    out = []
    for k, a in enumerate(frames):
        out.append(teacher.label(a))
        if progress is not None:
            progress(k + 1, len(frames))
    return out
