"""Analyzer base (analysis/base.py): guard, from_dataset/from_store, repr, results with units.

Every check iterates over the registry on one small synthetic store where every built-in
analysis applies, so a newly registered analysis is covered automatically.
"""

import subprocess
import sys
import warnings

import numpy as np
import pytest
import xarray as xr

from analysis_synthetic import brownian, every_analysis, harmonic, write_store
from rotorlab.analysis import registry as R
from rotorlab.analysis.base import Analyzer, NotComputedError, Result, scalar

BUILTIN = [s.name for s in R.specs() if s.analyzer.__class__ is str and s.analyzer.startswith("rotorlab.")]
BAD_UNITS = {"", "dimensionless", "-", "none", "None", "unitless"}


@pytest.fixture(scope="module")
def ds():
    return every_analysis()


@pytest.fixture(scope="module")
def computed(ds):
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for n in BUILTIN:
            s = R.get(n)
            out[n] = s.cls(**s.options_for(ds)).compute(ds)
    return out


def test_registry_holds_the_issue_analyses():
    for n in ("transport", "reorientation", "orientation_acf", "rotational_free_energy", "p2s6_dihedral",
              "hops", "rdf", "anion_free_energy", "density", "dos"):
        assert n in BUILTIN


@pytest.mark.parametrize("name", BUILTIN)
def test_results_guarded_before_compute(name, ds):
    s = R.get(name)
    a = s.cls(**s.options_for(ds))
    assert not a.computed
    assert "not computed" in repr(a)
    names = a.result_names()
    assert names, f"{name}: no declared results"
    for r in names:
        with pytest.raises(NotComputedError, match=rf"{s.cls.__name__}: result '{r}'.*call \.compute\(ds\) first"):
            getattr(a, r)
    with pytest.raises(NotComputedError, match=s.cls.__name__):
        a.results
    with pytest.raises(RuntimeError, match="compute"):  # NotComputedError is a RuntimeError
        getattr(a, names[0])
    assert not hasattr(a, names[0])  # ... and an AttributeError: introspection works


@pytest.mark.parametrize("name", BUILTIN)
def test_every_result_is_xarray_with_units_and_dimensionless_is_1(name, computed):
    s = R.get(name)
    a = computed[name]
    assert a.computed and "computed:" in repr(a)
    for r in a.result_names():
        v = getattr(a, r)
        assert isinstance(v, (xr.DataArray, xr.Dataset)), (name, r, type(v))
    res = a.results
    assert isinstance(res, xr.Dataset) and res.data_vars
    for k, v in res.data_vars.items():
        assert "units" in v.attrs, f"{name}.{k} has no units"
        assert str(v.attrs["units"]) not in BAD_UNITS, f"{name}.{k}: dimensionless must be '1'"
    for k, v in res.coords.items():
        if "units" in v.attrs:
            assert str(v.attrs["units"]) not in BAD_UNITS, f"{name} coord {k}"
    # what the registry promises is what comes back, with those units
    for k, u in s.returns.items():
        assert k in res.data_vars, f"{name}: registry promises {k!r}, results have {list(res.data_vars)}"
        assert res[k].attrs["units"] == u, (name, k, res[k].attrs["units"], u)
    # declared units of DataArray results match
    for r, u in a.result_units().items():
        v = getattr(a, r)
        if u is not None:
            assert v.attrs["units"] == u, (name, r)
        else:
            assert all("units" in x.attrs for x in v.data_vars.values()), (name, r)


@pytest.mark.parametrize("name", BUILTIN)
def test_from_dataset_and_from_store_equal_compute(name, ds, computed, tmp_path_factory):
    s = R.get(name)
    opts = s.options_for(ds)
    ref = computed[name].results
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        b = s.cls.from_dataset(ds, **opts)
        path = tmp_path_factory.getbasetemp() / "every.zarr"
        if not path.exists():
            write_store(ds, path, chunk_frames=64)
        c = s.cls.from_store(path, **opts)
    assert type(b) is s.cls and b.computed and c.computed
    xr.testing.assert_identical(b.results, ref)
    xr.testing.assert_allclose(c.results.drop_attrs(), ref.drop_attrs(), rtol=1e-10, atol=1e-12)


