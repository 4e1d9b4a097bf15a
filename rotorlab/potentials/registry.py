"""The potential registry: every potential spec is resolved here, in both directions.

>>> from rotorlab.potentials import resolve, to_spec, register
>>> ff = resolve("reference", atoms=atoms)              # rotorlab's test force field
>>> ff = resolve("path/to/model.pb", atoms=atoms)       # a DeePMD model
>>> ens = resolve("m1.pb,m2.pb,m3.pb", atoms=atoms)      # an ensemble (model deviation)
>>> ff = resolve("bundled", atoms=atoms)                # the material's bundled model
>>> ff = resolve("ase:mypkg.calcs:make_calc", atoms=atoms)   # any ASE calculator factory
>>> to_spec(ens)                                         # ('/abs/m1.pb', '/abs/m2.pb', ...)
>>> register("mydft", lambda arg, **ctx: ASECalculator(MyCalc(arg)))   # 'mydft:settings'

A spec is a string (or a sequence of model files): ``"reference"``, ``"bundled"``
(``"bundled:ensemble"``, ``"bundled:compressed"``), a model file or directory, the id of a
model directory under ``datasets/models/``, several model files (``"a.pb,b.pb"``; the first
drives, all give the model deviation), ``"deepmd:PATH"``, ``"ase:MODULE:FACTORY"`` (a
function returning an ASE calculator), or ``"KIND:ARGUMENT"`` for any kind registered with
:func:`register` (e.g. the teachers of :mod:`rotorlab.training`). :func:`to_spec` gives the
spec of a force field back, which the trajectory store records, and :func:`restore` rebuilds
a force field from a checkpoint (its state included, e.g. an ensemble's deviation history).

Model directories live under ``datasets/models/<id>/`` (``rotorlab._paths.models_dir()``),
each with a ``card.json`` (machine-readable provenance, see ``datasets/models/README.md``),
a ``CARD.md`` and the model files. A material's bundled model is the directory named by
its catalog entry's ``bundled_model``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rotorlab._paths import models_dir

__all__ = ["BundledModel", "BundledModelCaveat", "NoBundledModel", "PotentialKind", "PotentialSpecError", "bundled",
           "has_bundled", "model_dirs", "model_info", "resolve", "load", "to_spec", "restore",
           "get_state", "register", "unregister", "kinds", "MODEL_SUFFIXES"]

#: File suffixes treated as model files by :func:`load`.
MODEL_SUFFIXES = (".pb", ".pth", ".pt", ".pte", ".pt2", ".savedmodel", ".hlo", ".jax",
                  ".dp", ".yaml", ".yml")


class NoBundledModel(LookupError):
    """The material has no bundled model (yet)."""


class BundledModelCaveat(UserWarning):
    """A bundled model's card records a target it misses or a sanity check it fails."""


#: Accuracy aims and limits of the bundled models (issue 11), against the teacher on
#: held-out frames: force [meV/Å] and raw energy [meV/atom].
FORCE_RMSE_AIM, FORCE_RMSE_LIMIT = 40.0, 60.0
ENERGY_RMSE_AIM, ENERGY_RMSE_LIMIT = 1.0, 2.0

