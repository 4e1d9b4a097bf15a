"""Audit tests: cases the first test suite let through (each was checked against a mutation).

* the fit window of D_tr (a ballistic MSD makes the fitted slope depend on the window);
* Nernst–Einstein against a hand-computed number and literal unit conversions;
* the reorientation threshold, the mass weighting of the total DOS;
* analyses never write into the caller's Dataset;
* laziness on a real dask-backed store: no analysis materialises the whole positions or
  velocities array, and the DOS reads the store once.
"""

import numpy as np
import pytest

from analysis_synthetic import ballistic, brownian, harmonic, make_dataset, rotor_jumps, site_hops, write_store
from rotorlab import units as U
from rotorlab.analysis import transport as tr
from rotorlab.analysis import vibrations as vib
from rotorlab.analysis._kernels import autocorr_fft


def test_D_uses_documented_window_of_block_duration():
    # MSD = v² t²: a least-squares line through evenly spaced lags t_lo…t_hi has slope
    # v² (t_lo + t_hi), so D = v² (t_lo + t_hi) / 6 depends on exactly which lags are fitted.
    v, dt = 0.02, 1.0  # Å/fs, fs
    ds = ballistic(speed=v, n_frames=200, dt_fs=dt)
    t = tr.Transport(n_blocks=5, window=(0.1, 0.5)).compute(ds)
    # block = 40 frames, span 39 lags: window [ceil(3.9), floor(19.5)] = lags 4 … 19
    lo, hi = 4 * dt, 19 * dt
    D_expected = v * v * (lo + hi) / 6 * U.A2_PER_FS_TO_CM2_PER_S
    assert float(t.D) == pytest.approx(D_expected, rel=1e-9)
    np.testing.assert_array_equal(tr.fit_window_indices(40, (0.1, 0.5)), np.arange(4, 20))
    # every block sees the same ballistic MSD → the same slope, zero spread
    assert float(t.D_err) == pytest.approx(0.0, abs=1e-12 * D_expected)


def test_fit_diffusion_ignores_lags_outside_window():
    lag = np.arange(101) * 0.1  # ps
    msd = 6 * 0.3 * lag  # D = 0.3 Å²/ps inside the window
    out = (lag < 1.0) | (lag > 5.0)
    msd[out] *= 50.0  # garbage outside [0.1, 0.5] × 10 ps
    fit = tr.fit_diffusion(lag, msd, (0.1, 0.5))
    assert fit["D"].attrs["units"] == "cm^2/s"
    assert float(fit["D"]) == pytest.approx(0.3 * 1e-4, rel=1e-12)


def test_nernst_einstein_hand_number_and_unit_literals():
    # LiBH4-like cell: 128 Li in 6912 Å^3 at 600 K with D = 1e-5 cm²/s.
    # n = 128 / 6.912e-27 m^-3 = 1.8519e28; q² = 2.5670e-38 C²; kT = 8.2839e-21 J
    # σ = n q² D / kT = 1.8519e28 * 2.5670e-38 * 1e-9 / 8.2839e-21 = 57.38 S/m = 573.8 mS/cm
    s = float(tr.nernst_einstein(1e-5, 128, 6912.0, 600.0))
    assert s == pytest.approx(573.8, rel=1e-3)
    # divalent ion: q² → 4 q²
    assert float(tr.nernst_einstein(1e-5, 128, 6912.0, 600.0, charge=2.0)) == pytest.approx(4 * s, rel=1e-12)
    # the below-measurable threshold of DESIGN §5 is a number in cm²/s
    assert U.D_MEASURABLE_CM2_S == 1e-8
    assert U.A2_PER_PS_TO_CM2_PER_S == pytest.approx(1e-4) and U.A2_PER_FS_TO_CM2_PER_S == pytest.approx(0.1)
    # 1 THz = h·1e12 Hz = 4.135667 meV = 33.35641 cm⁻¹ (c = 2.99792458e10 cm/s)
    assert U.THZ_TO_MEV == pytest.approx(4.135667696, rel=1e-9)
    assert U.THZ_TO_CM1 == pytest.approx(1e12 / 2.99792458e10, rel=1e-12)


