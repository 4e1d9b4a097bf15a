"""Audit tests for the constrained MD engine: invariants that earlier tests could not see.

Each test here was written against a concrete code mutation that the rest of the suite
let through (listed in the test's docstring): residuals that report zero, an integrator
that never repairs positions, thermostat terms missing from the conserved quantity, an
unprojected Langevin kick, Maxwell–Boltzmann velocities scaled with 3N, and constraint
codes T/RTV/RV that no integration test exercised.
"""

import re
import subprocess
import sys

import numpy as np
import pytest

from rotorlab.md.constraints import (MODE_NONE, MODE_R, MODE_RT, MODE_RTV, MODE_RV, MODE_T,
                                     Constraints)
from rotorlab.potentials.base import energy_forces
from rotorlab.md.integrate import (Integrator, drift, kick, kinetic_energy,
                                   maxwell_boltzmann)
from rotorlab.md.testing import random_rotation, tetrahedral_salt
from rotorlab.md.thermostats import make_thermostat
from rotorlab.potentials import ReferenceForceField
from rotorlab.units import ACCEL, KB, MVV2E


class ZeroForce:
    """A force field without forces (free particles on the constraint manifold)."""

    id = "zero"
    version = "0"
    type_names = None

    def compute(self, positions, cell):
        return 0.0, np.zeros_like(positions)


@pytest.fixture(scope="module")
def system():
    atoms, topo = tetrahedral_salt(a=6.4, seed=1, shear=0.05)
    cell = atoms.cell.array
    ff = ReferenceForceField.from_topology(topo, atoms.positions, cell, cutoff=6.0)
    return atoms, topo, cell, ff


def _dense_pv(cons):
    """Velocity projector (3N, 3N) assembled column by column from the kernel."""
    n3 = 3 * cons.n_atoms
    pv = np.empty((n3, n3))
    for j in range(n3):
        e = np.zeros(n3)
        e[j] = 1.0
        pv[:, j] = cons.project_velocities(e.reshape(-1, 3).copy()).ravel()
    return pv


# ------------------------------------------------------------------ small kernels


def test_kick_drift_kinetic_energy_match_numpy():
    rng = np.random.default_rng(0)
    n = 37
    x, v, f = (rng.normal(size=(n, 3)) for _ in range(3))
    m = rng.uniform(1, 100, size=n)
    acc = ACCEL / m
    v2 = v.copy()
    kick(v2, f, acc, 0.25)
    np.testing.assert_allclose(v2, v + 0.25 * f * acc[:, None], rtol=1e-14, atol=1e-15)
    x2 = x.copy()
    drift(x2, v, 0.7)
    np.testing.assert_allclose(x2, x + 0.7 * v, rtol=1e-14, atol=1e-15)
    assert kinetic_energy(v, m) == pytest.approx(0.5 * MVV2E * np.sum(m[:, None] * v * v),
                                                 rel=1e-13)


# ------------------------------------------------------------------ residuals and repair


def test_residuals_detect_violations(system):
    """Mutation survived before: ``residuals`` returning zeros (every residual assertion in
    the suite, including the 1e5-step Eckart test, then passes vacuously)."""
    atoms, topo, _, _ = system
    codes = np.array([MODE_R, MODE_RT, MODE_T, MODE_NONE])
    cons = Constraints(topo.masses, topo.rotor_ptr, topo.rotor_atoms, codes, atoms.positions)
    e, c = cons.residuals(atoms.positions)
    assert e.max() < 1e-14 and c.max() < 1e-14
    x = atoms.positions.copy()
    rot = random_rotation(np.random.default_rng(3))
    shift = np.array([1e-3, -2e-3, 0.5e-3])
    for r in range(4):
        idx = topo.rotor_atoms[topo.rotor_ptr[r]:topo.rotor_ptr[r + 1]]
        m = topo.masses[idx]
        com = (m[:, None] * x[idx]).sum(0) / m.sum()
        # a small rotation about the rotor's centre plus a translation
        small = np.eye(3) + 1e-3 * (rot - rot.T)
        x[idx] = com + (x[idx] - com) @ small.T + shift
    e, c = cons.residuals(x)
    # NumPy reference: |Σ m a × x − c0| / Σ m |a|², |X − X0|
    for r in range(4):
        s = slice(topo.rotor_ptr[r], topo.rotor_ptr[r + 1])
        idx = topo.rotor_atoms[s]
        a = cons.ref[s]
        m = topo.masses[idx]
        eck = (m[:, None] * np.cross(a, x[idx])).sum(0)
        eck0 = (m[:, None] * np.cross(a, atoms.positions[idx])).sum(0)
        want_e = np.linalg.norm(eck - eck0) / (m * (a * a).sum(1)).sum()
        want_c = np.linalg.norm((m[:, None] * (x[idx] - atoms.positions[idx])).sum(0) / m.sum())
        assert e[r] == pytest.approx(want_e if codes[r] in (MODE_R, MODE_RT) else 0.0,
                                     rel=1e-9, abs=1e-15)
        assert c[r] == pytest.approx(want_c if codes[r] in (MODE_T, MODE_RT) else 0.0,
                                     rel=1e-9, abs=1e-15)
    assert e[:2].min() > 1e-4 and c[1:3].min() > 1e-3