_WARNED: set = set()


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
            if comp:
                first = comp[0]
            elif self.card.get("compression"):
                first = self.compressed_path()
            else:
                raise ValueError(f"model {self.id} has no compressed copy of {first.name}")
        if ensemble:
            if len(self.files) < 2:
                raise ValueError(f"model {self.id} has a single member; no ensemble")
            return DeePMDEnsemble([first, *self.files[1:]], symbols, **kwargs)
        return DeePMD(first, symbols, **kwargs)

    def compressed_path(self) -> Path:
        """The compressed driving model, made once on first use into a cache.

        Cards whose compressed copy is not shipped (to keep the repository small) give the
        ``dp compress`` settings in ``card["compression"]``; the result is cached under
        ``$ROTORLAB_CACHE`` (default ``~/.cache/rotorlab``) keyed by the model's content
        hash and the table step, so it is never stale.

        Raises
        ------
        RuntimeError
            ``dp compress`` failed (its last output lines are in the message).
        """
        import hashlib
        import os
        import subprocess
        import sys

        comp = self.card.get("compression") or {}
        src = self.directory / comp.get("from", self.path.name)
        step = float(comp.get("step", 0.01))
        digest = hashlib.sha256(src.read_bytes()).hexdigest()[:16]
        cache = Path(os.environ.get("ROTORLAB_CACHE", Path.home() / ".cache" / "rotorlab"))
        out = cache / "models" / f"{self.id}-{digest}-s{step:g}.pb"
        if out.is_file():
            return out
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".tmp{os.getpid()}.pb")
        dp = Path(sys.executable).with_name("dp")
        cmd = [str(dp) if dp.exists() else "dp", "--tf", "compress", "-i", str(src), "-o",
               str(tmp), "-s", f"{step:g}"]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                              cwd=out.parent)
        if proc.returncode != 0 or not tmp.is_file():
            tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
            tmp.unlink(missing_ok=True)
            raise RuntimeError(f"could not compress {src} ({' '.join(cmd)}): {tail}")
        os.replace(tmp, out)
        return out

    def _alt_entries(self):
        return [m for m in self.card.get("models", []) if m.get("compressed_from")]

    def describe(self) -> str:
        """Short human-readable provenance."""
        return self.card_text or json.dumps(self.card, indent=2)

    @property
    def teacher_id(self) -> str:
        """Id of what labelled the training data (``card["teacher"]``), "" if unknown."""
        t = self.card.get("teacher")
        return t.get("id", "") if isinstance(t, dict) else str(t or "")

    def caveats(self) -> list:
        """What the card says this model misses: accuracy aims and failed sanity checks.

        Read from the measured card only (nothing is re-measured): held-out force and
        energy RMSE against the teacher (aims ≤ 40 meV/Å and ≤ 1 meV/atom, limits 60 and 2),
        the UC sanity run (every anion bonded, no explosion, mobile-ion MSD log-log slope
        0.7–1.3), further UC runs at other temperatures or seeds (``sanity.uc_md_runs``,
        from ``rotorlab train-check --uc-temperatures``: bonded, no explosion) and student
        vs teacher MD (distance within 1.5× the student–student noise floor, or within
        0.05).

        Returns
        -------
        list of str
            One sentence per caveat; empty when the card records none (or is not a
            ``rotorlab train`` card, e.g. a test fixture).
        """
        c = self.card
        out = []
        f = c.get("force_rmse_test_meV_A")
        if isinstance(f, (int, float)) and f > FORCE_RMSE_AIM:
            what = "above the limit" if f > FORCE_RMSE_LIMIT else "under the limit"
            out.append(f"held-out force RMSE {f:.1f} meV/Å against the teacher (aim ≤ "
                       f"{FORCE_RMSE_AIM:g}; {what} of {FORCE_RMSE_LIMIT:g})")
        e = c.get("energy_rmse_test_meV_atom")
        if isinstance(e, (int, float)) and e > ENERGY_RMSE_AIM:
            off = c.get("energy_rmse_test_offset_removed_meV_atom")
            extra = f", {off:.2f} after removing a constant offset" if isinstance(
                off, (int, float)) else ""
            out.append(f"held-out energy RMSE {e:.2f} meV/atom (aim ≤ {ENERGY_RMSE_AIM:g}"
                       f"{extra})")
        sanity = c.get("sanity") or {}
        out += _uc_caveats(sanity.get("uc_md") or {}, slope=True)
        for run in sanity.get("uc_md_runs") or []:  # other temperatures and seeds
            out += _uc_caveats(run or {}, slope=False)
        vt = sanity.get("vs_teacher") or {}
        for key, label in (("rdf", "g(r)"), ("vacf", "VACF")):
            d = vt.get(key) or {}
            ts, ss = d.get("teacher_vs_student"), d.get("student_vs_student")
            if isinstance(ts, (int, float)) and isinstance(ss, (int, float)) \
                    and ts > max(1.5 * ss, 0.05):
                out.append(f"student vs teacher {label} distance {ts:.2f} beyond the noise "
                           f"floor {ss:.2f}")
        if vt.get("exploded"):
            out.append(f"student vs teacher MD exploded ({vt['exploded']})")
        return out


