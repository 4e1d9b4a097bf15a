"""Velocity Verlet (and BAOAB for Langevin) with exact linear rotor constraints.

Step order (DESIGN §4), forces always stored projected:

1. thermostat half step; 2. ``v += dt/2·a(F)``; 3. ``x += dt·v``; 4. repair positions;
5. ``F = P_F(force(x))``; 6. ``v += dt/2·a(F)``; ``v = P_v(v)``; 7. thermostat half step.

Langevin uses B A O A B with the O step followed by ``P_v``. Positions are unwrapped (never
wrapped into the cell); the cell is fixed (NVT/NVE). The complete state is a set of arrays
plus JSON metadata (:meth:`Integrator.get_state`), so a run restarts bit-for-bit.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from rotorlab.md.constraints import Constraints
from rotorlab.md.thermostats import NVE, Thermostat
from rotorlab.units import ACCEL, KB, MVV2E

__all__ = ["Integrator", "kick", "drift", "kinetic_energy", "maxwell_boltzmann"]


@njit(cache=True)
def kick(v, f, acc, h):
    """Velocity kick ``v += h · acc · f`` in place.

    Parameters
    ----------
    v : ndarray, shape (N, 3)
        Velocities [Å/fs], modified in place.
    f : ndarray, shape (N, 3)
        Forces [eV/Å] (already projected).
    acc : ndarray, shape (N,)
        ``ACCEL / m_i`` [(Å/fs²)/(eV/Å)], the force-to-acceleration factor.
    h : float
        Kick length [fs].
    """
    for i in range(v.shape[0]):
        a = acc[i] * h
        v[i, 0] += a * f[i, 0]
        v[i, 1] += a * f[i, 1]
        v[i, 2] += a * f[i, 2]


@njit(cache=True)
def drift(x, v, h):
    """Position drift ``x += h · v`` in place.

    Parameters
    ----------
    x : ndarray, shape (N, 3)
        Unwrapped positions [Å], modified in place.
    v : ndarray, shape (N, 3)
        Velocities [Å/fs].
    h : float
        Drift length [fs].
    """
    for i in range(x.shape[0]):
        x[i, 0] += h * v[i, 0]
        x[i, 1] += h * v[i, 1]
        x[i, 2] += h * v[i, 2]


@njit(cache=True)
def kinetic_energy(v, masses):
    """Kinetic energy ``½ Σ m_i |v_i|²``.

    Parameters
    ----------
    v : ndarray, shape (N, 3)
        Velocities [Å/fs].
    masses : ndarray, shape (N,)
        [amu].

    Returns
    -------
    float
        Kinetic energy [eV].
    """
    s = 0.0
    for i in range(v.shape[0]):
        s += masses[i] * (v[i, 0] * v[i, 0] + v[i, 1] * v[i, 1] + v[i, 2] * v[i, 2])
    return 0.5 * s * MVV2E


def maxwell_boltzmann(masses, temperature, rng, constraints: Constraints | None = None):
    """Random velocities (N, 3) [Å/fs] at exactly ``temperature`` on the constraint manifold.

    Velocities are drawn from the Maxwell–Boltzmann distribution, projected with ``P_v`` and
    rescaled so that ``2 KE / (N_f k_B) = temperature``.

    Parameters
    ----------
    masses : array_like, shape (N,)
        [amu].
    temperature : float
        [K]; 0 gives zero velocities.
    rng : numpy.random.Generator
        Source of the Gaussian draws.
    constraints : Constraints, optional
        Project onto the constraint tangent space and use its ``N_f``; default: no
        constraints, ``N_f = 3N``.

    Returns
    -------
    ndarray, shape (N, 3)
        Velocities [Å/fs].
    """
    masses = np.asarray(masses, dtype=np.float64)
    v = rng.standard_normal((len(masses), 3)) * np.sqrt(KB * temperature * ACCEL / masses)[:, None]
    n_dof = 3 * len(masses)
    if constraints is not None:
        constraints.project_velocities(v)
        n_dof = constraints.n_dof
    ke = kinetic_energy(v, masses)
    if temperature > 0 and ke > 0:
        v *= math.sqrt(0.5 * n_dof * KB * temperature / ke)
    else:
        v[:] = 0.0
    return v


class Integrator:
    """Constrained MD integrator state machine.

    Parameters
    ----------
    energy_forces : callable
        ``f(positions, cell) -> (energy [eV], forces (N, 3) [eV/Å])``; wrap a force field
        with :func:`rotorlab.potentials.energy_forces`. The integrator knows nothing else
        about the potential.
    constraints : Constraints
        Rotor constraints (use mode UC for none).
    positions : ndarray, shape (N, 3)
        Unwrapped positions [Å], rotors whole, on the constraint manifold.
    velocities : ndarray, shape (N, 3)
        [Å/fs]; projected on entry.
    cell : ndarray, shape (3, 3)
        Lattice vectors as rows [Å].
    dt : float
        Timestep [fs].
    thermostat : Thermostat, optional
        Default NVE.
    rng : numpy.random.Generator, optional
        PCG64 generator (stochastic thermostats); default seeded with 0.

    Attributes
    ----------
    x, v, f : ndarray, shape (N, 3)
        Positions [Å], velocities [Å/fs], projected forces [eV/Å].
    potential_energy, kinetic_energy : float
        [eV].
    step_count : int
    """

    def __init__(self, energy_forces, constraints: Constraints, positions, velocities, cell,
                 dt: float, thermostat: Thermostat | None = None,
                 rng: np.random.Generator | None = None, *, compute_forces: bool = True):
        if not dt > 0 or not math.isfinite(dt):
            raise ValueError(f"timestep must be > 0 fs, got {dt}")
        if not callable(energy_forces):
            raise TypeError("Integrator takes a callable (positions, cell) -> (energy, forces); "
                            "wrap a force field with rotorlab.potentials.energy_forces(ff)")
        self.energy_forces = energy_forces
        self.cons = constraints
        self.masses = constraints.masses
        self.acc = np.ascontiguousarray(ACCEL / self.masses)
        self.cell = np.ascontiguousarray(cell, dtype=np.float64)
        self.dt = float(dt)
        self.thermostat = thermostat if thermostat is not None else NVE()
        self.thermostat.setup(constraints.n_dof, self.dt)
        self.rng = rng if rng is not None else np.random.Generator(np.random.PCG64(0))
        self.x = np.array(positions, dtype=np.float64, order="C")
        self.v = np.array(velocities, dtype=np.float64, order="C")
        self.cons.project_velocities(self.v)
        self.step_count = 0
        self.kinetic_energy = kinetic_energy(self.v, self.masses)
        self.potential_energy = 0.0
        self.f = np.zeros_like(self.x)
        if compute_forces:
            self._forces()
        if self.thermostat.splitting == "baoab":
            self._sigma = np.sqrt(self.thermostat.kT * ACCEL / self.masses)

    @property
    def n_dof(self) -> int:
        return self.cons.n_dof

    @property
    def temperature(self) -> float:
        """Kinetic temperature ``2 KE / (N_f k_B)`` [K]."""
        return 2.0 * self.kinetic_energy / (self.n_dof * KB)

    @property
    def conserved_energy(self) -> float:
        """``KE + PE`` + thermostat contribution [eV]."""
        return self.kinetic_energy + self.potential_energy + self.thermostat.energy

    @property
    def time(self) -> float:
        """Simulated time [fs] since the integrator's step 0."""
        return self.step_count * self.dt

    def _forces(self):
        if not np.isfinite(self.x).all():
            # never hand NaN/inf to a force field (numba cell lists index out of bounds)
            raise FloatingPointError(
                f"non-finite positions at step {self.step_count + 1}: the dynamics exploded")
        out = self.energy_forces(self.x, self.cell)
        e, f = out[0], out[1]
        f = np.array(f, dtype=np.float64, order="C")
        self.cons.project_forces(f)
        self.f = f
        self.potential_energy = float(e)

    def step(self) -> None:
        """Advance one timestep."""
        th = self.thermostat
        h = 0.5 * self.dt
        if th.splitting == "baoab":
            kick(self.v, self.f, self.acc, h)
            drift(self.x, self.v, h)
            ke0 = kinetic_energy(self.v, self.masses)
            th.o_step(self.v, self._sigma, self.rng, self.dt)
            self.cons.project_velocities(self.v)
            th.work += kinetic_energy(self.v, self.masses) - ke0
            drift(self.x, self.v, h)
            self.cons.repair_positions(self.x)
            self._forces()
            kick(self.v, self.f, self.acc, h)
            self.cons.project_velocities(self.v)
            self.kinetic_energy = kinetic_energy(self.v, self.masses)
        else:
            self.kinetic_energy = th.half_step(self.v, self.kinetic_energy, self.rng)
            kick(self.v, self.f, self.acc, h)
            drift(self.x, self.v, self.dt)
            self.cons.repair_positions(self.x)
            self._forces()
            kick(self.v, self.f, self.acc, h)
            self.cons.project_velocities(self.v)
            ke = kinetic_energy(self.v, self.masses)
            self.kinetic_energy = th.half_step(self.v, ke, self.rng)
        self.step_count += 1

    def run(self, n: int, callback=None) -> None:
        """Take ``n`` steps.

        Parameters
        ----------
        n : int
            Number of steps.
        callback : callable, optional
            ``callback(self)`` after every step.
        """
        for _ in range(int(n)):
            self.step()
            if callback is not None:
                callback(self)

    # -- state -------------------------------------------------------------------------

    def get_state(self):
        """Arrays and JSON metadata of the dynamic state (not the force field/constraints)."""
        tarr, tmeta = self.thermostat.get_state()
        arrays = {"positions": self.x.copy(), "velocities": self.v.copy(),
                  "forces": self.f.copy(), "cell": self.cell.copy(), **tarr}
        meta = {"step": int(self.step_count), "dt": self.dt,
                "potential_energy": self.potential_energy,
                "kinetic_energy": self.kinetic_energy, "thermostat": tmeta,
                "rng": self.rng.bit_generator.state}
        return arrays, meta

    def set_state(self, arrays, meta) -> None:
        """Restore :meth:`get_state` output exactly (no force re-evaluation).

        Parameters
        ----------
        arrays : mapping of str to ndarray
            ``positions``, ``velocities``, ``forces`` (N, 3), ``cell`` (3, 3) and the
            thermostat's arrays.
        meta : mapping
            ``step``, energies, thermostat metadata and the PCG64 ``rng`` state.
        """
        self.x = np.array(arrays["positions"], dtype=np.float64, order="C")
        self.v = np.array(arrays["velocities"], dtype=np.float64, order="C")
        self.f = np.array(arrays["forces"], dtype=np.float64, order="C")
        self.cell = np.array(arrays["cell"], dtype=np.float64, order="C")
        self.step_count = int(meta["step"])
        self.potential_energy = float(meta["potential_energy"])
        self.kinetic_energy = float(meta["kinetic_energy"])
        self.thermostat.set_state(arrays, meta["thermostat"])
        self.rng.bit_generator.state = meta["rng"]
