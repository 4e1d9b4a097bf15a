"""Thermostats for constrained MD: NVE, Nosé–Hoover chain, CSVR (Bussi) and Langevin.

All use the constrained number of degrees of freedom ``N_f`` (DESIGN §4). Velocity-scaling
thermostats (NHC, CSVR) preserve the linear constraints exactly; the Langevin kick is followed
by the velocity projection ``P_v`` in the integrator (BAOAB with projected noise).

Every thermostat exposes ``get_state() -> (arrays, meta)`` and ``set_state(arrays, meta)``
for bit-for-bit restarts, and ``energy`` (its contribution to the conserved quantity, eV).
Random numbers come from the integrator's ``numpy.random.Generator`` (PCG64) whose state is
checkpointed alongside.
"""

from __future__ import annotations

import math

import numpy as np

from rotorlab.units import KB

__all__ = ["Thermostat", "NVE", "NoseHooverChain", "CSVR", "Langevin", "make_thermostat",
           "THERMOSTATS"]


class Thermostat:
    """Base class: no coupling (also the NVE ensemble).

    Parameters
    ----------
    temperature : float
        Target temperature [K], ``>= 0``.
    tau : float
        Coupling time constant [fs], ``> 0``.

    Raises
    ------
    ValueError
        Negative temperature or non-positive ``tau``.
    """

    name = "nve"
    #: True when the integrator must use the BAOAB splitting (stochastic O step).
    splitting = "vv"

    def __init__(self, temperature: float = 0.0, tau: float = 100.0):
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0 K, got {temperature}")
        if tau <= 0:
            raise ValueError(f"thermostat time constant must be > 0 fs, got {tau}")
        self.temperature = float(temperature)
        self.tau = float(tau)
        self.n_dof = 0
        self.dt = 0.0
        #: Work done on the system by the thermostat, subtracted from the conserved energy.
        self.work = 0.0

    @property
    def kT(self) -> float:
        return KB * self.temperature

    def setup(self, n_dof: int, dt: float) -> None:
        """Bind to a system.

        Parameters
        ----------
        n_dof : int
            Constrained degrees of freedom ``N_f`` (the thermostat's target is
            ``2 KE = N_f k_B T``).
        dt : float
            Integrator timestep [fs].

        Raises
        ------
        ValueError
            ``n_dof <= 0`` (everything frozen).
        """
        if n_dof <= 0:
            raise ValueError(f"no degrees of freedom left (N_f = {n_dof})")
        self.n_dof = int(n_dof)
        self.dt = float(dt)

    def half_step(self, v: np.ndarray, ke: float, rng: np.random.Generator) -> float:
        """Thermostat half step (``dt/2``): scale ``v`` in place.

        Parameters
        ----------
        v : ndarray, shape (N, 3)
            Velocities [Å/fs] on the constraint manifold (scaling keeps them there).
        ke : float
            Their kinetic energy [eV].
        rng : numpy.random.Generator
            For stochastic thermostats.

        Returns
        -------
        float
            The kinetic energy after the half step [eV].
        """
        return ke

    @property
    def energy(self) -> float:
        """Thermostat contribution to the conserved energy [eV]."""
        return -self.work

    def get_state(self):
        """``(arrays, meta)`` that restore this thermostat exactly (checkpoints)."""
        return {}, {"name": self.name, "temperature": self.temperature, "tau": self.tau,
                    "work": self.work}

    def set_state(self, arrays, meta):
        """Inverse of :meth:`get_state`."""
        self.temperature = float(meta["temperature"])
        self.tau = float(meta["tau"])
        self.work = float(meta.get("work", 0.0))

    def describe(self) -> str:
        """Short human-readable description, stored with trajectories."""
        return f"{self.name}(T={self.temperature:g} K, tau={self.tau:g} fs)"


class NVE(Thermostat):
    """Microcanonical: no thermostat."""

    name = "nve"

    def describe(self) -> str:
        return "nve"


class NoseHooverChain(Thermostat):
    """Nosé–Hoover chain (Martyna–Klein–Tuckerman), Trotter half steps around velocity Verlet.

    Parameters
    ----------
    temperature : float
        Target [K].
    tau : float
        Period-like time constant [fs]; ``Q_1 = N_f k_B T τ²``, ``Q_j = k_B T τ²``.
    chain : int
        Chain length (default 3).

    Conserved energy: ``KE + PE + Σ ½ Q_j ṽ_j² + N_f k_B T ξ_1 + k_B T Σ_{j≥2} ξ_j``.
    """

    name = "nhc"

    def __init__(self, temperature: float, tau: float = 100.0, chain: int = 3):
        super().__init__(temperature, tau)
        if chain < 1:
            raise ValueError("Nosé–Hoover chain length must be >= 1")
        self.chain = int(chain)
        self.xi = np.zeros(self.chain)
        self.vxi = np.zeros(self.chain)
        self.Q = np.ones(self.chain)

    def setup(self, n_dof, dt):
        super().setup(n_dof, dt)
        kT = max(self.kT, 1e-12)
        self.Q = np.full(self.chain, kT * self.tau ** 2)
        self.Q[0] = self.n_dof * kT * self.tau ** 2

    def _g(self, j, ke):
        kT = self.kT
        if j == 0:
            return (2.0 * ke - self.n_dof * kT) / self.Q[0]
        return (self.Q[j - 1] * self.vxi[j - 1] ** 2 - kT) / self.Q[j]

    def half_step(self, v, ke, rng):
        d = 0.5 * self.dt
        m = self.chain
        vxi = self.vxi
        for j in range(m - 1, -1, -1):
            if j < m - 1:
                vxi[j] *= math.exp(-0.25 * d * vxi[j + 1])
            vxi[j] += 0.5 * d * self._g(j, ke)
            if j < m - 1:
                vxi[j] *= math.exp(-0.25 * d * vxi[j + 1])
        scale = math.exp(-d * vxi[0])
        v *= scale
        ke = ke * scale * scale
        self.xi += d * vxi
        for j in range(m):
            if j < m - 1:
                vxi[j] *= math.exp(-0.25 * d * vxi[j + 1])
            vxi[j] += 0.5 * d * self._g(j, ke)
            if j < m - 1:
                vxi[j] *= math.exp(-0.25 * d * vxi[j + 1])
        return ke

    @property
    def energy(self):
        kT = self.kT
        return float(0.5 * np.sum(self.Q * self.vxi ** 2) + self.n_dof * kT * self.xi[0]
                     + kT * np.sum(self.xi[1:]))

    def get_state(self):
        arrays, meta = super().get_state()
        meta["chain"] = self.chain
        return {"nhc_xi": self.xi.copy(), "nhc_vxi": self.vxi.copy()}, meta

    def set_state(self, arrays, meta):
        super().set_state(arrays, meta)
        self.xi = np.array(arrays["nhc_xi"], dtype=np.float64)
        self.vxi = np.array(arrays["nhc_vxi"], dtype=np.float64)
        self.chain = len(self.xi)