def _uc_caveats(uc: dict, *, slope: bool) -> list:
    """Caveats of one UC sanity run (``md_sanity`` record): explosion, anions apart and,
    with ``slope``, a non-diffusive mobile-ion MSD (asked of the highest-temperature run
    only: below it a slope under 0.7 may be the material, not the model)."""
    out = []
    if not uc:
        return out
    T, ps = uc.get("temperature_K"), uc.get("length_ps")
    where = f"in {ps:g} ps of UC MD at {T:g} K" if ps and T else "in the UC sanity run"
    if "seed" in uc:
        where += f" (seed {uc['seed']})"
    if uc.get("exploded"):
        at = f" at {T:g} K (seed {uc['seed']})" if T and "seed" in uc else ""
        out.append(f"the UC sanity run{at} exploded ({uc['exploded']})")
    if uc.get("anions_bonded") is False:
        cuts = uc.get("bond_cutoff_A") or {}
        long = {k: v for k, v in (uc.get("max_bond_A") or {}).items()
                if v >= cuts.get(k, 0.0)} or (uc.get("max_bond_A") or {})
        worst = ", ".join(f"{k} {v:.2f} Å > {cuts.get(k, 0):.2f}" for k, v in long.items())
        if uc.get("anion_criterion") == "connected":
            n = uc.get("broken_anions_max")
            many = f"{n} anions" if isinstance(n, int) and n > 1 else "an anion"
            nb, nf = uc.get("broken_frames"), uc.get("n_frames")
            when = (f" in {nb} of {nf} frames" if isinstance(nb, int)
                    and isinstance(nf, int) and nb > 0 else "")
            out.append(f"{many} came apart (bonds past their cutoff left atoms "
                       f"unconnected){when} {where} ({worst})")
        else:  # cards written before the connectivity criterion
            out.append(f"an anion bond stretched past its cutoff {where} ({worst})")
    msd = (uc.get("msd") or {}).get("slope")
    if slope and isinstance(msd, (int, float)) and not 0.7 <= msd <= 1.3:
        out.append(f"mobile-ion MSD log-log slope {msd:.2f} {where} (diffusive: ≈ 1)")
    return out


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
    text = next(((d / n).read_text() for n in ("CARD.md", "README.md") if (d / n).is_file()), "")
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



# --------------------------------------------------------------------------------------
# registry of potential kinds
# --------------------------------------------------------------------------------------


class PotentialSpecError(ValueError):
    """A potential spec that names no known kind, file or model."""


@dataclass(frozen=True)
class PotentialKind:
    """A named kind of potential: ``resolve("NAME:ARGUMENT")`` calls ``factory``.

    Attributes
    ----------
    name : str
    factory : callable
        ``factory(argument, *, atoms, topology, positions, cell, material, symbols, **kw)``
        returning a force field (an object with ``compute(positions, cell)``); ``argument``
        is the text after ``NAME:`` (``None`` for a bare ``NAME``). Context arguments it does
        not need may be absorbed with ``**kw``.
    description : str
    state_class : type, optional
        Class with ``from_state(arrays, meta)`` used by :func:`restore` for checkpoints whose
        force-field state has ``meta["kind"] == name``.
    """

    name: str
    factory: Callable
    description: str = ""
    state_class: type | None = None


_KINDS: dict[str, PotentialKind] = {}
_STATE_CLASSES: dict[str, Callable] = {}


def register(name: str, factory: Callable, *, description: str = "",
             state_class: type | None = None, replace: bool = False) -> PotentialKind:
    """Register a kind of potential, resolvable as ``"name"`` or ``"name:argument"``.

    Parameters
    ----------
    name : str
        Kind name (letters, digits, ``-``, ``_``; case-insensitive).
    factory : callable
        See :class:`PotentialKind`.
    description : str
        One line shown by :func:`kinds`.
    state_class : type, optional
        Class that rebuilds checkpointed state of this kind (see :func:`restore`).
    replace : bool
        Allow replacing an existing kind.

    Returns
    -------
    PotentialKind

    Raises
    ------
    ValueError
        Bad name, or a kind of that name exists and ``replace`` is false.
    """
    key = str(name).lower()
    if not key or not all(c.isalnum() or c in "-_" for c in key):
        raise ValueError(f"potential kind name {name!r}: use letters, digits, '-' or '_'")
    if key in _KINDS and not replace:
        raise ValueError(f"a potential kind {key!r} is already registered "
                         "(pass replace=True to replace it)")
    if not callable(factory):
        raise TypeError("factory must be callable")
    kind = PotentialKind(key, factory, description, state_class)
    _KINDS[key] = kind
    if state_class is not None:
        _STATE_CLASSES[key] = state_class
    return kind


