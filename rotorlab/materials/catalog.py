"""The six materials of the reference study: structures, variants and MD settings.

Each :class:`Material` knows its structure variants (files under ``datasets/structures/``;
the first, ``"study"``, is the reference study's own optimised geometry and the default),
their production ("paper") and laptop ("quick") supercells, the mobile species and its
charge, the molecular units (rotor anions and framework polyhedra), the default timestep
and thermostat, the temperatures of the study (its Table S1, and those of the runs in its
public repository) and the settings of those runs.

Trust levels of a structure (``Variant.trust``):

* ``S``: the reference study's own optimised geometry (its public repository, MIT licence).
* ``A``: numbers read from a retrieved source.
* ``B``: published values transcribed and checked for crystal-chemical consistency.
* ``M``: a model built for this project (idealised and/or ML-relaxed), not experimental.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rotorlab.topology import UnitSpec

__all__ = ["Material", "Variant", "MATERIALS", "TRUST_LEVELS", "catalog", "names"]

#: Meaning of the trust codes.
TRUST_LEVELS = {
    "S": "the study's own optimised geometry",
    "A": "read from a retrieved source",
    "B": "published values transcribed",
    "M": "a model built for rotorlab",
    "user": "a user-supplied structure",
}

#: The study's repository (structures, MD inputs, models), MIT licence.
STUDY_SOURCE = "github.com/KeouLee/Analysis @ 80eb530 (MIT licence, (c) 2026 Ke Li)"


def _trust_text(code: str) -> str:
    parts = [TRUST_LEVELS.get(c, c) for c in str(code).split("+")]
    return f"{code}: " + " + ".join(parts)


@dataclass(frozen=True)
class Variant:
    """One structure of a material (a file under ``datasets/structures/``).

    Attributes
    ----------
    name : str
        Variant name (``"study"`` is the reference study's geometry).
    file : str
        Path relative to ``datasets/structures/``.
    fmt : {"vasp", "cif", "extxyz"}
        File format (as ``ase.io.read`` names it).
    description : str
        What the structure is.
    trust : str
        Trust code (see :data:`TRUST_LEVELS`).
    unit_atoms : int
        Atoms of the unit cell (after ``subcell`` reduction).
    paper_supercell, quick_supercell : tuple[int, int, int] or None
        Supercells of the unit cell; None for a fixed cell.
    paper_atoms : int
        Atoms of the "paper" cell (the study's production count).
    subcell : tuple[int, int, int] or None
        The file holds this many copies of the unit cell (e.g. (2, 2, 2)); the unit cell
        is cut out and the periodicity checked to 1e-3 Å on reading.
    fixed : bool
        A fixed simulation cell (e.g. the study's 3075-atom Na3OBH4 MD cell): accepts
        ``size="paper"`` or ``(1, 1, 1)`` only.
    """

    name: str
    file: str
    fmt: str
    description: str
    trust: str
    unit_atoms: int
    paper_supercell: tuple | None
    quick_supercell: tuple | None
    paper_atoms: int
    subcell: tuple | None = None
    fixed: bool = False

    @property
    def quick_atoms(self) -> int | None:
        """Atoms of the quick cell (None for a fixed cell)."""
        if self.quick_supercell is None:
            return None
        nx, ny, nz = self.quick_supercell
        return self.unit_atoms * nx * ny * nz

    @property
    def trust_text(self) -> str:
        """Trust code with its meaning, e.g. ``"S: the study's own optimised geometry"``."""
        return _trust_text(self.trust)

    def sizes(self) -> str:
        """Human-readable sizes this variant accepts."""
        if self.fixed:
            return f"fixed cell: size 'paper' or (1, 1, 1) -> {self.paper_atoms} atoms"
        q = "x".join(map(str, self.quick_supercell))
        p = "x".join(map(str, self.paper_supercell))
        return (f"quick {q} -> {self.quick_atoms} atoms, paper {p} -> {self.paper_atoms} "
                f"atoms, or any (nx, ny, nz) x {self.unit_atoms} atoms")

    def describe(self) -> str:
        """One line: name, atoms, sizes, trust, description."""
        return (f"{self.name}: {self.unit_atoms}-atom cell ({self.file}); {self.sizes()}; "
                f"trust {self.trust_text}. {self.description}")


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
        Phase simulated.
    variants : tuple[Variant, ...]
        Structures; the first is the default (the study's own geometry).
    mobile : str
        Mobile cation element.
    mobile_charge : float
        Its charge [e].
    units : tuple[UnitSpec, ...]
        Molecular units that occur (rotors and framework).
    default_rotors : tuple[str, ...]
        Units constrained by the modes by default.
    timestep : float
        MD timestep [fs] (the study's).
    temperatures_table_s1 : tuple[float, ...]
        Temperatures of the paper's Table S1 [K].
    temperatures_study_runs : dict[str, tuple[float, ...]]
        Temperatures [K] of the runs in the study's repository per mode (UC, RC, RTC,
        RTVC); a later revision than Table S1.
    study_runs : dict
        Settings of those runs: ``atoms``, ``timestep`` [fs], ``steps``, ``length_ns``,
        ``frame_interval`` [steps], ``replicas`` per mode, ``atoms_per_mode`` where a
        mode used another cell, ``note``.
    thermostat : str
        Default thermostat (the study's: ``"nhc"``, Nosé–Hoover chain).
    thermostat_chain : int
        Nosé–Hoover chain length (the ``chain`` argument of the NHC thermostat).
    thermostat_tau : float
        Thermostat time constant [fs].
    bundled_model : str or None
        Identifier of the bundled DeePMD model, if any.
    notes : str
        Remarks on the structures.
    """

    name: str
    formula: dict
    phase: str
    variants: tuple
    mobile: str
    mobile_charge: float
    units: tuple
    default_rotors: tuple
    timestep: float
    temperatures_table_s1: tuple
    temperatures_study_runs: dict
    study_runs: dict
    thermostat: str = "nhc"
    thermostat_chain: int = 3
    thermostat_tau: float = 100.0
    bundled_model: str | None = None
    notes: str = ""
    extra: dict = field(default_factory=dict)

    # -- the default variant, for callers that know only one structure per material ----

    @property
    def default_variant(self) -> Variant:
        return self.variants[0]

    def variant(self, name: str | None = None) -> Variant:
        """A variant by name (None: the default).

        Raises
        ------
        KeyError
            Unknown variant; the message lists the known ones.
        """
        if name is None:
            return self.variants[0]
        if isinstance(name, Variant):
            return name
        for v in self.variants:
            if v.name.lower() == str(name).lower():
                return v
        raise KeyError(f"{self.name} has no structure variant {name!r}; variants: "
                       f"{', '.join(v.name for v in self.variants)}")

    @property
    def variant_names(self) -> list:
        return [v.name for v in self.variants]

    @property
    def structure(self) -> str:
        """File of the default structure (relative to ``datasets/structures/``)."""
        return self.variants[0].file

    @property
    def trust(self) -> str:
        """Trust code of the default structure."""
        return self.variants[0].trust

    @property
    def paper_supercell(self) -> tuple:
        return self.variants[0].paper_supercell

    @property
    def paper_atoms(self) -> int:
        """Atom count of the production cell (the study's)."""
        return self.variants[0].paper_atoms

    @property
    def quick_supercell(self) -> tuple:
        return self.variants[0].quick_supercell

    @property
    def temperatures(self) -> tuple:
        """The paper's Table S1 temperatures [K] (alias of ``temperatures_table_s1``)."""
        return self.temperatures_table_s1

    @property
    def thermostat_kwargs(self) -> dict:
        """Extra arguments of the default thermostat, e.g. ``{"chain": 3}``."""
        return {"chain": self.thermostat_chain} if self.thermostat == "nhc" else {}

    @property
    def rotor_units(self) -> tuple:
        return tuple(u for u in self.units if u.name in self.default_rotors)

    @property
    def has_structure(self) -> bool:
        return bool(self.variants)

    def _model_line(self) -> str:
        """The bundled model, its held-out error against its teacher and its caveats."""
        if self.bundled_model is None:
            return "none bundled"
        try:
            from rotorlab.potentials.registry import model_info

            info = model_info(self.bundled_model)
        except (OSError, ValueError) as exc:
            return f"{self.bundled_model} (unreadable: {exc})"
        out = self.bundled_model
        f = info.card.get("force_rmse_test_meV_A")
        if isinstance(f, (int, float)):
            out += f" ({info.teacher_id} labels; held-out force RMSE {f:.1f} meV/Å)"
        cav = info.caveats()
        if cav:
            out += "\n                   caveats: " + "; ".join(cav)
        return out

    def describe(self) -> str:
        """Multi-line human-readable description."""
        runs = self.temperatures_study_runs
        lines = [
            f"{self.name} — {self.phase}",
            f"  mobile ion     : {self.mobile}{'+' if self.mobile_charge > 0 else ''}"
            f" (charge {self.mobile_charge:+g} e)",
            "  units          : "
            + ", ".join(
                f"{u.name} ({'rotor' if u.name in self.default_rotors else 'framework'}, "
                f"{u.charge:+g} e)"
                for u in self.units
            ),
            f"  timestep       : {self.timestep:g} fs",
            f"  thermostat     : {self.thermostat} (chain {self.thermostat_chain}, "
            f"tau {self.thermostat_tau:g} fs)",
            f"  T (Table S1)   : {', '.join(f'{t:g}' for t in self.temperatures_table_s1)} K",
            "  T (study runs) : "
            + "; ".join(f"{m} {', '.join(f'{t:g}' for t in ts)}" for m, ts in runs.items())
            + " K",
            f"  bundled model  : {self._model_line()}",
            "  structures     :",
        ]
        for k, v in enumerate(self.variants):
            lines.append(f"    {'*' if k == 0 else '-'} {v.describe()}")
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


def _same(temps, modes=("UC", "RC", "RTC", "RTVC")):
    return {m: tuple(temps) for m in modes}


_STUDY = "optimized_geometry/{f} of " + STUDY_SOURCE

MATERIALS: dict[str, Material] = {
    "LiBH4": Material(
        name="LiBH4",
        formula={"Li": 1, "B": 1, "H": 4},
        phase="hexagonal high-temperature phase, P6_3mc (ordered P1 approximants)",
        variants=(
            Variant("study", "study/LiBH4.poscar", "vasp",
                    _STUDY.format(f="LiBH4.poscar") + "; 48 atoms, hexagonal a 8.5365 "
                    "(2x2x1 of the HT cell), c 6.9318 Å",
                    "S", 48, (2, 2, 4), (2, 2, 1), 768),
            Variant("P63mc-12", "LiBH4_P63mc.cif", "cif",
                    "ordered 12-atom P6_3mc cell: Li/B after Soulié et al. 2002 (408 K), "
                    "H idealised (Td BH4, B–H 1.22 Å)",
                    "B+M", 12, (4, 4, 4), (3, 3, 2), 768),
            Variant("Pnma", "LiBH4_Pnma.cif", "cif",
                    "low-temperature orthorhombic Pnma phase (Soulié et al. 2002), 24 atoms; "
                    "not a phase of the study",
                    "B", 24, (2, 4, 4), (2, 2, 2), 768),
        ),
        mobile="Li",
        mobile_charge=1.0,
        units=(BH4,),
        default_rotors=("BH4",),
        timestep=0.5,
        # rotorlab's own teacher -> student model (SevenNet-0 labels, rotorlab train):
        # datasets/models/LiBH4 (card.json, README.md); trained on the study's P6_3mc cell,
        # valid for the hexagonal phase only (not the Pnma variant)
        bundled_model="LiBH4",
        temperatures_table_s1=(600, 550, 525, 500, 475, 450, 350),
        temperatures_study_runs={"UC": (450, 475, 500, 525, 575),
                                 "RC": (475, 500, 525, 575), "RTC": (575,)},
        study_runs={"atoms": 768, "timestep": 0.5, "steps": 100_000_000, "length_ns": 50.0,
                    "frame_interval": 400, "replicas": {"UC": 3, "RC": 3, "RTC": 1},
                    "note": "RC temperatures and replicas from the start/final frames in "
                            "MD_init_final_inp/LiBH4/rotc (no input files there)"},
        notes="768 atoms = 2x2x4 of the study's 48-atom cell (= 4x4x4 of the 12-atom HT cell).",
    ),
    "Na2B10H10": Material(
        name="Na2B10H10",
        formula={"Na": 2, "B": 10, "H": 10},
        phase="high-temperature fcc phase, Fm-3m (ordered P1 approximants)",
        variants=(
            Variant("study", "study/Na2B10H10.poscar", "vasp",
                    _STUDY.format(f="Na2B10H10.poscar") + "; 88 atoms, cubic a 9.87 Å, "
                    "cage centres exact fcc",
                    "S", 88, (3, 2, 2), (2, 1, 1), 1056),
            Variant("I422", "Na2B10H10_HT_ordered-approx_I422.cif", "cif",
                    "ordered I422 approximant built for rotorlab: cell from Udovic et al. "
                    "2014, all cage axes along c, Na on 8c, CHGNet-relaxed",
                    "M", 88, (3, 2, 2), (2, 1, 1), 1056),
        ),
        mobile="Na",
        mobile_charge=1.0,
        units=(B10H10,),
        default_rotors=("B10H10",),
        timestep=0.5,
        # rotorlab's own teacher -> student model (SevenNet-0 labels, rotorlab train):
        # datasets/models/Na2B10H10 (card.json, README.md). Its card's caveats: held-out
        # force RMSE 68.6 meV/Å (limit 60); a B-H bond past its cutoff in 2 frames of 20 ps.
        bundled_model="Na2B10H10",
        temperatures_table_s1=(750, 700, 650, 550, 450, 350),
        temperatures_study_runs={"UC": (525, 575, 600, 625, 675), "RC": (625, 650, 675)},
        study_runs={"atoms": 1056, "timestep": 0.5, "steps": 100_000_000, "length_ns": 50.0,
                    "frame_interval": 400, "replicas": {"UC": 3, "RC": 3}},
        notes="1056 atoms = 12 cubic cells of 88 atoms (3x2x2), as in the study's MD inputs.",
    ),
    "Na3OBH4": Material(
        name="Na3OBH4",
        formula={"Na": 3, "O": 1, "B": 1, "H": 4},
        phase="antiperovskite, Pm-3m (BH4 ordered: P-43m)",
        variants=(
            Variant("study", "study/Na3OBH4.poscar", "vasp",
                    _STUDY.format(f="Na3OBH4.poscar") + "; the file's 72-atom cubic cell "
                    "(a 9.14 Å) is an exact 2x2x2 of a 9-atom a = 4.57 Å cell (checked on "
                    "reading), which is the unit cell here",
                    "S", 9, (5, 5, 5), (3, 3, 3), 1125, subcell=(2, 2, 2)),
            Variant("study-3075", "study/Na3OBH4_7x7x7_12VNa.extxyz", "extxyz",
                    "the study's Na3OBH4 MD start: 7x7x7 of the 4.57 Å cell with 12 Na "
                    "vacancies (Na1017 O343 B343 H1372, cubic 31.99 Å, cell from its CP2K "
                    "input); not stoichiometric",
                    "S", 3075, None, None, 3075, fixed=True),
            Variant("P-43m-9", "Na3OBH4_P-43m_ordered.cif", "cif",
                    "ordered 9-atom P-43m cell built for rotorlab, a = 4.6146 Å (a CHGNet "
                    "value, not experimental)",
                    "M", 9, (5, 5, 5), (3, 3, 3), 1125),
        ),
        mobile="Na",
        mobile_charge=1.0,
        units=(BH4, O),
        default_rotors=("BH4",),
        timestep=0.5,
        # rotorlab's own teacher -> student model (SevenNet-0 labels, rotorlab train):
        # datasets/models/Na3OBH4 (card.json, README.md). Its card's caveats: UC MD at
        # 800 K in the 72-atom cell explodes after ~3 ps (a warning says so on use).
        bundled_model="Na3OBH4",
        temperatures_table_s1=(800, 550, 450),
        temperatures_study_runs={"UC": (550, 600, 700, 800), "RC": (600, 700, 800),
                                 "RTC": (700, 800), "RTVC": (700, 800)},
        study_runs={"atoms": 3075, "timestep": 0.5, "steps": 100_000_000, "length_ns": 50.0,
                    "frame_interval": 400, "replicas": {"UC": 6, "RC": 6, "RTC": 6, "RTVC": 6},
                    "variant": "study-3075",
                    "note": "the study ran the 3075-atom vacancy cell (variant 'study-3075'); "
                            "the stoichiometric paper cell has 1125 atoms (5x5x5)"},
        notes=("Stoichiometric cells have no Na vacancy; the study's MD cell (variant "
               "'study-3075') has 12 (1.2 % of the Na sites)."),
    ),
    "Li3PS4": Material(
        name="Li3PS4",
        formula={"Li": 3, "P": 1, "S": 4},
        phase="alpha-Li3PS4, Cmcm (the study's ordered 32-atom P1 cell)",
        variants=(
            Variant("study", "study/Li3PS4.poscar", "vasp",
                    _STUDY.format(f="Li3PS4.poscar") + "; alpha-Li3PS4, 32 atoms, "
                    "orthorhombic 8.6435 x 9.0462 x 8.4779 Å (P sublattice Cmcm)",
                    "S", 32, (3, 3, 3), (1, 2, 2), 864),
            Variant("beta-Pnma", "Li3PS4_beta_Pnma_ordered.cif", "cif",
                    "ordered beta-Li3PS4 (Pnma, 32 atoms; ICSD 180319 via OBELiX, Li 4c "
                    "dropped, CHGNet-relaxed): the former stand-in for alpha",
                    "A+M", 32, (3, 3, 3), (1, 2, 2), 864),
        ),
        mobile="Li",
        mobile_charge=1.0,
        units=(PS4,),
        default_rotors=("PS4",),
        timestep=2.0,
        # rotorlab's own teacher -> student model (SevenNet-0 labels, rotorlab train):
        # datasets/models/Li3PS4 (card.json, README.md)
        bundled_model="Li3PS4",
        temperatures_table_s1=(1100, 1000, 900, 800, 700, 600, 550, 500, 400),
        temperatures_study_runs=_same((650, 700, 750, 800, 850, 900)),
        study_runs={"atoms": 864, "timestep": 2.0, "steps": 25_000_000, "length_ns": 50.0,
                    "frame_interval": 400,
                    "replicas": {"UC": 3, "RC": 3, "RTC": 3, "RTVC": 3},
                    "atoms_per_mode": {"RTVC": 2048},
                    "note": "RTVC used a 2048-atom cell (4x4x4 of the 32-atom cell); the "
                            "STEPS of single inputs vary (restarted segments)"},
    ),
    "Na4P2S6": Material(
        name="Na4P2S6",
        formula={"Na": 4, "P": 2, "S": 6},
        phase="gamma-Na4P2S6 (plastic crystal), Im-3m (the study's ordered 24-atom P1 cell)",
        variants=(
            Variant("study", "study/Na4P2S6.poscar", "vasp",
                    _STUDY.format(f="Na4P2S6.poscar") + "; gamma-Na4P2S6, 24 atoms, cubic "
                    "a 8.4754 Å (P2S6 centres bcc)",
                    "S", 24, (3, 3, 3), (2, 2, 2), 648),
            Variant("bcc-model", "Na4P2S6_gamma_bcc-model.cif", "cif",
                    "model built for rotorlab (build_na4p2s6.py): bcc packing of staggered "
                    "P2S6, 8 Na on 12 tetrahedral sites, a = 8.2695 Å from a CHGNet scan",
                    "M", 24, (3, 3, 3), (2, 2, 2), 648),
        ),
        mobile="Na",
        mobile_charge=1.0,
        units=(P2S6,),
        default_rotors=("P2S6",),
        timestep=2.0,
        # rotorlab's own teacher -> student model (SevenNet-0 labels, rotorlab train):
        # datasets/models/Na4P2S6 (card.json, README.md)
        bundled_model="Na4P2S6",
        temperatures_table_s1=(1000, 950, 900, 850, 800, 750),
        temperatures_study_runs=_same((700, 800, 850, 900, 950)),
        study_runs={"atoms": 648, "timestep": 2.0, "steps": 25_000_000, "length_ns": 50.0,
                    "frame_interval": 400,
                    "replicas": {"UC": 3, "RC": 3, "RTC": 3, "RTVC": 3}},
    ),
    "Na11Sn2PS12": Material(
        name="Na11Sn2PS12",
        formula={"Na": 11, "Sn": 2, "P": 1, "S": 12},
        phase="tetragonal I4_1/acd (the study's ordered 208-atom P1 cell)",
        variants=(
            Variant("study", "study/Na11Sn2PS12.poscar", "vasp",
                    _STUDY.format(f="Na11Sn2PS12.poscar") + "; Na88 Sn16 P8 S96, "
                    "13.6148 x 13.6148 x 27.2244 Å (Sn+P sublattice I4_1/acd)",
                    "S", 208, (2, 2, 1), (1, 1, 1), 832),
        ),
        mobile="Na",
        mobile_charge=1.0,
        units=(PS4, SnS4),
        default_rotors=("PS4",),
        timestep=2.0,
        # rotorlab's own teacher -> student model (SevenNet-0 labels, rotorlab train):
        # datasets/models/Na11Sn2PS12 (card.json, README.md)
        bundled_model="Na11Sn2PS12",
        temperatures_table_s1=(1200, 1050, 900, 750, 600, 500, 400, 300),
        temperatures_study_runs=_same((600, 750, 900, 1050, 1200)),
        study_runs={"atoms": 832, "timestep": 2.0, "steps": (12_000_000, 15_000_000),
                    "length_ns": (24.0, 29.0), "frame_interval": 400,
                    "replicas": {"UC": 3, "RC": 3, "RTC": 3, "RTVC": 3},
                    "note": "steps/length as the study's README gives them (a range); the "
                            "STEPS of single inputs vary (restarted segments)"},
        notes="SnS4 is framework by default; pass rotors=['PS4', 'SnS4'] to constrain it too.",
    ),
}

def _check_catalog() -> None:
    """Catalog invariants (paper cells give the study's atom counts), checked at import."""
    for m in MATERIALS.values():
        for v in m.variants:
            if v.fixed:
                ok = v.paper_supercell is None and v.unit_atoms == v.paper_atoms
            else:
                nx, ny, nz = v.paper_supercell
                ok = v.unit_atoms * nx * ny * nz == v.paper_atoms
            if not ok:
                raise RuntimeError(f"catalog error: {m.name} variant {v.name}: paper cell "
                                   f"does not give {v.paper_atoms} atoms")
        runs = m.study_runs
        study_cell = m.variant(runs.get("variant"))
        if study_cell.paper_atoms != runs["atoms"]:
            raise RuntimeError(f"catalog error: {m.name}: the study ran {runs['atoms']} "
                               f"atoms, the catalog's cell has {study_cell.paper_atoms}")


_check_catalog()


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
