"""Registry of analyses: what each needs from a store, what it returns, whether it can run.

Each entry (:class:`AnalysisSpec`) names an analysis, its analyzer class, a one-line
description, its requirements on the trajectory (``requires``: store variables, coordinates,
attributes, rotors, a minimum number of frames), what it returns (``returns``: result names →
units) and how ``rotorlab analyze`` condenses it into per-run numbers (``summary``).  The
registry drives ``rotorlab analyze`` and is what an app lists::

    >>> from rotorlab.analysis import available
    >>> for a in available(ds):                          # doctest: +SKIP
    ...     print(a.name, "ok" if a.applicable else a.reason)

Third parties add analyses with :func:`register` (also usable as a class decorator) or via
the entry-point group ``rotorlab.analyses`` (each entry point is a module or callable that
registers on import/call).

Requirement strings
-------------------
``"positions"``, ``"velocities"``, ``"cell"`` …
    a store variable or coordinate of that name;
``"attr:NAME"``
    a store attribute (e.g. ``"attr:mobile_species"``);
``"temperature"``
    the target temperature attribute or a ``temperature`` variable;
``"rotors"`` / ``"rotors:KIND"``
    at least one rotor (``rotor`` dim, ``rotor_id`` and ``orientation_atoms``), of that kind;
``"frames>=N"``
    at least N frames.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import xarray as xr

from .base import scalar

__all__ = ["AnalysisSpec", "Availability", "Check", "available", "get", "names", "register", "specs",
           "unregister", "describe"]


# ---------------------------------------------------------------------------------------
# requirements
# ---------------------------------------------------------------------------------------


def _has(ds: xr.Dataset, name: str) -> bool:
    return name in ds.variables or name in ds.coords


def _requirement_reason(ds: xr.Dataset, req: str) -> str | None:
    """None if ``req`` is met by ``ds``, else why not."""
    if req.startswith("attr:"):
        k = req[5:]
        return None if ds.attrs.get(k) not in (None, "") else f"store attribute '{k}' missing"
    if req == "temperature":
        if ds.attrs.get("target_temperature") is not None:
            return None
        if "temperature" in ds.variables:
            from . import _data

            if np.isfinite(np.asarray(_data.values(ds, "temperature"), dtype=float)).any():
                return None
            return "no temperature (the 'temperature' variable holds no value; pass --temperature)"
        return "no temperature (neither a 'target_temperature' attribute nor a 'temperature' variable)"
    if req.startswith("frames>="):
        n = int(req[8:])
        nf = int(ds.sizes.get("frame", 0))
        return None if nf >= n else f"too few frames: {nf} (needs >= {n})"
    if req == "rotors" or req.startswith("rotors:"):
        if "rotor" not in ds.dims or ds.sizes["rotor"] == 0 or "orientation_atoms" not in ds.variables \
                or "rotor_id" not in ds.variables:
            return "no rotors in the store (needs dim 'rotor', 'rotor_id' and 'orientation_atoms')"
        if req.startswith("rotors:"):
            kind = req[7:]
            kinds = sorted({str(x) for x in ds["rotor_kind"].values}) if "rotor_kind" in ds.variables else []
            if kind not in kinds:
                return f"no {kind} rotor (rotor kinds present: {kinds})"
        return None
    if req == "velocities" and not _has(ds, req):
        return "no velocities in the store (re-run with velocities saved)"
    if not _has(ds, req):
        return f"store variable '{req}' missing"
    return None


class Check(NamedTuple):
    """Result of :meth:`AnalysisSpec.applicable`: truthy when the analysis can run."""

    ok: bool
    reasons: tuple[str, ...]

    def __bool__(self) -> bool:
        return self.ok

    @property
    def reason(self) -> str:
        """Why not (``""`` when applicable)."""
        return "; ".join(self.reasons)


# ---------------------------------------------------------------------------------------
# specs
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnalysisSpec:
    """One registered analysis.

    Parameters
    ----------
    name : str
        Registry key (``rotorlab analyze --analyses NAME``).
    analyzer : type or str
        The :class:`~rotorlab.analysis.base.Analyzer` subclass, or ``"module:Class"``
        (imported on first use, so listing the registry stays cheap).
    description : str
        One line.
    requires : tuple of str
        Requirement strings (module docstring).
    returns : mapping of str to str
        Result names → units (``"1"`` dimensionless) found in ``analyzer.results``.
    group : str
        ``transport``, ``rotation``, ``hops``, ``structure``, ``vibrations`` or ``custom``
        (``analyze(rotation=False)`` etc. switch groups off).
    defaults : callable, optional
        ``defaults(ds) -> dict`` of constructor options derived from the store (e.g. the
        mobile species for g(r)); user options override them.
    summary : callable, optional
        ``summary(analyzer) -> dict`` of 0-d DataArrays with units: the per-run numbers this
        analysis adds to ``results.nc``.
    curve : callable, optional
        ``curve(analyzer) -> DataArray`` (1-D) drawn for every run in one report figure
        named after the analysis.
    check : callable, optional
        ``check(ds) -> str or None``: an extra applicability test (reason or None).
    """

    name: str
    analyzer: Any
    description: str
    requires: tuple[str, ...] = ()
    returns: Mapping[str, str] = field(default_factory=dict)
    group: str = "custom"
    defaults: Callable[[xr.Dataset], dict] | None = None
    summary: Callable[[Any], dict] | None = None
    curve: Callable[[Any], xr.DataArray] | None = None
    check: Callable[[xr.Dataset], str | None] | None = None
    curve_style: Mapping[str, Any] = field(default_factory=dict)

    @property
    def cls(self) -> type:
        """The analyzer class (imported now if registered by path)."""
        a = self.analyzer
        if isinstance(a, str):
            mod, _, attr = a.partition(":")
            a = getattr(importlib.import_module(mod), attr)
        return a

    def applicable(self, ds: xr.Dataset) -> Check:
        """Whether this analysis can run on ``ds``, with the reasons when not."""
        reasons = [r for r in (_requirement_reason(ds, q) for q in self.requires) if r]
        if not reasons and self.check is not None:
            extra = self.check(ds)
            if extra:
                reasons.append(str(extra))
        return Check(not reasons, tuple(reasons))

    def options_for(self, ds: xr.Dataset, **options) -> dict:
        """Constructor options: ``defaults(ds)`` overridden by ``options``."""
        out = dict(self.defaults(ds)) if self.defaults is not None else {}
        out.update(options)
        return out

    def run(self, ds: xr.Dataset, **options):
        """Construct the analyzer with :meth:`options_for` and compute it on ``ds``."""
        return self.cls(**self.options_for(ds, **options)).compute(ds)


_REGISTRY: dict[str, AnalysisSpec] = {}
_PLUGINS_LOADED = False


def register(name: str, analyzer: Any = None, *, description: str, requires: Iterable[str] = (),
             returns: Mapping[str, str] | None = None, group: str = "custom", replace: bool = False,
             **kw):
    """Register an analysis (also usable as a class decorator when ``analyzer`` is omitted).

    Parameters
    ----------
    name : str
        Registry key; must be new unless ``replace=True``.
    analyzer : type or str, optional
        Analyzer class or ``"module:Class"``; omit to use as ``@register(name, ...)``.
    description, requires, returns, group
        See :class:`AnalysisSpec`.
    replace : bool
        Allow replacing an existing entry.
    **kw
        ``defaults``, ``summary``, ``curve``, ``check``, ``curve_style``.

    Returns
    -------
    AnalysisSpec, or the decorated class
    """
    if not name or not isinstance(name, str) or "," in name or " " in name:
        raise ValueError(f"analysis name must be a non-empty word without commas or spaces, got {name!r}")

    def _do(a):
        if name in _REGISTRY and not replace:
            raise ValueError(f"analysis {name!r} is already registered (pass replace=True to replace it)")
        reqs = tuple(requires)
        for r in reqs:
            if not isinstance(r, str):
                raise TypeError(f"requirements are strings, got {r!r}")
            if r.startswith("frames>="):
                int(r[8:])  # validates
        spec = AnalysisSpec(name=name, analyzer=a, description=description, requires=reqs,
                            returns=dict(returns or {}), group=group, **kw)
        _REGISTRY[name] = spec
        return spec

    if analyzer is None:
        def deco(cls):
            _do(cls)
            return cls
        return deco
    return _do(analyzer)


def unregister(name: str) -> None:
    """Remove an analysis from the registry (KeyError if absent)."""
    del _REGISTRY[name]


def _load_plugins() -> None:
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED = True
    from importlib.metadata import entry_points

    for ep in entry_points(group="rotorlab.analyses"):
        obj = ep.load()
        if callable(obj) and not isinstance(obj, type):
            obj()


def specs() -> list[AnalysisSpec]:
    """All registered analyses, in registration order."""
    _load_plugins()
    return list(_REGISTRY.values())


def names() -> list[str]:
    """Names of all registered analyses."""
    return [s.name for s in specs()]


def get(name: str) -> AnalysisSpec:
    """The spec registered under ``name`` (ValueError listing the names if unknown)."""
    _load_plugins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown analysis {name!r}; registered: {', '.join(_REGISTRY)}") from None


class Availability(NamedTuple):
    """One row of :func:`available`."""

    name: str
    description: str
    applicable: bool
    reason: str
    group: str


def available(ds: xr.Dataset) -> list[Availability]:
    """Which registered analyses can run on a trajectory, and why not for the others.

    Parameters
    ----------
    ds : xarray.Dataset
        Trajectory (e.g. :func:`rotorlab.store.open_store`).

    Returns
    -------
    list of Availability
        ``(name, description, applicable, reason, group)`` per registered analysis.
    """
    out = []
    for s in specs():
        c = s.applicable(ds)
        out.append(Availability(s.name, s.description, c.ok, c.reason, s.group))
    return out


def describe() -> str:
    """A text table of the registry (name, group, description, requirements, returns)."""
    lines = []
    for s in specs():
        lines.append(f"{s.name:24s} [{s.group}] {s.description}")
        lines.append(f"{'':24s}   requires: {', '.join(s.requires) or '-'}")
        if s.returns:
            lines.append(f"{'':24s}   returns : " + ", ".join(f"{k} [{u}]" for k, u in s.returns.items()))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# built-in analyses
# ---------------------------------------------------------------------------------------


def _transport_summary(a) -> dict:
    r = a.result
    keys = ("D_tr", "D_tr_err", "D_tr_bound", "below_measurable", "sigma", "sigma_err", "sigma_bound",
            "n_ions", "volume", "msd_exponent", "msd_fit_end", "diffusive", "D_sigma", "D_sigma_err",
            "sigma_collective", "sigma_collective_err", "haven_ratio", "haven_ratio_err")
    return {k: r[k] for k in keys}


def _dos_summary(a) -> dict:
    sp = a.options().get("species")
    sp = sp if isinstance(sp, str) else str(a.pdos["species"].values[0])
    bc = a.band_centres.sel(species=sp)
    return {"cation_band_centre": bc["band_centre"], "cation_band_centre_meV": bc["band_centre_meV"],
            "cation_band_centre_cm1": bc["band_centre_cm1"]}


def _dos_defaults(ds):
    sp = ds.attrs.get("mobile_species")
    return {"species": str(sp)} if sp else {}


def _rdf_defaults(ds):
    sp = str(ds.attrs.get("mobile_species"))
    return {"a": sp, "b": sp}


def _rdf_summary(a) -> dict:
    p = a.first_peak
    return {"rdf_peak_position": p["position"], "rdf_peak_height": p["height"]}


def _mobile_check(ds):
    sp = ds.attrs.get("mobile_species")
    if "species" not in ds.variables:
        return "store coordinate 'species' missing"
    present = {str(s) for s in ds["species"].values}
    if sp not in present:
        return f"mobile species {sp!r} not in the store (species present: {sorted(present)})"
    return None


def _rdf_check(ds):
    why = _mobile_check(ds)
    if why:
        return why
    n = int((ds["species"].values.astype(str) == str(ds.attrs["mobile_species"])).sum())
    return None if n >= 2 else f"only {n} mobile ion(s): g(r) needs at least two"


_P = "rotorlab.analysis."
_MOBILE = ("positions", "cell", "time", "species", "attr:mobile_species")

def _reorientation_summary(a) -> dict:
    out = {"reorientation_frequency": a.mean_frequency,
           "reorientation_frequency_vector": scalar(float(a.frequency_vector.mean()), "1/ns",
                                                    method=a.counts_vector.attrs.get("method", ""))}
    if "counts_rotation" in a.results:
        out["reorientation_frequency_rotation"] = scalar(float(a.frequency_rotation.mean()), "1/ns",
                                                         method=a.counts_rotation.attrs.get("method", ""))
    return out


def _rotor_dynamics_summary(a) -> dict:
    r = a.result
    return {f"rotor_{k}": r[k] for k in ("tau_c1_int", "tau_c2_int", "tau0", "tau0_err", "delta", "delta_err",
                                          "frequency_c1_int", "frequency_c2_int", "jump_frequency")}


register("transport", _P + "transport:Transport", group="transport",
         description="MSD, tracer D_tr with block error, collective (charge) MSD, sigma (NE and collective), "
                     "Haven ratio, below-measurable flag; sigma only with a temperature",
         requires=_MOBILE + ("mass", "frames>=16"), check=_mobile_check,
         returns={"msd": "Å^2", "block_msd": "Å^2", "msd_collective": "Å^2", "D_tr": "cm^2/s", "D_tr_err": "cm^2/s",
                  "sigma": "mS/cm", "sigma_err": "mS/cm", "below_measurable": "1", "diffusive": "1",
                  "msd_exponent": "1", "D_sigma": "cm^2/s", "sigma_collective": "mS/cm", "haven_ratio": "1"},
         summary=_transport_summary, curve=lambda a: a.msd)
register("reorientation", _P + "rotation:Reorientation", group="rotation",
         description="rotor reorientation events from the full (Kabsch) rotation > 60 deg and from one vector "
                     "> 70 deg (librations smoothed), frequency per ns",
         requires=("positions", "cell", "time", "rotors", "frames>=3"),
         returns={"counts": "1", "frequency": "1/ns", "events": "1", "smoothed": "1", "counts_rotation": "1",
                  "counts_vector": "1", "frequency_rotation": "1/ns", "frequency_vector": "1/ns"},
         summary=_reorientation_summary)
register("rotor_dynamics", _P + "rotor_dynamics:RotorDynamics", group="rotation",
         description="C1/C2 over all ligand bond vectors; integrated correlation times (cutoff 0.02) and the "
                     "Ivanov jump fit (tau0, jump angle)",
         requires=("positions", "cell", "time", "mass", "rotors", "rotor_id", "frames>=8"),
         returns={"c1": "1", "c2": "1", "tau_c1_int": "ps", "tau_c2_int": "ps", "tau0": "ps", "delta": "degree",
                  "jump_frequency": "1/ns"},
         summary=_rotor_dynamics_summary, curve=lambda a: a.c2,
         curve_style={"xlabel": "lag time (ps)", "ylabel": "C2 over all ligand vectors"})
register("orientation", _P + "rotation:RotorOrientation", group="rotation",
         description="rotor orientation vectors and their angles to the lattice vectors a, b, c",
         requires=("positions", "cell", "time", "rotors"), returns={"vectors": "1", "theta": "degree"})
register("orientation_acf", _P + "rotation:OrientationACF", group="rotation",
         description="Legendre P1/P2 orientation autocorrelations of the rotors (all origins, FFT)",
         requires=("positions", "cell", "time", "rotors", "frames>=2"), returns={"p1": "1", "p2": "1"},
         summary=lambda a: {"p2_relaxation_time": a.p2_time}, curve=lambda a: a.p2,
         curve_style={"xlabel": "lag time (ps)", "ylabel": "P2 orientation autocorrelation"})
register("rotational_free_energy", _P + "rotation:RotationalFreeEnergy", group="rotation",
         description="rotational free energy F(theta, phi) = -kT ln p of the rotor axes in the lattice frame",
         requires=("positions", "cell", "rotors", "temperature"),
         returns={"probability": "1/sr", "free_energy": "eV"})
register("p2s6_dihedral", _P + "rotation:P2S6Dihedral", group="rotation",
         description="S-P-P-S dihedral of P2S6 rotors and its jumps per ns",
         requires=("positions", "cell", "time", "species", "rotors:P2S6", "frames>=2"),
         returns={"dihedral": "degree", "jumps": "1", "frequency": "1/ns"},
         summary=lambda a: {"dihedral_jump_frequency": a.mean_frequency})
register("hops", _P + "hops:SiteHops", group="hops",
         description="cation site-to-site hops with a residence filter, hop frequency, site occupancies",
         requires=_MOBILE + ("frames>=2",), check=_mobile_check,
         returns={"hops": "1", "frequency": "1/ns", "occupancy": "1", "site_positions": "1"},
         summary=lambda a: {"hop_frequency": a.mean_frequency})
register("displacement_hops", _P + "hops:DisplacementHops", group="hops",
         description="cation hops as moves of the smoothed position by more than 1.5 Å from rest",
         requires=_MOBILE + ("frames>=2",), check=_mobile_check,
         returns={"hops": "1", "frequency": "1/ns"},
         summary=lambda a: {"displacement_hop_frequency": a.mean_frequency})
register("rdf", _P + "structure:RDF", group="structure",
         description="partial radial distribution function g(r) of the mobile ions (triclinic safe)",
         requires=("positions", "cell", "species", "attr:mobile_species"), check=_rdf_check,
         defaults=_rdf_defaults, returns={"rdf": "1"}, summary=_rdf_summary, curve=lambda a: a.rdf,
         curve_style={"xlabel": "r (Å)", "ylabel": "g(r) mobile-mobile"})
register("anion_free_energy", _P + "structure:AnionFreeEnergy", group="structure",
         description="F(r) = -kT ln g(r) between cations and rotor (anion) centres of mass",
         requires=("positions", "cell", "species", "mass", "rotors", "attr:mobile_species", "temperature"),
         check=_mobile_check, returns={"rdf": "1", "free_energy": "eV"})
register("density", _P + "structure:MobileIonDensity", group="structure",
         description="time-averaged 3D number density of the mobile ions (exportable as Gaussian cube)",
         requires=("positions", "cell", "species", "attr:mobile_species"), check=_mobile_check,
         returns={"density": "1/Å^3"})
register("dos", _P + "vibrations:PhononDOS", group="vibrations",
         description="phonon DOS from the mass-weighted VACF (total, per species) and the cation band centre",
         requires=("velocities", "time", "species", "mass", "attr:mobile_species", "frames>=8"),
         check=_mobile_check, defaults=_dos_defaults,
         returns={"dos": "1/THz", "pdos": "1/THz", "band_centre": "THz"}, summary=_dos_summary,
         curve=lambda a: a.pdos.isel(species=0))
