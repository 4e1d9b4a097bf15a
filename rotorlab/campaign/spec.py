"""`CampaignSpec`: a material × mode × temperature × replica study, expanded into RunSpecs.

A campaign file (YAML or JSON) names the materials, constraint modes, temperatures and the
number of replicas, plus everything every run shares (size, length, potential, thermostat)
and the analysis options::

    name: demo
    materials: [Li3PS4]
    modes: [UC, RC, RTC, RTVC]
    temperatures: [700, 900]          # K
    replicas: 1
    size: quick
    steps: 4000
    equilibration_steps: 500
    frame_interval: 10
    potential: bundled
    potential_fallback: reference     # used only where `bundled` has no model (reported)
    base_seed: 2025
    retries: 2

Every per-run setting (``temperatures``, ``replicas``, ``size``, ``steps``,
``equilibration_steps``, ``frame_interval``, ``checkpoint_interval``, ``timestep``,
``potential``) may instead be a mapping by material, by mode, or by material then mode — the
study's grid differs per material and mode::

    temperatures:
      LiBH4: {UC: [450, 475, 500, 525, 575], RC: [475, 500, 525, 575], RTC: [575]}
    replicas: {LiBH4: {UC: 3, RC: 3, RTC: 1}}

A mode absent from a material's mapping (or given an empty temperature list) is not run for
that material.

Seeds are deterministic: replica ``k`` of (material, mode, T) gets
``seed = (base_seed + int(sha256("material|mode|T|k")[:15], 16)) mod 2**63``, with ``T``
written with ``%g`` and ``mode`` the RunSpec mode label — so re-expanding a spec always
gives the same seeds and store names, and no two runs share a seed.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from rotorlab.spec import RunSpec, SpecError

__all__ = ["CampaignSpec", "CampaignSpecError", "PlannedRun", "run_seed", "MODE_ORDER"]

#: Canonical order of constraint modes along the ``mode`` axis of a campaign.
MODE_ORDER = ("UC", "TC", "RC", "RTC", "RTVC", "RVC")

#: Settings that may be given per material and/or per mode.
PER_RUN = ("temperatures", "replicas", "size", "steps", "equilibration_steps",
           "frame_interval", "checkpoint_interval", "timestep", "potential")

#: Analysis options understood by :mod:`rotorlab.campaign.collect` (defaults).
ANALYSIS_DEFAULTS = {
    "transport": True, "rotation": True, "hops": True, "vibrations": True,
    "free_energy": True, "density": True,
    "transport_kw": {}, "reorientation_kw": {}, "hops_kw": {}, "dos_kw": {},
    "density_kw": {}, "free_energy_kw": {},
}


class CampaignSpecError(SpecError):
    """A campaign description is invalid; the message names the field."""


def _fail(name: str, msg: str):
    raise CampaignSpecError(f"CampaignSpec.{name}: {msg}")


def run_seed(base_seed: int, material: str, mode_label: str, temperature: float,
             replica: int) -> int:
    """Deterministic seed of one replica (see the module docstring).

    Parameters
    ----------
    base_seed : int
    material, mode_label : str
    temperature : float
        [K]
    replica : int

    Returns
    -------
    int
        In ``[0, 2**63)``.
    """
    key = f"{material}|{mode_label}|{float(temperature):g}|{int(replica)}".encode()
    h = int(hashlib.sha256(key).hexdigest()[:15], 16)
    return (int(base_seed) + h) % (2 ** 63)


@dataclass(frozen=True)
class PlannedRun:
    """One run of a campaign: its grid coordinates and its :class:`RunSpec`.

    Attributes
    ----------
    material, mode : str
        ``mode`` is the RunSpec mode label (``"RC"``, ``"PS4:RC+SnS4:UC"``).
    temperature : float
        [K]
    replica : int
    spec : RunSpec
    requested_potential : str
        The potential the campaign asked for (``spec.potential`` may be the fallback).
    fallback : bool
        Whether ``potential_fallback`` replaced the requested potential.
    """

    material: str
    mode: str
    temperature: float
    replica: int
    spec: RunSpec
    requested_potential: str
    fallback: bool = False

    @property
    def name(self) -> str:
        """The run's store directory name (``spec.store_name``)."""
        return self.spec.store_name


def _is_mode_key(k) -> bool:
    return isinstance(k, str) and k.strip().upper() in MODE_ORDER