def test_integrator_step_repairs_off_manifold_positions(system):
    """Mutation survived before: the integrator never calling ``repair_positions`` (the
    projections alone keep the drift at round-off, so the 1e5-step test cannot see it)."""
    atoms, topo, cell, ff = system
    codes = np.array([MODE_R, MODE_RT, MODE_T, MODE_RV])
    for thermostat in ("nhc", "langevin"):
        cons = Constraints(topo.masses, topo.rotor_ptr, topo.rotor_atoms, codes,
                           atoms.positions)
        rng = np.random.Generator(np.random.PCG64(0))
        v = maxwell_boltzmann(topo.masses, 300.0, rng, cons)
        integ = Integrator(energy_forces(ff), cons, atoms.positions, v, cell, 0.5,
                           make_thermostat(thermostat, 300.0, 50.0), rng)
        integ.x += 1e-5 * np.random.default_rng(1).normal(size=integ.x.shape)
        e, c = cons.residuals(integ.x)
        assert e.max() > 1e-7 and c.max() > 1e-7
        integ.step()
        e, c = cons.residuals(integ.x)
        assert e.max() < 1e-13 and c.max() < 1e-12, thermostat
        # the rigid-translation rotor is rigid again
        s = slice(topo.rotor_ptr[3], topo.rotor_ptr[4])
        idx = topo.rotor_atoms[s]
        d = integ.x[idx] - integ.x[idx].mean(0)
        np.testing.assert_allclose(d - d.mean(0), cons.ref[s] - cons.ref[s].mean(0),
                                   atol=1e-12)


# ------------------------------------------------------------------ every step, every code


@pytest.mark.parametrize("codes,thermostat", [
    ((MODE_T, MODE_RTV, MODE_RV, MODE_R), "langevin"),
    ((MODE_RV, MODE_R, MODE_NONE, MODE_RV), "csvr"),
])
def test_constraints_hold_at_every_step_for_all_codes(system, codes, thermostat):
    """The existing every-step test covered R and RT with NHC only; here T, RTV and RV
    rotors (and COM removal with RV) are checked after every step, with stochastic
    thermostats: projected velocities and forces are fixed points of the projectors and
    the physical conditions hold exactly."""
    atoms, topo, cell, ff = system
    codes = np.array(codes)
    cons = Constraints(topo.masses, topo.rotor_ptr, topo.rotor_atoms, codes, atoms.positions)
    rng = np.random.Generator(np.random.PCG64(4))
    v = maxwell_boltzmann(topo.masses, 300.0, rng, cons)
    integ = Integrator(energy_forces(ff), cons, atoms.positions, v, cell, 0.5,
                       make_thermostat(thermostat, 300.0, 30.0), rng)
    m_all = topo.masses
    worst = 0.0
    for _ in range(200):
        integ.step()
        f, v = integ.f, integ.v
        fs, vs = np.abs(f).max(), np.abs(v).max()
        worst = max(worst, np.abs(cons.project_velocities(v.copy()) - v).max() / vs,
                    np.abs(cons.project_forces(f.copy()) - f).max() / fs)
        for r, code in enumerate(codes):
            s = slice(topo.rotor_ptr[r], topo.rotor_ptr[r + 1])
            idx = topo.rotor_atoms[s]
            m = m_all[idx]
            if code == MODE_T:
                assert np.abs(f[idx].sum(0)).max() < 1e-12 * fs
                assert np.abs((m[:, None] * v[idx]).sum(0)).max() < 1e-12 * vs * m.sum()
            elif code == MODE_RTV:
                assert not f[idx].any() and not v[idx].any()
            elif code == MODE_RV:
                assert np.ptp(v[idx], axis=0).max() < 1e-13 * vs
                acc = f[idx] / m[:, None]
                assert np.ptp(acc, axis=0).max() < 1e-13 * fs
            elif code == MODE_R:
                a = cons.ref[s]
                assert np.abs(np.cross(a, f[idx]).sum(0)).max() < 1e-12 * fs
        if cons.remove_com:
            assert np.abs((m_all[:, None] * v).sum(0)).max() < 1e-12 * vs * m_all.sum()
    assert worst < 1e-13
    e, c = cons.residuals(integ.x)
    assert e.max() < 1e-12 and c.max() < 1e-12


