"""Pieces every CLI command shares: the size parser, structure options, potential option.

A structure is given the same way to ``run``, ``build`` and ``relax``: a catalog material
name (``LiBH4``) or a structure file as the positional argument, or ``--structure FILE``
(alias ``--cif``) with the material it is a cell of as the positional argument or
``--as-material``; ``--size``, ``--variant`` and ``--rotors`` apply to both.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["parse_size", "add_structure_args", "structure_fields", "build_structure",
           "add_potential_arg"]


def parse_size(values):
    """``None`` → ``None`` (the default); ``["quick"]``/``["paper"]``; three integers.

    Raises
    ------
    ValueError
        Anything else (the message shows what was given).
    """
    if values is None:
        return None
    if len(values) == 1 and values[0].lower() in ("quick", "paper"):
        return values[0].lower()
    if len(values) == 3:
        try:
            sc = tuple(int(v) for v in values)
        except ValueError:
            sc = None
        if sc is not None and min(sc) >= 1:
            return sc
    raise ValueError(f"--size takes quick, paper or three positive integers NX NY NZ; "
                     f"got {' '.join(values)}")


def add_structure_args(p, *, positional_required: bool = True) -> None:
    """Add the shared structure options to an argparse (sub)parser."""
    p.add_argument("material", nargs=None if positional_required else "?",
                   help="catalog material name (rotorlab materials) or a structure file")
    p.add_argument("--structure", "--cif", dest="structure", default=None, metavar="FILE",
                   help="structure file (CIF, POSCAR, extxyz ...) instead of the catalog "
                        "structure; the positional argument (or --as-material) names the "
                        "catalog material it is a cell of")
    p.add_argument("--as-material", default=None,
                   help="catalog material a structure file is a cell of")
    p.add_argument("--size", nargs="+", default=None, metavar="S",
                   help="quick | paper | NX NY NZ (default quick for catalog materials, "
                        "1 1 1 for structure files)")
    p.add_argument("--variant", default=None,
                   help="alternative catalog structure (rotorlab materials show NAME)")
    p.add_argument("--rotors", default=None,
                   help="comma-separated units treated as rotors (default the material's), "
                        "e.g. PS4,SnS4")
    p.add_argument("--max-atoms", type=int, default=None,
                   help="refuse larger systems (default 50000)")


def structure_fields(args) -> dict:
    """RunSpec fields (material, structure, size, variant, rotors) from parsed options."""
    from rotorlab import materials

    material, structure = args.material, args.structure
    as_mat = getattr(args, "as_material", None)
    if structure is None and material is not None and Path(material).suffix \
            and material not in materials.names():
        if not Path(material).exists():
            raise FileNotFoundError(f"structure file not found: {material}")
        structure, material = material, None
    if structure is not None:
        if as_mat is not None and material is not None and as_mat.lower() != material.lower():
            raise ValueError(f"two materials given for {structure}: {material} and "
                             f"--as-material {as_mat}")
        material = as_mat or material
        if not Path(structure).exists():
            raise FileNotFoundError(f"structure file not found: {structure}")
    elif material is None:
        raise ValueError("give a catalog material (rotorlab materials) or a structure file")
    rotors = None
    if getattr(args, "rotors", None):
        rotors = tuple(r for r in args.rotors.replace(" ", "").split(",") if r)
    return {"material": material, "structure": structure, "size": parse_size(args.size),
            "variant": args.variant, "rotors": rotors}


def build_structure(args):
    """``(atoms, spec_fields)`` for ``build``/``relax``: the structure the options name."""
    from rotorlab.spec import RunSpec

    fields = structure_fields(args)
    # a RunSpec validates and builds the structure exactly as a run would
    spec = RunSpec(temperature=300.0, **fields)
    return spec.build_structure(max_atoms=getattr(args, "max_atoms", None)), fields


def add_potential_arg(p) -> None:
    p.add_argument("--potential", default="reference",
                   help="reference | bundled | MODEL_ID | PATH to a DeePMD model | "
                        "PATH1,PATH2,... (ensemble: first drives, all give the model "
                        "deviation) | KIND:ARG (a registered kind, e.g. ase:MODULE:FUNC)")
    p.add_argument("--type-map", default=None, metavar="EL,EL,...",
                   help="elements of a DeePMD model's types in model order, for a model whose "
                        "own type map holds no element symbols (e.g. Li,B,H)")
