"""Shared analyzer base: guarded results, ``from_dataset``/``from_store``, ``repr``, ``plot``.

Pattern (freud's compute objects, MDAnalysis ``AnalysisBase``, kinisi's ``from_*``):

* construct with options, ``compute(ds)`` returns ``self``;
* every result is declared on the class as a :class:`Result` descriptor and stored during
  ``compute`` with :meth:`Analyzer._set`; reading it before a successful ``compute`` raises
  :class:`NotComputedError` naming the analyzer.  ``compute`` is wrapped automatically by
  :meth:`Analyzer.__init_subclass__`: it starts with an empty result container, seals it
  on success and discards partial results on failure, so no subclass sets a flag by hand;
* :attr:`Analyzer.results` gathers all results into one :class:`xarray.Dataset`;
* every result is an xarray object carrying ``attrs["units"]`` (dimensionless: ``"1"``);
* :meth:`Analyzer.plot` draws the natural picture with :mod:`rotorlab.viz` (matplotlib is
  imported only then).

Example
-------
>>> class MeanTemperature(Analyzer):
...     mean = Result("K", "mean instantaneous temperature")
...     def compute(self, ds):
...         self._set(mean=scalar(float(ds["temperature"].mean()), "K"))
>>> MeanTemperature().mean  # doctest: +SKIP
NotComputedError: MeanTemperature: results are not available; call .compute(ds) first
"""

from __future__ import annotations

import functools
import inspect
import reprlib
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["Analyzer", "NotComputedError", "Result", "scalar"]


class NotComputedError(RuntimeError, AttributeError):
    """A result of an analyzer was read before ``compute`` succeeded.

    Also an :class:`AttributeError`, so ``hasattr(analyzer, "msd")`` is False before
    ``compute`` and introspection (IPython completion, ``inspect.getmembers``) works.
    """


def scalar(value, units: str, name: str | None = None, **attrs) -> xr.DataArray:
    """0-d :class:`xarray.DataArray` with ``attrs["units"]`` (``float(...)`` still works on it).

    Parameters
    ----------
    value : float, int or bool
    units : str
        Units of the value, ``"1"`` for dimensionless (counts, flags, ratios).
    name : str, optional
    **attrs
        Extra attributes (``long_name``, ``method`` …).

    Returns
    -------
    xarray.DataArray, shape ()
    """
    return xr.DataArray(np.asarray(value)[()], name=name, attrs={"units": str(units), **attrs})


class Result:
    """Declares one result of an :class:`Analyzer` (a guarded, read-only attribute).

    Parameters
    ----------
    units : str or None
        Units of the result (``"1"`` dimensionless); ``None`` for a Dataset whose variables
        carry their own units.
    doc : str
        Description (shown by ``help``), including dims.
    """

    def __init__(self, units: str | None, doc: str = ""):
        self.units, self.__doc__ = units, doc
        self.name = None

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return obj._get(self.name)

    def __set__(self, obj, value):
        raise AttributeError(f"{type(obj).__name__}.{self.name} is a result; it is set by compute()")


class _Results(dict):
    """Container of one compute's results; ``sealed`` once compute has returned."""

    sealed = False


def _wrap_compute(fn):
    @functools.wraps(fn)
    def compute(self, ds, *args, **kwargs):
        d = self.__dict__
        outer = not d.get("_in_compute", False)
        if outer:
            d["_in_compute"] = True
            d["_results"] = _Results()
            d["_error"] = None
        try:
            fn(self, ds, *args, **kwargs)
        except BaseException as exc:
            if outer:
                d["_results"] = None  # partial results are never visible
                d["_error"] = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            if outer:
                d["_in_compute"] = False
        if outer:
            d["_results"].sealed = True
        return self

    compute._rotorlab_wrapped = True
    return compute


def _merge(parts: list[xr.Dataset]) -> xr.Dataset:
    """Merge result Datasets: shared coordinates must agree exactly, variable attrs are kept."""
    if not parts:
        return xr.Dataset()
    return xr.merge(parts, join="exact", compat="no_conflicts", combine_attrs="override")