# ------------------------------------------------------------------ ensembles


@pytest.mark.parametrize("codes", [(MODE_R, MODE_RT, MODE_RV, MODE_T),
                                   (MODE_R, MODE_RV, MODE_R, MODE_NONE)])
def test_langevin_samples_the_projected_maxwell_boltzmann_distribution(system, codes):
    """With no forces, BAOAB with projected noise must sample exactly
    ``v ~ N(0, k_B T P_v M⁻¹)``: per atom ``⟨m_i |v_i|²⟩ = k_B T Σ_c (P_v)_jj`` and
    ``⟨2 KE⟩ = N_f k_B T`` (equipartition over the remaining DOF, N_f = tr P_v)."""
    atoms, topo, cell, _ = system
    codes = np.array(codes)
    cons = Constraints(topo.masses, topo.rotor_ptr, topo.rotor_atoms, codes, atoms.positions)
    pv = _dense_pv(cons)
    assert round(np.trace(pv)) == cons.n_dof
    T = 300.0
    rng = np.random.Generator(np.random.PCG64(8))
    v = maxwell_boltzmann(topo.masses, T, rng, cons)
    integ = Integrator(energy_forces(ZeroForce()), cons, atoms.positions, v, cell, 1.0,
                       make_thermostat("langevin", T, 1.0), rng)
    n = 6000
    mv2 = np.zeros(cons.n_atoms)
    ke = np.empty(n)
    for i in range(n):
        integ.step()
        mv2 += topo.masses * (integ.v ** 2).sum(1)
        ke[i] = integ.kinetic_energy
    mv2 /= n * KB * T * ACCEL       # in units of k_B T: expected Σ_c (P_v)_jj per atom
    want = np.diag(pv).reshape(-1, 3).sum(1)
    frozen = want < 1e-12
    assert not mv2[frozen].any()
    np.testing.assert_allclose(mv2[~frozen], want[~frozen], rtol=0.08)
    assert 2 * ke.mean() / (cons.n_dof * KB) == pytest.approx(T, rel=0.025)
    # a 3N count would be far outside that tolerance
    assert abs(3 * cons.n_atoms / cons.n_dof - 1) > 0.2


@pytest.mark.parametrize("thermostat", ["nhc", "csvr"])
def test_velocity_scaling_thermostats_target_constrained_dof(system, thermostat):
    """Mutation survived the fast tests before: NHC/CSVR set up with 3N instead of N_f
    (only the slow NVT test saw it). Without forces the thermostat alone sets the kinetic
    energy, so ``⟨2 KE⟩ = N_f k_B T`` is exact up to sampling error."""
    atoms, topo, cell, _ = system
    cons = Constraints(topo.masses, topo.rotor_ptr, topo.rotor_atoms,
                       np.array([MODE_R, MODE_RT, MODE_RV, MODE_T]), atoms.positions)
    T = 300.0
    rng = np.random.Generator(np.random.PCG64(3))
    v = maxwell_boltzmann(topo.masses, T, rng, cons)
    integ = Integrator(energy_forces(ZeroForce()), cons, atoms.positions, v, cell, 1.0,
                       make_thermostat(thermostat, T, 10.0), rng)
    n = 6000
    ke = np.empty(n)
    for i in range(n):
        integ.step()
        ke[i] = integ.kinetic_energy
    assert 2 * ke.mean() / (cons.n_dof * KB) == pytest.approx(T, rel=0.04)
    assert 3 * cons.n_atoms / cons.n_dof > 1.4


