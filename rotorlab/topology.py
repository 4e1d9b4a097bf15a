"""Rotor (polyanion) and mobile-ion detection under periodic boundary conditions.

A :class:`Topology` records, for a structure, which atoms form each rotor anion
(e.g. BH4⁻, B10H10²⁻, PS4³⁻, P2S6⁴⁻), each rotor's reference geometry relative to
its centre of mass (made whole across the periodic boundary), the atom pair that
defines its orientation vector, its intra-rotor bonds, and the indices of the
mobile cations.

Detection (:func:`detect`) builds a covalent-bond graph between the elements that
make up rotor or framework units (bond cutoff = ``bond_scale`` × sum of covalent
radii, minimum image), splits it into connected fragments and checks that every
fragment has the composition of a known unit. A fragment of the wrong composition
(BH3 + a stray H, two anions merged, a P without four S) raises
:class:`TopologyError` naming the atoms.

The rotor layout is CSR-like so numba kernels can use it directly:
atoms of rotor ``r`` are ``rotor_atoms[rotor_ptr[r]:rotor_ptr[r + 1]]``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

__all__ = ["UnitSpec", "Topology", "TopologyError", "detect"]


class TopologyError(ValueError):
    """A structure does not decompose into the expected rotor/framework units."""


@dataclass(frozen=True)
class UnitSpec:
    """Definition of a molecular unit (rotor anion or framework polyhedron).

    Parameters
    ----------
    name : str
        Label, e.g. ``"BH4"``.
    composition : dict[str, int]
        Element counts, e.g. ``{"B": 1, "H": 4}``.
    center : str
        Element of the central atom(s).
    orientation : {"center-ligand", "apical", "center-center", "none"}
        Rule for the orientation vector: centre→first ligand (tetrahedra), the
        apical B→B axis of a bicapped cage (B10H10: the two B with four B
        neighbours), or centre→centre (the P–P axis of P2S6).
    rotor : bool
        Whether the unit is a rotor by default (constrained by the modes).
    charge : float
        Formal charge of the unit [e].
    """

    name: str
    composition: dict
    center: str
    orientation: str = "center-ligand"
    rotor: bool = True
    charge: float = -1.0

    @property
    def elements(self) -> set:
        return set(self.composition)

    @property
    def n_atoms(self) -> int:
        return int(sum(self.composition.values()))


# Covalent radii (Å), Cordero et al. 2008 (as in ase.data.covalent_radii).
def _covalent_radius(symbol: str) -> float:
    from ase.data import atomic_numbers, covalent_radii

    return float(covalent_radii[atomic_numbers[symbol]])


@dataclass
class Topology:
    """Rotors and mobile ions of a periodic structure.

    Attributes
    ----------
    n_atoms : int
    symbols : ndarray of str, shape (n_atoms,)
    masses : ndarray of float64, shape (n_atoms,)
        Atomic masses [amu].
    rotor_id : ndarray of int64, shape (n_atoms,)
        Rotor index of each atom, −1 for atoms not in a rotor.
    rotor_ptr : ndarray of int64, shape (n_rotors + 1,)
        CSR offsets into ``rotor_atoms``.
    rotor_atoms : ndarray of int64, shape (n_rotor_atoms,)
        Atom indices grouped by rotor.
    rotor_kind : ndarray of str, shape (n_rotors,)
        Unit name of each rotor (``"BH4"``, ``"PS4"``, ...).
    reference : ndarray of float64, shape (n_rotor_atoms, 3)
        Reference geometry a_i [Å] of each rotor atom relative to its rotor's
        centre of mass (Σ m_i a_i = 0), aligned with ``rotor_atoms``.
    reference_com : ndarray of float64, shape (n_rotors, 3)
        Rotor centres of mass [Å] of the (whole) reference structure.
    orientation_atoms : ndarray of int64, shape (n_rotors, 2)
        Atom pair (i, j) per rotor; the orientation vector is x_j − x_i.
    bonds : ndarray of int64, shape (n_bonds, 2)
        Intra-unit covalent bonds (rotors only).
    mobile : ndarray of int64, shape (n_mobile,)
        Indices of the mobile cations.
    mobile_species : str
    mobile_charge : float
        Charge of a mobile ion [e].
    framework : dict[str, ndarray]
        Non-rotor units found (name → (n_units, n_atoms_per_unit) atom indices).
    unit_specs : dict[str, UnitSpec]
    """

    n_atoms: int
    symbols: np.ndarray
    masses: np.ndarray
    rotor_id: np.ndarray
    rotor_ptr: np.ndarray
    rotor_atoms: np.ndarray
    rotor_kind: np.ndarray
    reference: np.ndarray
    reference_com: np.ndarray
    orientation_atoms: np.ndarray
    bonds: np.ndarray
    mobile: np.ndarray
    mobile_species: str
    mobile_charge: float
    framework: dict = field(default_factory=dict)
    unit_specs: dict = field(default_factory=dict)

    @property
    def n_rotors(self) -> int:
        """Number of rotors."""
        return int(len(self.rotor_ptr) - 1)

    @property
    def rotor_kinds(self) -> list:
        """Distinct rotor kinds present, in order of first appearance."""
        return list(dict.fromkeys(self.rotor_kind.tolist()))

    def rotor_members(self, r: int) -> np.ndarray:
        """Atom indices of rotor ``r``."""
        return self.rotor_atoms[self.rotor_ptr[r] : self.rotor_ptr[r + 1]]

    def rotor_mask(self, kinds=None) -> np.ndarray:
        """Boolean mask over rotors selecting the given kinds (all when None).

        Raises
        ------
        ValueError
            If a requested kind is not present in this structure.
        """
        if kinds is None:
            return np.ones(self.n_rotors, dtype=bool)
        if isinstance(kinds, str):
            kinds = [kinds]
        present = set(self.rotor_kind.tolist())
        missing = [k for k in kinds if k not in present]
        if missing:
            raise ValueError(
                f"rotor kind(s) {missing} not present; this structure has rotors "
                f"{sorted(present) or 'none'}"
            )
        return np.isin(self.rotor_kind, list(kinds))

    def whole_positions(self, positions: np.ndarray, cell: np.ndarray) -> np.ndarray:
        """Return positions with every rotor made whole (minimum image from its first atom).

        Parameters
        ----------
        positions : ndarray, shape (n_atoms, 3)
            Cartesian positions [Å].
        cell : ndarray, shape (3, 3)
            Lattice vectors as rows [Å].

        Returns
        -------
        ndarray, shape (n_atoms, 3)
            A copy in which each rotor's atoms are the nearest images of the
            rotor's first atom, chained through its bond graph.
        """
        pos = np.array(positions, dtype=float, copy=True)
        cell = np.asarray(cell, dtype=float)
        if self.n_rotors == 0:
            return pos
        bonds = np.asarray(self.bonds, dtype=np.int64).reshape(-1, 2)
        vec = _bond_vectors(pos, cell, bonds)
        adj = _adjacency(bonds)
        for r in range(self.n_rotors):
            members = self.rotor_members(r)
            pos[members] = _make_whole(pos, cell, members, adj, vec)
        return pos

    def rotor_com(self, positions: np.ndarray) -> np.ndarray:
        """Centres of mass of all rotors [Å], shape (n_rotors, 3), from whole positions."""
        out = np.empty((self.n_rotors, 3))
        for r in range(self.n_rotors):
            m = self.rotor_members(r)
            w = self.masses[m]
            out[r] = (w[:, None] * positions[m]).sum(0) / w.sum()
        return out

    def summary(self) -> str:
        """One-paragraph human-readable summary."""
        kinds = Counter(self.rotor_kind.tolist())
        fw = {k: len(v) for k, v in self.framework.items()}
        parts = [f"{self.n_atoms} atoms", f"{len(self.mobile)} mobile {self.mobile_species}"]
        parts += [f"{n} {k} rotors" for k, n in kinds.items()]
        parts += [f"{n} {k} (framework)" for k, n in fw.items()]
        return ", ".join(parts)


def _bond_vectors(pos, cell, bonds) -> dict:
    """Minimum-image vector of every bond, both directions: ``{(i, j): x_j - x_i}`` [Å]."""
    if len(bonds) == 0:
        return {}
    from rotorlab.geometry import minimum_image  # lazy: geometry's kernels import numba

    d = minimum_image(pos[bonds[:, 1]] - pos[bonds[:, 0]], cell)
    out = {}
    for (i, j), v in zip(bonds.tolist(), d):
        out[(i, j)] = v
        out[(j, i)] = -v
    return out


def _adjacency(bonds) -> dict:
    adj = {}
    for i, j in np.asarray(bonds, dtype=np.int64).reshape(-1, 2).tolist():
        adj.setdefault(i, []).append(j)
        adj.setdefault(j, []).append(i)
    return adj


def _make_whole(pos, cell, members, adj, vec):
    """Positions of one unit made whole: atoms placed along its bond graph from the first.

    ``adj`` maps atom → bonded atoms (only bonds inside the unit are followed), ``vec`` maps
    ``(i, j)`` → the minimum-image bond vector ``x_j − x_i``.
    """
    member_set = {int(i) for i in members}
    start = int(members[0])
    placed = {start: pos[start].copy()}
    stack = [start]
    while stack:
        i = stack.pop()
        for j in adj.get(i, []):
            if j in member_set and j not in placed:
                placed[j] = placed[i] + vec[(i, j)]
                stack.append(j)
    # atoms not reached through bonds (should not happen): nearest image of the start
    rest = [int(j) for j in members if int(j) not in placed]
    if rest:
        from rotorlab.geometry import minimum_image

        d = minimum_image(pos[rest] - pos[start], cell)
        for j, v in zip(rest, d):
            placed[j] = placed[start] + v
    return np.array([placed[int(j)] for j in members])


def _bond_pairs(atoms, elements: set, bond_scale: float):
    """Covalent bonds between atoms of the given elements (minimum image, PBC)."""
    from ase.neighborlist import neighbor_list

    symbols = np.array(atoms.get_chemical_symbols())
    sel = np.flatnonzero(np.isin(symbols, list(elements)))
    if len(sel) == 0:
        return sel, np.empty((0, 2), dtype=np.int64), np.empty(0)
    sub = atoms[sel]
    radii = np.array([_covalent_radius(s) for s in sub.get_chemical_symbols()])
    cutoffs = radii * bond_scale
    i, j, d = neighbor_list("ijd", sub, cutoffs.tolist(), self_interaction=False)
    keep = i < j
    # same pair may appear through several images; unique pairs
    pairs = np.unique(np.stack([sel[i[keep]], sel[j[keep]]], axis=1), axis=0)
    return sel, pairs.astype(np.int64), d


def _components(n_nodes_idx: np.ndarray, pairs: np.ndarray):
    """Connected components (lists of atom indices) of the bond graph."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    index = {int(a): k for k, a in enumerate(n_nodes_idx)}
    n = len(n_nodes_idx)
    if len(pairs):
        rows = np.array([index[int(a)] for a in pairs[:, 0]])
        cols = np.array([index[int(b)] for b in pairs[:, 1]])
    else:
        rows = cols = np.empty(0, dtype=int)
    g = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    ncomp, labels = connected_components(g, directed=False)
    comps = [n_nodes_idx[labels == c] for c in range(ncomp)]
    # deterministic order: by smallest atom index
    comps.sort(key=lambda c: int(c.min()))
    return comps


