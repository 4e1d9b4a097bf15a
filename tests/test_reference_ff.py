"""Reference force field: forces = −∇E, virial = −∂E/∂ε, cell list = brute force."""

import math

import numpy as np
import pytest
from scipy.special import erfc

from rotorlab.md.testing import tetrahedral_salt
from rotorlab.potentials import ForceField, ReferenceForceField
from rotorlab.units import COULOMB


def _fd_forces(ff, x, cell, h=1e-5):
    fd = np.zeros_like(x)
    for i in range(len(x)):
        for k in range(3):
            xp = x.copy()
            xp[i, k] += h
            xm = x.copy()
            xm[i, k] -= h
            fd[i, k] = -(ff.compute(xp, cell)[0] - ff.compute(xm, cell)[0]) / (2 * h)
    return fd


@pytest.mark.parametrize("shear,cutoff", [(0.0, 7.0), (0.15, 8.0), (0.3, 5.0)])
def test_forces_and_virial_match_finite_differences(shear, cutoff):
    atoms, topo = tetrahedral_salt(shear=shear, seed=2)
    ff = ReferenceForceField.from_topology(topo, atoms.positions, atoms.cell.array,
                                           cutoff=cutoff)
    assert isinstance(ff, ForceField)
    rng = np.random.default_rng(0)
    x = atoms.positions + 0.08 * rng.normal(size=(len(atoms), 3))
    cell = atoms.cell.array
    e, f, w = ff.compute(x, cell)
    fd = _fd_forces(ff, x, cell)
    assert np.abs(fd - f).max() < 1e-6 * max(1.0, np.abs(f).max())
    h = 1e-5
    wd = np.zeros((3, 3))
    for a in range(3):
        for b in range(3):
            eps = np.zeros((3, 3))
            eps[a, b] = h
            ep = ff.compute(x @ (np.eye(3) + eps), cell @ (np.eye(3) + eps))[0]
            em = ff.compute(x @ (np.eye(3) - eps), cell @ (np.eye(3) - eps))[0]
            wd[a, b] = -(ep - em) / (2 * h)
    assert np.abs(wd - w).max() < 1e-6 * max(1.0, np.abs(w).max())
    # translation invariance, wrapping invariance, zero net force
    e2 = ff.compute(x + np.array([0.3, -1.7, 2.2]), cell)[0]
    frac = x @ np.linalg.inv(cell)
    e3 = ff.compute((frac % 1.0) @ cell, cell)[0]
    assert abs(e2 - e) < 1e-9 and abs(e3 - e) < 1e-9
    assert np.abs(f.sum(0)).max() < 1e-9


def _brute_nonbonded(ff, x, cell):
    """O(N² × images) NumPy energy of the non-bonded terms (no cell list)."""
    rc, al = ff.cutoff, ff.alpha
    inv = np.linalg.inv(cell)
    widths = abs(np.linalg.det(cell)) / np.linalg.norm(np.cross(cell[[1, 2, 0]],
                                                                cell[[2, 0, 1]]), axis=1)
    nmax = np.ceil(rc / widths).astype(int) + 1
    shifts = np.array([[i, j, k] for i in range(-nmax[0], nmax[0] + 1)
                       for j in range(-nmax[1], nmax[1] + 1)
                       for k in range(-nmax[2], nmax[2] + 1)]) @ cell
    e = 0.0
    n = len(x)
    ec = erfc(al * rc)
    fsh = ec / rc ** 2 + 2 * al / math.sqrt(math.pi) * math.exp(-al * al * rc * rc) / rc
    for i in range(n):
        for j in range(n):
            d = x[j] + shifts - x[i]
            r = np.linalg.norm(d, axis=1)
            ok = (r < rc) & (r > 1e-10)
            if ff.mol_id[i] >= 0 and ff.mol_id[i] == ff.mol_id[j]:
                dm = x[j] - x[i]
                dm = dm - np.round(dm @ inv) @ cell
                ok &= np.linalg.norm(d - dm, axis=1) > 1e-3
            r = r[ok]
            a = ff.amat[ff.types[i], ff.types[j]]
            p = ff.rho[ff.types[i], ff.types[j]]
            ex_c = math.exp(-rc / p)
            e += 0.5 * np.sum(a * (np.exp(-r / p) - ex_c + ex_c / p * (r - rc)))
            qq = ff.charges[i] * ff.charges[j] * COULOMB
            e += 0.5 * np.sum(qq * (erfc(al * r) / r - ec / rc + fsh * (r - rc)))
    return e


@pytest.mark.parametrize("repeat,shear,cutoff", [((1, 1, 1), 0.2, 9.0), ((2, 2, 1), 0.1, 5.5)])
def test_cell_list_matches_brute_force(repeat, shear, cutoff):
    atoms, topo = tetrahedral_salt(repeat=repeat, shear=shear, seed=5, wrap=True)
    x = atoms.positions
    ff = ReferenceForceField.from_topology(topo, topo.whole_positions(x, atoms.cell.array),
                                           atoms.cell.array, cutoff=cutoff)
    ff_nb = ReferenceForceField.from_state(*ff.get_state())
    ff_nb.pairs = ff_nb.pairs[:0]
    ff_nb.angles = ff_nb.angles[:0]
    e = ff_nb.compute(x, atoms.cell.array)[0] - ff_nb.self_energy
    assert e == pytest.approx(_brute_nonbonded(ff, x, atoms.cell.array), rel=1e-10, abs=1e-9)


def test_charges_neutral_and_exclusions():
    atoms, topo = tetrahedral_salt()
    ff = ReferenceForceField.from_topology(topo, atoms.positions, atoms.cell.array)
    assert ff.charges.sum() == pytest.approx(0.0, abs=1e-12)
    assert np.allclose(ff.charges[topo.rotor_atoms], -0.2)
    assert len(ff.pairs) == 16 and len(ff.angles) == 24
    # rigid translation of one rotor changes only non-bonded energy; its bonded energy is 0
    e0 = ff.compute(atoms.positions, atoms.cell.array)
    assert np.isfinite(e0[0])


def test_bad_inputs():
    atoms, topo = tetrahedral_salt()
    ff = ReferenceForceField.from_topology(topo, atoms.positions, atoms.cell.array)
    with pytest.raises(ValueError, match="built for 24 atoms"):
        ff.compute(atoms.positions[:-1], atoms.cell.array)
    with pytest.raises(ValueError, match="too thin"):
        ff.compute(atoms.positions, atoms.cell.array * np.array([[0.05], [1], [1]]))
    with pytest.raises(ValueError, match="no parameters"):
        topo.symbols = topo.symbols.copy()
        topo.symbols[0] = "Xe"
        ReferenceForceField.from_topology(topo, atoms.positions, atoms.cell.array)