def test_maxwell_boltzmann_starts_on_manifold_at_target(system):
    """Mutation survived before: initial velocities rescaled with 3N instead of N_f (every
    run then starts at the wrong temperature; NVT tests equilibrate it away)."""
    atoms, topo, cell, ff = system
    for mode in ("UC", "TC", "RC", "RTC", "RTVC", "RVC"):
        cons = Constraints.from_topology(topo, mode, positions=atoms.positions)
        v = maxwell_boltzmann(topo.masses, 450.0, np.random.default_rng(2), cons)
        np.testing.assert_allclose(cons.project_velocities(v.copy()), v, atol=1e-15)
        assert 2 * kinetic_energy(v, topo.masses) / (cons.n_dof * KB) == pytest.approx(
            450.0, rel=1e-12)
        integ = Integrator(energy_forces(ff), cons, atoms.positions, v, cell, 0.5)
        assert integ.temperature == pytest.approx(450.0, rel=1e-12), mode
    assert not maxwell_boltzmann(topo.masses, 0.0, np.random.default_rng(0), cons).any()


@pytest.mark.parametrize("mode", ["RC", "RTC"])
@pytest.mark.parametrize("thermostat", ["nhc", "csvr", "langevin"])
def test_conserved_quantity_with_thermostats(system, mode, thermostat):
    """Mutations survived before: the NHC ``N_f k_B T ξ_1`` term, the CSVR work and the
    Langevin work dropped from the conserved energy, and an unprojected Langevin kick
    (its KE change then miscounts the work).

    The unrelaxed start releases ~1.5 eV that the thermostat removes within 1 ps; the
    conserved quantity must stay at NVE-like fluctuation (a few meV)."""
    atoms, topo, cell, ff = system
    cons = Constraints.from_topology(topo, mode, positions=atoms.positions)
    rng = np.random.Generator(np.random.PCG64(5))
    v = maxwell_boltzmann(topo.masses, 300.0, rng, cons)
    integ = Integrator(energy_forces(ff), cons, atoms.positions, v, cell, 0.5,
                       make_thermostat(thermostat, 300.0, 20.0), rng)
    n = 2000
    h = np.empty(n)
    e = np.empty(n)
    for i in range(n):
        integ.step()
        h[i] = integ.conserved_energy
        e[i] = integ.kinetic_energy + integ.potential_energy
    assert np.ptp(e) > 0.5                       # the thermostat really exchanged energy
    assert np.ptp(h) < 0.015, (np.ptp(h), np.ptp(e))   # < 0.6 meV/atom, 1 % of exchange


# ------------------------------------------------------------------ numba hygiene


