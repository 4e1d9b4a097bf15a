"""Constraint kernels against a dense NumPy reference (mass-metric projector algebra)."""

import numpy as np
import pytest

from rotorlab.md.constraints import (MODE_NONE, MODE_R, MODE_RT, MODE_RTV, MODE_RV, MODE_T,
                                     Constraints, normalise_mode)
from rotorlab.md.testing import tetrahedral_salt


def random_system(seed, n_free=4, kinds=("tetra", "linear", "single", "planar", "random")):
    """Random masses, random rotors (incl. linear and one-atom ones), random codes."""
    rng = np.random.default_rng(seed)
    pos = [rng.normal(scale=3.0, size=(n_free, 3))]
    ptr = [0]
    atoms = []
    n = n_free
    for kind in kinds:
        if kind == "tetra":
            g = np.array([[0, 0, 0], [1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1.0]])
        elif kind == "linear":
            g = np.array([[0, 0, 0], [0, 0, 1.1], [0, 0, -2.3]]) @ np.linalg.qr(
                rng.normal(size=(3, 3)))[0]
        elif kind == "single":
            g = np.zeros((1, 3))
        elif kind == "planar":
            g = np.array([[0, 0, 0], [1.2, 0, 0], [0, 1.5, 0], [-1, -0.7, 0]])
        else:
            g = rng.normal(size=(int(rng.integers(2, 7)), 3))
        g = g + 0.05 * rng.normal(size=g.shape) * (kind == "random")
        g = g + rng.normal(scale=5.0, size=3)
        pos.append(g)
        atoms.extend(range(n, n + len(g)))
        n += len(g)
        ptr.append(len(atoms))
    # shuffle atom indices so rotor atoms are not contiguous
    perm = rng.permutation(n)
    x = np.concatenate(pos)
    xs = np.empty_like(x)
    xs[perm] = x
    rotor_atoms = perm[np.array(atoms)]
    masses = rng.uniform(1.0, 40.0, size=n)
    codes = rng.integers(0, 6, size=len(kinds))
    return xs, masses, np.array(ptr), rotor_atoms.astype(np.int64), codes


def dense_constraints(x0, masses, ptr, ratoms, codes, remove_com):
    """Constraint matrix C (k, 3N) and right-hand side b so that C x = b on the manifold."""
    n = len(masses)
    rows, rhs = [], []
    for r in range(len(ptr) - 1):
        idx = ratoms[ptr[r]:ptr[r + 1]]
        m = masses[idx]
        com = (m[:, None] * x0[idx]).sum(0) / m.sum()
        a = x0[idx] - com
        c = codes[r]
        if c in (MODE_T, MODE_RT):
            for d in range(3):
                row = np.zeros(3 * n)
                row[3 * idx + d] = m
                rows.append(row)
                rhs.append((m * x0[idx, d]).sum())
        if c in (MODE_R, MODE_RT):
            for d in range(3):
                e = np.zeros(3)
                e[d] = 1
                row = np.zeros(3 * n)
                # e · Σ m a × x = Σ m (e × a)·x ... written per atom
                for k, i in enumerate(idx):
                    row[3 * i:3 * i + 3] = m[k] * np.cross(e, a[k])
                rows.append(row)
                rhs.append(row @ x0.ravel())
        if c == MODE_RTV:
            for k, i in enumerate(idx):
                for d in range(3):
                    row = np.zeros(3 * n)
                    row[3 * i + d] = 1.0
                    rows.append(row)
                    rhs.append(x0[i, d])
        if c == MODE_RV:
            for k in range(1, len(idx)):
                for d in range(3):
                    row = np.zeros(3 * n)
                    row[3 * idx[k] + d] = 1.0
                    row[3 * idx[0] + d] = -1.0
                    rows.append(row)
                    rhs.append(x0[idx[k], d] - x0[idx[0], d])
    if remove_com:
        for d in range(3):
            row = np.zeros(3 * n)
            row[d::3] = masses
            rows.append(row)
            rhs.append(row @ x0.ravel())
    if not rows:
        return np.zeros((0, 3 * n)), np.zeros(0)
    return np.array(rows), np.array(rhs)