def test_arrhenius_error_bars_scale_with_data_errors():
    T = np.array([400.0, 500.0, 600.0, 700.0])
    D = 1e-3 * np.exp(-0.25 / (U.KB * T))
    a = tr.arrhenius_fit(T, D, 0.01 * D)
    b = tr.arrhenius_fit(T, D, 0.04 * D)
    assert float(a["Ea"]) == pytest.approx(0.25, rel=1e-9)
    assert float(b["Ea_err"]) == pytest.approx(4 * float(a["Ea_err"]), rel=1e-9)
    # hand formula for two-parameter weighted least squares in x = 1/(kB T)
    x = 1 / (U.KB * T)
    w = np.full(T.size, 1 / 0.01**2)
    var_slope = w.sum() / (w.sum() * (w * x * x).sum() - (w * x).sum() ** 2)
    assert float(a["Ea_err"]) == pytest.approx(np.sqrt(var_slope), rel=1e-9)


def test_reorientation_threshold_is_used():
    from rotorlab.analysis.rotation import Reorientation

    ds, expected = rotor_jumps(n_rotors=2, n_frames=1200, jumps_per_rotor=(3, 2), libration_deg=5.0)
    r70 = Reorientation(threshold_deg=70.0, smooth_ps=0.05, method="vector").compute(ds)
    np.testing.assert_array_equal(r70.counts.values, expected)
    # each C2 jump turns the tracked B–H by 109.47°: a 150° threshold sees none of them
    r150 = Reorientation(threshold_deg=150.0, smooth_ps=0.05).compute(ds)
    assert r150.counts_vector.sum() == 0
    # ... while the full rotation of each C2 jump is 180°: the rotation threshold is its own
    np.testing.assert_array_equal(r150.counts.values, expected)
    np.testing.assert_array_equal(
        Reorientation(rotation_threshold_deg=150.0, smooth_ps=0.05).compute(ds).counts_rotation.values, expected)


def test_total_dos_weights_every_atom_equally():
    # Li (6.94 amu) at 4 THz, Na (22.99 amu) at 15 THz, equal kinetic energy per atom: the
    # mass-weighted VACF gives both species the same weight, so the total band centre is
    # the plain mean and each projection integrates to 3 N_s.
    ds = harmonic(freqs_THz=(4.0, 15.0), species=("Li", "Na"))
    d = vib.PhononDOS().compute(ds)
    assert float(d.band_centre_of("total")) == pytest.approx(9.5, rel=0.03)
    f = d.pdos["frequency"].values
    for s in ("Li", "Na"):
        n_s = int((ds["species"].values == s).sum())
        assert np.trapezoid(d.pdos.sel(species=s).values, f) == pytest.approx(3 * n_s, rel=0.05)


@pytest.mark.parametrize("memory", [1e12, 30_000, 3_000])
def test_vacf_sums_single_pass_matches_full_fft(memory):
    rng = np.random.default_rng(1)
    T, N = 157, 5
    v = rng.normal(size=(T, N, 3))
    ds = make_dataset(np.cumsum(v, 0), np.eye(3) * 10, ["Li", "Li", "Na", "Na", "Na"], velocities=v,
                      chunks=23)
    idx = np.arange(N)
    W = np.array([[1.0, 0], [2.0, 0], [0, 3.0], [0, 4.0], [0, 5.0]])
    got = vib.vacf_sums(ds, idx, W, 40, memory)
    ref = autocorr_fft(v)[:40] @ W
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)


def test_analyses_do_not_modify_the_input_dataset():
    from rotorlab.analysis import MobileIonDensity, SiteHops
    from rotorlab.analysis.vibrations import PhononDOS

    ds = brownian(n_frames=200, n_ions=8, mode="UC", drift_A_per_ps=5.0)
    x0 = ds["positions"].values.copy()
    a = float(tr.Transport().compute(ds).D)
    np.testing.assert_array_equal(ds["positions"].values, x0)
    assert float(tr.Transport().compute(ds).D) == a  # repeatable
    MobileIonDensity(shape=(4, 4, 4)).compute(ds)
    np.testing.assert_array_equal(ds["positions"].values, x0)
    hs, _, sites = site_hops(n_frames=300)
    p0 = hs["positions"].values.copy()
    SiteHops(sites=sites, residence_ps=0.05).compute(hs)
    np.testing.assert_array_equal(hs["positions"].values, p0)
    hv = harmonic(n_frames=200)
    v0 = hv["velocities"].values.copy()
    PhononDOS().compute(hv)
    np.testing.assert_array_equal(hv["velocities"].values, v0)


