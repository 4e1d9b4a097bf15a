"""Small hand-built periodic rotor systems for tests, benchmarks and demos.

These do not depend on the materials catalogue: a rock-salt arrangement of cations and
randomly oriented tetrahedral XY4 anions (BH4⁻-like by default) in a cubic or triclinic
cell, with a :class:`rotorlab.topology.Topology` built directly from the construction
(no bond detection).
"""

from __future__ import annotations

import numpy as np

__all__ = ["tetrahedral_salt", "random_rotation"]

_TETRA = np.array([[1.0, 1.0, 1.0], [1.0, -1.0, -1.0], [-1.0, 1.0, -1.0],
                   [-1.0, -1.0, 1.0]]) / np.sqrt(3.0)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """Uniformly random rotation matrix (3, 3)."""
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def tetrahedral_salt(repeat=(1, 1, 1), a: float = 6.2, center: str = "B", ligand: str = "H",
                     cation: str = "Li", bond: float = 1.22, seed: int = 0,
                     shear: float = 0.0, vacancy: bool = False, wrap: bool = False):
    """Rock-salt crystal of cations and XY4 tetrahedra.

    Parameters
    ----------
    repeat : tuple of 3 int
        Repetitions of the 8-site conventional cell (4 cations + 4 anions).
    a : float
        Conventional cubic lattice constant [Å].
    center, ligand, cation : str
        Elements (``"B"``, ``"H"``, ``"Li"`` gives a LiBH4-like salt).
    bond : float
        Centre–ligand distance [Å].
    seed : int
        Seed of the random anion orientations.
    shear : float
        Triclinic distortion: ``b += shear·a``, ``c += shear·(a + b)``.
    vacancy : bool
        Remove the first cation (then the cell carries a net charge for the FF
        charge rule; intended for mobile-ion tests).
    wrap : bool
        Wrap positions into the cell (rotors may then be split by the boundary).

    Returns
    -------
    atoms : ase.Atoms
        Periodic structure, ``atoms.info["material"]`` unset.
    topology : rotorlab.topology.Topology
        Rotors (kind ``center+ligand+"4"``), bonds centre–ligand, mobile cations.
    """
    import ase
    from ase.data import atomic_masses, atomic_numbers

    from rotorlab.topology import Topology

    rng = np.random.default_rng(seed)
    fcc = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    nx, ny, nz = (int(r) for r in repeat)
    cell = np.diag([nx * a, ny * a, nz * a]).astype(float)
    if shear:
        cell[1] += shear * cell[0] * (ny / nx)
        cell[2] += shear * (cell[0] * nz / nx + cell[1] * nz / ny)
    frac_cells = np.array([[i, j, k] for i in range(nx) for j in range(ny) for k in range(nz)],
                          dtype=float)
    scale = np.array([nx, ny, nz], dtype=float)
    cat_frac = ((frac_cells[:, None, :] + fcc[None, :, :]) / scale).reshape(-1, 3)
    an_frac = ((frac_cells[:, None, :] + fcc[None, :, :] + 0.5) / scale).reshape(-1, 3) % 1.0
    if vacancy:
        cat_frac = cat_frac[1:]
    symbols, pos = [], []
    for f in cat_frac:
        symbols.append(cation)
        pos.append(f @ cell)
    rotor_ptr = [0]
    rotor_atoms = []
    bonds = []
    kind = f"{center}{ligand}4"
    for f in an_frac:
        c = f @ cell
        rot = random_rotation(rng)
        i0 = len(symbols)
        symbols.append(center)
        pos.append(c)
        for t in _TETRA:
            symbols.append(ligand)
            pos.append(c + bond * (rot @ t))
        rotor_atoms.extend(range(i0, i0 + 5))
        rotor_ptr.append(len(rotor_atoms))
        bonds.extend([(i0, i0 + j) for j in range(1, 5)])
    atoms = ase.Atoms(symbols, positions=np.array(pos), cell=cell, pbc=True)
    if wrap:
        atoms.wrap()
    n = len(atoms)
    masses = np.array([atomic_masses[atomic_numbers[s]] for s in symbols], dtype=float)
    rotor_ptr = np.array(rotor_ptr, dtype=np.int64)
    rotor_atoms = np.array(rotor_atoms, dtype=np.int64)
    rotor_id = np.full(n, -1, dtype=np.int64)
    n_rot = len(rotor_ptr) - 1
    rotor_id[rotor_atoms] = np.repeat(np.arange(n_rot), np.diff(rotor_ptr))
    x = np.array(pos)[rotor_atoms]
    m = masses[rotor_atoms]
    com = np.add.reduceat(m[:, None] * x, rotor_ptr[:-1]) / np.add.reduceat(
        m, rotor_ptr[:-1])[:, None]
    reference = x - np.repeat(com, 5, axis=0)
    topo = Topology(
        n_atoms=n,
        symbols=np.array(symbols),
        masses=masses,
        rotor_id=rotor_id,
        rotor_ptr=rotor_ptr,
        rotor_atoms=rotor_atoms,
        rotor_kind=np.array([kind] * n_rot),
        reference=reference,
        reference_com=com,
        orientation_atoms=np.stack([rotor_atoms[rotor_ptr[:-1]],
                                    rotor_atoms[rotor_ptr[:-1] + 1]], axis=1),
        bonds=np.array(bonds, dtype=np.int64).reshape(-1, 2),
        mobile=np.flatnonzero(np.array(symbols) == cation).astype(np.int64),
        mobile_species=cation,
        mobile_charge=1.0,
    )
    return atoms, topo
