"""Physics of the constrained integrator (DESIGN §4 invariants, issue 3 "Done when")."""

import numpy as np
import pytest

from rotorlab.md.constraints import MODE_R, MODE_RT, Constraints
from rotorlab.potentials.base import energy_forces
from rotorlab.md.integrate import Integrator, kinetic_energy, maxwell_boltzmann
from rotorlab.md.testing import tetrahedral_salt
from rotorlab.md.thermostats import make_thermostat
from rotorlab.potentials import ReferenceForceField
from rotorlab.units import KB


@pytest.fixture(scope="module")
def salt():
    """24-atom LiBH4-like rock salt, briefly equilibrated (UC, Langevin, 300 K)."""
    atoms, topo = tetrahedral_salt(a=6.4, seed=1, shear=0.05)
    cell = atoms.cell.array
    ff = ReferenceForceField.from_topology(topo, atoms.positions, cell, cutoff=6.0)
    cons = Constraints.from_topology(topo, "UC", positions=atoms.positions)
    rng = np.random.default_rng(7)
    v = maxwell_boltzmann(topo.masses, 300.0, rng, cons)
    integ = Integrator(energy_forces(ff), cons, atoms.positions, v, cell, 0.5,
                       make_thermostat("langevin", 300.0, 50.0), rng)
    integ.run(1500)
    return topo, ff, cell, integ.x.copy(), integ.v.copy()


def _integrator(salt, mode, thermostat="nve", T=300.0, dt=0.5, seed=3, tau=100.0, codes=None):
    topo, ff, cell, x, v = salt
    if codes is None:
        cons = Constraints.from_topology(topo, mode, positions=x)
    else:
        cons = Constraints(topo.masses, topo.rotor_ptr, topo.rotor_atoms, codes, x)
    v = v.copy()
    cons.project_velocities(v)
    return Integrator(energy_forces(ff), cons, x, v, cell, dt, make_thermostat(thermostat, T, tau),
                      np.random.Generator(np.random.PCG64(seed)))


def test_zero_net_torque_and_force_every_step(salt):
    topo = salt[0]
    codes = np.array([MODE_R, MODE_RT, MODE_R, MODE_RT])
    integ = _integrator(salt, None, "nhc", codes=codes)
    cons = integ.cons
    ptr, ratoms = topo.rotor_ptr, topo.rotor_atoms
    worst_torque = worst_force = worst_l = 0.0
    for _ in range(300):
        integ.step()
        f, v = integ.f, integ.v
        fscale = np.abs(f).max()
        for r in range(4):
            idx = ratoms[ptr[r]:ptr[r + 1]]
            a = cons.ref[ptr[r]:ptr[r + 1]]
            m = topo.masses[idx]
            worst_torque = max(worst_torque, np.abs(np.cross(a, f[idx]).sum(0)).max() / fscale)
            worst_l = max(worst_l, np.abs((m[:, None] * np.cross(a, v[idx])).sum(0)).max())
            if codes[r] == MODE_RT:
                worst_force = max(worst_force, np.abs(f[idx].sum(0)).max() / fscale)
    assert worst_torque < 1e-13
    assert worst_force < 1e-13
    assert worst_l < 1e-13
    e, c = cons.residuals(integ.x)
    assert e.max() < 1e-12 and c.max() < 1e-12


def _nve_drift(integ, n):
    e = np.empty(n)
    for i in range(n):
        integ.step()
        e[i] = integ.conserved_energy
    t_ps = np.arange(n) * integ.dt / 1000.0
    slope = np.polyfit(t_ps, e, 1)[0]
    n_atoms = len(integ.masses)
    return abs(slope) / n_atoms, np.std(e - np.polyval(np.polyfit(t_ps, e, 1), t_ps)) / n_atoms


@pytest.mark.slow
def test_nve_drift_constrained_no_worse_than_unconstrained(salt):
    results = {}
    for mode in ("UC", "RC", "RTC"):
        integ = _integrator(salt, mode, "nve", dt=1.0)
        integ.run(200)
        results[mode] = _nve_drift(integ, 4000)
    print("\nNVE conserved-energy drift at dt = 1.0 fs over 4 ps (|slope| meV/ps/atom, "
          "fluctuation meV/atom):")
    for mode, (d, s) in results.items():
        print(f"  {mode:4s} drift {1e3 * d:.5f}  fluct {1e3 * s:.5f}")
    uc_d, uc_s = results["UC"]
    for mode in ("RC", "RTC"):
        d, s = results[mode]
        # "no worse": drift at most twice UC's (or UC's + 0.01 meV/ps/atom, the noise
        # floor of a 4 ps fit), fluctuation at most 1.5x UC's
        assert d <= max(2 * uc_d, uc_d + 1e-5), (mode, d, uc_d)
        assert s <= 1.5 * uc_s, (mode, s, uc_s)