def unregister(name: str) -> None:
    """Remove a registered kind (built-in kinds included)."""
    key = str(name).lower()
    _KINDS.pop(key, None)
    _STATE_CLASSES.pop(key, None)


def kinds() -> dict[str, str]:
    """Registered kinds: name → description."""
    return {k: v.description for k, v in sorted(_KINDS.items())}


def _is_forcefield(obj) -> bool:
    return hasattr(obj, "compute") and callable(obj.compute)


def _species(atoms, symbols, topology):
    if atoms is not None:
        return atoms
    if symbols is not None:
        return symbols
    if topology is not None:
        return [str(s) for s in topology.symbols]
    return None


def resolve(spec, *, atoms=None, topology=None, positions=None, cell=None, material=None,
            symbols=None, **kwargs):
    """A force field from a potential spec — the one place every spec is resolved.

    Parameters
    ----------
    spec : str, path, sequence of paths, or a force field
        See the module docstring. A force field object is returned as is (bound to the
        species when it has ``bind``).
    atoms : ase.Atoms, optional
        The system: species, and for ``"reference"`` its topology and geometry.
    topology : rotorlab.topology.Topology, optional
        Already detected topology (``"reference"`` then needs ``positions`` and ``cell``
        or uses the topology's reference geometry).
    positions : ndarray, shape (N, 3), optional
        Whole-molecule positions [Å] for ``"reference"``.
    cell : ndarray, shape (3, 3), optional
        Lattice vectors as rows [Å].
    material : str, optional
        Catalog material (``"bundled"``, reference settings); default
        ``atoms.info["material"]``.
    symbols : sequence of str, optional
        Species when neither ``atoms`` nor ``topology`` is given.
    **kwargs
        Passed to the constructor (``threads``, ``type_map``, ``k``, ``sigma_high``, …).

    Returns
    -------
    ForceField

    Raises
    ------
    FileNotFoundError
        A model file or directory that does not exist.
    NoBundledModel
        ``"bundled"`` for a material without a bundled model.
    PotentialSpecError
        A spec that names nothing known (the message lists what is accepted).
    ValueError
        Missing context (e.g. no structure for ``"reference"``), species mismatch.
    """
    if material is None and atoms is not None:
        material = atoms.info.get("material")
    material = getattr(material, "name", material)
    species = _species(atoms, symbols, topology)
    ctx = dict(atoms=atoms, topology=topology, positions=positions, cell=cell,
               material=material, symbols=species)
    if _is_forcefield(spec):
        if species is not None and hasattr(spec, "bind"):
            spec.bind(species)
        return spec
    if isinstance(spec, os.PathLike):
        spec = os.fspath(spec)
    if isinstance(spec, str) and "," in spec:
        spec = [p.strip() for p in spec.split(",") if p.strip()]
    if isinstance(spec, (list, tuple)):
        if len(spec) == 1:
            return resolve(spec[0], **ctx, **kwargs)
        from rotorlab.potentials.deepmd import DeePMDEnsemble

        paths = [Path(os.fspath(p)).expanduser() for p in spec]
        for p in paths:
            if not p.exists():
                raise FileNotFoundError(f"ensemble member {str(p)!r} does not exist")
        return DeePMDEnsemble(paths, species, **kwargs)
    if not isinstance(spec, str):
        raise PotentialSpecError(f"cannot make a force field from {type(spec).__name__} "
                                 f"{spec!r}")
    s = spec.strip()
    key, _, arg = s.partition(":")
    if key.lower() in _KINDS and (arg or ":" not in s):
        return _KINDS[key.lower()].factory(arg or None, **ctx, **kwargs)
    p = Path(s).expanduser()
    if p.exists() or p.suffix.lower() in MODEL_SUFFIXES:
        return _deepmd_factory(s, **ctx, **kwargs)
    if (models_dir() / s / "card.json").is_file():
        return _load_dir(models_dir() / s, species, kwargs)
    if os.sep in s or (os.altsep and os.altsep in s):
        raise FileNotFoundError(f"potential file {s!r} does not exist")
    raise PotentialSpecError(
        f"unrecognised potential {s!r}: expected 'reference', 'bundled', a model file "
        f"(suffix one of {', '.join(MODEL_SUFFIXES)}), several model files 'a.pb,b.pb', a "
        f"model id ({', '.join(model_dirs()) or 'none available'}) or KIND:ARGUMENT with a "
        f"registered kind ({', '.join(sorted(_KINDS))})")