class CSVR(Thermostat):
    """Canonical sampling through velocity rescaling (Bussi, Donadio, Parrinello 2007).

    Applied as two half steps (``dt/2`` each) around velocity Verlet, each rescaling the
    kinetic energy of the ``N_f`` constrained degrees of freedom; the work done is
    accumulated so that ``KE + PE − work`` is conserved up to the integrator's error.

    Parameters
    ----------
    temperature : float
        Target [K].
    tau : float
        Relaxation time of the kinetic energy [fs].
    """

    name = "csvr"

    def half_step(self, v, ke, rng):
        if ke <= 0.0:
            return ke
        nf = self.n_dof
        c = math.exp(-0.5 * self.dt / self.tau)
        kt = 0.5 * nf * self.kT
        r1 = rng.standard_normal()
        s = 2.0 * rng.standard_gamma(0.5 * (nf - 1)) if nf > 1 else 0.0
        new = ke + (1.0 - c) * (kt * (r1 * r1 + s) / nf - ke) + 2.0 * r1 * math.sqrt(
            c * (1.0 - c) * kt * ke / nf)
        new = max(new, 0.0)
        alpha = math.sqrt(new / ke)
        v *= alpha
        self.work += new - ke
        return new


class Langevin(Thermostat):
    """Langevin dynamics in the BAOAB splitting with projected noise.

    Friction ``γ = 1/τ``. The O step ``v ← c₁ v + √(1−c₁²) √(k_B T/m) ξ`` is followed by the
    mass-metric projection ``P_v`` (done by the integrator), which samples the Maxwell–
    Boltzmann distribution on the constraint manifold exactly. The kinetic-energy change of
    the (projected) O step is accumulated as work: ``KE + PE − work`` is conserved up to
    the integrator's error.

    Parameters
    ----------
    temperature : float
        Target [K].
    tau : float
        Inverse friction ``1/γ`` [fs].
    """

    name = "langevin"
    splitting = "baoab"

    def o_step(self, v, sigma, rng, dt):
        """Ornstein–Uhlenbeck update of ``v`` in place (before projection).

        Parameters
        ----------
        v : ndarray, shape (N, 3)
        sigma : ndarray, shape (N,)
            ``√(k_B T ACCEL / m_i)`` [Å/fs] at the target temperature.
        rng : numpy.random.Generator
        dt : float
            Length of the O step [fs].
        """
        c1 = math.exp(-dt / self.tau)
        c2 = math.sqrt(1.0 - c1 * c1)
        noise = rng.standard_normal(v.shape)
        v *= c1
        v += (c2 * sigma)[:, None] * noise


THERMOSTATS = {"nve": NVE, "nhc": NoseHooverChain, "csvr": CSVR, "langevin": Langevin}


def make_thermostat(name: str, temperature: float, tau: float | None = None, **kw) -> Thermostat:
    """Create a thermostat by name (``nhc`` default, ``csvr``, ``langevin``, ``nve``).

    Parameters
    ----------
    name : str
        ``nhc`` (aliases ``nose-hoover``), ``csvr`` (``bussi``), ``langevin`` (``baoab``),
        ``nve`` (``none``); case, ``-`` and ``_`` are ignored.
    temperature : float
        Target [K].
    tau : float, optional
        Time constant [fs] (default 100).
    **kw
        Extra arguments of the class (e.g. ``chain`` for NHC).

    Returns
    -------
    Thermostat

    Raises
    ------
    ValueError
        Unknown name, negative temperature, non-positive ``tau``.
    """
    key = str(name).lower().replace("-", "").replace("_", "")
    key = {"nosehoover": "nhc", "nosehooverchain": "nhc", "bussi": "csvr",
           "baoab": "langevin", "none": "nve"}.get(key, key)
    if key not in THERMOSTATS:
        raise ValueError(f"unknown thermostat {name!r}; choose one of {', '.join(THERMOSTATS)}")
    cls = THERMOSTATS[key]
    if tau is None:
        tau = 100.0
    return cls(temperature, tau, **kw)