class Analyzer:
    """Base class of every analysis.

    Subclasses define ``__init__`` (options only, no data), ``compute(ds)`` (stores results
    with :meth:`_set`) and declare their results as :class:`Result` class attributes.  An
    analyzer whose natural result is a picture defines ``_plot(P, ax, **kw)`` where ``P`` is
    :mod:`rotorlab.viz.plots`.

    Attributes
    ----------
    computed : bool
        Whether the last ``compute`` succeeded.
    results : xarray.Dataset
        All results of the last ``compute`` in one Dataset.
    """

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        fn = cls.__dict__.get("compute")
        if fn is not None and not getattr(fn, "_rotorlab_wrapped", False):
            cls.compute = _wrap_compute(fn)

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_dataset(cls, ds: xr.Dataset, *args, **options) -> "Analyzer":
        """Construct with ``options`` and compute on a trajectory Dataset (returns the analyzer)."""
        return cls(*args, **options).compute(ds)

    @classmethod
    def from_store(cls, path, *args, **options) -> "Analyzer":
        """Open a trajectory store read-only (:func:`rotorlab.store.open_store`) and compute on it."""
        from rotorlab.store import open_store  # lazy: sibling package

        return cls(*args, **options).compute(open_store(path))

    def compute(self, ds: xr.Dataset) -> "Analyzer":  # pragma: no cover - abstract
        """Run the analysis on ``ds`` and return ``self``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement compute()")

    # ------------------------------------------------------------------ results
    def _set(self, **results) -> None:
        """Store results during ``compute`` (xarray objects with units)."""
        box = self.__dict__.get("_results")
        if box is None or box.sealed or not self.__dict__.get("_in_compute"):
            raise RuntimeError(f"{type(self).__name__}: results can only be set inside compute()")
        for k, v in results.items():
            if not isinstance(v, (xr.DataArray, xr.Dataset)):
                raise TypeError(f"{type(self).__name__}.{k}: results must be xarray objects, got {type(v).__name__}")
            box[k] = v

    def _get(self, name: str):
        box = self.__dict__.get("_results")
        if box is None or not (box.sealed or self.__dict__.get("_in_compute")):
            self._raise_not_computed(name)
        try:
            return box[name]
        except KeyError:
            if not box.sealed:
                self._raise_not_computed(name)
            raise AttributeError(f"{type(self).__name__}: result {name!r} was not produced by compute()") from None

    def _raise_not_computed(self, name: str | None = None):
        what = f"result {name!r} is" if name else "results are"
        err = self.__dict__.get("_error")
        extra = f" (the last compute failed: {err})" if err else ""
        raise NotComputedError(f"{type(self).__name__}: {what} not available{extra}; call .compute(ds) first")

    def _require_computed(self) -> None:
        if not self.computed:
            self._raise_not_computed()

    @property
    def computed(self) -> bool:
        """True after a successful ``compute``."""
        box = self.__dict__.get("_results")
        return bool(box is not None and box.sealed)

    @classmethod
    def result_names(cls) -> list[str]:
        """Names of the declared results, in declaration order (base classes first)."""
        out = []
        for k in reversed(cls.__mro__):
            for n, v in vars(k).items():
                if isinstance(v, Result) and n not in out:
                    out.append(n)
        return out

    @classmethod
    def result_units(cls) -> dict[str, str | None]:
        """Declared units of each result (``None``: a Dataset with per-variable units)."""
        return {n: getattr(cls, n).units for n in cls.result_names()}

    @property
    def results(self) -> xr.Dataset:
        """All results in one :class:`xarray.Dataset` (every variable has ``attrs["units"]``)."""
        self._require_computed()
        return self._results_dataset()

    def _results_dataset(self) -> xr.Dataset:
        box = self.__dict__["_results"]
        parts, seen = [], set()
        for n in self.result_names():
            if n not in box:
                continue
            v = box[n]
            if isinstance(v, xr.DataArray):
                v = v.to_dataset(name=n)
            else:  # a Dataset result: its variables join, prefixed with the result name on a clash
                v = v.rename({k: f"{n}_{k}" for k in v.data_vars if k in seen})
            seen.update(map(str, v.data_vars))
            parts.append(v)
        out = _merge(parts)
        out.attrs = {"analyzer": type(self).__name__}
        return out

    # -------------------------------------------------------------------- repr
    def options(self) -> dict[str, Any]:
        """The constructor options of this analyzer (name → value)."""
        sig = inspect.signature(type(self).__init__)
        out = {}
        for p in list(sig.parameters.values())[1:]:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            if hasattr(self, p.name):
                out[p.name] = getattr(self, p.name)
        return out

    def __repr__(self) -> str:
        r = reprlib.Repr()
        r.maxstring, r.maxother, r.maxlist, r.maxtuple = 40, 40, 4, 4
        opts = ", ".join(f"{k}={r.repr(v)}" for k, v in self.options().items())
        if self.computed:
            state = "computed: " + ", ".join(n for n in self.result_names() if n in self.__dict__["_results"])
        elif self.__dict__.get("_error"):
            state = "failed: " + self.__dict__["_error"][:80]
        else:
            state = "not computed"
        return f"<{type(self).__name__}({opts}) [{state}]>"

    # -------------------------------------------------------------------- plot
    @classmethod
    def has_plot(cls) -> bool:
        """Whether this analyzer draws a picture (:meth:`plot`)."""
        return callable(getattr(cls, "_plot", None))

    def plot(self, ax=None, **kw):
        """Draw the natural picture of the results with :mod:`rotorlab.viz` (matplotlib, Agg safe).

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Axes to draw into (default: a new figure).
        **kw
            Passed to the drawing helper.

        Returns
        -------
        matplotlib.axes.Axes
        """
        if not self.has_plot():
            raise NotImplementedError(f"{type(self).__name__} has no picture; use .results")
        self._require_computed()
        from rotorlab.viz import plots  # lazy: matplotlib only when drawing

        return self._plot(plots, ax, **kw)