def load(spec, material=None, *, atoms=None, symbols=None, **kwargs):
    """Same as :func:`resolve` (kept for existing code); ``material`` may be positional."""
    return resolve(spec, atoms=atoms, material=material, symbols=symbols, **kwargs)


def to_spec(ff):
    """The spec that rebuilds ``ff`` through :func:`resolve`, or ``None`` when it cannot.

    Parameters
    ----------
    ff : force field or spec

    Returns
    -------
    str, tuple of str or None
        ``"reference"``, an absolute model path, a tuple of paths (an ensemble), the
        ``spec`` attribute a registered factory set, or None (an object built in Python:
        a resumed run then needs it passed again).
    """
    if isinstance(ff, (str, os.PathLike, list, tuple)):
        return ff if isinstance(ff, str) else (
            os.fspath(ff) if isinstance(ff, os.PathLike) else tuple(os.fspath(p) for p in ff))
    spec = getattr(ff, "spec", None)
    if isinstance(spec, (str, tuple)):
        return spec
    name = type(ff).__name__
    if name == "ReferenceForceField":
        return "reference"
    if name == "DeePMD":
        return str(Path(ff.path).resolve())
    if name == "DeePMDEnsemble":
        return tuple(str(Path(m.path).resolve()) for m in ff.models)
    return None


def get_state(ff):
    """``(arrays, meta)`` of a force field's checkpointable state, or ``None``.

    ``meta["kind"]`` names the state class used by :func:`restore`.
    """
    if hasattr(ff, "get_state") and callable(ff.get_state):
        arrays, meta = ff.get_state()
        if isinstance(meta, dict) and meta.get("kind") in _STATE_CLASSES:
            return arrays, meta
    return None


def restore(spec, arrays=None, meta=None, **ctx):
    """Rebuild a checkpointed force field: from its saved state when one was recorded
    (``meta`` from :func:`get_state`), else by resolving ``spec`` again.

    Only classes registered for a state kind are instantiated (never a class named by the
    store itself), so opening someone else's store runs no code it names.

    Raises
    ------
    ValueError
        Neither a known state kind nor a rebuildable spec (the run used a force-field
        object built in Python: pass it again).
    """
    if meta is not None:
        kind = meta.get("kind")
        if kind not in _STATE_CLASSES:
            raise ValueError(f"checkpointed force field of unknown kind {kind!r}; known: "
                             f"{', '.join(sorted(_STATE_CLASSES))}")
        ff = _STATE_CLASSES[kind].from_state(arrays or {}, meta)
        species = _species(ctx.get("atoms"), ctx.get("symbols"), ctx.get("topology"))
        if species is not None and hasattr(ff, "bind") and getattr(ff, "n_atoms", None) is None:
            ff.bind(species)
        return ff
    if spec is None or (isinstance(spec, str) and spec.startswith("custom:")):
        raise ValueError("this run used a force-field object built in Python, which a store "
                         "cannot rebuild; pass it again (Simulation.resume(store, "
                         "potential=ff))")
    return resolve(spec, **ctx)


# --------------------------------------------------------------------------------------
# built-in kinds
# --------------------------------------------------------------------------------------


