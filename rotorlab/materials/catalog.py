"""The six materials of the reference study with their MD settings (its Table S1).

Each :class:`Material` knows its structure file (under ``datasets/structures/``),
its production ("paper") and laptop ("quick") supercells, the mobile species and
its charge, the molecular units (rotor anions and framework polyhedra), the default
timestep and temperatures, and how far to trust the structure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rotorlab.topology import UnitSpec

__all__ = ["Material", "MATERIALS", "catalog", "names"]


@dataclass(frozen=True)
class Material:
    """A catalog entry.

    Attributes
    ----------
    name : str
        Catalog name (chemical formula as used in the reference study).
    formula : dict[str, int]
        Formula unit (element → count).
    phase : str
        Phase simulated (and, where a stand-in is used, what it stands in for).
    structure : str or None
        File name under ``datasets/structures/``; None when no structure exists.
    trust : str
        Trust level of the structure (A: read from a retrieved source; B: published
        values transcribed; M: a model built for this project; combinations).
    paper_supercell : tuple[int, int, int]
        Supercell of the reference study's production runs.
    paper_atoms : int
        Atom count of the production supercell (the study's Table S1).
    quick_supercell : tuple[int, int, int]
        Small supercell (~90–250 atoms) for laptops, demos and tests.
    mobile : str
        Mobile cation element.
    mobile_charge : float
        Its charge [e].
    units : tuple[UnitSpec, ...]
        Molecular units that occur (rotors and framework).
    default_rotors : tuple[str, ...]
        Units constrained by the modes by default.
    timestep : float
        MD timestep [fs].
    temperatures : tuple[float, ...]
        Temperatures of the reference study [K].
    bundled_model : str or None
        Identifier of the bundled DeePMD model, if any.
    notes : str
        What the structure is and what is missing.
    """

    name: str
    formula: dict
    phase: str
    structure: str | None
    trust: str
    paper_supercell: tuple
    paper_atoms: int
    quick_supercell: tuple
    mobile: str
    mobile_charge: float
    units: tuple
    default_rotors: tuple
    timestep: float
    temperatures: tuple
    bundled_model: str | None = None
    notes: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def rotor_units(self) -> tuple:
        return tuple(u for u in self.units if u.name in self.default_rotors)

    @property
    def has_structure(self) -> bool:
        return self.structure is not None

    def describe(self) -> str:
        """Multi-line human-readable description."""
        lines = [
            f"{self.name} — {self.phase}",
            f"  structure      : {self.structure or 'NONE (supply a CIF: rotorlab.materials.from_cif)'}"
            + (f"  [trust {self.trust}]" if self.structure else ""),
            f"  paper supercell: {'x'.join(map(str, self.paper_supercell))} -> {self.paper_atoms} atoms",
            f"  quick supercell: {'x'.join(map(str, self.quick_supercell))}",
            f"  mobile ion     : {self.mobile}{'+' if self.mobile_charge > 0 else ''}"
            f" (charge {self.mobile_charge:+g} e)",
            "  units          : "
            + ", ".join(
                f"{u.name} ({'rotor' if u.name in self.default_rotors else 'framework'}, "
                f"{u.charge:+g} e)"
                for u in self.units
            ),
            f"  timestep       : {self.timestep:g} fs",
            f"  temperatures   : {', '.join(f'{t:g}' for t in self.temperatures)} K",
            f"  bundled model  : {self.bundled_model or 'none bundled'}",
        ]
        if self.notes:
            lines.append(f"  notes          : {self.notes}")
        return "\n".join(lines)


BH4 = UnitSpec("BH4", {"B": 1, "H": 4}, center="B", orientation="center-ligand", charge=-1.0)
B10H10 = UnitSpec("B10H10", {"B": 10, "H": 10}, center="B", orientation="apical", charge=-2.0)
PS4 = UnitSpec("PS4", {"P": 1, "S": 4}, center="P", orientation="center-ligand", charge=-3.0)
P2S6 = UnitSpec("P2S6", {"P": 2, "S": 6}, center="P", orientation="center-center", charge=-4.0)
SnS4 = UnitSpec("SnS4", {"Sn": 1, "S": 4}, center="Sn", orientation="center-ligand",
                rotor=False, charge=-4.0)
O = UnitSpec("O", {"O": 1}, center="O", orientation="none", rotor=False, charge=-2.0)

MATERIALS: dict[str, Material] = {
    "LiBH4": Material(
        name="LiBH4",
        formula={"Li": 1, "B": 1, "H": 4},
        phase="hexagonal high-temperature phase, P6_3mc (ordered, 12-atom cell)",
        structure="LiBH4_P63mc.cif",
        trust="B+M",
        paper_supercell=(4, 4, 4),
        paper_atoms=768,
        quick_supercell=(3, 3, 2),
        mobile="Li",
        mobile_charge=1.0,
        units=(BH4,),
        default_rotors=("BH4",),
        timestep=0.5,
        temperatures=(600, 550, 525, 500, 475, 450, 350),
        notes="Li/B sites after Soulié et al. 2002 (408 K); H idealised (Td BH4, B–H 1.22 Å).",
    ),
    "Na2B10H10": Material(
        name="Na2B10H10",
        formula={"Na": 2, "B": 10, "H": 10},
        phase="ordered approximant (I422, 88-atom cubic frame) of the HT fcc phase",
        structure="Na2B10H10_HT_ordered-approx_I422.cif",
        trust="M",
        paper_supercell=(3, 2, 2),
        paper_atoms=1056,
        quick_supercell=(2, 1, 1),
        mobile="Na",
        mobile_charge=1.0,
        units=(B10H10,),
        default_rotors=("B10H10",),
        timestep=0.5,
        temperatures=(750, 700, 650, 550, 450, 350),
        notes=(
            "1056 atoms = 12 cubic cells of 88 atoms (3x2x2); the study's table says 3x3x3, "
            "which does not match its own atom count. Cell from Udovic et al. 2014; anion "
            "orientations and Na sites are a CHGNet-relaxed model."
        ),
    ),
    "Na3OBH4": Material(
        name="Na3OBH4",
        formula={"Na": 3, "O": 1, "B": 1, "H": 4},
        phase="antiperovskite, ordered P-43m approximant of Pm-3m",
        structure="Na3OBH4_P-43m_ordered.cif",
        trust="M",
        paper_supercell=(5, 5, 5),
        paper_atoms=1125,
        quick_supercell=(3, 3, 3),
        mobile="Na",
        mobile_charge=1.0,
        units=(BH4, O),
        default_rotors=("BH4",),
        timestep=0.5,
        temperatures=(800, 550, 450),
        notes="Lattice constant a=4.6146 Å is a CHGNet value, not experimental.",
    ),
    "Li3PS4": Material(
        name="Li3PS4",
        formula={"Li": 3, "P": 1, "S": 4},
        phase="alpha-Li3PS4 requested; STAND-IN: ordered beta-Li3PS4 (Pnma, 32 atoms)",
        structure="Li3PS4_beta_Pnma_ordered.cif",
        trust="A+M",
        paper_supercell=(3, 3, 3),
        paper_atoms=864,
        quick_supercell=(1, 2, 2),
        mobile="Li",
        mobile_charge=1.0,
        units=(PS4,),
        default_rotors=("PS4",),
        timestep=2.0,
        temperatures=(1100, 1000, 900, 800, 700, 600, 550, 500, 400),
        notes=(
            "No alpha-Li3PS4 coordinates are available; the ordered beta cell (from ICSD "
            "180319 via OBELiX, Li 4c dropped, CHGNet-relaxed) stands in for it."
        ),
    ),
    "Na4P2S6": Material(
        name="Na4P2S6",
        formula={"Na": 4, "P": 2, "S": 6},
        phase="gamma-Na4P2S6 (plastic crystal): MODEL bcc packing of staggered P2S6, Z=2",
        structure="Na4P2S6_gamma_bcc-model.cif",
        trust="M",
        paper_supercell=(3, 3, 3),
        paper_atoms=648,
        quick_supercell=(2, 2, 2),
        mobile="Na",
        mobile_charge=1.0,
        units=(P2S6,),
        default_rotors=("P2S6",),
        timestep=2.0,
        temperatures=(1000, 950, 900, 850, 800, 750),
        notes=(
            "No published coordinates were available; built for rotorlab (see "
            "datasets/structures/build_na4p2s6.py): 8 Na on 12 tetrahedral interstitials "
            "in the lowest-energy ordered arrangement, a from a CHGNet volume scan."
        ),
    ),
    "Na11Sn2PS12": Material(
        name="Na11Sn2PS12",
        formula={"Na": 11, "Sn": 2, "P": 1, "S": 12},
        phase="tetragonal I4_1/acd (ordered 208-atom cell in the reference study)",
        structure=None,
        trust="-",
        paper_supercell=(2, 2, 1),
        paper_atoms=832,
        quick_supercell=(1, 1, 1),
        mobile="Na",
        mobile_charge=1.0,
        units=(PS4, SnS4),
        default_rotors=("PS4",),
        timestep=2.0,
        temperatures=(1200, 1050, 900, 750, 600, 500, 400, 300),
        notes=(
            "No coordinates are available to rotorlab (Zhang et al., EES 11 (2018) 87; "
            "Duchardt et al., Angew. Chem. 2018). Supply an ordered CIF "
            "(208 atoms: Na88 Sn16 P8 S96) with rotorlab.materials.from_cif(path, "
            "material='Na11Sn2PS12'). SnS4 is framework by default; pass rotors=['PS4','SnS4'] "
            "to constrain it too."
        ),
    ),
}


def names() -> list[str]:
    """Names of the catalog materials."""
    return list(MATERIALS)


def catalog(name: str) -> Material:
    """Look up a material by name (case-insensitive).

    Raises
    ------
    KeyError
        Unknown name; the message lists the known ones.
    """
    if isinstance(name, Material):
        return name
    for key, mat in MATERIALS.items():
        if key.lower() == str(name).lower():
            return mat
    raise KeyError(f"unknown material {name!r}; known materials: {', '.join(MATERIALS)}")