def dense_projectors(C, masses):
    minv = np.repeat(1.0 / masses, 3)
    n3 = len(minv)
    if len(C) == 0:
        return np.eye(n3), np.eye(n3), np.zeros((n3, 0))
    G = C @ (minv[:, None] * C.T)
    Gp = np.linalg.pinv(G, rcond=1e-10)
    K = (minv[:, None] * C.T) @ Gp  # M^-1 C^T G^+
    Pv = np.eye(n3) - K @ C
    Pf = np.eye(n3) - C.T @ Gp @ (C * minv[None, :])
    return Pv, Pf, K


@pytest.mark.parametrize("seed", range(12))
def test_kernels_match_dense_reference(seed):
    x0, masses, ptr, ratoms, codes = random_system(seed)
    if seed == 0:
        codes[:] = [MODE_RT, MODE_R, MODE_R, MODE_RTV, MODE_RV]
    cons = Constraints(masses, ptr, ratoms, codes, x0)
    C, b = dense_constraints(x0, masses, ptr, ratoms, codes, cons.remove_com)
    Pv, Pf, K = dense_projectors(C, masses)
    rng = np.random.default_rng(100 + seed)
    n = len(masses)

    v = rng.normal(size=(n, 3))
    ref_v = (Pv @ v.ravel()).reshape(n, 3)
    cons.project_velocities(v)
    np.testing.assert_allclose(v, ref_v, atol=1e-12 * np.abs(ref_v).max() + 1e-13)

    f = rng.normal(size=(n, 3))
    ref_f = (Pf @ f.ravel()).reshape(n, 3)
    cons.project_forces(f)
    np.testing.assert_allclose(f, ref_f, atol=1e-12 * np.abs(ref_f).max() + 1e-13)

    # positions: affine mass-metric projection of a perturbed configuration onto the
    # rotor constraints (the global centre of mass is a velocity constraint only)
    Cx, bx = dense_constraints(x0, masses, ptr, ratoms, codes, False)
    Kx = dense_projectors(Cx, masses)[2]
    x = x0 + 1e-3 * rng.normal(size=(n, 3))
    ref_x = (x.ravel() - Kx @ (Cx @ x.ravel() - bx)).reshape(n, 3)
    cons.repair_positions(x)
    np.testing.assert_allclose(x, ref_x, atol=1e-10)
    if len(Cx):
        np.testing.assert_allclose(Cx @ x.ravel(), bx, atol=1e-9 * (1 + np.abs(bx).max()))

    # degrees of freedom = 3N - rank(C)
    rank = np.linalg.matrix_rank(C) if len(C) else 0
    assert cons.n_dof == 3 * n - rank
    assert cons.get_removed_dof() == rank


@pytest.mark.parametrize("seed", range(6))
def test_projector_properties(seed):
    x0, masses, ptr, ratoms, codes = random_system(seed + 50)
    cons = Constraints(masses, ptr, ratoms, codes, x0)
    n = len(masses)
    rng = np.random.default_rng(seed)
    # build the projector matrix column by column from the kernel
    Pv = np.empty((3 * n, 3 * n))
    Pf = np.empty((3 * n, 3 * n))
    for j in range(3 * n):
        e = np.zeros(3 * n)
        e[j] = 1.0
        v = e.reshape(n, 3).copy()
        Pv[:, j] = cons.project_velocities(v).ravel()
        f = e.reshape(n, 3).copy()
        Pf[:, j] = cons.project_forces(f).ravel()
    M = np.repeat(masses, 3)
    np.testing.assert_allclose(Pv @ Pv, Pv, atol=1e-12)            # idempotent
    np.testing.assert_allclose(M[:, None] * Pv, (M[:, None] * Pv).T, atol=1e-11)  # M-symmetric
    np.testing.assert_allclose(Pf, Pv.T, atol=1e-12)                    # P_F = P_vᵀ
    np.testing.assert_allclose(Pf, M[:, None] * Pv / M[None, :], atol=1e-11)  # = M P_v M⁻¹
    assert round(np.trace(Pv)) == cons.n_dof
    # constrained components are exactly zero
    v = rng.normal(size=(n, 3))
    f = rng.normal(size=(n, 3))
    cons.project_velocities(v)
    cons.project_forces(f)
    for r in range(len(codes)):
        idx = ratoms[ptr[r]:ptr[r + 1]]
        a = cons.ref[ptr[r]:ptr[r + 1]]
        m = masses[idx]
        if codes[r] in (MODE_R, MODE_RT):
            assert np.abs((m[:, None] * np.cross(a, v[idx])).sum(0)).max() < 1e-12
            assert np.abs(np.cross(a, f[idx]).sum(0)).max() < 1e-12
        if codes[r] in (MODE_T, MODE_RT):
            assert np.abs((m[:, None] * v[idx]).sum(0)).max() < 1e-12
            assert np.abs(f[idx].sum(0)).max() < 1e-12
        if codes[r] == MODE_RTV:
            assert not v[idx].any() and not f[idx].any()
        if codes[r] == MODE_RV:
            assert np.ptp(v[idx], axis=0).max() == 0.0


