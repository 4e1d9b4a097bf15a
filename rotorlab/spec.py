"""`RunSpec`: the one frozen, validated description of a constrained MD run.

Everything that defines a run — what is simulated (a catalog material and its size/variant,
or a structure file), how (constraint mode, temperature, timestep, thermostat), for how long
(equilibration and production steps, frame and checkpoint intervals), with which potential
and which random seed — lives in one :class:`RunSpec`. The CLI, the demo, ``resume``, a
campaign and the app all build one; :meth:`rotorlab.Simulation.from_spec` runs it and the
store keeps it (attribute ``run_spec`` and in every checkpoint), so a run can always be
rebuilt and reproduced bit for bit.

>>> from rotorlab.spec import RunSpec
>>> spec = RunSpec(material="LiBH4", mode="RC", temperature=600, steps=2000, seed=1)
>>> spec.store_name
'LiBH4-quick-RC-600K-r0-...'
>>> RunSpec.from_json(spec.to_json()) == spec
True

Invalid values fail at construction with a :class:`SpecError` that names the field.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = ["RunSpec", "SpecError", "SPEC_VERSION", "MAX_ATOMS"]

#: Format version of a serialised RunSpec.
SPEC_VERSION = 1

#: Largest system :meth:`RunSpec.build_structure` builds unless ``max_atoms`` is raised
#: (a 100×100×100 supercell would otherwise try to allocate gigabytes before failing).
MAX_ATOMS = 50_000

_MODES = ("UC", "TC", "RC", "RTC", "RTVC", "RVC")
_THERMOSTATS = ("nhc", "csvr", "langevin", "nve")
_THERMOSTAT_ALIASES = {"nosehoover": "nhc", "nosehooverchain": "nhc", "bussi": "csvr",
                       "baoab": "langevin", "none": "nve"}
#: Largest timestep accepted [fs]; atomistic MD is unstable far below this.
MAX_TIMESTEP_FS = 20.0


class SpecError(ValueError):
    """A run description is invalid; the message names the field and what is allowed."""


def _fail(name: str, msg: str):
    raise SpecError(f"RunSpec.{name}: {msg}")


def _int(name: str, value, minimum: int | None = None, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and not isinstance(value, bool) \
                and math.isfinite(float(value)) and float(value) == int(value):
            value = int(value)
        else:
            _fail(name, f"must be a whole number, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        _fail(name, f"must be >= {minimum}, got {value}")
    return value


def _float(name: str, value, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        try:
            value = float(value)
        except (TypeError, ValueError):
            _fail(name, f"must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        _fail(name, f"must be finite, got {value!r}")
    return value


def _norm_mode(value):
    """``"rc"`` → ``"RC"``; a mapping of rotor kind → mode → sorted tuple of pairs."""
    if isinstance(value, Mapping) or (isinstance(value, (list, tuple)) and value
                                      and all(isinstance(v, (list, tuple)) for v in value)):
        items = value.items() if isinstance(value, Mapping) else value
        out = []
        for kind, mode in items:
            m = str(mode).upper()
            if m not in _MODES:
                _fail("mode", f"unknown constraint mode {mode!r} for {kind!r}; choose one of "
                              f"{', '.join(_MODES)}")
            out.append((str(kind), m))
        if not out:
            _fail("mode", "an empty per-species mapping; give e.g. {'PS4': 'RC'}")
        return tuple(sorted(out))
    if not isinstance(value, str):
        _fail("mode", f"must be one of {', '.join(_MODES)} or a mapping rotor kind -> mode, "
                      f"got {value!r}")
    m = value.strip().upper()
    if m not in _MODES:
        _fail("mode", f"unknown constraint mode {value!r}; choose one of {', '.join(_MODES)}")
    return m


def _norm_size(value):
    if isinstance(value, str):
        v = value.strip().lower()
        if v not in ("quick", "paper"):
            _fail("size", f"must be 'quick', 'paper' or three positive integers, got {value!r}")
        return v
    try:
        sc = tuple(value)
    except TypeError:
        _fail("size", f"must be 'quick', 'paper' or three positive integers, got {value!r}")
    if len(sc) != 3:
        _fail("size", f"must be 'quick', 'paper' or three positive integers, got {value!r}")
    return tuple(_int("size", v, minimum=1) for v in sc)


def _norm_names(name: str, value):
    if value is None:
        return None
    if isinstance(value, str):
        value = [v for v in value.replace(" ", "").split(",") if v]
    out = tuple(str(v) for v in value)
    if not out:
        _fail(name, "an empty list; leave it unset for the default")
    return out


def _norm_potential(value):
    if value is None:
        _fail("potential", "no potential given: use 'reference' (rotorlab's test force field, "
                           "not a physics-grade model), 'bundled', a DeePMD model file, "
                           "'a.pb,b.pb' (an ensemble) or a registered kind 'kind:argument'")
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",") if p.strip()]
        if not parts:
            _fail("potential", "an empty potential name")
        return parts[0] if len(parts) == 1 else tuple(parts)
    if isinstance(value, (list, tuple)):
        parts = tuple(os.fspath(p) if isinstance(p, os.PathLike) else str(p) for p in value)
        if not parts:
            _fail("potential", "an empty list of model files")
        return parts[0] if len(parts) == 1 else parts
    _fail("potential", f"must be a name, a model path or a list of model paths, got "
                       f"{type(value).__name__} (force-field objects are passed to "
                       "Simulation(potential=...) directly, not in a RunSpec)")


def _norm_thermostat(value):
    key = str(value).lower().replace("-", "").replace("_", "")
    key = _THERMOSTAT_ALIASES.get(key, key)
    if key not in _THERMOSTATS:
        _fail("thermostat", f"unknown thermostat {value!r}; choose one of {', '.join(_THERMOSTATS)}")
    return key


@dataclass(frozen=True)
class RunSpec:
    """Complete, validated description of one constrained MD run.

    Parameters
    ----------
    material : str, optional
        Catalog material (``rotorlab.materials.names()``). With ``structure`` it names the
        catalog material the file is a cell of (its units, mobile ion and defaults apply).
    structure : str, optional
        Structure file (CIF, POSCAR, extxyz, anything ASE reads) instead of the catalog
        structure. A relative path is made absolute by :meth:`resolved`.
    size : {"quick", "paper"} or (nx, ny, nz)
        Supercell of the catalog (or file) structure. Default ``"quick"`` for catalog
        materials, ``(1, 1, 1)`` for a file without a material.
    variant : str, optional
        Alternative catalog structure (``rotorlab.materials.variants(name)``).
    rotors : sequence of str, optional
        Units treated as rotors (default: the material's), e.g. ``("PS4", "SnS4")``.
    mode : str or mapping
        ``UC, TC, RC, RTC, RTVC, RVC``, or ``{rotor kind: mode}`` (stored as sorted pairs).
    constrain_species : sequence of str, optional
        Rotor kinds a single ``mode`` applies to (default all rotors).
    temperature : float
        Target and initial temperature [K]; > 0 unless ``thermostat="nve"``.
    timestep : float, optional
        [fs], in (0, 20]; default the material's (the study's Table S1).
    thermostat : {"nhc", "csvr", "langevin", "nve"}
        Default Nosé–Hoover chain, as in the reference study.
    thermostat_tau : float
        Thermostat time constant [fs] (the study: 100 fs).
    thermostat_chain : int
        Nosé–Hoover chain length (the study: 3).
    equilibration_steps, steps : int
        Steps before production (not stored) and production steps (>= 0).
    frame_interval : int
        Production steps between stored frames (>= 1).
    checkpoint_interval : int, optional
        Steps between checkpoints (default ``max(1000, frame_interval)`` rounded down to a
        multiple of ``frame_interval``).
    potential : str or tuple of str
        ``"reference"``, ``"bundled"``, a model file, a model id, ``"kind:argument"`` of a
        registered kind, or several model files (an ensemble; ``"a.pb,b.pb"`` is split).
    type_map : sequence of str, optional
        Element of each type of a DeePMD model, in the model's type order, for models whose
        own type map does not hold element symbols (e.g. ``("Li", "B", "H")``).
    seed : int, optional
        PCG64 seed; ``None`` draws one, which :meth:`resolved` records.
    replica : int
        Index of an independent replica (>= 0); part of the store name. Replicas of one
        condition differ by seed: with ``seed=None`` each draws its own.
    relax : bool
        Relax positions and cell with the potential before MD.
    store_forces : bool
        Also store projected forces.
    chunk_frames : int
        Frames per store chunk (the unit of crash loss).
    explosion_factor : float
        Stop when the temperature exceeds this multiple of the target (> 1).
    min_distance : float
        Stop when two atoms come closer than this [Å] (>= 0; 0 disables).

    Raises
    ------
    SpecError
        At construction, naming the invalid field.
    """

    material: str | None = None
    structure: str | None = None
    size: Any = None
    variant: str | None = None
    rotors: tuple | None = None
    mode: Any = "UC"
    constrain_species: tuple | None = None
    temperature: float = None  # type: ignore[assignment]
    timestep: float | None = None
    thermostat: str = "nhc"
    thermostat_tau: float = 100.0
    thermostat_chain: int = 3
    equilibration_steps: int = 0
    steps: int = 1000
    frame_interval: int = 10
    checkpoint_interval: int | None = None
    potential: Any = "reference"
    type_map: tuple | None = None
    seed: int | None = None
    replica: int = 0
    relax: bool = False
    store_forces: bool = False
    chunk_frames: int = 50
    explosion_factor: float = 5.0
    min_distance: float = 0.5
    version: int = field(default=SPEC_VERSION, compare=False, repr=False)

    # ------------------------------------------------------------------ validation

    def __post_init__(self):
        s = object.__setattr__
        if self.material is None and self.structure is None:
            _fail("material", "give a catalog material (rotorlab materials) or a structure file")
        if self.material is not None:
            if not isinstance(self.material, str) or not self.material.strip():
                _fail("material", f"must be a material name, got {self.material!r}")
            from rotorlab.materials.catalog import MATERIALS

            match = [k for k in MATERIALS if k.lower() == self.material.strip().lower()]
            if not match:
                _fail("material", f"unknown material {self.material!r}; known: "
                                  f"{', '.join(MATERIALS)}")
            s(self, "material", match[0])
        if self.structure is not None:
            st = os.fspath(self.structure) if isinstance(self.structure, os.PathLike) \
                else self.structure
            if not isinstance(st, str) or not st.strip():
                _fail("structure", f"must be a file path, got {self.structure!r}")
            s(self, "structure", st)
        size = self.size
        if size is None:
            size = "quick" if self.material is not None else (1, 1, 1)
        size = _norm_size(size)
        if isinstance(size, str) and self.material is None:
            _fail("size", f"{size!r} needs a catalog material (material=...); give three "
                          "integers for a structure file")
        s(self, "size", size)
        if self.variant is not None:
            if self.structure is not None:
                _fail("variant", "a variant selects a catalog structure; it cannot be combined "
                                 "with structure=")
            s(self, "variant", str(self.variant))
        s(self, "rotors", _norm_names("rotors", self.rotors))
        s(self, "mode", _norm_mode(self.mode))
        s(self, "constrain_species", _norm_names("constrain_species", self.constrain_species))
        if self.constrain_species is not None and not isinstance(self.mode, str):
            _fail("constrain_species", "cannot be combined with a per-species mode mapping")
        s(self, "thermostat", _norm_thermostat(self.thermostat))
        if self.temperature is None:
            _fail("temperature", "is required [K]")
        t = _float("temperature", self.temperature)
        if self.thermostat == "nve":
            if t < 0:
                _fail("temperature", f"must be >= 0 K, got {t:g}")
        elif not t > 0:
            _fail("temperature", f"must be > 0 K for a thermostatted run (got {t:g}): a "
                                 "thermostat at 0 K has no kinetic energy to control; use "
                                 "thermostat='nve' for a 0 K start or `rotorlab relax` "
                                 "for a minimum")
        if t > 1e5:
            _fail("temperature", f"{t:g} K is not a physical MD temperature (limit 1e5 K)")
        s(self, "temperature", t)
        dt = _float("timestep", self.timestep, allow_none=True)
        if dt is not None and not 0 < dt <= MAX_TIMESTEP_FS:
            _fail("timestep", f"must be in (0, {MAX_TIMESTEP_FS:g}] fs, got {dt:g} "
                              "(the study uses 0.5 fs with H, 2 fs without)")
        s(self, "timestep", dt)
        tau = _float("thermostat_tau", self.thermostat_tau)
        if not tau > 0:
            _fail("thermostat_tau", f"must be > 0 fs, got {tau:g}")
        s(self, "thermostat_tau", tau)
        s(self, "thermostat_chain", _int("thermostat_chain", self.thermostat_chain, minimum=1))
        s(self, "equilibration_steps", _int("equilibration_steps", self.equilibration_steps,
                                            minimum=0))
        s(self, "steps", _int("steps", self.steps, minimum=0))
        s(self, "frame_interval", _int("frame_interval", self.frame_interval, minimum=1))
        ci = _int("checkpoint_interval", self.checkpoint_interval, minimum=1, allow_none=True)
        s(self, "checkpoint_interval", ci)
        s(self, "potential", _norm_potential(self.potential))
        s(self, "type_map", _norm_names("type_map", self.type_map))
        if self.type_map is not None:
            if len(set(self.type_map)) != len(self.type_map):
                _fail("type_map", f"repeated elements in {list(self.type_map)}")
            if self.potential_list[0].split(":")[0] in ("reference", "ase"):
                _fail("type_map", "applies to DeePMD models only, not to "
                                  f"{self.potential_list[0]!r}")
        seed = _int("seed", self.seed, minimum=0, allow_none=True)
        if seed is not None and seed >= 2 ** 63:
            _fail("seed", f"must be < 2**63, got {seed}")
        s(self, "seed", seed)
        s(self, "replica", _int("replica", self.replica, minimum=0))
        for name in ("relax", "store_forces"):
            v = getattr(self, name)
            if not isinstance(v, bool):
                _fail(name, f"must be true or false, got {v!r}")
        s(self, "chunk_frames", _int("chunk_frames", self.chunk_frames, minimum=1))
        ef = _float("explosion_factor", self.explosion_factor)
        if not ef > 1:
            _fail("explosion_factor", f"must be > 1, got {ef:g}")
        s(self, "explosion_factor", ef)
        md = _float("min_distance", self.min_distance)
        if md < 0:
            _fail("min_distance", f"must be >= 0 Å, got {md:g}")
        s(self, "min_distance", md)
        v = _int("version", self.version, minimum=1)
        if v > SPEC_VERSION:
            _fail("version", f"this spec was written by a newer rotorlab (format {v}); "
                             f"this one reads format {SPEC_VERSION}")
        s(self, "version", v)

    def warnings(self) -> list[str]:
        """Things that are allowed but probably not what was meant (one line each)."""
        out = []
        if self.steps and self.frame_interval > self.steps:
            out.append(f"frame_interval {self.frame_interval} is larger than steps "
                       f"{self.steps}: only the first frame will be stored")
        if self.steps == 0 and self.equilibration_steps == 0:
            out.append("steps and equilibration_steps are 0: nothing will be simulated")
        return out

    # ------------------------------------------------------------------ derived values

    @property
    def mode_label(self) -> str:
        """``"RC"``, or ``"PS4:RC+SnS4:UC"`` for per-species modes."""
        if isinstance(self.mode, str):
            return self.mode
        return "+".join(f"{k}:{m}" for k, m in self.mode)

    @property
    def mode_value(self):
        """The mode as :class:`~rotorlab.md.constraints.Constraints` takes it (str or dict)."""
        return self.mode if isinstance(self.mode, str) else dict(self.mode)

    @property
    def potential_list(self) -> list[str]:
        """The potential spec as a list of strings (one element unless an ensemble)."""
        return list(self.potential) if isinstance(self.potential, tuple) else [self.potential]

    @property
    def potential_string(self) -> str:
        """The potential spec as one string (``"a.pb,b.pb"`` for an ensemble)."""
        return ",".join(self.potential_list)

    @property
    def total_steps(self) -> int:
        return self.equilibration_steps + self.steps

    def checkpoint_every(self) -> int:
        """The checkpoint interval in steps (the default rule when unset)."""
        if self.checkpoint_interval is not None:
            return self.checkpoint_interval
        ci = max(1000, self.frame_interval)
        return ci - ci % self.frame_interval

    def digest(self, n: int = 8) -> str:
        """Hex digest of the canonical JSON (every field that defines the run)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:n]

    @property
    def store_name(self) -> str:
        """Deterministic store directory name, e.g. ``LiBH4-quick-RC-600K-r0-1a2b3c4d.zarr``.

        Readable fields first (material, size, mode, temperature, replica), then a digest of
        the whole spec, so two specs differing in anything (steps, seed, potential...) never
        share a store and the same spec always maps to the same name.
        """
        if self.material is not None:
            what = self.material
        else:
            what = Path(self.structure).stem
        what = "".join(c if c.isalnum() or c in "-_" else "_" for c in what)
        size = self.size if isinstance(self.size, str) else "x".join(map(str, self.size))
        if self.variant:
            size += "-" + "".join(c if c.isalnum() or c in "-_" else "_" for c in self.variant)
        mode = self.mode_label.replace(":", "_").replace("+", "-")
        return (f"{what}-{size}-{mode}-{self.temperature:g}K-r{self.replica}-"
                f"{self.digest()}.zarr")

    # ------------------------------------------------------------------ resolution

    def resolved(self, *, timestep: float | None = None) -> "RunSpec":
        """A copy with everything a rerun needs fixed: seed drawn, timestep filled in
        (``timestep`` or the material's default), structure and model paths absolute.
        """
        changes: dict[str, Any] = {}
        if self.seed is None:
            import numpy as np

            changes["seed"] = int(np.random.SeedSequence().generate_state(
                1, dtype=np.uint64)[0] >> 1)
        if self.timestep is None and timestep is not None:
            changes["timestep"] = float(timestep)
        if self.structure is not None and not self.structure.startswith("memory:") \
                and not os.path.isabs(self.structure):
            changes["structure"] = str(Path(self.structure).expanduser().resolve())
        pots = []
        for p in self.potential_list:
            q = Path(p).expanduser()
            is_path = p not in ("reference", "bundled") and q.exists()
            pots.append(str(q.resolve()) if is_path else p)
        if pots != self.potential_list:
            changes["potential"] = tuple(pots) if len(pots) > 1 else pots[0]
        return dataclasses.replace(self, **changes) if changes else self

    def replace(self, **changes) -> "RunSpec":
        """A validated copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ structure

    def build_structure(self, *, max_atoms: int | None = None):
        """The starting structure as :class:`ase.Atoms` (catalog or file, supercell applied).

        Parameters
        ----------
        max_atoms : int, optional
            Refuse larger systems before allocating them (default :data:`MAX_ATOMS`).

        Raises
        ------
        SpecError
            The supercell would exceed ``max_atoms``.
        FileNotFoundError, rotorlab.materials.StructureError, KeyError
            A missing or unusable structure.
        """
        from rotorlab import materials

        limit = MAX_ATOMS if max_atoms is None else int(max_atoms)
        if self.structure is None:
            if not isinstance(self.size, str):
                unit = materials.unit_cell(self.material, **self._variant_kw())
                self._check_atoms(len(unit) * math.prod(self.size), limit)
            return materials.get(self.material, size=self.size, **self._variant_kw())
        path = Path(self.structure).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"structure file not found: {path}")
        if path.suffix.lower() == ".cif":
            unit = materials.from_cif(path, material=self.material, size=(1, 1, 1))
        else:
            import ase.io

            try:
                unit = ase.io.read(str(path))
            except Exception as exc:
                raise materials.StructureError(
                    f"could not read structure file {path}: {exc}") from exc
            if self.material is not None:
                unit.info["material"] = self.material
        sc = self.size
        if isinstance(sc, str):
            mat = materials.catalog(self.material)
            sc = tuple(mat.quick_supercell if sc == "quick" else mat.paper_supercell)
        self._check_atoms(len(unit) * math.prod(sc), limit)
        atoms = unit.repeat(sc) if tuple(sc) != (1, 1, 1) else unit
        atoms.info.update(unit.info)
        atoms.info["supercell"] = tuple(int(x) for x in sc)
        atoms.info.setdefault("source", str(path))
        if self.material is not None:
            atoms.info["material"] = self.material
        atoms.pbc = True
        return atoms

    def _variant_kw(self) -> dict:
        return {} if self.variant is None else {"variant": self.variant}

    @staticmethod
    def _check_atoms(n: int, limit: int) -> None:
        if n > limit:
            mem_gb = n * 3 * 8 * 12 / 1e9  # positions, velocities, forces and work arrays
            _fail("size", f"this supercell has {n} atoms (limit {limit}; state alone needs "
                          f"~{mem_gb:.1f} GB and each step would be very slow); choose a "
                          "smaller size, or raise the limit with max_atoms= / --max-atoms")

    # ------------------------------------------------------------------ serialisation

    def to_dict(self) -> dict:
        """Plain JSON-compatible dict (tuples become lists; ``version`` included)."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, tuple):
                v = [list(x) if isinstance(x, tuple) else x for x in v]
            out[f.name] = v
        if not isinstance(self.mode, str):
            out["mode"] = dict(self.mode)
        return out

    @classmethod
    def from_dict(cls, data: Mapping) -> "RunSpec":
        """Build (and validate) from :meth:`to_dict` output or a hand-written mapping.

        Raises
        ------
        SpecError
            Unknown keys (listed) or invalid values.
        """
        if not isinstance(data, Mapping):
            raise SpecError(f"a RunSpec is a mapping of fields, got {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise SpecError(f"RunSpec: unknown field(s) {', '.join(unknown)}; known fields: "
                            f"{', '.join(sorted(names))}")
        kw = dict(data)
        if isinstance(kw.get("size"), list):
            kw["size"] = tuple(kw["size"])
        return cls(**kw)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "RunSpec":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"RunSpec: not valid JSON ({exc})") from None
        return cls.from_dict(data)

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=True)

    @classmethod
    def from_yaml(cls, text: str) -> "RunSpec":
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SpecError(f"RunSpec: not valid YAML ({exc})") from None
        return cls.from_dict(data)

    def save(self, path) -> Path:
        """Write the spec to ``path`` (``.json``, ``.yaml``/``.yml``)."""
        path = Path(path)
        text = self.to_yaml() if path.suffix.lower() in (".yaml", ".yml") else self.to_json()
        path.write_text(text if text.endswith("\n") else text + "\n")
        return path

    @classmethod
    def load(cls, path) -> "RunSpec":
        """Read a spec file written by :meth:`save` (or by hand).

        Raises
        ------
        FileNotFoundError, SpecError
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no run spec file at {path}")
        text = path.read_text()
        if path.suffix.lower() in (".yaml", ".yml"):
            return cls.from_yaml(text)
        return cls.from_json(text)

    @classmethod
    def from_legacy_config(cls, cfg: Mapping, attrs: Mapping | None = None) -> "RunSpec":
        """Rebuild the spec of a run written before RunSpec existed (checkpoint ``config``)."""
        attrs = attrs or {}
        pot = cfg.get("potential", {})
        kind = pot.get("kind") if isinstance(pot, Mapping) else None
        if kind == "reference":
            potential = "reference"
        elif kind == "load":
            potential = pot.get("spec")
        else:
            potential = f"custom:{pot.get('id') or 'object'}" if isinstance(pot, Mapping) \
                else str(pot)
        mode = cfg.get("mode", "UC")
        if isinstance(mode, str) and ":" in mode:
            mode = dict(part.split(":") for part in mode.split("+"))
        return cls(
            material=cfg.get("material") or attrs.get("material"),
            structure=None if cfg.get("material") else "<unknown: written by rotorlab < 0.2>",
            size=(1, 1, 1) if not cfg.get("material") else "quick",
            mode=mode, constrain_species=cfg.get("constrain_species"),
            temperature=cfg["temperature"], timestep=cfg.get("timestep"),
            thermostat=cfg.get("thermostat", "nhc"),
            thermostat_tau=cfg.get("thermostat_tau", 100.0),
            equilibration_steps=cfg.get("equilibration_steps", 0), steps=cfg.get("steps", 0),
            frame_interval=cfg.get("frame_interval", 10),
            checkpoint_interval=cfg.get("checkpoint_interval"), potential=potential,
            seed=cfg.get("seed"), store_forces=bool(cfg.get("store_forces", False)),
            explosion_factor=cfg.get("explosion_factor", 5.0),
            min_distance=cfg.get("min_distance", 0.5))

    def describe(self) -> str:
        """One line: what, how, how long, with what."""
        what = self.material or Path(self.structure).name
        size = self.size if isinstance(self.size, str) else "x".join(map(str, self.size))
        dt = f"{self.timestep:g} fs" if self.timestep else "default dt"
        return (f"{what} ({size}{', ' + self.variant if self.variant else ''}) "
                f"{self.mode_label} {self.temperature:g} K, {dt}, {self.thermostat}, "
                f"{self.equilibration_steps}+{self.steps} steps, potential "
                f"{self.potential_string}, seed {self.seed}, replica {self.replica}")


def warn_spec(spec: RunSpec, stacklevel: int = 3) -> None:
    """Emit :meth:`RunSpec.warnings` as ``UserWarning``."""
    for w in spec.warnings():
        warnings.warn(w, UserWarning, stacklevel=stacklevel)
