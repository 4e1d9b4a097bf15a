"""Bundled DeePMD models and one entry point to get a force field from a short spec.

>>> from rotorlab.potentials.registry import bundled, load
>>> bundled("LiBH4")                       # raises NoBundledModel until one is bundled
>>> ff = load("path/to/model.pb", symbols=atoms)
>>> ens = load(["m1.pb", "m2.pb", "m3.pb"], symbols=atoms, k=10)
>>> ff = load("reference", atoms=atoms)

Model directories live under ``datasets/models/<id>/`` (``rotorlab._paths.models_dir()``),
each with a ``card.json`` (machine-readable provenance, see ``datasets/models/README.md``),
a ``CARD.md`` and the model files. A material's bundled model is the directory named by
its catalog entry's ``bundled_model``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from rotorlab._paths import models_dir

__all__ = ["BundledModel", "NoBundledModel", "bundled", "has_bundled", "model_dirs",
           "model_info", "load", "MODEL_SUFFIXES"]

#: File suffixes treated as model files by :func:`load`.
MODEL_SUFFIXES = (".pb", ".pth", ".pt", ".pte", ".pt2", ".savedmodel", ".hlo", ".jax",
                  ".dp", ".yaml", ".yml")


class NoBundledModel(LookupError):
    """The material has no bundled model (yet)."""


@dataclass
class BundledModel:
    """A model directory under ``datasets/models/`` with its provenance card.

    Attributes
    ----------
    id : str
        Directory name.
    directory : Path
    card : dict
        Contents of ``card.json`` (teacher, data, training settings, RMSEs).
    card_text : str
        ``CARD.md`` (human-readable card), "" if absent.
    files : list of Path
        Ensemble members in card order; the first drives the dynamics.
    alternatives : list of Path
        Other files of the card (e.g. a compressed copy of the first model).
    material : str or None
    """

    id: str
    directory: Path
    card: dict
    card_text: str = ""
    files: list = field(default_factory=list)
    alternatives: list = field(default_factory=list)
    material: str | None = None

    @property
    def path(self) -> Path:
        """The driving model file."""
        return self.files[0]

    def load(self, symbols=None, *, ensemble: bool = False, compressed: bool = False, **kwargs):
        """Load the model as a force field.

        Parameters
        ----------
        symbols : sequence of str or ase.Atoms, optional
            System species to bind.
        ensemble : bool, default False
            Load every member as a :class:`~rotorlab.potentials.deepmd.DeePMDEnsemble`
            (needs ≥ 2 members); ``kwargs`` go to it (``k``, ``sigma_high``, ...).
        compressed : bool, default False
            Use the compressed copy of the driving model when the card lists one.
        **kwargs
            Passed to :class:`DeePMD` / :class:`DeePMDEnsemble`.
        """
        from rotorlab.potentials.deepmd import DeePMD, DeePMDEnsemble

        first = self.path
        if compressed:
            comp = [p for p, m in zip(self.alternatives, self._alt_entries())
                    if m.get("compressed_from") == first.name]
            if not comp:
                raise ValueError(f"model {self.id} has no compressed copy of {first.name}")
            first = comp[0]
        if ensemble:
            if len(self.files) < 2:
                raise ValueError(f"model {self.id} has a single member; no ensemble")
            return DeePMDEnsemble([first, *self.files[1:]], symbols, **kwargs)
        return DeePMD(first, symbols, **kwargs)

    def _alt_entries(self):
        return [m for m in self.card.get("models", []) if m.get("compressed_from")]

    def describe(self) -> str:
        """Short human-readable provenance."""
        return self.card_text or json.dumps(self.card, indent=2)


def model_dirs() -> list:
    """Ids of all model directories (with a ``card.json``) under ``datasets/models/``."""
    root = models_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "card.json").is_file())


def model_info(model_id: str) -> BundledModel:
    """Read the model directory ``datasets/models/<model_id>/``.

    Raises
    ------
    FileNotFoundError
        No such directory or no ``card.json``; or a file the card lists is missing.
    """
    d = models_dir() / model_id
    card_path = d / "card.json"
    if not card_path.is_file():
        raise FileNotFoundError(f"no model directory with card.json at {d} "
                                f"(available: {', '.join(model_dirs()) or 'none'})")
    card = json.loads(card_path.read_text())
    entries = card.get("models", [])
    if not entries:
        raise ValueError(f"{card_path} lists no model files")
    members = [d / m["file"] for m in entries if not m.get("compressed_from")]
    alts = [d / m["file"] for m in entries if m.get("compressed_from")]
    for p in members + alts:
        if not p.is_file():
            raise FileNotFoundError(f"{card_path} lists {p.name}, which is missing in {d} "
                                    "(a Git LFS pointer not fetched, or an incomplete install?)")
    text = (d / "CARD.md").read_text() if (d / "CARD.md").is_file() else ""
    return BundledModel(id=model_id, directory=d, card=card, card_text=text, files=members,
                        alternatives=alts, material=card.get("material"))


def has_bundled(material) -> bool:
    """Whether the catalog material has a bundled model."""
    from rotorlab.materials import catalog

    return catalog(material).bundled_model is not None


def bundled(material) -> BundledModel:
    """The bundled DeePMD model of a catalog material, with its provenance card.

    Parameters
    ----------
    material : str or rotorlab.materials.Material

    Returns
    -------
    BundledModel
        ``.card`` holds teacher, data, training settings and train/test RMSEs;
        ``.load(symbols)`` gives the force field.

    Raises
    ------
    KeyError
        Unknown material.
    NoBundledModel
        None is bundled for this material (the message says what to use instead).
    """
    from rotorlab.materials import catalog

    mat = catalog(material)
    if mat.bundled_model is None:
        raise NoBundledModel(
            f"no DeePMD model is bundled for {mat.name} yet. Use the reference force field "
            "(potential='reference', for testing the machinery only), your own model file "
            "(potential='path/to/model.pb' or a list of files for an ensemble), or any ASE "
            "calculator via rotorlab.potentials.ase.ASECalculator.")
    info = model_info(mat.bundled_model)
    info.material = mat.name
    return info


def _is_forcefield(obj) -> bool:
    return hasattr(obj, "compute") and callable(obj.compute)


def load(spec, material=None, *, atoms=None, symbols=None, **kwargs):
    """A force field from a short specification.

    Parameters
    ----------
    spec : str, Path, sequence of paths, or a force field
        * ``"reference"`` — :class:`~rotorlab.potentials.reference.ReferenceForceField`
          parametrised for ``atoms`` (required);
        * ``"bundled"`` — the bundled model of ``material`` (or ``atoms.info["material"]``);
        * a model file (``.pb`` …) — :class:`~rotorlab.potentials.deepmd.DeePMD`;
        * a list of model files — :class:`~rotorlab.potentials.deepmd.DeePMDEnsemble`;
        * the id of a directory under ``datasets/models/`` (e.g. ``"tiny-LiBH4"``, a test
          fixture) — its driving model (``ensemble=True`` for all members);
        * an object with ``compute`` — returned as is (bound to the species if possible).
    material : str, optional
        Catalog material (for ``"bundled"`` and the reference force field's settings).
    atoms : ase.Atoms, optional
        The system; supplies species (and for ``"reference"`` the topology and geometry).
    symbols : sequence of str, optional
        Species when ``atoms`` is not given.
    **kwargs
        Passed to the constructor (``threads``, ``type_map``, ``k``, ``sigma_high`` …;
        ``ensemble``/``compressed`` for bundled models).

    Returns
    -------
    ForceField

    Raises
    ------
    FileNotFoundError
        A model file or directory does not exist.
    NoBundledModel
        ``"bundled"`` for a material without a bundled model.
    ValueError
        Unrecognised spec, missing ``atoms`` for ``"reference"``, or species mismatch.
    """
    from rotorlab.potentials.deepmd import DeePMD, DeePMDEnsemble

    species = atoms if atoms is not None else symbols
    if material is None and atoms is not None:
        material = atoms.info.get("material")

    if _is_forcefield(spec):
        if species is not None and hasattr(spec, "bind"):
            spec.bind(species)
        return spec
    if isinstance(spec, (list, tuple)):
        return DeePMDEnsemble(list(spec), species, **kwargs)
    if not isinstance(spec, (str, Path)):
        raise ValueError(f"cannot make a force field from {type(spec).__name__} {spec!r}")

    s = str(spec)
    if s == "reference":
        if atoms is None:
            raise ValueError("the reference force field is parametrised per structure: "
                             "call load('reference', atoms=atoms)")
        from rotorlab.potentials.reference import ReferenceForceField
        from rotorlab.materials import detect

        topo = detect(atoms, material=material)
        return ReferenceForceField.from_topology(topo, atoms.get_positions(), atoms.cell.array,
                                                 material=material, **kwargs)
    if s == "bundled":
        if material is None:
            raise ValueError("load('bundled') needs material= (or atoms with info['material'])")
        return bundled(material).load(species, **kwargs)
    p = Path(s).expanduser()
    if p.suffix.lower() in MODEL_SUFFIXES or p.exists():
        if p.is_dir() and (p / "card.json").is_file():
            return _load_dir(p, species, kwargs)
        return DeePMD(p, species, **kwargs)
    if (models_dir() / s / "card.json").is_file():
        return _load_dir(models_dir() / s, species, kwargs)
    raise ValueError(
        f"unrecognised potential {s!r}: expected 'reference', 'bundled', a model file "
        f"(suffix one of {', '.join(MODEL_SUFFIXES)}), a list of model files, or a model id "
        f"({', '.join(model_dirs()) or 'none available'})")


def _load_dir(d: Path, species, kwargs):
    if d.parent.resolve() == models_dir().resolve():
        info = model_info(d.name)
    else:  # a model directory elsewhere, same layout
        card = json.loads((d / "card.json").read_text())
        entries = card.get("models", [])
        info = BundledModel(id=d.name, directory=d, card=card,
                            files=[d / m["file"] for m in entries if not m.get("compressed_from")],
                            alternatives=[d / m["file"] for m in entries if m.get("compressed_from")],
                            material=card.get("material"))
    return info.load(species, **kwargs)
