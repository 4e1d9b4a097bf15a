"""Materials catalog, structure builders and user CIFs.

>>> from rotorlab import materials
>>> atoms = materials.get("LiBH4", size="quick")      # ASE Atoms, 216 atoms
>>> atoms.info["material"], atoms.info["supercell"]
('LiBH4', (3, 3, 2))
"""

from __future__ import annotations

from collections import Counter
from functools import reduce
from math import gcd
from pathlib import Path

import numpy as np

from rotorlab._paths import structures_dir
from rotorlab.materials.catalog import MATERIALS, Material, catalog, names

__all__ = ["Material", "MATERIALS", "catalog", "names", "get", "from_cif", "unit_cell",
           "StructureError"]


class StructureError(ValueError):
    """A structure file is missing, malformed, disordered or of the wrong formula."""


def _reduced(counts: dict) -> dict:
    g = reduce(gcd, counts.values())
    return {k: v // g for k, v in sorted(counts.items())}


def _formula_str(counts: dict) -> str:
    return "".join(f"{k}{v if v != 1 else ''}" for k, v in sorted(counts.items()))


def _parse_supercell(size, mat: Material) -> tuple:
    if isinstance(size, str):
        if size == "quick":
            return tuple(mat.quick_supercell)
        if size == "paper":
            return tuple(mat.paper_supercell)
        raise ValueError(f"size must be 'quick', 'paper' or (nx, ny, nz); got {size!r}")
    try:
        sc = tuple(int(x) for x in size)
    except TypeError:
        raise ValueError(f"size must be 'quick', 'paper' or (nx, ny, nz); got {size!r}") from None
    if len(sc) != 3 or min(sc) < 1 or any(float(x) != int(x) for x in size):
        raise ValueError(f"supercell must be three positive integers; got {size!r}")
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


def unit_cell(name: str):
    """The catalog structure of a material as ASE ``Atoms`` (no supercell).

    Raises
    ------
    KeyError
        Unknown material.
    StructureError
        The material has no bundled structure (e.g. Na11Sn2PS12): the message
        says what is missing and how to supply a CIF.
    """
    mat = catalog(name)
    if not mat.has_structure:
        raise StructureError(
            f"{mat.name}: no structure is bundled. {mat.notes}"
        )
    path = structures_dir() / mat.structure
    atoms = _read_cif_checked(path)
    _check_formula(atoms, mat, path.name)
    return _finish(atoms, mat.name, (1, 1, 1), path.name, mat.trust)


def get(name: str, size="quick"):
    """Build a material's simulation cell.

    Parameters
    ----------
    name : str
        Catalog name (``rotorlab.materials.names()``), case-insensitive.
    size : {"quick", "paper"} or tuple of 3 int
        ``"quick"``: a laptop-size supercell (~90–250 atoms); ``"paper"``: the
        reference study's production supercell; or an explicit (nx, ny, nz).

    Returns
    -------
    ase.Atoms
        Periodic supercell (positions wrapped into the cell, Å). ``atoms.info``
        holds ``material``, ``supercell``, ``source`` (structure file) and
        ``trust`` (the structure's trust level).

    Raises
    ------
    KeyError
        Unknown material.
    StructureError
        No bundled structure (Na11Sn2PS12); use :func:`from_cif`.
    ValueError
        Bad ``size``.
    """
    mat = catalog(name)
    sc = _parse_supercell(size, mat)
    cell = unit_cell(mat.name)
    atoms = cell.repeat(sc)
    if size == "paper" and len(atoms) != mat.paper_atoms:
        raise StructureError(
            f"{mat.name}: paper supercell {sc} gives {len(atoms)} atoms, expected {mat.paper_atoms}"
        )
    return _finish(atoms, mat.name, sc, cell.info["source"], mat.trust)


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
        Supercell; "quick"/"paper" need ``material``.
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
        sc = _parse_supercell(size, mat)
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