class _LargestResult:
    """dask callback recording the largest array any task produced."""

    def __init__(self):
        from dask.callbacks import Callback

        outer = self
        self.max = 0

        class CB(Callback):
            def _posttask(self, key, result, dsk, state, id):
                outer.max = max(outer.max, int(getattr(result, "nbytes", 0)))

        self.cb = CB()

    def __enter__(self):
        self.cb.__enter__()
        return self

    def __exit__(self, *a):
        self.cb.__exit__(*a)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    d = tmp_path_factory.mktemp("lazy")
    hv = harmonic(n_frames=400, n_per=10)  # 20 atoms with velocities
    rj, _ = rotor_jumps(n_rotors=2, n_frames=400, jumps_per_rotor=(1, 2))
    hs, _, sites = site_hops(n_ions=20, n_frames=400)
    return (write_store(hv, d / "harm.zarr", chunk_frames=20), write_store(rj, d / "rot.zarr", chunk_frames=20),
            write_store(hs, d / "hops.zarr", chunk_frames=20), sites)


def test_analyses_never_materialise_the_whole_trajectory(stores, monkeypatch):
    from rotorlab.analysis import (RDF, MobileIonDensity, OrientationACF, Reorientation, SiteHops,
                                   density_profile)
    from rotorlab.store import open_store

    harm, rot, hops, sites = stores
    mem = 20_000
    cases = [
        (harm, lambda ds: tr.Transport(memory=mem).compute(ds)),
        (harm, lambda ds: tr.Transport(memory=mem, drift="com").compute(ds)),
        (harm, lambda ds: MobileIonDensity(shape=(8, 8, 8), memory=mem).compute(ds)),
        (harm, lambda ds: density_profile(ds, memory=mem)),
        (harm, lambda ds: RDF("Li", "Na", memory=mem, nbins=20).compute(ds)),
        (harm, lambda ds: vib.PhononDOS(memory=mem, max_lag_ps=0.1).compute(ds)),
        (rot, lambda ds: Reorientation(memory=mem, smooth_ps=0.05).compute(ds)),
        (rot, lambda ds: OrientationACF(memory=mem).compute(ds)),
        (hops, lambda ds: SiteHops(sites=sites, residence_ps=0.05, memory=mem).compute(ds)),
    ]
    from rotorlab.analysis import _data

    blocks = []
    orig = _data.read_block

    def recording(ds_, var, frames, atoms=None):
        out = orig(ds_, var, frames, atoms)
        blocks.append(out.nbytes)
        return out

    monkeypatch.setattr(_data, "read_block", recording)
    for path, run in cases:
        ds = open_store(path)
        assert ds["positions"].chunks is not None
        full = ds["positions"].nbytes
        blocks.clear()
        with _LargestResult() as lr:  # dask tasks (fallback path) and direct zarr blocks
            run(ds)
        largest = max([lr.max] + blocks)
        assert 0 < largest <= full / 4, (path.name, largest, full)


def test_dos_reads_the_store_once(stores, monkeypatch):
    from rotorlab.analysis import _data
    from rotorlab.store import open_store

    ds = open_store(stores[0])
    read = []
    orig = _data.read_block

    def counting(ds_, var, frames, atoms=None):
        out = orig(ds_, var, frames, atoms)
        read.append(out.shape[0])
        return out

    monkeypatch.setattr(_data, "read_block", counting)
    vib.PhononDOS(max_lag_ps=0.04, memory=200_000).compute(ds)
    n_lag = int(round(0.04 / 0.002)) + 1
    nf = ds.sizes["frame"]
    # frames read: one pass plus the overlap (max_lag - 1 frames) of each block; the old
    # per-species, per-atom-batch reading went through the store 10 times here
    assert nf <= sum(read) <= 1.3 * nf + n_lag, sum(read)


def test_drift_mode_follows_momentum_conservation():
    """COM drift is removed exactly when the run conserved total momentum."""
    import xarray as xr

    from rotorlab.analysis._data import drift_mode

    for mode, expect in (("UC", "com"), ("RC", "com"), ("RVC", "com"), ("TC", "none"),
                         ("RTC", "none"), ("RTVC", "none")):
        assert drift_mode(xr.Dataset(attrs={"constraint_mode": mode})) == expect, mode
    # the run's own record wins over the mode name (mixed per-species modes)
    ds = xr.Dataset(attrs={"constraint_mode": "{'PS4': 'RTC'}", "com_removed": True})
    assert drift_mode(ds) == "com"
    assert drift_mode(xr.Dataset(attrs={"constraint_mode": "UC", "com_removed": False})) == "none"