def test_repr_shows_options_and_state(ds):
    from rotorlab.analysis import RDF, Transport

    t = Transport(n_blocks=4, window=(0.2, 0.6))
    r = repr(t)
    assert r.startswith("<Transport(") and "n_blocks=4" in r and "window=(0.2, 0.6)" in r
    assert "not computed" in r
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        t.compute(ds)
    assert "computed: msd, block_msd, msd_collective, result" in repr(t)
    assert "a='Na'" in repr(RDF("Na"))


def test_failed_compute_discards_earlier_results_and_says_why(ds):
    from rotorlab.analysis import Transport

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        t = Transport().compute(ds)
    assert np.isfinite(float(t.D))
    with pytest.raises(ValueError, match="too few frames"):
        t.compute(ds.isel(frame=slice(0, 20)))
    assert not t.computed
    with pytest.raises(NotComputedError, match="last compute failed: ValueError: too few frames"):
        t.D
    assert "failed:" in repr(t)


class _Mean(Analyzer):
    mean = Result("K", "mean temperature")

    def __init__(self, scale=1.0):
        self.scale = scale

    def compute(self, ds):
        self._set(mean=scalar(self.scale * float(ds["temperature"].mean()), "K"))


class _MeanPlus(_Mean):
    shifted = Result("K", "mean + 1 K")

    def compute(self, ds):
        super().compute(ds)  # nested wrapped compute: one result container
        self._set(shifted=scalar(float(self.mean) + 1.0, "K"))


def test_subclass_needs_no_flags_and_compute_returns_self():
    ds = brownian(n_frames=50, n_ions=4, temperature=400.0)
    a = _MeanPlus(scale=2.0)
    assert a.compute(ds) is a  # even though compute() returned None
    assert float(a.mean) == pytest.approx(800.0) and float(a.shifted) == pytest.approx(801.0)
    assert list(a.results.data_vars) == ["mean", "shifted"]
    with pytest.raises(AttributeError, match="set by compute"):
        a.mean = 3.0
    with pytest.raises(RuntimeError, match="inside compute"):
        a._set(mean=scalar(1.0, "K"))
    with pytest.raises(NotImplementedError, match="no picture"):
        a.plot()
    assert _Mean.from_dataset(ds).mean.attrs["units"] == "K"


def test_non_xarray_result_is_rejected():
    class Bad(Analyzer):
        x = Result("1")

        def compute(self, ds):
            self._set(x=np.zeros(3))

    b = Bad()
    with pytest.raises(TypeError, match="xarray"):
        b.compute(brownian(n_frames=10, n_ions=2))
    assert not b.computed


def test_scalar_properties_are_0d_dataarrays_with_units(computed):
    t = computed["transport"]
    for prop, u in (("D", "cm^2/s"), ("D_err", "cm^2/s"), ("sigma", "mS/cm"), ("below_measurable", "1")):
        v = getattr(t, prop)
        assert isinstance(v, xr.DataArray) and v.ndim == 0 and v.attrs["units"] == u
    assert float(t.D) == float(t.result["D_tr"])  # values unchanged
    assert computed["reorientation"].mean_frequency.attrs["units"] == "1/ns"
    assert computed["hops"].mean_frequency.attrs["units"] == "1/ns"
    assert computed["p2s6_dihedral"].mean_frequency.attrs["units"] == "1/ns"
    assert computed["dos"].band_centre_of("Na").attrs["units"] == "THz"
    assert computed["orientation_acf"].p2_time.attrs["units"] == "ps"
    fp = computed["rdf"].first_peak
    assert fp["position"].attrs["units"] == "Å" and fp["height"].attrs["units"] == "1"