def _select(name: str, value, material: str, mode: str, materials):
    """Resolve a possibly per-material / per-mode value. ``None`` = not given for this cell."""
    for _ in range(2):
        if not isinstance(value, Mapping):
            return value
        keys = list(value)
        if keys and all(_is_mode_key(k) for k in keys):
            norm = {k.strip().upper(): v for k, v in value.items()}
            if mode not in norm:
                return None
            value = norm[mode]
        elif keys and all(isinstance(k, str) and k in materials for k in keys):
            if material not in value:
                return None
            value = value[material]
        else:
            bad = [k for k in keys if not (_is_mode_key(k) or k in materials)]
            _fail(name, f"a mapping must be keyed by materials ({', '.join(materials)}) or by "
                        f"modes ({', '.join(MODE_ORDER)}), not a mix; unexpected key(s) {bad}")
    if isinstance(value, Mapping):
        _fail(name, "nested deeper than material -> mode -> value")
    return value


def _mode_key(mode) -> str:
    if isinstance(mode, str):
        return mode.strip().upper()
    return RunSpec(material="LiBH4", temperature=300, mode=mode).mode_label


@dataclass(frozen=True)
class CampaignSpec:
    """A study: materials × modes × temperatures × replicas, and how every run is made.

    Parameters
    ----------
    name : str
        Campaign name (letters, digits, ``-_.``).
    materials : list of str
        Catalog materials.
    modes : list
        Constraint modes (``UC, TC, RC, RTC, RTVC, RVC``) or per-species mappings.
    temperatures : list of float or mapping
        [K]; per material and/or mode (see module docstring).
    replicas : int or mapping
        Independent replicas per (material, mode, T), >= 1.
    size : str, (nx, ny, nz) or mapping
        ``"quick"``, ``"paper"`` or a supercell.
    steps, equilibration_steps, frame_interval : int or mapping
        Production steps, equilibration steps, steps between frames.
    checkpoint_interval : int, optional
        Steps between checkpoints (the unit of loss when a worker dies).
    timestep : float or mapping, optional
        [fs]; default the material's.
    thermostat : str
        ``nhc`` (default), ``csvr``, ``langevin``, ``nve``.
    thermostat_tau : float
        [fs]
    potential : str or mapping
        ``reference``, ``bundled``, a model file, ``kind:arg``.
    potential_fallback : str, optional
        Used instead of ``bundled`` for a material without a bundled model; every such run
        is flagged in the state file, ``campaign.nc`` and the report.
    base_seed : int
        Seeds derive from it deterministically (:func:`run_seed`).
    retries : int
        How many times a failed run is resubmitted (0: never).
    threads_per_worker : int
        Threads each run may use (numba, OpenMP, TensorFlow intra-op); 1 by default.
    run_options : mapping
        Further :class:`RunSpec` fields shared by all runs (``chunk_frames``,
        ``store_forces``, ``relax``, ``thermostat_chain``, ``explosion_factor``...).
    analysis : mapping
        Options of the collection step (keys of ``ANALYSIS_DEFAULTS``).
    description : str
        Free text shown in the report.

    Raises
    ------
    CampaignSpecError
        At construction, naming the field; also any invalid expanded :class:`RunSpec`.
    """

    name: str = "campaign"
    materials: tuple = ()
    modes: tuple = ("UC",)
    temperatures: Any = None
    replicas: Any = 1
    size: Any = "quick"
    steps: Any = 1000
    equilibration_steps: Any = 0
    frame_interval: Any = 10
    checkpoint_interval: Any = None
    timestep: Any = None
    thermostat: str = "nhc"
    thermostat_tau: float = 100.0
    potential: Any = "reference"
    potential_fallback: str | None = None
    base_seed: int = 0
    retries: int = 2
    threads_per_worker: int = 1
    run_options: Any = field(default_factory=dict)
    analysis: Any = field(default_factory=dict)
    description: str = ""

    def __post_init__(self):
        s = object.__setattr__
        if not isinstance(self.name, str) or not self.name.strip() or not all(
                c.isalnum() or c in "-_." for c in self.name.strip()):
            _fail("name", f"must be a non-empty name of letters, digits, '-', '_' or '.', "
                          f"got {self.name!r}")
        s(self, "name", self.name.strip())
        mats = self.materials
        if isinstance(mats, str):
            mats = [m for m in mats.replace(" ", "").split(",") if m]
        if not mats:
            _fail("materials", "give at least one catalog material")
        from rotorlab.materials.catalog import MATERIALS

        out = []
        for m in mats:
            match = [k for k in MATERIALS if isinstance(m, str) and k.lower() == m.strip().lower()]
            if not match:
                _fail("materials", f"unknown material {m!r}; known: {', '.join(MATERIALS)}")
            if match[0] in out:
                _fail("materials", f"{match[0]} is listed twice")
            out.append(match[0])
        s(self, "materials", tuple(out))
        modes = self.modes
        if isinstance(modes, (str, Mapping)):
            modes = [modes]
        if not modes:
            _fail("modes", "give at least one constraint mode")
        norm = []
        for m in modes:
            try:
                key = _mode_key(m)
            except SpecError as exc:
                _fail("modes", str(exc).split(": ", 1)[-1])
            if isinstance(m, str) and key not in MODE_ORDER:
                _fail("modes", f"unknown constraint mode {m!r}; choose one of "
                               f"{', '.join(MODE_ORDER)} or a mapping rotor kind -> mode")
            if key in [_mode_key(x) for x in norm]:
                _fail("modes", f"mode {key} is listed twice")
            norm.append(m.strip().upper() if isinstance(m, str) else dict(m))
        s(self, "modes", tuple(norm))
        if self.temperatures is None:
            _fail("temperatures", "is required: a list of temperatures [K], or a mapping by "
                                  "material and/or mode")
        for name in ("thermostat_tau",):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not v > 0:
                _fail(name, f"must be a positive number, got {v!r}")
        for name, lo in (("base_seed", 0), ("retries", 0), ("threads_per_worker", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo:
                _fail(name, f"must be a whole number >= {lo}, got {v!r}")
            s(self, name, int(v))
        if self.potential_fallback is not None and (
                not isinstance(self.potential_fallback, str) or not self.potential_fallback):
            _fail("potential_fallback", f"must be a potential name such as 'reference', got "
                                        f"{self.potential_fallback!r}")
        if not isinstance(self.run_options, Mapping):
            _fail("run_options", "must be a mapping of RunSpec fields")
        allowed = {f.name for f in fields(RunSpec)} - {
            "material", "mode", "temperature", "replica", "seed", "size", "steps",
            "equilibration_steps", "frame_interval", "checkpoint_interval", "timestep",
            "thermostat", "thermostat_tau", "potential", "version"}
        bad = sorted(set(self.run_options) - allowed)
        if bad:
            _fail("run_options", f"unknown or campaign-level field(s) {bad}; allowed: "
                                 f"{', '.join(sorted(allowed))}")
        s(self, "run_options", dict(self.run_options))
        if self.analysis is None:
            s(self, "analysis", {})
        if not isinstance(self.analysis, Mapping):
            _fail("analysis", "must be a mapping of analysis options")
        bad = sorted(set(self.analysis) - set(ANALYSIS_DEFAULTS))
        if bad:
            _fail("analysis", f"unknown option(s) {bad}; known: {', '.join(ANALYSIS_DEFAULTS)}")
        s(self, "analysis", dict(self.analysis))
        if not isinstance(self.description, str):
            _fail("description", "must be text")
        # every grid cell must expand to a valid RunSpec: fail now, naming the field
        self.expand()

    # ------------------------------------------------------------------ expansion

    @property
    def mode_labels(self) -> tuple:
        """The modes as RunSpec mode labels, in the order given."""
        return tuple(_mode_key(m) for m in self.modes)

    @property
    def analysis_options(self) -> dict:
        """``ANALYSIS_DEFAULTS`` updated with this campaign's ``analysis``."""
        return {**ANALYSIS_DEFAULTS, **self.analysis}

    def _value(self, name, material, mode_label):
        return _select(name, getattr(self, name), material, mode_label, self.materials)

    def temperatures_of(self, material: str, mode_label: str) -> list:
        """Temperatures [K] of one (material, mode) cell (empty: not run)."""
        v = self._value("temperatures", material, mode_label)
        if v is None:
            return []
        if isinstance(v, (numbers.Real, str)) and not isinstance(v, bool):
            v = [v]
        out = []
        for t in v:
            try:
                tf = float(t)
            except (TypeError, ValueError):
                _fail("temperatures", f"{material} {mode_label}: {t!r} is not a temperature [K]")
            if not (math.isfinite(tf) and tf > 0):
                _fail("temperatures", f"{material} {mode_label}: {t!r} must be > 0 K")
            if tf in out:
                _fail("temperatures", f"{material} {mode_label}: {tf:g} K is listed twice")
            out.append(tf)
        return out

    def expand(self) -> list[PlannedRun]:
        """Every run of the campaign, in grid order (material, mode, temperature, replica).

        Returns
        -------
        list of PlannedRun
            Each with a validated :class:`RunSpec` whose ``store_name`` is deterministic.

        Raises
        ------
        CampaignSpecError
            A setting that does not give a valid RunSpec (message names field and cell).
        """
        from rotorlab.potentials.registry import has_bundled

        runs = []
        for mat in self.materials:
            for mode, label in zip(self.modes, self.mode_labels):
                temps = self.temperatures_of(mat, label)
                if not temps:
                    continue
                nrep = self._value("replicas", mat, label)
                nrep = 1 if nrep is None else nrep
                if isinstance(nrep, bool) or not isinstance(nrep, numbers.Integral) or nrep < 1:
                    _fail("replicas", f"{mat} {label}: must be a whole number >= 1, got {nrep!r}")
                kw = {}
                for name in ("size", "steps", "equilibration_steps", "frame_interval",
                             "checkpoint_interval", "timestep"):
                    v = self._value(name, mat, label)
                    if v is not None:
                        kw[name] = tuple(v) if isinstance(v, list) else v
                pot = self._value("potential", mat, label)
                if pot is None:
                    _fail("potential", f"{mat} {label}: no potential given")
                requested = pot if isinstance(pot, str) else ",".join(map(str, pot))
                fallback = False
                if str(requested).split(":")[0] == "bundled" and self.potential_fallback \
                        and not has_bundled(mat):
                    pot, fallback = self.potential_fallback, True
                for T in temps:
                    for k in range(int(nrep)):
                        try:
                            spec = RunSpec(
                                material=mat, mode=mode, temperature=T, replica=k,
                                seed=run_seed(self.base_seed, mat, label, T, k),
                                thermostat=self.thermostat,
                                thermostat_tau=float(self.thermostat_tau), potential=pot,
                                **kw, **self.run_options)
                        except SpecError as exc:
                            raise CampaignSpecError(
                                f"CampaignSpec: run {mat} {label} {T:g} K replica {k}: "
                                f"{exc}") from None
                        runs.append(PlannedRun(mat, label, T, k, spec, requested, fallback))
        if not runs:
            _fail("temperatures", "the grid is empty: no (material, mode) has a temperature")
        return runs

    def digest(self, n: int = 12) -> str:
        """Hex digest of the canonical JSON of the spec."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:n]

    def describe(self) -> str:
        """A few lines: the grid and what every run shares."""
        runs = self.expand()
        lines = [f"campaign {self.name}: {len(runs)} runs"]
        for mat in self.materials:
            for label in self.mode_labels:
                t = self.temperatures_of(mat, label)
                if t:
                    nrep = self._value("replicas", mat, label) or 1
                    lines.append(f"  {mat} {label}: {', '.join(f'{x:g}' for x in t)} K "
                                 f"x{nrep}")
        fb = sorted({r.material for r in runs if r.fallback})
        if fb:
            lines.append(f"  NOTE: no bundled model for {', '.join(fb)}: those runs use the "
                         f"fallback potential {self.potential_fallback!r}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ serialisation

    def to_dict(self) -> dict:
        """Plain JSON-compatible dict."""
        def plain(v):
            if isinstance(v, tuple):
                return [plain(x) for x in v]
            if isinstance(v, list):
                return [plain(x) for x in v]
            if isinstance(v, Mapping):
                return {str(k): plain(x) for k, x in v.items()}
            return v
        return {f.name: plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping) -> "CampaignSpec":
        """Build and validate from a mapping (unknown keys are refused, listed)."""
        if not isinstance(data, Mapping):
            raise CampaignSpecError(f"a campaign spec is a mapping of fields, got "
                                    f"{type(data).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise CampaignSpecError(f"CampaignSpec: unknown field(s) {', '.join(unknown)}; "
                                    f"known fields: {', '.join(sorted(names))}")
        kw = dict(data)
        for k in ("materials", "modes"):
            if isinstance(kw.get(k), list):
                kw[k] = tuple(kw[k])
        return cls(**kw)

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_text(cls, text: str, fmt: str = "yaml") -> "CampaignSpec":
        import yaml

        try:
            data = json.loads(text) if fmt == "json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise CampaignSpecError(f"CampaignSpec: not valid {fmt.upper()} ({exc})") from None
        return cls.from_dict(data)

    @classmethod
    def load(cls, path) -> "CampaignSpec":
        """Read a ``.yaml``/``.yml`` or ``.json`` campaign file.

        Raises
        ------
        FileNotFoundError, CampaignSpecError
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no campaign spec file at {path}")
        fmt = "json" if path.suffix.lower() == ".json" else "yaml"
        try:
            return cls.from_text(path.read_text(), fmt)
        except CampaignSpecError as exc:
            raise CampaignSpecError(f"{path}: {exc}") from None

    def save(self, path) -> Path:
        path = Path(path)
        path.write_text(self.to_json() + "\n" if path.suffix.lower() == ".json"
                        else self.to_yaml())
        return path
