"""Vibrations: harmonic oscillators of known frequency → DOS peaks and band centre; bad input."""

import numpy as np
import pytest

from analysis_synthetic import brownian, harmonic
from rotorlab import units as U
from rotorlab.analysis import vibrations as vib
from rotorlab.analysis._kernels import autocorr_fft


def _peaks(f, g, n):
    from scipy.signal import find_peaks

    idx, _ = find_peaks(g, height=0.05 * g.max())
    return np.sort(f[idx[np.argsort(-g[idx])][:n]])


def test_harmonic_dos_peaks_and_band_centre():
    ds = harmonic(freqs_THz=(5.0, 12.0), species=("Li", "Li"))
    d = vib.PhononDOS().compute(ds)
    f, g = d.dos["frequency"].values, d.dos.values
    np.testing.assert_allclose(_peaks(f, g, 2), [5.0, 12.0], atol=0.15)
    # equal kinetic energy per atom → band centre = mean frequency
    assert float(d.band_centre_of("total")) == pytest.approx(8.5, rel=0.02)
    bc = d.band_centres
    assert float(bc["band_centre_meV"].sel(species="total")) == pytest.approx(8.5 * U.THZ_TO_MEV, rel=0.02)
    assert float(bc["band_centre_cm1"].sel(species="total")) == pytest.approx(8.5 * U.THZ_TO_CM1, rel=0.02)
    assert np.trapezoid(g, f) == pytest.approx(3 * ds.sizes["atom"], rel=1e-9)
    assert d.dos.attrs["units"] == "1/THz" and d.dos["energy"].attrs["units"] == "meV"


def test_projected_dos_separates_species_and_band_centre_shift():
    ds = harmonic(freqs_THz=(4.0, 15.0), species=("Li", "Na"))
    d = vib.PhononDOS().compute(ds)
    assert float(d.band_centre_of("Li")) == pytest.approx(4.0, rel=0.03)
    assert float(d.band_centre_of("Na")) == pytest.approx(15.0, rel=0.03)
    np.testing.assert_allclose(d.pdos.sum("species").values, d.dos.values, rtol=1e-12)
    d2 = vib.PhononDOS().compute(harmonic(freqs_THz=(6.0, 15.0), species=("Li", "Na")))
    sh = vib.band_centre_shift(d, d2)
    assert float(sh["shift"].sel(species="Li")) == pytest.approx(2.0, abs=0.15)
    assert abs(float(sh["shift"].sel(species="Na"))) < 0.15


def test_vacf_of_oscillator_is_cosine():
    ds = harmonic(freqs_THz=(5.0,), n_per=4, species=("Li",))
    c = vib.vacf(ds, "Li", max_lag_ps=0.5)
    t = c["lag_time"].values
    # sum over atoms of random phases: all-origin VACF of v = A cos(wt+φ) → cos(w τ) (finite-T error)
    np.testing.assert_allclose(c.sel(species="Li").values, np.cos(2 * np.pi * 5.0 * t), atol=0.02)


def test_dos_without_velocities_is_a_clear_error():
    ds = brownian(n_frames=50, n_ions=4)
    with pytest.raises(ValueError, match="needs velocities"):
        vib.PhononDOS().compute(ds)
    ds = harmonic(n_frames=100)
    with pytest.raises(ValueError, match="not present"):
        vib.PhononDOS(species="Cl").compute(ds)
    with pytest.raises(ValueError, match="too few frames"):
        vib.PhononDOS().compute(harmonic(n_frames=5))


@pytest.mark.parametrize("T,N,C", [(1, 1, 3), (7, 3, 3), (50, 2, 6), (129, 4, 3)])
def test_autocorr_fft_matches_loop(T, N, C):
    x = np.random.default_rng(T).normal(size=(T, N, C))
    ref = np.array([(x[: T - m] * x[m:]).sum(-1).mean(0) for m in range(T)])
    np.testing.assert_allclose(autocorr_fft(x), ref, rtol=1e-9, atol=1e-12)