def test_linear_and_single_atom_rotors_dof():
    x0, masses, ptr, ratoms, codes = random_system(3, kinds=("linear", "single", "tetra"))
    codes[:] = MODE_R
    cons = Constraints(masses, ptr, ratoms, codes, x0)
    assert list(cons.rank) == [2, 0, 3]
    assert cons.n_dof == 3 * len(masses) - 5 - 3
    codes[:] = MODE_RT
    cons = Constraints(masses, ptr, ratoms, codes, x0)
    assert cons.n_dof == 3 * len(masses) - (5 + 3 + 6)   # no COM removal with T


@pytest.mark.parametrize("mode,expected", [("UC", 0), ("RC", 3), ("TC", 3), ("RTC", 6),
                                           ("RTVC", 15), ("RVC", 12)])
def test_dof_per_mode_on_salt(mode, expected):
    atoms, topo = tetrahedral_salt()
    cons = Constraints.from_topology(topo, mode, positions=atoms.positions)
    c_com = 0 if mode in ("TC", "RTC", "RTVC") else 3
    assert cons.n_dof == 3 * len(atoms) - topo.n_rotors * expected - c_com


def test_from_topology_errors_and_species():
    atoms, topo = tetrahedral_salt()
    with pytest.raises(ValueError, match="unknown constraint mode"):
        Constraints.from_topology(topo, "XYZ", positions=atoms.positions)
    with pytest.raises(ValueError, match="no rotors"):
        Constraints.from_topology(topo, "RC", species="PS4", positions=atoms.positions)
    with pytest.raises(ValueError, match="no rotors"):
        Constraints.from_topology(topo, {"PS4": "RC"}, positions=atoms.positions)
    cons = Constraints.from_topology(topo, "RC", species=["BH4"], positions=atoms.positions)
    assert (cons.codes == MODE_R).all()
    cons = Constraints.from_topology(topo, {"BH4": "rtc"}, positions=atoms.positions)
    assert (cons.codes == MODE_RT).all()
    assert normalise_mode("rigid_translation") == "RVC"
    # a system without rotors accepts UC but not RC
    topo.rotor_ptr = np.zeros(1, dtype=np.int64)
    topo.rotor_atoms = np.zeros(0, dtype=np.int64)
    topo.rotor_kind = np.array([], dtype=str)
    assert Constraints.from_topology(topo, "UC", positions=atoms.positions).n_rotors == 0
    with pytest.raises(ValueError, match="has none"):
        Constraints.from_topology(topo, "RC", positions=atoms.positions)


def test_state_roundtrip_and_ase_protocol():
    atoms, topo = tetrahedral_salt(seed=4)
    cons = Constraints.from_topology(topo, "RTC", positions=atoms.positions)
    arrays, meta = cons.get_state()
    clone = Constraints.from_state(arrays, meta)
    rng = np.random.default_rng(0)
    v = rng.normal(size=(len(atoms), 3))
    np.testing.assert_array_equal(cons.project_velocities(v.copy()),
                                  clone.project_velocities(v.copy()))
    p = v * topo.masses[:, None]
    cons.adjust_momenta(atoms, p)
    np.testing.assert_allclose(p / topo.masses[:, None], cons.project_velocities(v.copy()))
    x = atoms.positions + 1e-4 * rng.normal(size=(len(atoms), 3))
    cons.adjust_positions(atoms, x)
    e, c = cons.residuals(x)
    assert e.max() < 1e-13 and c.max() < 1e-12
    assert cons.get_removed_dof(atoms) == 4 * 6
    assert MODE_NONE == 0
