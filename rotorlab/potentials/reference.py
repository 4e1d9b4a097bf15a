"""Reference force field: a small numba potential for tests and demonstrations.

**Not physics-grade.** It exists so the constrained MD engine can be exercised, tested and
demonstrated without machine-learned models. Functional form (energies in eV, Å):

* **Intramolecular** (rotor anions and multi-atom framework units):
  harmonic bonds ``½ k_b (r − r0)²`` on the topology's bonds, cosine-harmonic angles
  ``½ k_θ (cos θ − cos θ0)²`` for every pair of bonds sharing an atom (smooth also for
  linear angles), and weak harmonic distance restraints ``½ k_far (r − r0)²`` between atoms
  of the same unit separated by three or more bonds (hold torsions, e.g. P2S6). ``r0``,
  ``θ0`` come from the reference geometry. Intramolecular pairs have no non-bonded terms.
* **Non-bonded** (all other pairs, with all periodic images): Born–Mayer repulsion
  (Buckingham with C = 0) in Gilbert form ``f0 (b_i+b_j) exp((a_i+a_j−r)/(b_i+b_j))``
  and damped shifted-force Coulomb (Fennell & Gezelter, J. Chem. Phys. 124, 234104 (2006)),
  both shifted so energy and force vanish at the cutoff.
* **Charges**: mobile cations carry the topology's ``mobile_charge``; every molecular unit
  carries its formal charge (``UnitSpec.charge``: BH4 −1, B10H10 −2, PS4 −3, P2S6 −4,
  SnS4 −4, O −2) spread *equally over its atoms* (e.g. BH4: −0.2 e on B and on each H;
  PS4: −0.75 e per atom); other atoms take formal charges from a small table.

Periodic images are enumerated with a cell list in fractional coordinates, so any
(triclinic) cell works, including cells narrower than the cutoff; cells narrower than
``cutoff / 12`` are refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from numba import njit

from rotorlab.geometry import cell_list, mic as _mic  # noqa: F401 (cell_list re-exported)
from rotorlab.units import COULOMB

__all__ = ["ReferenceForceField", "ELEMENT_PARAMS", "MATERIAL_SETTINGS", "FORMAL_CHARGES"]

#: Gilbert repulsion parameters per element: (a radius [Å], b softness [Å]).
ELEMENT_PARAMS = {
    "H": (1.22, 0.085),
    "Li": (0.90, 0.080),
    "B": (0.95, 0.085),
    "O": (1.55, 0.090),
    "Na": (1.20, 0.085),
    "P": (1.10, 0.085),
    "S": (1.88, 0.095),
    "Sn": (1.20, 0.085),
    "K": (1.50, 0.090),
    "Cl": (1.80, 0.095),
}
#: Formal charges of atoms that are neither mobile nor part of a unit [e].
FORMAL_CHARGES = {"Li": 1.0, "Na": 1.0, "K": 1.0, "Mg": 2.0, "O": -2.0, "S": -2.0,
                  "Cl": -1.0, "F": -1.0, "H": -1.0}
#: Gilbert f0 [eV/Å] (1 kcal/mol/Å would be 0.0434; stiffer here for robustness).
F0 = 0.25
#: Per-material settings: cutoff [Å], DSF damping alpha [1/Å].
MATERIAL_SETTINGS = {
    "default": {"cutoff": 8.0, "alpha": 0.22},
}
#: Force constants: bonds to hydrogen / other bonds [eV/Å²], angles [eV], far pairs [eV/Å²].
K_BOND_H = 18.0
K_BOND = 10.0
K_ANGLE_H = 6.0
K_ANGLE = 8.0
K_FAR = 1.0

_SQRT_PI = math.sqrt(math.pi)


# --------------------------------------------------------------------------------------
# kernels
# --------------------------------------------------------------------------------------


@njit(cache=True)
def nonbonded(x, cell, types, charges, mol_id, amat, rho, rc, alpha, forces, virial):
    """Born–Mayer + DSF Coulomb over all periodic images with a fractional cell list.

    Parameters
    ----------
    x : ndarray, shape (N, 3)
        Positions [Å] (wrapped or unwrapped).
    cell : ndarray, shape (3, 3)
        Lattice vectors as rows [Å].
    types : ndarray of int64, shape (N,)
        Type index of each atom into ``amat``/``rho``.
    charges : ndarray, shape (N,)
        Charges [e].
    mol_id : ndarray of int64, shape (N,)
        Molecule index (−1: none). The intramolecular partner image is excluded.
    amat, rho : ndarray, shape (n_types, n_types)
        Born–Mayer prefactor [eV] and range [Å]: ``A exp(−r/ρ)``.
    rc : float
        Cutoff [Å].
    alpha : float
        DSF damping [1/Å].
    forces : ndarray, shape (N, 3)
        Output, **added to** [eV/Å].
    virial : ndarray, shape (3, 3)
        Output, **added to**: ``W = Σ_pairs d ⊗ F_j`` [eV].

    Returns
    -------
    float
        Energy [eV] (without the constant DSF self term).
    """
    n = x.shape[0]
    inv_cell = np.linalg.inv(cell)
    xw, cidx, nc, reach, start, order = cell_list(x, cell, rc, 64)

    rc2 = rc * rc
    erfc_rc = math.erfc(alpha * rc)
    gauss_rc = 2.0 * alpha / _SQRT_PI * math.exp(-alpha * alpha * rc2)
    e_shift = erfc_rc / rc
    f_shift = erfc_rc / rc2 + gauss_rc / rc
    energy = 0.0
    dm = np.empty(3)
    for i in range(n):
        ci = cidx[i]
        cz = ci % nc[2]
        cy = (ci // nc[2]) % nc[1]
        cx = ci // (nc[1] * nc[2])
        ti = types[i]
        qi = charges[i]
        mi = mol_id[i]
        fx = 0.0
        fy = 0.0
        fz = 0.0
        for ddx in range(-reach[0], reach[0] + 1):
            jx = cx + ddx
            wx = jx % nc[0]
            sx = (jx - wx) // nc[0]
            for ddy in range(-reach[1], reach[1] + 1):
                jy = cy + ddy
                wy = jy % nc[1]
                sy = (jy - wy) // nc[1]
                for ddz in range(-reach[2], reach[2] + 1):
                    jz = cz + ddz
                    wz = jz % nc[2]
                    sz = (jz - wz) // nc[2]
                    shx = sx * cell[0, 0] + sy * cell[1, 0] + sz * cell[2, 0]
                    shy = sx * cell[0, 1] + sy * cell[1, 1] + sz * cell[2, 1]
                    shz = sx * cell[0, 2] + sy * cell[1, 2] + sz * cell[2, 2]
                    cj = (wx * nc[1] + wy) * nc[2] + wz
                    for kk in range(start[cj], start[cj + 1]):
                        j = order[kk]
                        dx = xw[j, 0] + shx - xw[i, 0]
                        dy = xw[j, 1] + shy - xw[i, 1]
                        dz = xw[j, 2] + shz - xw[i, 2]
                        r2 = dx * dx + dy * dy + dz * dz
                        if r2 >= rc2 or r2 < 1e-20:
                            continue
                        if mi >= 0 and mol_id[j] == mi:
                            for k in range(3):
                                dm[k] = x[j, k] - x[i, k]
                            dd = _mic(dm, cell, inv_cell)
                            ex = dd[0] - dx
                            ey = dd[1] - dy
                            ez = dd[2] - dz
                            if ex * ex + ey * ey + ez * ez < 1e-6:
                                continue
                        r = math.sqrt(r2)
                        tj = types[j]
                        a = amat[ti, tj]
                        p = rho[ti, tj]
                        ex_r = math.exp(-r / p)
                        ex_c = math.exp(-rc / p)
                        e = a * (ex_r - ex_c + ex_c / p * (r - rc))
                        de = a / p * (ex_c - ex_r)
                        qq = qi * charges[j] * COULOMB
                        if qq != 0.0:
                            erfc_r = math.erfc(alpha * r)
                            e += qq * (erfc_r / r - e_shift + f_shift * (r - rc))
                            de += qq * (-erfc_r / r2
                                        - 2.0 * alpha / _SQRT_PI * math.exp(-alpha * alpha * r2) / r
                                        + f_shift)
                        energy += 0.5 * e
                        g = de / r  # F_i = de * d / r ; F_j = -de * d / r
                        fx += g * dx
                        fy += g * dy
                        fz += g * dz
                        # W += 0.5 * d ⊗ F_j (each pair visited twice)
                        virial[0, 0] -= 0.5 * g * dx * dx
                        virial[0, 1] -= 0.5 * g * dx * dy
                        virial[0, 2] -= 0.5 * g * dx * dz
                        virial[1, 1] -= 0.5 * g * dy * dy
                        virial[1, 2] -= 0.5 * g * dy * dz
                        virial[2, 2] -= 0.5 * g * dz * dz
        forces[i, 0] += fx
        forces[i, 1] += fy
        forces[i, 2] += fz
    return energy



@njit(cache=True)
def bonded(x, cell, pairs, pair_k, pair_r0, angles, angle_k, angle_cos0, forces, virial):
    """Harmonic pair springs and cosine-harmonic angles on minimum-image vectors.

    Parameters
    ----------
    x : ndarray, shape (N, 3)
        Positions [Å].
    cell : ndarray, shape (3, 3)
    pairs : ndarray of int64, shape (n_pairs, 2)
    pair_k, pair_r0 : ndarray, shape (n_pairs,)
        ``E = ½ k (r − r0)²`` [eV/Å², Å].
    angles : ndarray of int64, shape (n_angles, 3)
        ``(i, c, j)``: angle at atom ``c``.
    angle_k, angle_cos0 : ndarray, shape (n_angles,)
        ``E = ½ k (cos θ − cos θ0)²`` [eV].
    forces, virial : ndarray
        Outputs, **added to** (see :func:`nonbonded`).

    Returns
    -------
    float
        Energy [eV].
    """
    inv_cell = np.linalg.inv(cell)
    energy = 0.0
    d = np.empty(3)
    for b in range(pairs.shape[0]):
        i = pairs[b, 0]
        j = pairs[b, 1]
        for k in range(3):
            d[k] = x[j, k] - x[i, k]
        dv = _mic(d, cell, inv_cell)
        r = math.sqrt(dv[0] ** 2 + dv[1] ** 2 + dv[2] ** 2)
        dr = r - pair_r0[b]
        energy += 0.5 * pair_k[b] * dr * dr
        g = pair_k[b] * dr / r  # dE/dd = g d ; F_j = -g d
        for k in range(3):
            forces[i, k] += g * dv[k]
            forces[j, k] -= g * dv[k]
            for l in range(3):
                virial[k, l] -= g * dv[k] * dv[l]
    for t in range(angles.shape[0]):
        i = angles[t, 0]
        c = angles[t, 1]
        j = angles[t, 2]
        for k in range(3):
            d[k] = x[i, k] - x[c, k]
        u = _mic(d, cell, inv_cell)
        for k in range(3):
            d[k] = x[j, k] - x[c, k]
        w = _mic(d, cell, inv_cell)
        ru = math.sqrt(u[0] ** 2 + u[1] ** 2 + u[2] ** 2)
        rw = math.sqrt(w[0] ** 2 + w[1] ** 2 + w[2] ** 2)
        cos = (u[0] * w[0] + u[1] * w[1] + u[2] * w[2]) / (ru * rw)
        dc = cos - angle_cos0[t]
        energy += 0.5 * angle_k[t] * dc * dc
        pre = angle_k[t] * dc
        for k in range(3):
            gu = pre * (w[k] / (ru * rw) - cos * u[k] / (ru * ru))  # dE/du
            gw = pre * (u[k] / (ru * rw) - cos * w[k] / (rw * rw))  # dE/dw
            forces[i, k] -= gu
            forces[j, k] -= gw
            forces[c, k] += gu + gw
        for k in range(3):
            for l in range(3):
                gul = pre * (w[l] / (ru * rw) - cos * u[l] / (ru * ru))
                gwl = pre * (u[l] / (ru * rw) - cos * w[l] / (rw * rw))
                virial[k, l] -= u[k] * gul + w[k] * gwl
    return energy


# --------------------------------------------------------------------------------------
# force field object
# --------------------------------------------------------------------------------------


def _material_name(topology, material):
    if material is None:
        return "default"
    return material if isinstance(material, str) else getattr(material, "name", "default")


class ReferenceForceField:
    """Numba reference force field (see module docstring for the functional form).

    Build it with :meth:`from_topology`; the constructor takes the finished parameter
    arrays. ``compute(positions, cell)`` returns ``(energy, forces, virial)``.

    Parameters
    ----------
    symbols : sequence of str, shape (N,)
    charges : ndarray, shape (N,)
        [e].
    mol_id : ndarray of int64, shape (N,)
        Molecular unit of each atom (−1 none); intramolecular non-bonded pairs excluded.
    pairs, pair_k, pair_r0 : harmonic springs (bonds and far intramolecular pairs).
    angles, angle_k, angle_cos0 : cosine-harmonic angles.
    type_names : sequence of str
        Elements in type order; ``types`` index into them.
    radii, softness : ndarray, shape (n_types,)
        Gilbert ``a`` and ``b`` [Å].
    cutoff : float
        Non-bonded cutoff [Å].
    alpha : float
        DSF damping [1/Å].
    f0 : float
        Gilbert prefactor [eV/Å].
    """

    id = "reference"
    version = "1"

    def __init__(self, symbols, charges, mol_id, pairs, pair_k, pair_r0, angles, angle_k,
                 angle_cos0, type_names, radii, softness, cutoff=8.0, alpha=0.22, f0=F0,
                 material="default"):
        self.symbols = np.asarray(symbols).astype(str)
        self.type_names = tuple(str(t) for t in type_names)
        lookup = {t: k for k, t in enumerate(self.type_names)}
        self.types = np.array([lookup[s] for s in self.symbols], dtype=np.int64)
        self.charges = np.ascontiguousarray(charges, dtype=np.float64)
        self.mol_id = np.ascontiguousarray(mol_id, dtype=np.int64)
        self.pairs = np.ascontiguousarray(pairs, dtype=np.int64).reshape(-1, 2)
        self.pair_k = np.ascontiguousarray(pair_k, dtype=np.float64)
        self.pair_r0 = np.ascontiguousarray(pair_r0, dtype=np.float64)
        self.angles = np.ascontiguousarray(angles, dtype=np.int64).reshape(-1, 3)
        self.angle_k = np.ascontiguousarray(angle_k, dtype=np.float64)
        self.angle_cos0 = np.ascontiguousarray(angle_cos0, dtype=np.float64)
        self.radii = np.asarray(radii, dtype=np.float64)
        self.softness = np.asarray(softness, dtype=np.float64)
        if cutoff <= 0 or alpha < 0:
            raise ValueError("cutoff must be > 0 and alpha >= 0")
        self.cutoff = float(cutoff)
        self.alpha = float(alpha)
        self.f0 = float(f0)
        self.material = str(material)
        bsum = self.softness[:, None] + self.softness[None, :]
        asum = self.radii[:, None] + self.radii[None, :]
        self.rho = np.ascontiguousarray(bsum)
        self.amat = np.ascontiguousarray(self.f0 * bsum * np.exp(asum / bsum))
        rc, a = self.cutoff, self.alpha
        self.self_energy = -COULOMB * float((self.charges ** 2).sum()) * (
            math.erfc(a * rc) / (2 * rc) + a / _SQRT_PI)

    @property
    def n_atoms(self) -> int:
        return len(self.symbols)

    # -- construction ------------------------------------------------------------------

    @classmethod
    def from_topology(cls, topology, positions=None, cell=None, material=None,
                      cutoff=None, alpha=None, element_params: Mapping | None = None,
                      charges=None) -> "ReferenceForceField":
        """Parametrise the reference force field for a detected structure.

        Parameters
        ----------
        topology : rotorlab.topology.Topology
            Rotors, bonds, framework units, mobile ions, masses.
        positions : ndarray, shape (N, 3), optional
            Geometry defining ``r0``/``θ0``; default: the topology's rotor reference
            geometry (framework units then need ``positions``).
        cell : ndarray, shape (3, 3), optional
            Needed with ``positions`` for minimum images of framework units.
        material : str or Material, optional
            Selects ``MATERIAL_SETTINGS`` (cutoff, alpha).
        cutoff, alpha : float, optional
            Override the non-bonded cutoff [Å] and DSF damping [1/Å].
        element_params : mapping, optional
            Overrides of ``ELEMENT_PARAMS`` (element → (a, b)).
        charges : ndarray, shape (N,), optional
            Explicit charges [e] instead of the formal-charge rule.

        Raises
        ------
        ValueError
            Elements without repulsion parameters.
        """
        name = _material_name(topology, material)
        settings = dict(MATERIAL_SETTINGS["default"])
        settings.update(MATERIAL_SETTINGS.get(name, {}))
        if cutoff is not None:
            settings["cutoff"] = float(cutoff)
        if alpha is not None:
            settings["alpha"] = float(alpha)
        params = dict(ELEMENT_PARAMS)
        if element_params:
            params.update(element_params)
        symbols = np.asarray(topology.symbols).astype(str)
        n = len(symbols)
        type_names = sorted(set(symbols.tolist()))
        missing = [t for t in type_names if t not in params]
        if missing:
            raise ValueError(f"reference force field has no parameters for {missing}; "
                             "pass element_params={'X': (radius, softness)}")

        # molecular units: rotors + multi-atom framework units
        mol_id = np.full(n, -1, dtype=np.int64)
        units = []  # (atom indices, kind)
        ptr = np.asarray(topology.rotor_ptr)
        ratoms = np.asarray(topology.rotor_atoms)
        kinds = np.asarray(topology.rotor_kind).astype(str)
        for r in range(len(ptr) - 1):
            units.append((ratoms[ptr[r]:ptr[r + 1]], kinds[r]))
        for kind, idx in (getattr(topology, "framework", None) or {}).items():
            for row in np.atleast_2d(np.asarray(idx)):
                units.append((np.asarray(row, dtype=np.int64), kind))
        for u, (idx, _) in enumerate(units):
            if len(idx) > 1:
                mol_id[idx] = u

        # geometry: unit-internal vectors
        if positions is not None:
            x = np.asarray(positions, dtype=float)
            cellm = np.asarray(cell, dtype=float) if cell is not None else None
        else:
            x = np.zeros((n, 3))
            x[ratoms] = np.asarray(topology.reference) + np.repeat(
                np.asarray(topology.reference_com), np.diff(ptr), axis=0)
            cellm = None

        def vec(i, j):
            d = x[j] - x[i]
            if cellm is not None:
                f = d @ np.linalg.inv(cellm)
                d = (f - np.round(f)) @ cellm
            return d

        # charges
        specs = getattr(topology, "unit_specs", None) or {}
        if charges is None:
            q = np.array([FORMAL_CHARGES.get(s, 0.0) for s in symbols], dtype=float)
            q[np.asarray(topology.mobile, dtype=np.int64)] = float(topology.mobile_charge)
            for idx, kind in units:
                spec = specs.get(kind)
                unit_q = getattr(spec, "charge", None)
                if unit_q is None:
                    unit_q = _DEFAULT_UNIT_CHARGE.get(kind)
                if unit_q is None:
                    raise ValueError(f"unknown formal charge of unit {kind!r}; pass charges=")
                q[idx] = float(unit_q) / len(idx)
        else:
            q = np.asarray(charges, dtype=float)

        # bonds: topology bonds for rotors, distance criterion for framework units
        bond_set = set()
        for i, j in np.asarray(topology.bonds, dtype=np.int64).reshape(-1, 2):
            bond_set.add((min(int(i), int(j)), max(int(i), int(j))))
        rotor_atom_set = set(ratoms.tolist())
        for idx, _ in units:
            if len(idx) < 2 or int(idx[0]) in rotor_atom_set:
                continue
            from ase.data import atomic_numbers, covalent_radii
            for a_ in range(len(idx)):
                for b_ in range(a_ + 1, len(idx)):
                    i, j = int(idx[a_]), int(idx[b_])
                    rcov = (covalent_radii[atomic_numbers[symbols[i]]]
                            + covalent_radii[atomic_numbers[symbols[j]]])
                    if np.linalg.norm(vec(i, j)) < 1.3 * rcov:
                        bond_set.add((i, j))
        bonds = sorted(bond_set)
        adj = {}
        for i, j in bonds:
            adj.setdefault(i, []).append(j)
            adj.setdefault(j, []).append(i)

        pairs, pk, pr0 = [], [], []
        for i, j in bonds:
            pairs.append((i, j))
            pk.append(K_BOND_H if "H" in (symbols[i], symbols[j]) else K_BOND)
            pr0.append(np.linalg.norm(vec(i, j)))
        angles, ak, acos = [], [], []
        for c in sorted(adj):
            nb = sorted(adj[c])
            for a_ in range(len(nb)):
                for b_ in range(a_ + 1, len(nb)):
                    i, j = nb[a_], nb[b_]
                    u, w = vec(c, i), vec(c, j)
                    angles.append((i, c, j))
                    ak.append(K_ANGLE_H if "H" in (symbols[i], symbols[j]) else K_ANGLE)
                    acos.append(float(u @ w / (np.linalg.norm(u) * np.linalg.norm(w))))
        # far pairs (≥ 3 bonds apart) inside each unit
        for idx, _ in units:
            if len(idx) < 4:
                continue
            idx_list = [int(i) for i in idx]
            for s in idx_list:
                dist = {s: 0}
                frontier = [s]
                while frontier:
                    nxt = []
                    for a_ in frontier:
                        for b_ in adj.get(a_, []):
                            if b_ not in dist:
                                dist[b_] = dist[a_] + 1
                                nxt.append(b_)
                    frontier = nxt
                for t in idx_list:
                    if t > s and dist.get(t, 99) >= 3:
                        pairs.append((s, t))
                        pk.append(K_FAR)
                        pr0.append(np.linalg.norm(vec(s, t)))
        radii = [params[t][0] for t in type_names]
        soft = [params[t][1] for t in type_names]
        return cls(symbols, q, mol_id, np.array(pairs, dtype=np.int64).reshape(-1, 2),
                   np.array(pk), np.array(pr0), np.array(angles, dtype=np.int64).reshape(-1, 3),
                   np.array(ak), np.array(acos), type_names, radii, soft,
                   cutoff=settings["cutoff"], alpha=settings["alpha"], material=name)

    # -- evaluation --------------------------------------------------------------------

    def compute(self, positions, cell):
        """Energy [eV], forces (N, 3) [eV/Å] and virial (3, 3) [eV] (``σ = −W/V``).

        Parameters
        ----------
        positions : ndarray, shape (N, 3)
            Cartesian positions [Å], wrapped or unwrapped.
        cell : ndarray, shape (3, 3)
            Lattice vectors as rows [Å].

        Returns
        -------
        energy : float
            [eV].
        forces : ndarray, shape (N, 3)
            [eV/Å].
        virial : ndarray, shape (3, 3)
            [eV], ``W = -∂E/∂ε``.

        Raises
        ------
        ValueError
            Wrong number of atoms, non-finite positions or cell (the numba cell list
            would index out of bounds), degenerate cell, or a cell so thin that more than
            12 images per direction would be needed.
        """
        x = np.ascontiguousarray(positions, dtype=np.float64)
        cellm = np.ascontiguousarray(cell, dtype=np.float64)
        if x.shape != (self.n_atoms, 3):
            raise ValueError(f"reference force field was built for {self.n_atoms} atoms, "
                             f"got positions of shape {x.shape}")
        if not (np.isfinite(x).all() and np.isfinite(cellm).all()):
            raise ValueError("non-finite positions or cell (NaN/inf): the dynamics has "
                             "exploded")
        if cellm.shape != (3, 3) or abs(np.linalg.det(cellm)) < 1e-6:
            raise ValueError("a periodic 3x3 cell with non-zero volume is required")
        vol = abs(np.linalg.det(cellm))
        widths = vol / np.linalg.norm(np.cross(cellm[[1, 2, 0]], cellm[[2, 0, 1]]), axis=1)
        if widths.min() * 12 < self.cutoff:
            raise ValueError(
                f"cell too thin for the cutoff: perpendicular width {widths.min():.2f} Å "
                f"vs cutoff {self.cutoff} Å (more than 12 periodic images); use a supercell")
        forces = np.zeros_like(x)
        virial = np.zeros((3, 3))
        e = nonbonded(x, cellm, self.types, self.charges, self.mol_id, self.amat, self.rho,
                      self.cutoff, self.alpha, forces, virial)
        virial[1, 0] = virial[0, 1]
        virial[2, 0] = virial[0, 2]
        virial[2, 1] = virial[1, 2]
        e += bonded(x, cellm, self.pairs, self.pair_k, self.pair_r0, self.angles,
                    self.angle_k, self.angle_cos0, forces, virial)
        return e + self.self_energy, forces, virial

    def __call__(self, positions, cell):
        return self.compute(positions, cell)

    # -- state -------------------------------------------------------------------------

    def get_state(self):
        """Arrays and JSON metadata that rebuild the force field exactly."""
        arrays = {"ff_charges": self.charges, "ff_mol_id": self.mol_id,
                  "ff_pairs": self.pairs, "ff_pair_k": self.pair_k,
                  "ff_pair_r0": self.pair_r0, "ff_angles": self.angles,
                  "ff_angle_k": self.angle_k, "ff_angle_cos0": self.angle_cos0,
                  "ff_radii": self.radii, "ff_softness": self.softness}
        meta = {"kind": "reference", "symbols": self.symbols.tolist(),
                "type_names": list(self.type_names), "cutoff": self.cutoff,
                "alpha": self.alpha, "f0": self.f0, "material": self.material,
                "id": self.id, "version": self.version}
        return arrays, meta

    @classmethod
    def from_state(cls, arrays, meta) -> "ReferenceForceField":
        """Inverse of :meth:`get_state`."""
        a = {k: np.asarray(v) for k, v in arrays.items()}
        return cls(meta["symbols"], a["ff_charges"], a["ff_mol_id"], a["ff_pairs"],
                   a["ff_pair_k"], a["ff_pair_r0"], a["ff_angles"], a["ff_angle_k"],
                   a["ff_angle_cos0"], meta["type_names"], a["ff_radii"], a["ff_softness"],
                   cutoff=meta["cutoff"], alpha=meta["alpha"], f0=meta["f0"],
                   material=meta.get("material", "default"))

    def __repr__(self):
        return (f"ReferenceForceField({self.n_atoms} atoms, types={self.type_names}, "
                f"cutoff={self.cutoff} Å, alpha={self.alpha}, {len(self.pairs)} springs, "
                f"{len(self.angles)} angles)")


#: Formal unit charges used when the topology carries no UnitSpec.
_DEFAULT_UNIT_CHARGE = {"BH4": -1.0, "B10H10": -2.0, "PS4": -3.0, "P2S6": -4.0,
                        "SnS4": -4.0, "O": -2.0}