def _units_ok(obj):
    items = [obj] if isinstance(obj, xr.DataArray) else list(obj.data_vars.values())
    return all("units" in v.attrs and str(v.attrs["units"]) not in BAD_UNITS for v in items)


def test_public_functions_return_xarray_with_units(ds):
    from rotorlab import units as U
    from rotorlab.analysis import hops, rotation, structure, transport, vibrations

    lag = np.arange(101) * 0.1
    fit = transport.fit_diffusion(lag, 6 * 0.3 * lag)
    assert float(fit["D"]) == pytest.approx(0.3 * U.A2_PER_PS_TO_CM2_PER_S, rel=1e-12)
    ex = transport.msd_exponent(lag, 6 * 0.3 * lag)
    assert float(ex["beta"]) == pytest.approx(1.0, rel=1e-9)
    ne = transport.nernst_einstein(1e-5, 128, 6912.0, 600.0)
    ne_arr = transport.nernst_einstein(xr.DataArray([1e-5, 2e-5], dims="run"), 128, 6912.0, 600.0)
    assert ne_arr.dims == ("run",) and float(ne_arr[1]) == pytest.approx(2 * float(ne), rel=1e-12)
    T = np.array([400.0, 500.0, 600.0])
    arr = transport.arrhenius_fit(T, 1e-3 * np.exp(-0.2 / (U.KB * T)))
    sig = xr.DataArray([[1.0], [0.5], [0.2], [0.1]], dims=("mode", "temperature"),
                       coords={"mode": list(transport.MODES), "temperature": [600.0]})
    mc = transport.mode_contributions(sig)
    f = np.linspace(0, 10, 101)
    g = np.exp(-((f - 4.0) ** 2))
    bc = vibrations.band_centre(f, g)
    assert float(bc) == pytest.approx(4.0, rel=1e-3) and bc.attrs["units"] == "THz"
    bc2 = vibrations.band_centre(xr.DataArray(f, attrs={"units": "meV"}),
                                 xr.DataArray(np.stack([g, g]), dims=("species", "frequency"),
                                              coords={"species": ["Li", "Na"]}))
    assert bc2.dims == ("species",) and bc2.attrs["units"] == "meV"
    harm = harmonic(n_frames=200)
    d1 = vibrations.PhononDOS().compute(harm)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        outs = [fit, ex, ne, ne_arr, arr, mc, bc, bc2,
                transport.msd(ds), *transport.sigma_table(_results_like()),
                vibrations.vacf(harm), vibrations.band_centre_shift(d1, d1),
                hops.find_sites(ds), hops.reference_sites(ds),
                structure.density_profile(ds), rotation.orientation_vectors(ds),
                rotation.angle_projections(rotation.orientation_vectors(ds), np.eye(3) * 20.0)]
    for o in outs:
        assert isinstance(o, (xr.DataArray, xr.Dataset)), type(o)
        assert _units_ok(o), o


def _results_like():
    modes = list(("UC", "RC", "RTC", "RTVC"))
    return xr.Dataset({"sigma": ("run", [1.0, 0.5, 0.2, 0.1]), "sigma_bound": ("run", [np.nan] * 4)},
                      coords={"run": modes, "constraint_mode": ("run", modes),
                              "target_temperature": ("run", [600.0] * 4)})


def test_importing_rotorlab_analysis_pulls_no_gui_or_plotting_library():
    code = (
        "import sys, importlib\n"
        "import rotorlab, rotorlab.analysis, rotorlab.viz, rotorlab.viz.plots\n"
        "for m in ('base', 'registry', 'transport', 'rotation', 'hops', 'structure', 'vibrations', 'report',"
        " 'cli_commands', '_data', '_kernels'):\n"
        "    importlib.import_module('rotorlab.analysis.' + m)\n"
        "import rotorlab.analysis as A\n"
        "A.available; A.registry.specs()\n"
        "bad = sorted(k for k in sys.modules if k.split('.')[0] in ('matplotlib', 'panel', 'nglview'))\n"
        "print('BAD', bad)\n"
        "sys.exit(1 if bad else 0)\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
