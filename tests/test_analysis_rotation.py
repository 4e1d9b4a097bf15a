"""Rotor analyses: exact event counts, analytic ACFs, free-energy surface, P2S6 dihedral jumps."""

import numpy as np
import pytest

from analysis_synthetic import p2s6_jumps, rotor_jumps, spinning_rotors
from rotorlab.analysis import rotation as rot


def test_reorientation_exact_event_count_with_libration():
    ds, expected = rotor_jumps(n_rotors=4, jumps_per_rotor=(3, 5, 0, 7), libration_deg=8.0)
    r = rot.Reorientation(threshold_deg=70.0, smooth_ps=0.05).compute(ds)
    np.testing.assert_array_equal(r.counts.values, expected)
    dur_ns = (ds.sizes["frame"] - 1) * 5.0 / 1e6
    np.testing.assert_allclose(r.frequency.values, expected / dur_ns)
    assert r.frequency.attrs["units"] == "1/ns"


def test_librations_alone_are_not_events_but_raw_noise_would_be():
    ds, _ = rotor_jumps(n_rotors=3, jumps_per_rotor=(0,), libration_deg=15.0, seed=9)
    assert rot.Reorientation(smooth_ps=0.05).compute(ds).counts.sum() == 0
    # without smoothing strong librations cross 70°: the smoothing is what removes them
    assert rot.Reorientation(smooth_ps=0.0, threshold_deg=40.0).compute(ds).counts.sum() > 0


def test_theta_projections_against_lattice():
    ds = spinning_rotors(n_rotors=1, n_frames=10, omega_rad_per_ps=0.0)
    o = rot.RotorOrientation().compute(ds)
    np.testing.assert_allclose(o.theta.isel(frame=0, rotor=0).values, [0.0, 90.0, 90.0], atol=1e-6)
    assert o.theta.attrs["units"] == "degree"


def test_p1_p2_of_uniform_spin_are_analytic():
    w = 3.0
    ds = spinning_rotors(n_frames=400, omega_rad_per_ps=w)
    acf = rot.OrientationACF().compute(ds)
    tau = acf.p1["lag_time"].values
    np.testing.assert_allclose(acf.p1.values, np.cos(w * tau), atol=1e-9)
    np.testing.assert_allclose(acf.p2.values, 1.5 * np.cos(w * tau) ** 2 - 0.5, atol=1e-9)


def test_free_energy_surface_minimum_and_isotropy():
    ds = spinning_rotors(n_frames=10, omega_rad_per_ps=0.0)  # all along +x
    F = rot.RotationalFreeEnergy(bins=(18, 36)).compute(ds).free_energy
    th, ph = np.unravel_index(np.nanargmin(F.values), F.shape)
    assert abs(F["theta"].values[th] - 90) < 10 and abs(F["phi"].values[ph]) < 10
    assert F.attrs["units"] == "eV"
    # isotropic orientations → flat surface (per solid angle)
    rng = np.random.default_rng(0)
    u = rng.normal(size=(20000, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    pos = np.zeros((20000, 2, 3))
    pos[:, 1] = 1.2 * u
    from analysis_synthetic import make_dataset
    ds2 = make_dataset(pos + 10, np.eye(3) * 20, ["B", "H"], rotor_id=[0, 0], rotor_kind=["BH"],
                       orientation_atoms=[[0, 1]], mobile="B")
    p = rot.RotationalFreeEnergy(bins=(6, 8)).compute(ds2).probability
    np.testing.assert_allclose(p.values, 1 / (4 * np.pi), rtol=0.15)


def test_p2s6_dihedral_jump_count():
    ds, expected = p2s6_jumps()
    d = rot.P2S6Dihedral(smooth_ps=0.05).compute(ds)
    np.testing.assert_array_equal(d.jumps.values, expected)
    assert d.dihedral.attrs["units"] == "degree"


def test_missing_rotor_kind_is_clear():
    ds, _ = rotor_jumps(n_rotors=1, n_frames=200, jumps_per_rotor=(0,))
    with pytest.raises(ValueError, match="not present"):
        rot.Reorientation(kind="B10H10").compute(ds)
    with pytest.raises(RuntimeError, match="compute"):
        rot.Reorientation().counts