def _describe(symbols, idx) -> str:
    return ", ".join(f"{symbols[i]}{i}" for i in sorted(int(x) for x in idx))


def _orientation_pair(spec: UnitSpec, members, symbols, adj) -> tuple:
    centers = [int(i) for i in members if symbols[i] == spec.center]
    if spec.orientation == "center-ligand":
        c = centers[0]
        ligands = sorted(j for j in adj[c] if symbols[j] != spec.center)
        if not ligands:
            raise TopologyError(f"{spec.name} centre {symbols[c]}{c} has no ligand")
        return c, ligands[0]
    if spec.orientation == "center-center":
        if len(centers) < 2:
            raise TopologyError(f"{spec.name} needs two {spec.center} centres")
        return centers[0], centers[1]
    if spec.orientation == "apical":
        # apical atoms of a bicapped cage have fewer same-element neighbours
        nb = {c: sum(1 for j in adj[c] if symbols[j] == spec.center) for c in centers}
        low = min(nb.values())
        apex = sorted(c for c in centers if nb[c] == low)
        if len(apex) != 2:
            raise TopologyError(
                f"{spec.name}: expected 2 apical {spec.center} atoms, found {len(apex)} "
                f"({_describe(symbols, apex)})"
            )
        return apex[0], apex[1]
    if spec.orientation == "none":
        return int(members[0]), int(members[0])
    raise ValueError(f"unknown orientation rule {spec.orientation!r}")