def _reference_factory(arg, *, atoms=None, topology=None, positions=None, cell=None,
                       material=None, symbols=None, **kwargs):
    from rotorlab.potentials.reference import ReferenceForceField

    if arg:
        raise PotentialSpecError(f"'reference' takes no argument (got 'reference:{arg}')")
    if topology is None:
        if atoms is None:
            raise ValueError("the reference force field is parametrised per structure: "
                             "call resolve('reference', atoms=atoms) (or pass topology=)")
        from rotorlab.materials import detect

        topology = detect(atoms, material=material)
        cell = atoms.cell.array if cell is None else cell
        positions = topology.whole_positions(atoms.positions, cell) if positions is None \
            else positions
    return ReferenceForceField.from_topology(topology, positions, cell, material=material,
                                             **kwargs)


def _bundled_factory(arg, *, atoms=None, material=None, symbols=None, **kwargs):
    if material is None:
        raise ValueError("'bundled' needs the material (material=..., or atoms with "
                         "info['material'])")
    opts = {"ensemble": arg == "ensemble", "compressed": arg == "compressed"}
    if arg not in (None, "ensemble", "compressed"):
        raise PotentialSpecError(f"'bundled:{arg}': expected bundled, bundled:ensemble or "
                                 "bundled:compressed")
    kwargs.pop("topology", None), kwargs.pop("positions", None), kwargs.pop("cell", None)
    info = bundled(material)
    _warn_caveats(info)
    return info.load(symbols, **opts, **kwargs)


def _warn_caveats(info: BundledModel) -> None:
    """One :class:`BundledModelCaveat` per model and process listing what its card misses."""
    if info.id in _WARNED:
        return
    _WARNED.add(info.id)
    cav = info.caveats()
    if cav:
        import warnings

        warnings.warn(f"bundled model {info.id}: " + "; ".join(cav) + " (its card: "
                      f"{info.directory / 'README.md'})", BundledModelCaveat, stacklevel=3)


def _deepmd_factory(arg, *, symbols=None, **kwargs):
    if not arg:
        raise PotentialSpecError("'deepmd' needs a model path: deepmd:PATH")
    for k in ("atoms", "topology", "positions", "cell", "material"):
        kwargs.pop(k, None)
    p = Path(arg).expanduser()
    if p.is_dir() and (p / "card.json").is_file():
        return _load_dir(p, symbols, kwargs)
    if not p.exists():
        raise FileNotFoundError(f"potential file {arg!r} does not exist")
    from rotorlab.potentials.deepmd import DeePMD

    return DeePMD(p, symbols, **kwargs)


def _ase_factory(arg, *, symbols=None, **kwargs):
    """``ase:MODULE:FUNCTION`` — ``FUNCTION()`` returns an ASE calculator."""
    import importlib

    from rotorlab.potentials.ase import ASECalculator

    mod, _, func = (arg or "").rpartition(":")
    if not mod or not func:
        raise PotentialSpecError(f"'ase:{arg}': expected ase:MODULE:FUNCTION, a function "
                                 "that returns an ASE calculator")
    try:
        factory = getattr(importlib.import_module(mod), func)
    except (ImportError, AttributeError) as exc:
        raise PotentialSpecError(f"'ase:{arg}': cannot import {func} from {mod} ({exc})") \
            from None
    for k in ("atoms", "topology", "positions", "cell", "material"):
        kwargs.pop(k, None)
    calc = factory()
    ff = ASECalculator(calc, symbols, id=f"ase:{mod}:{func}")
    ff.spec = f"ase:{mod}:{func}"
    return ff


def _register_builtins():
    from rotorlab.potentials.deepmd import DeePMD, DeePMDEnsemble
    from rotorlab.potentials.reference import ReferenceForceField

    register("reference", _reference_factory, state_class=ReferenceForceField,
             description="rotorlab's numba test/demo force field (not physics-grade)")
    register("bundled", _bundled_factory,
             description="the material's bundled DeePMD model (bundled:ensemble, "
                         "bundled:compressed)")
    register("deepmd", _deepmd_factory, state_class=DeePMD,
             description="a DeePMD-kit model file: deepmd:PATH (a bare path works too)")
    _STATE_CLASSES["deepmd-ensemble"] = DeePMDEnsemble
    register("ase", _ase_factory,
             description="any ASE calculator: ase:MODULE:FUNCTION returning a calculator")

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


_register_builtins()
