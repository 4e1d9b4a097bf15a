"""Materials catalog, structure builders and user CIFs.

>>> from rotorlab import materials
>>> atoms = materials.get("LiBH4", size="quick")      # ASE Atoms, 192 atoms
>>> atoms.info["material"], atoms.info["supercell"], atoms.info["variant"]
('LiBH4', (2, 2, 1), 'study')
>>> [v.name for v in materials.variants("Na3OBH4")]
['study', 'study-3075', 'P-43m-9']
>>> top = materials.detect(atoms)                      # rotors of a catalog material

Every material's default structure is the reference study's own optimised geometry
(variant ``"study"``); the structures rotorlab used before are selectable variants.
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache, reduce
from math import gcd
from pathlib import Path

import numpy as np

from rotorlab._paths import structures_dir
from rotorlab.materials.catalog import (
    MATERIALS,
    TRUST_LEVELS,
    Material,
    Variant,
    catalog,
    names,
)

__all__ = ["Material", "Variant", "MATERIALS", "TRUST_LEVELS", "catalog", "names", "get",
           "from_cif", "unit_cell", "variants", "detect", "StructureError"]


class StructureError(ValueError):
    """A structure file is missing, malformed, disordered or of the wrong formula."""


def _reduced(counts: dict) -> dict:
    g = reduce(gcd, counts.values())
    return {k: v // g for k, v in sorted(counts.items())}


def _formula_str(counts: dict) -> str:
    return "".join(f"{k}{v if v != 1 else ''}" for k, v in sorted(counts.items()))


_SIZE_MSG = "size must be 'quick', 'paper' or (nx, ny, nz)"


def _parse_supercell(size, var: Variant | None) -> tuple:
    if isinstance(size, str):
        if size not in ("quick", "paper"):
            raise ValueError(f"{_SIZE_MSG}; got {size!r}")
        if var is None:
            raise ValueError("size 'quick'/'paper' needs a catalog material; give (nx, ny, nz)")
        if var.fixed:
            if size == "quick":
                raise ValueError(
                    f"variant {var.name!r} is a fixed {var.paper_atoms}-atom cell: it accepts "
                    "size 'paper' or (1, 1, 1) only; for a quick cell use the default variant")
            return (1, 1, 1)
        return tuple(var.quick_supercell if size == "quick" else var.paper_supercell)
    try:
        sc = tuple(int(x) for x in size)
    except (TypeError, ValueError):
        raise ValueError(f"{_SIZE_MSG}; got {size!r}") from None
    if len(sc) != 3 or min(sc) < 1 or any(float(x) != int(x) for x in size):
        raise ValueError(f"supercell must be three positive integers; got {size!r}")
    if var is not None and var.fixed and sc != (1, 1, 1):
        raise ValueError(f"variant {var.name!r} is a fixed {var.paper_atoms}-atom cell: it "
                         f"accepts size 'paper' or (1, 1, 1) only; got {size!r}")
    return sc


def _read_cif_checked(path: Path, occupancy: str = "refuse"):
    """Read a CIF, refusing partial occupancies with a clear message."""
    import ase.io
    from ase.io.cif import parse_cif

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"structure file not found: {path}")
    try:
        blocks = [b for b in parse_cif(str(path)) if b.has_structure()]
    except Exception as exc:  # ase raises assorted errors on malformed files
        raise StructureError(f"could not parse CIF {path}: {exc}") from exc
    if not blocks:
        raise StructureError(f"{path} contains no crystal structure (no cell and atom sites)")
    block = blocks[0]
    occ = block.get("_atom_site_occupancy")
    if occ is not None:
        occ = np.asarray([float(str(o).split("(")[0]) for o in occ])
        partial = np.flatnonzero(np.abs(occ - 1.0) > 1e-3)
        if len(partial):
            labels = block.get("_atom_site_label") or [str(i) for i in range(len(occ))]
            bad = ", ".join(f"{labels[i]} ({occ[i]:g})" for i in partial[:8])
            raise StructureError(
                f"{path.name} has partially occupied sites: {bad}"
                f"{' ...' if len(partial) > 8 else ''}. rotorlab simulates ordered cells only; "
                "order the structure first (choose one configuration of the disordered "
                "sites, e.g. with pymatgen's OrderDisorderedStructureTransformation or by "
                "hand) and pass the ordered CIF."
            )
    try:
        atoms = ase.io.read(str(path), format="cif")
    except Exception as exc:
        raise StructureError(f"could not build a structure from CIF {path}: {exc}") from exc
    if len(atoms) == 0:
        raise StructureError(f"{path} has no atoms")
    return atoms


def _check_formula(atoms, mat: Material, source) -> None:
    counts = Counter(atoms.get_chemical_symbols())
    if _reduced(dict(counts)) != _reduced(mat.formula):
        raise StructureError(
            f"{source}: composition {_formula_str(dict(counts))} does not match "
            f"{mat.name} (formula unit {_formula_str(mat.formula)})"
        )


def _finish(atoms, mat_name, supercell, source, trust):
    atoms.wrap()
    atoms.pbc = True
    atoms.info.update(
        material=mat_name,
        supercell=tuple(int(x) for x in supercell),
        source=str(source),
        trust=trust,
    )
    return atoms


def _cut_subcell(atoms, div, source, tol=1e-3):
    """The unit cell of a file that holds ``div`` copies of it, periodicity checked [Å]."""
    import ase

    div = np.asarray(div, dtype=int)
    sub = atoms.cell.array / div[:, None]
    u = atoms.get_scaled_positions(wrap=True) * div
    block = np.floor(u + 1e-6).astype(int) % div
    frac = u - np.floor(u + 1e-6)
    sym = np.array(atoms.get_chemical_symbols())
    first = np.all(block == 0, axis=1)
    if first.sum() * int(np.prod(div)) != len(atoms):
        raise StructureError(f"{source}: not {'x'.join(map(str, div))} copies of one cell "
                             "(atom counts per block differ)")
    worst = 0.0
    for key in np.ndindex(*div):
        m = np.all(block == key, axis=1)
        for i in np.flatnonzero(first):
            cand = np.flatnonzero(m & (sym == sym[i]))
            if len(cand) == 0:
                worst = np.inf
                break
            d = frac[cand] - frac[i]
            d -= np.round(d)
            worst = max(worst, float(np.linalg.norm(d @ sub, axis=1).min()))
    if worst > tol:
        raise StructureError(f"{source}: not an exact {'x'.join(map(str, div))} supercell "
                             f"(largest deviation {worst:.3g} Å > {tol} Å)")
    return ase.Atoms(sym[first].tolist(), scaled_positions=frac[first], cell=sub, pbc=True)


@lru_cache(maxsize=32)
def _read_variant(mat_name: str, var_name: str):
    mat = catalog(mat_name)
    var = mat.variant(var_name)
    path = structures_dir() / var.file
    if var.fmt == "cif":
        atoms = _read_cif_checked(path)
    else:
        import ase.io

        if not path.exists():
            raise FileNotFoundError(f"structure file not found: {path}")
        try:
            atoms = ase.io.read(str(path), format=var.fmt)
        except Exception as exc:
            raise StructureError(f"could not read {path} ({var.fmt}): {exc}") from exc
    if var.subcell is not None:
        atoms = _cut_subcell(atoms, var.subcell, path.name)
    if not var.fixed:
        _check_formula(atoms, mat, path.name)
    elif set(atoms.get_chemical_symbols()) != set(mat.formula):
        raise StructureError(f"{path.name}: elements {sorted(set(atoms.get_chemical_symbols()))} "
                             f"are not those of {mat.name}")
    if len(atoms) != var.unit_atoms:
        raise StructureError(f"{path.name}: {len(atoms)} atoms, the catalog expects "
                             f"{var.unit_atoms}")
    atoms.info.clear()
    atoms.arrays = {k: v for k, v in atoms.arrays.items() if k in ("numbers", "positions")}
    return atoms


def _finish_variant(atoms, mat, var, supercell):
    atoms = _finish(atoms, mat.name, supercell, var.file, var.trust)
    atoms.info["variant"] = var.name
    return atoms


def variants(name: str) -> list:
    """Structure variants of a material, the default (the study's geometry) first.

    Parameters
    ----------
    name : str
        Catalog name.

    Returns
    -------
    list of Variant
        Each with ``name``, ``description``, ``trust`` (and ``trust_text``), ``file``,
        ``unit_atoms``, ``quick_atoms``, ``paper_atoms`` and the sizes it accepts
        (``sizes()``).
    """
    return list(catalog(name).variants)


def unit_cell(name: str, variant: str | None = None):
    """The unit cell of a material's structure variant as ASE ``Atoms`` (no supercell).

    Parameters
    ----------
    name : str
        Catalog name, case-insensitive.
    variant : str, optional
        Structure variant (:func:`variants`); default: the study's geometry.

    Returns
    -------
    ase.Atoms
        Positions wrapped into the cell [Å]; ``atoms.info`` holds ``material``,
        ``variant``, ``supercell`` (1, 1, 1), ``source`` (file) and ``trust``.

    Raises
    ------
    KeyError
        Unknown material or variant.
    StructureError
        The file is missing, malformed or of the wrong composition.
    """
    mat = catalog(name)
    var = mat.variant(variant)
    return _finish_variant(_read_variant(mat.name, var.name).copy(), mat, var, (1, 1, 1))


def get(name: str, size="quick", variant: str | None = None):
    """Build a material's simulation cell.

    Parameters
    ----------
    name : str
        Catalog name (``rotorlab.materials.names()``), case-insensitive.
    size : {"quick", "paper"} or tuple of 3 int
        ``"quick"``: a laptop-size supercell (~90–250 atoms); ``"paper"``: the
        reference study's production cell (its atom count); or an explicit (nx, ny, nz)
        of the variant's unit cell. A fixed-cell variant (Na3OBH4 ``"study-3075"``)
        accepts ``"paper"`` or ``(1, 1, 1)`` only.
    variant : str, optional
        Structure variant (:func:`variants`); default ``"study"``, the reference study's
        own optimised geometry.

    Returns
    -------
    ase.Atoms
        Periodic cell (positions wrapped into the cell, Å). ``atoms.info`` holds
        ``material``, ``variant``, ``supercell``, ``source`` (structure file) and
        ``trust`` (the structure's trust code).

    Raises
    ------
    KeyError
        Unknown material or variant.
    StructureError
        Missing or malformed structure file.
    ValueError
        Bad ``size`` (or one the variant does not accept).
    """
    mat = catalog(name)
    var = mat.variant(variant)
    sc = _parse_supercell(size, var)
    cell = _read_variant(mat.name, var.name)
    atoms = cell.repeat(sc)
    if size == "paper" and len(atoms) != var.paper_atoms:
        raise StructureError(
            f"{mat.name} ({var.name}): paper cell {sc} gives {len(atoms)} atoms, expected "
            f"{var.paper_atoms}"
        )
    return _finish_variant(atoms, mat, var, sc)


def detect(atoms, material=None, *, rotors=None, **kw):
    """Rotors, framework units and mobile ions of a catalog material's structure.

    Looks up the material's units, mobile species and charge and default rotors, and
    calls :func:`rotorlab.topology.detect`.

    Parameters
    ----------
    atoms : ase.Atoms
        Periodic structure.
    material : str or Material, optional
        Catalog material; default ``atoms.info["material"]``.
    rotors : list of str, optional
        Units treated as rotors (default: the material's ``default_rotors``), e.g.
        ``["PS4", "SnS4"]`` for Na11Sn2PS12.
    **kw
        Passed on to :func:`rotorlab.topology.detect` (``bond_scale``; ``units``,
        ``mobile``, ``mobile_charge`` override the catalog's).

    Returns
    -------
    rotorlab.topology.Topology

    Raises
    ------
    ValueError
        No material given and none in ``atoms.info``.
    KeyError
        Unknown material.
    rotorlab.topology.TopologyError
        The structure does not decompose into the material's units.
    """
    from rotorlab.topology import detect as _detect

    if material is None:
        material = atoms.info.get("material")
    if material is None:
        raise ValueError("detect() needs a catalog material (material= or "
                         "atoms.info['material']); for other structures call "
                         "rotorlab.topology.detect(atoms, units, mobile=...)")
    mat = catalog(material)
    units = kw.pop("units", None)
    units = list(mat.units) if units is None else units
    mobile = kw.pop("mobile", None) or mat.mobile
    mobile_charge = kw.pop("mobile_charge", None)
    mobile_charge = mat.mobile_charge if mobile_charge is None else mobile_charge
    if rotors is None:
        rotors = list(mat.default_rotors)
    return _detect(atoms, units, mobile=mobile, mobile_charge=mobile_charge, rotors=rotors,
                   **kw)


def from_cif(path, material: str | None = None, size=(1, 1, 1), *, mobile: str | None = None):
    """Read a user structure (ordered CIF) and build a supercell.

    Parameters
    ----------
    path : str or Path
        CIF file. Partially occupied sites are refused with a message that says how
        to order the structure (rotorlab simulates ordered cells only).
    material : str, optional
        Catalog material this structure is a cell of (its formula is checked, and
        its units, mobile species and settings apply), e.g. ``"Na11Sn2PS12"``.
    size : {"quick", "paper"} or tuple of 3 int
        Supercell; "quick"/"paper" need ``material`` (they are the supercells of the
        material's default variant, so they give its atom counts only for a cell of the
        same size).
    mobile : str, optional
        Mobile species for a structure outside the catalog (stored in
        ``atoms.info["mobile"]``).

    Returns
    -------
    ase.Atoms

    Raises
    ------
    FileNotFoundError, StructureError, KeyError, ValueError
    """
    path = Path(path)
    atoms = _read_cif_checked(path)
    if material is not None:
        mat = catalog(material)
        _check_formula(atoms, mat, path.name)
        sc = _parse_supercell(size, mat.default_variant)
        name, trust = mat.name, "user"
    else:
        if isinstance(size, str):
            raise ValueError("size 'quick'/'paper' needs a catalog material; give (nx, ny, nz)")
        sc = _parse_supercell(size, None)
        name, trust = None, "user"
    atoms = atoms.repeat(sc)
    atoms = _finish(atoms, name, sc, path, trust)
    if name is None:
        atoms.info.pop("material")
    if mobile is not None:
        atoms.info["mobile"] = mobile
    return atoms