def test_import_compiles_nothing_and_kernels_are_cached():
    code = (
        "import sys, numba\n"
        "import rotorlab.md, rotorlab.potentials\n"
        "import rotorlab.md.constraints, rotorlab.md.integrate, rotorlab.md.simulation\n"
        "import rotorlab.md.thermostats, rotorlab.potentials.reference\n"
        "from numba.core.caching import NullCache\n"
        "n = 0\n"
        "for name, mod in list(sys.modules.items()):\n"
        "    if not name.startswith('rotorlab'):\n"
        "        continue\n"
        "    for k, v in vars(mod).items():\n"
        "        if isinstance(v, numba.core.dispatcher.Dispatcher) and v.__module__ == name:\n"
        "            n += 1\n"
        "            assert not v.signatures, f'{name}.{k} compiled at import'\n"
        "            assert not isinstance(v._cache, NullCache), f'{name}.{k} not cache=True'\n"
        "assert 'deepmd' not in sys.modules and 'tensorflow' not in sys.modules\n"
        "print(n)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.split()[-1]) >= 8


# ------------------------------------------------------------------ bad inputs


def test_bad_inputs_low_level(system):
    atoms, topo, cell, ff = system
    cons = Constraints.from_topology(topo, "RC", positions=atoms.positions)
    v = np.zeros((len(atoms), 3))
    for dt in (0.0, -0.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="timestep"):
            Integrator(energy_forces(ff), cons, atoms.positions, v, cell, dt)
    with pytest.raises(ValueError, match="temperature"):
        make_thermostat("nhc", -1.0)
    with pytest.raises(ValueError, match="time constant"):
        make_thermostat("csvr", 300.0, 0.0)
    with pytest.raises(ValueError, match="unknown thermostat"):
        make_thermostat("berendsen", 300.0)
    with pytest.raises(ValueError, match="mode code"):
        Constraints(topo.masses, topo.rotor_ptr, topo.rotor_atoms, [7, 0, 0, 0],
                    atoms.positions)
    with pytest.raises(ValueError, match="positions"):
        Constraints.from_topology(topo, "RC")
    with pytest.raises(ValueError, match="conflicts"):
        Constraints(topo.masses, topo.rotor_ptr, topo.rotor_atoms, [MODE_T, 0, 0, 0],
                    atoms.positions, remove_com=True)
    rtvc = Constraints(topo.masses[topo.rotor_atoms[:5]], np.array([0, 5]), np.arange(5),
                       [MODE_RTV], atoms.positions[topo.rotor_atoms[:5]])
    with pytest.raises(ValueError, match="no degrees of freedom"):
        Integrator(energy_forces(ff), rtvc, atoms.positions[:5], np.zeros((5, 3)), cell, 0.5)


# ------------------------------------------------------------------ explosion detection


def _tamper(step, what):
    def cb(ev):
        sim = ev.simulation
        if sim.step == step:
            if what == "nan":
                sim.integrator.v[0, 0] = np.nan
            elif what == "hot":
                sim.integrator.v *= 10.0
    return cb


@pytest.mark.parametrize("what,match", [
    ("nan", "non-finite positions at step 42"),
    ("hot", r"temperature \d+ K exceeds 5x the target 300 K"),
    ("close", r"atoms closer than 1.3 Å \(found 1.2"),
])
def test_each_explosion_criterion_stops_and_keeps_data(tmp_path, what, match):
    """Mutation survived before: the temperature criterion switched off (the only
    explosion test blew up through another criterion). Each criterion must stop the run
    with its own message and keep the frames and the last checkpoint."""
    from rotorlab.md.simulation import Simulation, SimulationExploded
    from rotorlab.store import TrajectoryStore

    atoms, topo = tetrahedral_salt(a=6.4, seed=1)
    kw = dict(mode="RC", temperature=300.0, timestep=0.5, thermostat="nve", steps=200,
              frame_interval=4, checkpoint_interval=20, seed=1, progress=False)
    if what == "close":
        # B–H bonds are 1.22 Å: with a 1.3 Å threshold the first frame check fires
        kw["min_distance"] = 1.3
    else:
        kw["observers"] = [_tamper(41, what)]
    sim = Simulation(atoms, "reference", store=tmp_path / "x.zarr", topology=topo, **kw)
    with pytest.raises(SimulationExploded, match=match) as info:
        sim.run()
    assert "kept" in str(info.value) or what == "close"
    # the step and the bare reason travel with the exception (model cards record them
    # without the store's path): the reason is the message's own "what"
    assert info.value.step == sim.step
    assert re.search(match, info.value.reason) and "kept in" not in info.value.reason
    from rotorlab.training.checks import explosion_text

    text = explosion_text(info.value, 0.5)
    assert text == f"at step {sim.step} ({sim.step * 0.5 / 1000:.2f} ps): {info.value.reason}"
    assert str(tmp_path) not in text
    ts = TrajectoryStore.open(tmp_path / "x.zarr", mode="r")
    assert ts.has_checkpoint
    if what != "close":
        # NaN: caught before the force call of step 42; hot: after step 42
        assert sim.step == (41 if what == "nan" else 42)
        assert ts.n_frames == 41 // 4 + 1                 # frames 0..40 flushed
        assert ts.read_checkpoint()[1]["integrator"]["step"] == 40
        ds = ts.to_xarray()
        assert np.isfinite(ds["positions"].values).all()
        assert np.isfinite(ds["temperature"].values).all()


def test_missing_potential_is_an_error_not_the_test_force_field():
    """``potential=None`` silently ran the reference (test) force field before."""
    from rotorlab.md.simulation import Simulation

    atoms, topo = tetrahedral_salt()
    with pytest.raises(ValueError, match="no potential given"):
        Simulation(atoms, None, mode="RC", temperature=300.0, topology=topo,
                   progress=False)
