"""Exact linear rotor constraints (DESIGN §4): numba kernels and an ASE-style wrapper.

Every rotor ``r`` (atoms ``i`` with masses ``m_i``, total mass ``M``, reference geometry
``a_i`` relative to its centre of mass, ``Σ m_i a_i = 0``) carries a *mode code*:

====  =======  =====================================================  =================
code  name     constraint                                             removed DOF c_r
====  =======  =====================================================  =================
0     ``-``    none                                                   0
1     ``R``    rotation frozen: Eckart ``Σ m_i a_i × x_i = c0``       rank(I_a) (3, 2, 0)
2     ``T``    translation frozen: ``Σ m_i x_i = M X0``                3
3     ``RT``   rotation and translation frozen                        3 + rank(I_a)
4     ``RTV``  everything frozen: ``x_i = X0 + a_i``                   3 n_r
5     ``RV``   rigid translation (rotation+vibration frozen):         3 (n_r - 1)
               ``x_i = X + a_i``
====  =======  =====================================================  =================

All constraints are linear in the positions, so the constrained dynamics is the mass-metric
projection of velocities (``P_v``) and forces (``P_F = P_vᵀ`` in the mass metric) plus an
exact, non-iterative position repair that removes floating-point drift. Linear rotors have a
singular reference inertia; the pseudo-inverse restricts R to the non-degenerate subspace (the
component along the axis is identically zero). One-atom rotors have no rotation.

When no rotor has a translation constraint (codes 2, 3, 4) the total momentum is conserved;
it is then also removed (``remove_com``) and ``c_com = 3``. The number of degrees of freedom
is ``N_f = 3N - Σ_r c_r - c_com``.

The kernels take plain arrays only (CSR ``rotor_ptr``/``rotor_atoms``) and work in place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numba import njit

__all__ = [
    "MODE_NONE",
    "MODE_R",
    "MODE_T",
    "MODE_RT",
    "MODE_RTV",
    "MODE_RV",
    "MODES",
    "MODE_CODES",
    "project_velocities",
    "project_forces",
    "repair_positions",
    "rotor_frame",
    "Constraints",
]

MODE_NONE = 0
MODE_R = 1
MODE_T = 2
MODE_RT = 3
MODE_RTV = 4
MODE_RV = 5

#: Global constraint modes (reference study names + TC and rigid translation) → rotor code.
MODES: dict[str, int] = {
    "UC": MODE_NONE,
    "TC": MODE_T,
    "RC": MODE_R,
    "RTC": MODE_RT,
    "RTVC": MODE_RTV,
    "RVC": MODE_RV,
}
_ALIASES = {"NONE": "UC", "RIGID_TRANSLATION": "RVC", "RIGID": "RVC"}
#: Rotor code → short name.
MODE_CODES = {MODE_NONE: "-", MODE_R: "R", MODE_T: "T", MODE_RT: "RT", MODE_RTV: "RTV",
              MODE_RV: "RV"}


def normalise_mode(mode: str) -> str:
    """Return the canonical upper-case name of a constraint mode.

    Parameters
    ----------
    mode : str
        Case-insensitive name or alias (``none``, ``rigid_translation``, ``rigid``).

    Returns
    -------
    str
        One of ``UC, TC, RC, RTC, RTVC, RVC``.

    Raises
    ------
    ValueError
        If ``mode`` is not one of ``UC, TC, RC, RTC, RTVC, RVC``.
    """
    if not isinstance(mode, str):
        raise ValueError(f"constraint mode must be a string, got {mode!r}")
    m = mode.strip().upper()
    m = _ALIASES.get(m, m)
    if m not in MODES:
        raise ValueError(
            f"unknown constraint mode {mode!r}; choose one of {', '.join(MODES)} "
            "(UC none, TC translation, RC rotation, RTC rotation+translation, "
            "RTVC everything, RVC rigid translation)"
        )
    return m


# --------------------------------------------------------------------------------------
# numba kernels (in place, O(N))
# --------------------------------------------------------------------------------------


@njit(cache=True)
def project_velocities(v, masses, rotor_ptr, rotor_atoms, ref, inv_inertia, codes,
                       remove_com):
    """Mass-metric projection of velocities onto the constraint tangent space (in place).

    Parameters
    ----------
    v : ndarray, shape (N, 3)
        Velocities [Å/fs], modified in place.
    masses : ndarray, shape (N,)
        Atomic masses [amu].
    rotor_ptr : ndarray of int64, shape (n_rotors + 1,)
        CSR pointer: atoms of rotor ``r`` are ``rotor_atoms[rotor_ptr[r]:rotor_ptr[r+1]]``.
    rotor_atoms : ndarray of int64, shape (n_rotor_atoms,)
        Atom indices of all rotors.
    ref : ndarray, shape (n_rotor_atoms, 3)
        Reference geometry ``a_i`` [Å] relative to each rotor's centre of mass.
    inv_inertia : ndarray, shape (n_rotors, 3, 3)
        (Pseudo-)inverse reference inertia ``I_a⁻¹`` [1/(amu Å²)].
    codes : ndarray of int64, shape (n_rotors,)
        Per-rotor mode code (0 none, 1 R, 2 T, 3 RT, 4 RTV, 5 RV).
    remove_com : bool
        Also remove the total centre-of-mass velocity (only valid without T-type codes).
    """
    n_rot = rotor_ptr.shape[0] - 1
    for r in range(n_rot):
        code = codes[r]
        if code == 0:
            continue
        s = rotor_ptr[r]
        e = rotor_ptr[r + 1]
        if code == 4:
            for k in range(s, e):
                i = rotor_atoms[k]
                v[i, 0] = 0.0
                v[i, 1] = 0.0
                v[i, 2] = 0.0
            continue
        if code == 2 or code == 3 or code == 5:
            px = 0.0
            py = 0.0
            pz = 0.0
            mt = 0.0
            for k in range(s, e):
                i = rotor_atoms[k]
                m = masses[i]
                px += m * v[i, 0]
                py += m * v[i, 1]
                pz += m * v[i, 2]
                mt += m
            vx = px / mt
            vy = py / mt
            vz = pz / mt
            if code == 5:
                for k in range(s, e):
                    i = rotor_atoms[k]
                    v[i, 0] = vx
                    v[i, 1] = vy
                    v[i, 2] = vz
                continue
            for k in range(s, e):
                i = rotor_atoms[k]
                v[i, 0] -= vx
                v[i, 1] -= vy
                v[i, 2] -= vz
        if code == 1 or code == 3:
            lx = 0.0
            ly = 0.0
            lz = 0.0
            for k in range(s, e):
                i = rotor_atoms[k]
                m = masses[i]
                ax = ref[k, 0]
                ay = ref[k, 1]
                az = ref[k, 2]
                lx += m * (ay * v[i, 2] - az * v[i, 1])
                ly += m * (az * v[i, 0] - ax * v[i, 2])
                lz += m * (ax * v[i, 1] - ay * v[i, 0])
            J = inv_inertia[r]
            wx = J[0, 0] * lx + J[0, 1] * ly + J[0, 2] * lz
            wy = J[1, 0] * lx + J[1, 1] * ly + J[1, 2] * lz
            wz = J[2, 0] * lx + J[2, 1] * ly + J[2, 2] * lz
            for k in range(s, e):
                i = rotor_atoms[k]
                ax = ref[k, 0]
                ay = ref[k, 1]
                az = ref[k, 2]
                v[i, 0] -= wy * az - wz * ay
                v[i, 1] -= wz * ax - wx * az
                v[i, 2] -= wx * ay - wy * ax
    if remove_com:
        n = v.shape[0]
        px = 0.0
        py = 0.0
        pz = 0.0
        mt = 0.0
        for i in range(n):
            m = masses[i]
            px += m * v[i, 0]
            py += m * v[i, 1]
            pz += m * v[i, 2]
            mt += m
        vx = px / mt
        vy = py / mt
        vz = pz / mt
        for i in range(n):
            v[i, 0] -= vx
            v[i, 1] -= vy
            v[i, 2] -= vz


@njit(cache=True)
def project_forces(f, masses, rotor_ptr, rotor_atoms, ref, inv_inertia, codes, remove_com):
    """Mass-metric projection of forces (in place): ``F ← P_F F`` so that ``M⁻¹ P_F F``
    is the constrained acceleration.

    Parameters are those of :func:`project_velocities`; ``f`` has shape (N, 3) [eV/Å].
    After projection an R-constrained rotor feels zero net torque ``Σ a_i × F_i``, a
    T-constrained one zero net force, an RTV one zero force on every atom.
    """
    n_rot = rotor_ptr.shape[0] - 1
    for r in range(n_rot):
        code = codes[r]
        if code == 0:
            continue
        s = rotor_ptr[r]
        e = rotor_ptr[r + 1]
        if code == 4:
            for k in range(s, e):
                i = rotor_atoms[k]
                f[i, 0] = 0.0
                f[i, 1] = 0.0
                f[i, 2] = 0.0
            continue
        if code == 2 or code == 3 or code == 5:
            fx = 0.0
            fy = 0.0
            fz = 0.0
            mt = 0.0
            for k in range(s, e):
                i = rotor_atoms[k]
                fx += f[i, 0]
                fy += f[i, 1]
                fz += f[i, 2]
                mt += masses[i]
            fx /= mt
            fy /= mt
            fz /= mt
            if code == 5:
                for k in range(s, e):
                    i = rotor_atoms[k]
                    m = masses[i]
                    f[i, 0] = m * fx
                    f[i, 1] = m * fy
                    f[i, 2] = m * fz
                continue
            for k in range(s, e):
                i = rotor_atoms[k]
                m = masses[i]
                f[i, 0] -= m * fx
                f[i, 1] -= m * fy
                f[i, 2] -= m * fz
        if code == 1 or code == 3:
            tx = 0.0
            ty = 0.0
            tz = 0.0
            for k in range(s, e):
                i = rotor_atoms[k]
                ax = ref[k, 0]
                ay = ref[k, 1]
                az = ref[k, 2]
                tx += ay * f[i, 2] - az * f[i, 1]
                ty += az * f[i, 0] - ax * f[i, 2]
                tz += ax * f[i, 1] - ay * f[i, 0]
            J = inv_inertia[r]
            bx = J[0, 0] * tx + J[0, 1] * ty + J[0, 2] * tz
            by = J[1, 0] * tx + J[1, 1] * ty + J[1, 2] * tz
            bz = J[2, 0] * tx + J[2, 1] * ty + J[2, 2] * tz
            for k in range(s, e):
                i = rotor_atoms[k]
                m = masses[i]
                ax = ref[k, 0]
                ay = ref[k, 1]
                az = ref[k, 2]
                f[i, 0] -= m * (by * az - bz * ay)
                f[i, 1] -= m * (bz * ax - bx * az)
                f[i, 2] -= m * (bx * ay - by * ax)
    if remove_com:
        n = f.shape[0]
        fx = 0.0
        fy = 0.0
        fz = 0.0
        mt = 0.0
        for i in range(n):
            fx += f[i, 0]
            fy += f[i, 1]
            fz += f[i, 2]
            mt += masses[i]
        fx /= mt
        fy /= mt
        fz /= mt
        for i in range(n):
            m = masses[i]
            f[i, 0] -= m * fx
            f[i, 1] -= m * fy
            f[i, 2] -= m * fz


@njit(cache=True)
def repair_positions(x, masses, rotor_ptr, rotor_atoms, ref, inv_inertia, codes, com0,
                     eckart0):
    """Exact (non-iterative) projection of positions back onto the constraint manifold.

    Removes floating-point drift of the constrained quantities; in exact arithmetic the
    integrator never leaves the manifold, so the correction is at round-off level.

    Parameters
    ----------
    x : ndarray, shape (N, 3)
        Unwrapped positions [Å] (rotors whole), modified in place.
    masses, rotor_ptr, rotor_atoms, ref, inv_inertia, codes
        As in :func:`project_velocities`.
    com0 : ndarray, shape (n_rotors, 3)
        Rotor centres of mass ``X0`` [Å] when the constraints were switched on.
    eckart0 : ndarray, shape (n_rotors, 3)
        Eckart constants ``c0 = Σ m_i a_i × x_i`` [amu Å²] at switch-on.
    """
    n_rot = rotor_ptr.shape[0] - 1
    for r in range(n_rot):
        code = codes[r]
        if code == 0:
            continue
        s = rotor_ptr[r]
        e = rotor_ptr[r + 1]
        if code == 4:
            for k in range(s, e):
                i = rotor_atoms[k]
                x[i, 0] = com0[r, 0] + ref[k, 0]
                x[i, 1] = com0[r, 1] + ref[k, 1]
                x[i, 2] = com0[r, 2] + ref[k, 2]
            continue
        if code == 2 or code == 3 or code == 5:
            cx = 0.0
            cy = 0.0
            cz = 0.0
            mt = 0.0
            for k in range(s, e):
                i = rotor_atoms[k]
                m = masses[i]
                cx += m * x[i, 0]
                cy += m * x[i, 1]
                cz += m * x[i, 2]
                mt += m
            cx /= mt
            cy /= mt
            cz /= mt
            if code == 5:
                for k in range(s, e):
                    i = rotor_atoms[k]
                    x[i, 0] = cx + ref[k, 0]
                    x[i, 1] = cy + ref[k, 1]
                    x[i, 2] = cz + ref[k, 2]
                continue
            dx = com0[r, 0] - cx
            dy = com0[r, 1] - cy
            dz = com0[r, 2] - cz
            for k in range(s, e):
                i = rotor_atoms[k]
                x[i, 0] += dx
                x[i, 1] += dy
                x[i, 2] += dz
        if code == 1 or code == 3:
            lx = 0.0
            ly = 0.0
            lz = 0.0
            for k in range(s, e):
                i = rotor_atoms[k]
                m = masses[i]
                ax = ref[k, 0]
                ay = ref[k, 1]
                az = ref[k, 2]
                lx += m * (ay * x[i, 2] - az * x[i, 1])
                ly += m * (az * x[i, 0] - ax * x[i, 2])
                lz += m * (ax * x[i, 1] - ay * x[i, 0])
            lx = eckart0[r, 0] - lx
            ly = eckart0[r, 1] - ly
            lz = eckart0[r, 2] - lz
            J = inv_inertia[r]
            qx = J[0, 0] * lx + J[0, 1] * ly + J[0, 2] * lz
            qy = J[1, 0] * lx + J[1, 1] * ly + J[1, 2] * lz
            qz = J[2, 0] * lx + J[2, 1] * ly + J[2, 2] * lz
            for k in range(s, e):
                i = rotor_atoms[k]
                ax = ref[k, 0]
                ay = ref[k, 1]
                az = ref[k, 2]
                x[i, 0] += qy * az - qz * ay
                x[i, 1] += qz * ax - qx * az
                x[i, 2] += qx * ay - qy * ax


@njit(cache=True)
def rotor_frame(x, masses, rotor_ptr, rotor_atoms, ref, com_out, eckart_out):
    """Rotor centres of mass and Eckart vectors of positions ``x`` (diagnostics).

    Parameters
    ----------
    x : ndarray, shape (N, 3)
        Unwrapped positions [Å].
    masses, rotor_ptr, rotor_atoms, ref
        As in :func:`project_velocities`.
    com_out : ndarray, shape (n_rotors, 3)
        Output: centres of mass ``X_r`` [Å].
    eckart_out : ndarray, shape (n_rotors, 3)
        Output: ``Σ m_i a_i × x_i`` [amu Å²].
    """
    n_rot = rotor_ptr.shape[0] - 1
    for r in range(n_rot):
        cx = 0.0
        cy = 0.0
        cz = 0.0
        lx = 0.0
        ly = 0.0
        lz = 0.0
        mt = 0.0
        for k in range(rotor_ptr[r], rotor_ptr[r + 1]):
            i = rotor_atoms[k]
            m = masses[i]
            ax = ref[k, 0]
            ay = ref[k, 1]
            az = ref[k, 2]
            cx += m * x[i, 0]
            cy += m * x[i, 1]
            cz += m * x[i, 2]
            mt += m
            lx += m * (ay * x[i, 2] - az * x[i, 1])
            ly += m * (az * x[i, 0] - ax * x[i, 2])
            lz += m * (ax * x[i, 1] - ay * x[i, 0])
        com_out[r, 0] = cx / mt
        com_out[r, 1] = cy / mt
        com_out[r, 2] = cz / mt
        eckart_out[r, 0] = lx
        eckart_out[r, 1] = ly
        eckart_out[r, 2] = lz


# --------------------------------------------------------------------------------------
# set-up helpers (NumPy, vectorised over rotors)
# --------------------------------------------------------------------------------------


def _segment_sum(values: np.ndarray, rotor_ptr: np.ndarray) -> np.ndarray:
    """Sum ``values`` (n_rotor_atoms, ...) per CSR segment → (n_rotors, ...)."""
    n_rot = len(rotor_ptr) - 1
    if n_rot == 0:
        return np.zeros((0,) + values.shape[1:])
    return np.add.reduceat(values, rotor_ptr[:-1], axis=0)


def reference_geometry(positions, masses, rotor_ptr, rotor_atoms):
    """Rotor centres of mass and reference vectors ``a_i`` from (whole) positions.

    Parameters
    ----------
    positions : ndarray, shape (N, 3)
        Positions [Å]; each rotor must be whole (contiguous, not split by the boundary).
    masses : ndarray, shape (N,)
    rotor_ptr, rotor_atoms : CSR rotor membership.

    Returns
    -------
    com : ndarray, shape (n_rotors, 3)
        Centres of mass [Å].
    ref : ndarray, shape (n_rotor_atoms, 3)
        ``a_i = x_i - X_r`` [Å], ``Σ m_i a_i = 0`` per rotor.
    """
    x = np.asarray(positions, dtype=np.float64)[rotor_atoms]
    m = np.asarray(masses, dtype=np.float64)[rotor_atoms]
    mtot = _segment_sum(m, rotor_ptr)
    com = _segment_sum(m[:, None] * x, rotor_ptr) / mtot[:, None]
    counts = np.diff(rotor_ptr)
    ref = x - np.repeat(com, counts, axis=0)
    return com, ref


def inverse_inertia(ref, masses_rot, rotor_ptr, rtol: float = 1e-8):
    """Pseudo-inverse of the reference inertia tensors, and their ranks.

    Parameters
    ----------
    ref : ndarray, shape (n_rotor_atoms, 3)
        Reference vectors ``a_i`` [Å].
    masses_rot : ndarray, shape (n_rotor_atoms,)
        Masses of the rotor atoms [amu], aligned with ``ref``.
    rotor_ptr : ndarray, shape (n_rotors + 1,)
    rtol : float
        Eigenvalues below ``rtol * max eigenvalue`` (or an absolute 1e-10 amu Å²) are
        treated as zero (linear and one-atom rotors).

    Returns
    -------
    inv_inertia : ndarray, shape (n_rotors, 3, 3)
    rank : ndarray of int64, shape (n_rotors,)
        Number of rotational degrees of freedom (3, 2 linear, 0 single atom).
    """
    n_rot = len(rotor_ptr) - 1
    if n_rot == 0:
        return np.zeros((0, 3, 3)), np.zeros(0, dtype=np.int64)
    a = np.asarray(ref, dtype=np.float64)
    m = np.asarray(masses_rot, dtype=np.float64)
    a2 = np.einsum("ki,ki->k", a, a)
    per_atom = m[:, None, None] * (a2[:, None, None] * np.eye(3) - a[:, :, None] * a[:, None, :])
    inertia = _segment_sum(per_atom, rotor_ptr)
    w, u = np.linalg.eigh(inertia)
    wmax = w.max(axis=1, keepdims=True)
    keep = (w > rtol * wmax) & (w > 1e-10)
    winv = np.where(keep, 1.0 / np.where(keep, w, 1.0), 0.0)
    inv = np.einsum("rij,rj,rkj->rik", u, winv, u)
    return np.ascontiguousarray(inv), keep.sum(axis=1).astype(np.int64)


def _removed_per_rotor(codes, rank, counts):
    c = np.zeros(len(codes), dtype=np.int64)
    c = np.where(codes == MODE_R, rank, c)
    c = np.where(codes == MODE_T, 3, c)
    c = np.where(codes == MODE_RT, 3 + rank, c)
    c = np.where(codes == MODE_RTV, 3 * counts, c)
    c = np.where(codes == MODE_RV, 3 * (counts - 1), c)
    return c


# --------------------------------------------------------------------------------------
# user-facing wrapper
# --------------------------------------------------------------------------------------


class Constraints:
    """Per-rotor linear constraints with the ASE constraint protocol.

    Parameters
    ----------
    masses : array_like, shape (N,)
        Atomic masses [amu].
    rotor_ptr, rotor_atoms : array_like of int
        CSR rotor membership (see :func:`project_velocities`).
    codes : array_like of int, shape (n_rotors,)
        Per-rotor mode codes (``MODE_*``).
    positions : array_like, shape (N, 3)
        Unwrapped positions [Å] with every rotor whole at the moment the constraints are
        switched on; they define ``a_i``, ``X0`` and ``c0``.
    remove_com : bool or None
        Remove the total centre-of-mass motion. ``None`` (default): yes exactly when no
        rotor has a translation constraint (total momentum is then conserved).
    mode : str, optional
        Descriptive name stored with the object (e.g. ``"RC"``).

    Attributes
    ----------
    n_dof : int
        ``N_f = 3N - Σ c_r - c_com``.
    """

    def __init__(self, masses, rotor_ptr, rotor_atoms, codes, positions, remove_com=None,
                 mode: str = "custom", rotor_kind: Sequence[str] | None = None):
        self.masses = np.ascontiguousarray(masses, dtype=np.float64)
        self.rotor_ptr = np.ascontiguousarray(rotor_ptr, dtype=np.int64)
        self.rotor_atoms = np.ascontiguousarray(rotor_atoms, dtype=np.int64)
        self.codes = np.ascontiguousarray(codes, dtype=np.int64)
        n_rot = len(self.rotor_ptr) - 1
        if self.codes.shape != (n_rot,):
            raise ValueError(f"codes must have shape ({n_rot},), got {self.codes.shape}")
        if np.any((self.codes < 0) | (self.codes > MODE_RV)):
            raise ValueError(f"invalid rotor mode code(s) {np.unique(self.codes)}")
        if n_rot and np.any(np.diff(self.rotor_ptr) < 1):
            raise ValueError("every rotor needs at least one atom")
        self.mode = mode
        self.rotor_kind = None if rotor_kind is None else list(rotor_kind)
        x = np.asarray(positions, dtype=np.float64)
        if x.shape != (len(self.masses), 3):
            raise ValueError(f"positions must have shape ({len(self.masses)}, 3)")
        com, ref = reference_geometry(x, self.masses, self.rotor_ptr, self.rotor_atoms)
        self.ref = np.ascontiguousarray(ref)
        self.com0 = np.ascontiguousarray(com.reshape(n_rot, 3))
        self.inv_inertia, self.rank = inverse_inertia(
            self.ref, self.masses[self.rotor_atoms], self.rotor_ptr)
        self.eckart0 = np.zeros((n_rot, 3))
        if n_rot:
            rotor_frame(x, self.masses, self.rotor_ptr, self.rotor_atoms, self.ref,
                        np.zeros((n_rot, 3)), self.eckart0)
        has_t = bool(np.any(np.isin(self.codes, (MODE_T, MODE_RT, MODE_RTV))))
        if remove_com is None:
            remove_com = not has_t
        if remove_com and has_t:
            raise ValueError("remove_com=True conflicts with translation-constrained rotors")
        self.remove_com = bool(remove_com)

    # -- construction ------------------------------------------------------------------

    @classmethod
    def from_topology(cls, topology, mode="RC", species=None, positions=None,
                      remove_com=None) -> "Constraints":
        """Build constraints for a :class:`rotorlab.topology.Topology`.

        Parameters
        ----------
        topology : Topology
            Needs ``masses``, ``rotor_ptr``, ``rotor_atoms``, ``rotor_kind``,
            ``reference`` (used when ``positions`` is None).
        mode : str or mapping
            ``UC, TC, RC, RTC, RTVC, RVC`` applied to the selected rotor species, or a
            mapping ``{rotor_kind: mode}`` (unlisted kinds stay unconstrained).
        species : str or sequence of str, optional
            Rotor kinds to constrain (e.g. ``["PS4"]`` in Na11Sn2PS12); default all.
        positions : array_like, shape (N, 3), optional
            Unwrapped, whole positions [Å] at switch-on. Default: the topology's reference
            geometry placed at its centres of mass is not known, so positions are required
            unless ``topology.positions`` exists.

        Raises
        ------
        ValueError
            Unknown mode; a constrained mode on a system without rotors; a species that
            has no rotors in this system.
        """
        kinds = np.asarray(list(getattr(topology, "rotor_kind", [])), dtype=object)
        n_rot = len(topology.rotor_ptr) - 1
        if kinds.shape[0] != n_rot:
            kinds = np.array(["rotor"] * n_rot, dtype=object)
        codes = np.zeros(n_rot, dtype=np.int64)
        present = sorted({str(k) for k in kinds.tolist()})
        if isinstance(mode, Mapping):
            if species is not None:
                raise ValueError("give either a mode mapping or species, not both")
            name = ",".join(f"{k}:{normalise_mode(v)}" for k, v in mode.items())
            for kind, m in mode.items():
                code = MODES[normalise_mode(m)]
                if kind not in present:
                    raise ValueError(
                        f"rotor species {kind!r} has no rotors in this system "
                        f"(present: {', '.join(present) or 'none'})")
                codes[kinds == kind] = code
        else:
            name = normalise_mode(mode)
            code = MODES[name]
            if species is None:
                sel = np.ones(n_rot, dtype=bool)
            else:
                wanted = [species] if isinstance(species, str) else list(species)
                for kind in wanted:
                    if kind not in present:
                        raise ValueError(
                            f"rotor species {kind!r} has no rotors in this system "
                            f"(present: {', '.join(present) or 'none'})")
                sel = np.isin(kinds, wanted)
            if code != MODE_NONE and n_rot == 0:
                raise ValueError(f"mode {name} needs rotors, but the system has none")
            codes[sel] = code
        if positions is None:
            positions = getattr(topology, "positions", None)
        if positions is None:
            raise ValueError("positions (unwrapped, rotors whole) are required")
        return cls(topology.masses, topology.rotor_ptr, topology.rotor_atoms, codes,
                   positions, remove_com=remove_com, mode=name,
                   rotor_kind=kinds.tolist())

    # -- array API ---------------------------------------------------------------------

    @property
    def n_atoms(self) -> int:
        return len(self.masses)

    @property
    def n_rotors(self) -> int:
        return len(self.rotor_ptr) - 1

    @property
    def removed_per_rotor(self) -> np.ndarray:
        """Constraint count ``c_r`` per rotor, shape (n_rotors,)."""
        return _removed_per_rotor(self.codes, self.rank, np.diff(self.rotor_ptr))

    @property
    def c_com(self) -> int:
        """3 when total momentum is conserved and removed, else 0."""
        return 3 if self.remove_com else 0

    @property
    def n_dof(self) -> int:
        """Degrees of freedom ``N_f = 3N - Σ c_r - c_com``."""
        return int(3 * self.n_atoms - self.removed_per_rotor.sum() - self.c_com)

    def _args(self):
        return (self.masses, self.rotor_ptr, self.rotor_atoms, self.ref, self.inv_inertia,
                self.codes)

    def project_velocities(self, v: np.ndarray) -> np.ndarray:
        """Project velocities (N, 3) [Å/fs] in place and return them."""
        project_velocities(v, *self._args(), self.remove_com)
        return v

    def project_forces(self, f: np.ndarray) -> np.ndarray:
        """Project forces (N, 3) [eV/Å] in place and return them."""
        project_forces(f, *self._args(), self.remove_com)
        return f

    def repair_positions(self, x: np.ndarray) -> np.ndarray:
        """Repair positions (N, 3) [Å] in place (round-off) and return them."""
        repair_positions(x, *self._args(), self.com0, self.eckart0)
        return x

    def residuals(self, x: np.ndarray):
        """Constraint residuals of positions ``x``.

        Returns
        -------
        eckart : ndarray, shape (n_rotors,)
            ``|Σ m a × x − c0| / Σ m |a|²`` (relative; R-type rotors only, else 0).
        com : ndarray, shape (n_rotors,)
            ``|X − X0|`` [Å] for T-type rotors, else 0.
        """
        n = self.n_rotors
        com = np.zeros((n, 3))
        eck = np.zeros((n, 3))
        if n:
            rotor_frame(np.ascontiguousarray(x, dtype=np.float64), self.masses,
                        self.rotor_ptr, self.rotor_atoms, self.ref, com, eck)
        m = self.masses[self.rotor_atoms]
        scale = _segment_sum(m * np.einsum("ki,ki->k", self.ref, self.ref), self.rotor_ptr)
        scale = np.where(scale > 0, scale, 1.0)
        rmask = np.isin(self.codes, (MODE_R, MODE_RT, MODE_RTV, MODE_RV))
        tmask = np.isin(self.codes, (MODE_T, MODE_RT, MODE_RTV))
        e = np.where(rmask, np.linalg.norm(eck - self.eckart0, axis=1) / scale, 0.0)
        c = np.where(tmask, np.linalg.norm(com - self.com0, axis=1), 0.0)
        return e, c

    # -- state -------------------------------------------------------------------------

    def get_state(self) -> tuple[dict, dict]:
        """Arrays and JSON metadata that rebuild this object exactly (checkpoints)."""
        arrays = {
            "cons_masses": self.masses, "cons_rotor_ptr": self.rotor_ptr,
            "cons_rotor_atoms": self.rotor_atoms, "cons_codes": self.codes,
            "cons_ref": self.ref, "cons_com0": self.com0, "cons_eckart0": self.eckart0,
            "cons_inv_inertia": self.inv_inertia, "cons_rank": self.rank,
        }
        meta = {"mode": self.mode, "remove_com": self.remove_com,
                "rotor_kind": self.rotor_kind}
        return arrays, meta

    @classmethod
    def from_state(cls, arrays: Mapping, meta: Mapping) -> "Constraints":
        """Inverse of :meth:`get_state` (bit-identical arrays)."""
        obj = cls.__new__(cls)
        obj.masses = np.ascontiguousarray(arrays["cons_masses"], dtype=np.float64)
        obj.rotor_ptr = np.ascontiguousarray(arrays["cons_rotor_ptr"], dtype=np.int64)
        obj.rotor_atoms = np.ascontiguousarray(arrays["cons_rotor_atoms"], dtype=np.int64)
        obj.codes = np.ascontiguousarray(arrays["cons_codes"], dtype=np.int64)
        obj.ref = np.ascontiguousarray(arrays["cons_ref"], dtype=np.float64).reshape(-1, 3)
        n = len(obj.codes)
        obj.com0 = np.ascontiguousarray(arrays["cons_com0"], dtype=np.float64).reshape(n, 3)
        obj.eckart0 = np.ascontiguousarray(arrays["cons_eckart0"],
                                           dtype=np.float64).reshape(n, 3)
        obj.inv_inertia = np.ascontiguousarray(arrays["cons_inv_inertia"],
                                               dtype=np.float64).reshape(n, 3, 3)
        obj.rank = np.ascontiguousarray(arrays["cons_rank"], dtype=np.int64)
        obj.mode = meta.get("mode", "custom")
        obj.remove_com = bool(meta["remove_com"])
        obj.rotor_kind = meta.get("rotor_kind")
        return obj

    # -- ASE constraint protocol -------------------------------------------------------

    def adjust_positions(self, atoms, new):
        """ASE hook: repair proposed positions ``new`` (N, 3) in place (must be unwrapped)."""
        x = np.ascontiguousarray(new, dtype=np.float64)
        self.repair_positions(x)
        new[:] = x

    def adjust_momenta(self, atoms, momenta):
        """ASE hook: project momenta (N, 3) [ASE units] in place (via velocities)."""
        m = self.masses[:, None]
        v = np.ascontiguousarray(momenta / m, dtype=np.float64)
        self.project_velocities(v)
        momenta[:] = v * m

    def adjust_velocities(self, atoms, velocities):
        """Project velocities (N, 3) in place."""
        v = np.ascontiguousarray(velocities, dtype=np.float64)
        self.project_velocities(v)
        velocities[:] = v

    def adjust_forces(self, atoms, forces):
        """ASE hook: project forces (N, 3) in place."""
        f = np.ascontiguousarray(forces, dtype=np.float64)
        self.project_forces(f)
        forces[:] = f

    def get_removed_dof(self, atoms=None) -> int:
        """ASE hook: ``Σ c_r + c_com`` (do not combine with ASE's ``FixCom``)."""
        return int(self.removed_per_rotor.sum() + self.c_com)

    def index_shuffle(self, atoms, ind):  # pragma: no cover - ASE protocol
        raise NotImplementedError("rotor constraints cannot follow an atom re-indexing")

    def copy(self) -> "Constraints":
        """Independent deep copy (ASE protocol)."""
        arrays, meta = self.get_state()
        return Constraints.from_state({k: np.array(v) for k, v in arrays.items()}, meta)

    def todict(self):
        """JSON-serialisable description (ASE protocol)."""
        arrays, meta = self.get_state()
        return {"name": "rotorlab.Constraints",
                "kwargs": {"arrays": {k: v.tolist() for k, v in arrays.items()}, "meta": meta}}

    def __repr__(self) -> str:
        counts = {MODE_CODES[c]: int((self.codes == c).sum()) for c in np.unique(self.codes)}
        return (f"Constraints(mode={self.mode!r}, rotors={counts}, n_dof={self.n_dof}, "
                f"remove_com={self.remove_com})")
