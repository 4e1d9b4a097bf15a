"""Transport analyses against analytic cases (ballistic, Brownian), Arrhenius, mode contributions."""

import numpy as np
import pytest
import xarray as xr

from analysis_synthetic import ballistic, brownian
from rotorlab import units as U
from rotorlab.analysis import transport as tr
from rotorlab.analysis._kernels import msd_direct, msd_fft


def test_ballistic_msd_is_v2t2():
    ds = ballistic(speed=0.02, n_frames=150, mode="UC")
    m = tr.msd(ds)
    t_fs = m["lag_time"].values * 1000.0
    np.testing.assert_allclose(m.values, (0.02 * t_fs) ** 2, rtol=1e-9, atol=1e-9)
    assert m.attrs["units"] == "Å^2"


@pytest.mark.parametrize("T,N", [(1, 3), (2, 1), (17, 4), (64, 5), (101, 2)])
def test_msd_fft_matches_direct(T, N):
    x = np.random.default_rng(T).normal(size=(T, N, 3)).cumsum(axis=0) + 100.0
    np.testing.assert_allclose(msd_fft(x), msd_direct(x), rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("T,N,lead,batch", [(1, 3, (), None), (17, 4, (), None), (101, 7, (), 1),
                                              (64, 9, (3,), 2), (50, 5, (2, 2), 4000)])
def test_msd_fft_sum_matches_direct_sum(T, N, lead, batch, monkeypatch):
    """The summed-spectrum kernel (atom-major input, optional leading block axes), with the
    particles split over several cache-sized FFT batches (``batch`` bytes forces 1..N per
    batch), equals the sum over particles of the O(T^2) reference."""
    from rotorlab.analysis import _kernels as K

    if batch is not None:
        monkeypatch.setattr(K, "_FFT_BATCH_BYTES", batch * 3 * 2 * K._next_fast_len(T) * 8
                            * int(np.prod(lead) if lead else 1))
    rng = np.random.default_rng(T + N)
    x = rng.normal(size=lead + (N, T, 3)).cumsum(axis=-2) + 50.0
    before = x.copy()
    got = K.msd_fft_sum(x)
    assert got.shape == lead + (T,)
    flat = x.reshape((-1, N, T, 3))
    want = np.array([msd_direct(b.transpose(1, 0, 2)).sum(axis=1) for b in flat])  # (T, N) each
    np.testing.assert_allclose(got.reshape(-1, T), want, rtol=1e-8, atol=1e-7)
    np.testing.assert_array_equal(x, before)  # the caller's data untouched


def test_brownian_D_recovered_within_error():
    D_true = 0.5  # Å²/ps
    ds = brownian(D_A2_ps=D_true, n_ions=64, n_frames=2000, seed=11)
    t = tr.Transport(n_blocks=5).compute(ds)
    D_cm2 = D_true * U.A2_PER_PS_TO_CM2_PER_S
    assert not t.below_measurable
    assert t.D_err > 0
    # within 3 standard errors of the block estimate, and within 10 % absolutely
    assert abs(t.D - D_cm2) < 3 * t.D_err, (t.D, t.D_err, D_cm2)
    assert abs(t.D - D_cm2) / D_cm2 < 0.10
    # the error bar is meaningful: not absurdly large
    assert t.D_err / D_cm2 < 0.2
    r = t.result
    assert r["D_tr"].attrs["units"] == "cm^2/s" and r["sigma"].attrs["units"] == "mS/cm"
    # Nernst-Einstein by hand
    V = 20.0**3 * 1e-30
    s = 64 * U.E_CHARGE**2 * t.D * 1e-4 / (V * U.KB_SI * 600.0) * 10
    assert float(t.sigma) == pytest.approx(float(s), rel=1e-12)


def test_drift_removed_for_uc_not_for_rtc():
    kw = dict(D_A2_ps=0.2, n_ions=32, n_frames=600, seed=3, drift_A_per_ps=5.0)
    uc = tr.msd(brownian(mode="UC", **kw))
    rtc = tr.msd(brownian(mode="RTC", **kw))
    clean = tr.msd(brownian(mode="RTC", **{**kw, "drift_A_per_ps": 0.0}))
    # RTC keeps the drift: MSD grows by (v t)^2 ; UC removes it (up to the ions' own COM share)
    t = rtc["lag_time"].values
    v2 = 5.0**2 * (1 + 0.25 + 0.09)
    np.testing.assert_allclose(rtc.values[50], clean.values[50] + v2 * t[50] ** 2, rtol=0.05)
    assert abs(uc.values[50] - clean.values[50]) < 0.2 * clean.values[50]


def test_below_measurable_never_reports_a_number():
    ds = brownian(D_A2_ps=1e-6, n_ions=16, n_frames=500, seed=5)  # 1e-10 cm²/s
    t = tr.Transport().compute(ds)
    assert t.below_measurable
    assert np.isnan(t.D) and np.isnan(t.sigma) and np.isnan(t.D_err)
    assert float(t.result["D_tr_bound"]) == U.D_MEASURABLE_CM2_S
    assert float(t.result["sigma_bound"]) > 0


def test_too_few_frames_and_missing_species():
    ds = brownian(n_frames=20, n_ions=4)
    with pytest.raises(ValueError, match="too few frames"):
        tr.Transport().compute(ds)
    with pytest.raises(ValueError, match="not present"):
        tr.Transport(species="Na").compute(brownian(n_frames=100, n_ions=4))


def test_results_raise_before_compute():
    with pytest.raises(RuntimeError, match="compute"):
        tr.Transport().D


def test_dask_backed_chunks_give_same_answer():
    ds = brownian(n_frames=400, n_ions=8, seed=7)
    a = tr.Transport(memory=1e12).compute(ds)
    b = tr.Transport(memory=4000).compute(ds.chunk({"frame": 37}))  # tiny budget: many blocks
    np.testing.assert_allclose(a.msd.values, b.msd.values, rtol=1e-10, atol=1e-10)
    assert float(a.D) == pytest.approx(float(b.D), rel=1e-10)


def test_arrhenius_recovers_known_barrier():
    Ea, D0 = 0.3, 1e-3
    T = np.array([400.0, 500.0, 600.0, 700.0, 800.0])
    D = D0 * np.exp(-Ea / (U.KB * T))
    rng = np.random.default_rng(0)
    Dn = D * (1 + 0.03 * rng.normal(size=T.size))
    fit = tr.arrhenius_fit(T, Dn, 0.03 * D)
    assert abs(float(fit["Ea"]) - Ea) < 3 * float(fit["Ea_err"])
    assert float(fit["Ea_err"]) < 0.05
    assert fit["Ea"].attrs["units"] == "eV"
    assert float(fit["prefactor"]) == pytest.approx(D0, rel=0.5)
    exact = tr.arrhenius_fit(T, D)  # unweighted, exact data → zero error
    assert float(exact["Ea"]) == pytest.approx(Ea, rel=1e-10)
    # below measurable points excluded; too few → clear error
    with pytest.raises(ValueError, match="too few points"):
        tr.arrhenius_fit(T[:3], np.array([np.nan, np.nan, 1e-5]))


def _sig(vals):
    return xr.DataArray(np.asarray(vals, dtype=float), dims="mode", coords={"mode": list(tr.MODES)})


def test_mode_contributions_values_and_bounds():
    out = tr.mode_contributions(_sig([100.0, 10.0, 1.0, 0.1]))
    np.testing.assert_allclose(out["delta"].values, [1, 1, 1])
    np.testing.assert_allclose(out["r"].values, [1 / 3] * 3)
    np.testing.assert_allclose(out["drop"].values, [0, 1, 2, 3])
    assert set(out["r_kind"].values) == {"value"}
    # RTVC below measurable (bound 0.1): Δ_Vib is a lower bound, r_Vib a lower bound
    out = tr.mode_contributions(_sig([100.0, 10.0, 1.0, np.nan]), _sig([np.nan, np.nan, np.nan, 0.1]))
    assert list(out["delta_kind"].values) == ["value", "value", "lower_bound"]
    assert out["r_kind"].values[2] == "lower_bound"
    assert out["r_kind"].values[0] == "upper_bound"
    assert out["drop_kind"].values[3] == "lower_bound"
    assert float(out["r_hi"][2]) > 0.99
    with pytest.raises(ValueError, match="sigma_bound"):
        tr.mode_contributions(_sig([100.0, 10.0, 1.0, np.nan]))


def test_caged_motion_is_flagged_not_diffusive():
    """Ions rattling in cages (harmonic) have an MSD that plateaus: the fit would give a
    positive 'D', so the result must say it is not diffusive and warn."""
    import warnings

    from analysis_synthetic import harmonic

    caged = harmonic(freqs_THz=(2.0,), n_per=16, n_frames=3000, dt_fs=5.0, species=("Li",))
    caged.attrs["mobile_species"] = "Li"
    with pytest.warns(RuntimeWarning, match="not in the diffusive regime"):
        r = tr.Transport().compute(caged).result
    assert not bool(r["diffusive"]) and float(r["msd_exponent"]) < 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        free = tr.Transport().compute(brownian(D_A2_ps=0.5, n_ions=64, n_frames=2000, seed=3))
    assert bool(free.result["diffusive"])
    assert abs(float(free.result["msd_exponent"]) - 1.0) < 0.1


def test_ballistic_motion_is_not_diffusive():
    with pytest.warns(RuntimeWarning, match="ballistic"):
        r = tr.Transport().compute(ballistic(n_frames=400, speed=0.05)).result
    assert not bool(r["diffusive"]) and float(r["msd_exponent"]) > 1.9