@pytest.mark.slow
@pytest.mark.parametrize("thermostat", ["nhc", "csvr", "langevin"])
def test_nvt_temperature_uses_constrained_dof(salt, thermostat):
    target = 300.0
    summary = []
    for mode in ("UC", "RC", "RTC", "RTVC"):
        integ = _integrator(salt, mode, thermostat, T=target, dt=0.5, tau=40.0, seed=11)
        integ.run(500)
        n = 8000
        ke = np.empty(n)
        for i in range(n):
            integ.step()
            ke[i] = kinetic_energy(integ.v, integ.masses)
        nf = integ.cons.n_dof
        temps = 2 * ke / (nf * KB)
        blocks = temps.reshape(20, -1).mean(axis=1)
        err = blocks.std(ddof=1) / np.sqrt(len(blocks))
        mean = temps.mean()
        wrong = 2 * ke.mean() / (3 * len(integ.masses) * KB)  # naive 3N temperature
        summary.append(f"{mode}: N_f={nf} <T>={mean:.1f}±{err:.1f} K (3N would give "
                       f"{wrong:.0f} K)")
        assert abs(mean - target) < max(5 * err, 0.015 * target), summary[-1]
        if mode != "UC":
            assert abs(wrong - target) > 8 * err + 0.05 * target
    print(f"\n{thermostat}: " + "; ".join(summary))


def _angle_range(integ, topo, n, every=10):
    o = topo.orientation_atoms
    th = []
    for i in range(n):
        integ.step()
        if i % every == 0:
            u = integ.x[o[:, 1]] - integ.x[o[:, 0]]
            u /= np.linalg.norm(u, axis=1)[:, None]
            th.append(np.degrees(np.arccos(np.clip(u, -1, 1))))
    return np.ptp(np.array(th), axis=0).max(axis=1)  # per rotor, max over θx, θy, θz


@pytest.mark.slow
def test_rotor_swings_under_uc_but_only_librates_under_rc():
    atoms, topo = tetrahedral_salt(a=7.0, seed=3)
    cell = atoms.cell.array
    ff = ReferenceForceField.from_topology(topo, atoms.positions, cell, cutoff=7.0)
    ranges = {}
    for mode in ("UC", "RC"):
        cons = Constraints.from_topology(topo, mode, positions=atoms.positions)
        rng = np.random.Generator(np.random.PCG64(1))
        v = maxwell_boltzmann(topo.masses, 400.0, rng, cons)
        integ = Integrator(energy_forces(ff), cons, atoms.positions, v, cell, 0.5,
                           make_thermostat("langevin", 400.0, 200.0), rng)
        ranges[mode] = _angle_range(integ, topo, 4000)
    print(f"\nangle-projection swing over 2 ps at 400 K: UC {np.round(ranges['UC'], 1)}°, "
          f"RC {np.round(ranges['RC'], 1)}°")
    assert ranges["UC"].max() > 70.0
    assert ranges["RC"].max() < 20.0


def test_state_roundtrip_is_bit_for_bit(salt):
    for thermostat in ("nhc", "csvr", "langevin"):
        a = _integrator(salt, "RC", thermostat, seed=5)
        a.run(20)
        arrays, meta = a.get_state()
        b = _integrator(salt, "RC", thermostat, seed=999)
        b.set_state({k: v.copy() for k, v in arrays.items()}, meta)
        a.run(30)
        b.run(30)
        np.testing.assert_array_equal(a.x, b.x)
        np.testing.assert_array_equal(a.v, b.v)
        assert a.conserved_energy == b.conserved_energy


@pytest.mark.slow
def test_eckart_and_com_at_roundoff_after_1e5_steps():
    atoms, topo = tetrahedral_salt(a=6.4, seed=8)
    cell = atoms.cell.array
    ff = ReferenceForceField.from_topology(topo, atoms.positions, cell, cutoff=4.5,
                                           alpha=0.35)
    codes = np.array([MODE_R, MODE_RT, MODE_RT, MODE_R])
    cons = Constraints(topo.masses, topo.rotor_ptr, topo.rotor_atoms, codes, atoms.positions)
    rng = np.random.Generator(np.random.PCG64(2))
    v = maxwell_boltzmann(topo.masses, 300.0, rng, cons)
    integ = Integrator(energy_forces(ff), cons, atoms.positions, v, cell, 0.5,
                       make_thermostat("nhc", 300.0, 50.0), rng)
    integ.run(100_000)
    e, c = cons.residuals(integ.x)
    # the Li ions have moved: this was a real trajectory, not a frozen one
    print(f"\nafter 1e5 steps: max Eckart residual {e.max():.2e} (relative), max rotor COM "
          f"drift {c.max():.2e} Å, T = {integ.temperature:.0f} K")
    assert np.isfinite(integ.x).all()
    assert e.max() <= 1e-8
    assert c.max() <= 1e-8