def detect(
    atoms,
    units,
    *,
    mobile: str,
    mobile_charge: float = 1.0,
    rotors=None,
    bond_scale: float = 1.3,
) -> Topology:
    """Find rotor anions, framework units and mobile ions of a periodic structure.

    This is the generic detector: it knows nothing about the materials catalog. To detect
    a catalog material with its own units, mobile species and default rotors, use
    :func:`rotorlab.materials.detect`.

    Parameters
    ----------
    atoms : ase.Atoms
        Periodic structure (positions may be wrapped).
    units : sequence of UnitSpec
        Molecular units that may occur (rotor anions and framework polyhedra).
    mobile : str
        Mobile cation element (e.g. ``"Li"``).
    mobile_charge : float
        Charge of the mobile cation [e].
    rotors : list of str, optional
        Unit names treated as rotors (default: the units whose ``rotor`` flag is set).
        E.g. ``["PS4", "SnS4"]`` makes the SnS4 framework units rotors too. Every
        name must be a unit in ``units`` and occur in the structure.
    bond_scale : float
        Bond cutoff as a multiple of the sum of covalent radii.

    Returns
    -------
    Topology

    Raises
    ------
    TopologyError
        A fragment does not match any unit (the message lists its atoms), the mobile
        species is absent, or a requested rotor kind is unknown or absent.
    ValueError
        No units, or no mobile species given.
    """
    units = [] if units is None or isinstance(units, (str, bytes)) else list(units)
    if not units:
        raise ValueError("detect() needs the unit definitions (a sequence of UnitSpec); "
                         "for a catalog material use rotorlab.materials.detect(atoms)")
    if not all(isinstance(u, UnitSpec) for u in units):
        raise ValueError("units must be UnitSpec objects")
    if not mobile:
        raise ValueError("detect() needs the mobile species (`mobile=`, e.g. 'Li')")
    mobile_charge = float(mobile_charge)
    specs = {u.name: u for u in units}
    if rotors is None:
        rotors = [u.name for u in units if u.rotor]
    elif isinstance(rotors, str):
        rotors = [rotors]
    rotors = list(rotors)
    unknown = [r for r in rotors if r not in specs]
    if unknown:
        raise TopologyError(f"unknown rotor unit(s) {unknown}; known units: {sorted(specs)}")

    symbols = np.array(atoms.get_chemical_symbols())
    n = len(atoms)
    if mobile not in set(symbols.tolist()):
        raise TopologyError(f"mobile species {mobile!r} not present in {atoms.get_chemical_formula()}")
    cell = np.asarray(atoms.cell.array, dtype=float)
    if abs(np.linalg.det(cell)) < 1e-9 or not all(atoms.pbc):
        raise TopologyError("detect() needs a fully periodic structure with a 3D cell")

    # Elements that form molecular units; an element that is also the mobile
    # species is excluded (it is never part of a unit here).
    unit_elements = set().union(*(u.elements for u in units)) - {mobile}
    # Single-atom units (e.g. O in Na3OBH4) are matched atom by atom, not bonded.
    single = {next(iter(u.composition)) : u for u in units if u.n_atoms == 1}
    bonded_elements = unit_elements - set(single)
    sel, pairs, _ = _bond_pairs(atoms, bonded_elements, bond_scale)
    comps = _components(sel, pairs) if len(sel) else []
    for el, u in single.items():
        comps += [np.array([i]) for i in np.flatnonzero(symbols == el)]
    comps.sort(key=lambda c: int(c.min()))

    comp_key = {}
    for u in units:
        comp_key.setdefault(tuple(sorted(u.composition.items())), u)

    adj_all = {}
    for i, j in pairs:
        adj_all.setdefault(int(i), []).append(int(j))
        adj_all.setdefault(int(j), []).append(int(i))

    rotor_lists, rotor_kind, framework = [], [], {}
    for comp in comps:
        key = tuple(sorted(Counter(symbols[comp].tolist()).items()))
        spec = comp_key.get(key)
        if spec is None:
            found = "".join(f"{el}{k if k > 1 else ''}" for el, k in key)
            expected = ", ".join(
                "".join(f"{el}{k if k > 1 else ''}" for el, k in sorted(u.composition.items()))
                + f" ({u.name})"
                for u in units
            )
            raise TopologyError(
                f"fragment {found} matches no unit (expected one of: {expected}); "
                f"atoms: {_describe(symbols, comp)}"
            )
        members = np.sort(comp)
        if spec.name in rotors:
            rotor_lists.append(members)
            rotor_kind.append(spec.name)
        else:
            framework.setdefault(spec.name, []).append(members)

    absent = [r for r in rotors if r not in set(rotor_kind)]
    if absent:
        raise TopologyError(f"requested rotor kind(s) {absent} not found in the structure")

    masses = np.asarray(atoms.get_masses(), dtype=float)
    rotor_id = np.full(n, -1, dtype=np.int64)
    ptr = np.zeros(len(rotor_lists) + 1, dtype=np.int64)
    for r, m in enumerate(rotor_lists):
        rotor_id[m] = r
        ptr[r + 1] = ptr[r] + len(m)
    rotor_atoms = (
        np.concatenate(rotor_lists).astype(np.int64) if rotor_lists else np.empty(0, np.int64)
    )
    bonds = [
        (int(i), int(j)) for i, j in pairs if rotor_id[i] >= 0 and rotor_id[i] == rotor_id[j]
    ]
    bonds = np.array(bonds, dtype=np.int64).reshape(-1, 2)

    # reference geometry: make whole, subtract COM
    inv = np.linalg.inv(cell)
    pos = atoms.get_positions()
    vec = _bond_vectors(pos, cell, bonds)
    reference = np.empty((len(rotor_atoms), 3))
    coms = np.empty((len(rotor_lists), 3))
    orient = np.empty((len(rotor_lists), 2), dtype=np.int64)
    for r, members in enumerate(rotor_lists):
        adj = {int(i): [j for j in adj_all.get(int(i), []) if rotor_id[j] == r] for i in members}
        whole = _make_whole(pos, cell, members, adj, vec)
        w = masses[members]
        com = (w[:, None] * whole).sum(0) / w.sum()
        # put the COM inside the cell (only a choice of image)
        shift = np.floor(com @ inv) @ cell
        coms[r] = com - shift
        reference[ptr[r] : ptr[r + 1]] = whole - com
        orient[r] = _orientation_pair(specs[rotor_kind[r]], members, symbols, adj)

    return Topology(
        n_atoms=n,
        symbols=symbols,
        masses=masses,
        rotor_id=rotor_id,
        rotor_ptr=ptr,
        rotor_atoms=rotor_atoms,
        rotor_kind=np.array(rotor_kind, dtype=object).astype(str)
        if rotor_kind
        else np.empty(0, dtype="<U8"),
        reference=reference,
        reference_com=coms,
        orientation_atoms=orient,
        bonds=bonds,
        mobile=np.flatnonzero(symbols == mobile).astype(np.int64),
        mobile_species=mobile,
        mobile_charge=mobile_charge,
        framework={k: np.array(v) for k, v in framework.items()},
        unit_specs=specs,
    )
