"""Materials catalog: the study's structures, variants, compositions, rotors, bonds, sizes, MD."""

from collections import Counter

import numpy as np
import pytest

from rotorlab import materials
from rotorlab.geometry import min_pair_distance
from rotorlab.materials import StructureError

NAMES = ["LiBH4", "Na2B10H10", "Na3OBH4", "Li3PS4", "Na4P2S6", "Na11Sn2PS12"]

# Default (study) variant: unit-cell atoms, quick and paper supercells, paper atoms
SIZES = {
    "LiBH4": (48, (2, 2, 1), (2, 2, 4), 768),
    "Na2B10H10": (88, (2, 1, 1), (3, 2, 2), 1056),
    "Na3OBH4": (9, (3, 3, 3), (5, 5, 5), 1125),
    "Li3PS4": (32, (1, 2, 2), (3, 3, 3), 864),
    "Na4P2S6": (24, (2, 2, 2), (3, 3, 3), 648),
    "Na11Sn2PS12": (208, (1, 1, 1), (2, 2, 1), 832),
}
# Rotor kind and rotors per formula unit (default rotors); framework units per f.u.
ROTOR = {"LiBH4": ("BH4", 1), "Na2B10H10": ("B10H10", 1), "Na3OBH4": ("BH4", 1),
         "Li3PS4": ("PS4", 1), "Na4P2S6": ("P2S6", 1), "Na11Sn2PS12": ("PS4", 1)}
FRAMEWORK = {"Na3OBH4": {"O": 1}, "Na11Sn2PS12": {"SnS4": 2}}
# Bond-length windows (Å) per rotor kind, for the study's geometries (measured: LiBH4 B–H
# 1.214–1.224, Na2B10H10 B–H 1.197–1.210 and B–B 1.695–1.837, Na3OBH4 B–H 1.222, Li3PS4
# P–S 2.051–2.071, Na4P2S6 P–S 2.019–2.086 and P–P 2.252–2.274, Na11Sn2PS12 P–S
# 2.040–2.092 and Sn–S 2.384–2.470)
BONDS = {
    "LiBH4": {("B", "H"): (1.19, 1.25)},
    "Na2B10H10": {("B", "H"): (1.17, 1.24), ("B", "B"): (1.67, 1.87)},
    "Na3OBH4": {("B", "H"): (1.19, 1.25)},
    "Li3PS4": {("P", "S"): (2.02, 2.10)},
    "Na4P2S6": {("P", "S"): (1.99, 2.12), ("P", "P"): (2.22, 2.30)},
    "Na11Sn2PS12": {("P", "S"): (2.01, 2.12), ("S", "Sn"): (2.35, 2.50)},
}
# Shortest distance between atoms of different units / mobile ions (Å), lower bound
MIN_INTER = {"LiBH4": 1.8, "Na2B10H10": 2.1, "Na3OBH4": 2.2, "Li3PS4": 2.3, "Na4P2S6": 2.6,
             "Na11Sn2PS12": 2.6}


def _bond_ranges(atoms, top):
    pos = top.whole_positions(atoms.positions, atoms.cell.array)
    out = {}
    for i, j in top.bonds:
        key = tuple(sorted((top.symbols[i], top.symbols[j])))
        d = np.linalg.norm(pos[i] - pos[j])
        lo, hi = out.get(key, (np.inf, 0.0))
        out[key] = (min(lo, d), max(hi, d))
    return out


def _unit_index(top):
    uid = top.rotor_id.copy()
    k = uid.max() + 1
    for rows in top.framework.values():
        for row in rows:
            uid[row] = k
            k += 1
    return uid


def test_catalog_has_six_materials_with_study_settings():
    assert materials.names() == NAMES
    atoms = {n: materials.catalog(n).paper_atoms for n in NAMES}
    assert atoms == {"LiBH4": 768, "Na2B10H10": 1056, "Na3OBH4": 1125, "Li3PS4": 864,
                     "Na4P2S6": 648, "Na11Sn2PS12": 832}
    for n in ["LiBH4", "Na2B10H10", "Na3OBH4"]:
        assert materials.catalog(n).timestep == 0.5
        assert materials.catalog(n).study_runs["timestep"] == 0.5
    for n in ["Li3PS4", "Na4P2S6", "Na11Sn2PS12"]:
        assert materials.catalog(n).timestep == 2.0
        assert materials.catalog(n).study_runs["timestep"] == 2.0
    # Table S1 (the paper) and the repository's runs are two different sets
    mat = materials.catalog("LiBH4")
    assert mat.temperatures_table_s1 == (600, 550, 525, 500, 475, 450, 350)
    assert mat.temperatures == mat.temperatures_table_s1
    assert mat.temperatures_study_runs == {"UC": (450, 475, 500, 525, 575),
                                           "RC": (475, 500, 525, 575), "RTC": (575,)}
    assert materials.catalog("Na11Sn2PS12").temperatures_table_s1[-1] == 300
    assert len(materials.catalog("Li3PS4").temperatures_table_s1) == 9
    assert materials.catalog("Li3PS4").temperatures_study_runs["RTVC"] == (
        650, 700, 750, 800, 850, 900)
    assert materials.catalog("Na3OBH4").study_runs["replicas"]["RTVC"] == 6
    assert materials.catalog("Na3OBH4").study_runs["atoms"] == 3075
    for n in NAMES:
        mat = materials.catalog(n)
        assert (mat.thermostat, mat.thermostat_chain, mat.thermostat_tau) == ("nhc", 3, 100.0)
        assert mat.thermostat_kwargs == {"chain": 3}
        assert mat.study_runs["frame_interval"] == 400
        assert set(mat.study_runs["replicas"]) == set(mat.temperatures_study_runs)
        assert mat.variants[0].name == "study" and mat.trust == "S"


def test_thermostat_defaults_build_the_thermostat():
    from rotorlab.md.thermostats import make_thermostat

    mat = materials.catalog("Na4P2S6")
    th = make_thermostat(mat.thermostat, 700.0, mat.thermostat_tau, **mat.thermostat_kwargs)
    assert th.chain == 3 and th.tau == 100.0


@pytest.mark.parametrize("name", NAMES)
def test_study_structure_sizes_composition_rotors(name):
    mat = materials.catalog(name)
    n_unit, quick_sc, paper_sc, n_paper = SIZES[name]
    assert (mat.quick_supercell, mat.paper_supercell) == (quick_sc, paper_sc)
    unit = materials.unit_cell(name)
    assert len(unit) == n_unit and unit.info["variant"] == "study"
    assert unit.info["trust"] == "S" and unit.info["source"].startswith("study/")
    for size, sc in (("quick", quick_sc), ("paper", paper_sc)):
        atoms = materials.get(name, size)
        assert len(atoms) == n_unit * int(np.prod(sc))
        assert atoms.info["supercell"] == sc
        np.testing.assert_allclose(atoms.cell.array, unit.cell.array * np.array(sc)[:, None])
        counts = Counter(atoms.get_chemical_symbols())
        nfu = counts[mat.mobile] // mat.formula[mat.mobile]
        assert dict(counts) == {el: k * nfu for el, k in mat.formula.items()}
        top = materials.detect(atoms)
        kind, per_fu = ROTOR[name]
        assert top.rotor_kinds == [kind] and top.n_rotors == per_fu * nfu
        assert {k: len(v) for k, v in top.framework.items()} == {
            k: m * nfu for k, m in FRAMEWORK.get(name, {}).items()}
        assert len(top.mobile) == counts[mat.mobile] and top.mobile_species == mat.mobile
    assert len(atoms) == n_paper == mat.paper_atoms
    assert 85 <= len(materials.get(name, "quick")) <= 250


@pytest.mark.parametrize("name", NAMES)
def test_study_bond_lengths_and_no_overlaps(name):
    atoms = materials.get(name, "quick")
    rotors = ["PS4", "SnS4"] if name == "Na11Sn2PS12" else None
    top = materials.detect(atoms, rotors=rotors)
    ranges = _bond_ranges(atoms, top)
    assert set(ranges) == set(BONDS[name])
    for key, (lo, hi) in ranges.items():
        wlo, whi = BONDS[name][key]
        assert wlo <= lo <= hi <= whi, (name, key, lo, hi)
    # reference geometry is centred on each rotor's centre of mass
    for r in range(top.n_rotors):
        m = top.rotor_members(r)
        a = top.reference[top.rotor_ptr[r]:top.rotor_ptr[r + 1]]
        np.testing.assert_allclose((top.masses[m][:, None] * a).sum(0), 0, atol=1e-10)
    # no overlaps: the closest pair is a bond; atoms of different units stay apart
    shortest = min(lo for lo, _ in ranges.values())
    x, cell = atoms.positions, np.asarray(atoms.cell.array)
    assert min_pair_distance(x, cell, 4.0) == pytest.approx(shortest, abs=1e-9)
    from ase.neighborlist import neighbor_list

    i, j, d = neighbor_list("ijd", atoms, MIN_INTER[name] + 0.5)
    uid = _unit_index(top)
    inter = (uid[i] != uid[j]) | (uid[i] < 0)
    assert d[inter].min() > MIN_INTER[name]


def test_na11sn2ps12_paper_rotors_and_selectable_framework():
    atoms = materials.get("Na11Sn2PS12", "paper")
    assert len(atoms) == 832
    top = materials.detect(atoms)
    assert top.rotor_kinds == ["PS4"] and top.n_rotors == 32
    assert top.framework["SnS4"].shape == (64, 5)
    assert len(top.mobile) == 352
    both = materials.detect(atoms, rotors=["PS4", "SnS4"])
    assert both.n_rotors == 96 and Counter(both.rotor_kind.tolist()) == {"PS4": 32, "SnS4": 64}
    assert both.framework == {}
    # orientation vectors: centre -> ligand (Sn–S / P–S)
    i, j = both.orientation_atoms.T
    assert set(both.symbols[i]) == {"P", "Sn"} and set(both.symbols[j]) == {"S"}


def test_na3obh4_study_cell_is_exact_2x2x2_of_the_unit_cell():
    import ase.io

    from rotorlab._paths import structures_dir

    raw = ase.io.read(structures_dir() / "study" / "Na3OBH4.poscar", format="vasp")
    unit = materials.unit_cell("Na3OBH4")
    np.testing.assert_allclose(unit.cell.lengths(), [4.57] * 3, atol=1e-12)
    rebuilt = unit.repeat((2, 2, 2))
    assert Counter(rebuilt.get_chemical_symbols()) == Counter(raw.get_chemical_symbols())
    # every atom of the study's file has a same-element atom of the rebuilt cell within 1e-4 Å
    from scipy.spatial import cKDTree

    tree = cKDTree(rebuilt.get_scaled_positions() % 1.0, boxsize=1.0 + 1e-12)
    d, k = tree.query(raw.get_scaled_positions() % 1.0)
    assert (d * 9.14).max() < 1e-4
    assert (np.array(rebuilt.get_chemical_symbols())[k] == raw.get_chemical_symbols()).all()


def test_na3obh4_study_3075_vacancy_cell():
    atoms = materials.get("Na3OBH4", "paper", variant="study-3075")
    assert len(atoms) == 3075 and atoms.info["variant"] == "study-3075"
    assert Counter(atoms.get_chemical_symbols()) == {"Na": 1017, "O": 343, "B": 343, "H": 1372}
    np.testing.assert_allclose(atoms.cell.lengths(), [31.99] * 3)
    top = materials.detect(atoms)
    assert top.rotor_kinds == ["BH4"] and top.n_rotors == 343 and len(top.mobile) == 1017
    assert len(top.framework["O"]) == 343
    assert len(materials.get("Na3OBH4", (1, 1, 1), variant="study-3075")) == 3075
    for bad in ("quick", (2, 2, 2)):
        with pytest.raises(ValueError, match="fixed 3075-atom cell.*'paper' or \\(1, 1, 1\\)"):
            materials.get("Na3OBH4", bad, variant="study-3075")


ALL_VARIANTS = [(n, v.name) for n in NAMES for v in materials.variants(n)]


@pytest.mark.parametrize("name,variant", ALL_VARIANTS)
def test_every_variant_loads_and_detects(name, variant):
    mat = materials.catalog(name)
    var = mat.variant(variant)
    atoms = materials.get(name, "paper" if var.fixed else "quick", variant=variant)
    assert atoms.info["variant"] == variant and atoms.info["trust"] == var.trust
    assert len(atoms) == (var.paper_atoms if var.fixed else var.quick_atoms)
    top = materials.detect(atoms)
    assert top.rotor_kinds == [ROTOR[name][0]]
    counts = Counter(atoms.get_chemical_symbols())
    assert top.n_rotors == counts[mat.units[0].center] // mat.units[0].composition[
        mat.units[0].center]
    assert min_pair_distance(atoms.positions, np.asarray(atoms.cell.array), 3.0) > 1.0
    if not var.fixed:
        assert len(materials.get(name, "paper", variant=variant)) == var.paper_atoms


def test_variants_listing_and_describe():
    vs = materials.variants("Na3OBH4")
    assert [v.name for v in vs] == ["study", "study-3075", "P-43m-9"]
    assert vs[0].trust_text == "S: the study's own optimised geometry"
    assert (vs[0].unit_atoms, vs[0].quick_atoms, vs[0].paper_atoms) == (9, 243, 1125)
    assert vs[1].quick_atoms is None and "fixed cell" in vs[1].sizes()
    text = materials.catalog("Na3OBH4").describe()
    for v in vs:
        assert v.name in text
    assert "nhc (chain 3, tau 100 fs)" in text and "T (study runs)" in text
    # a bundled model is described with its card's error and caveats
    from rotorlab.potentials.registry import bundled

    li = materials.catalog("LiBH4").describe()
    card = bundled("LiBH4").card
    assert f"held-out force RMSE {card['force_rmse_test_meV_A']:.1f} meV/Å" in li
    assert all(c in li for c in bundled("LiBH4").caveats())
    import dataclasses

    bare = dataclasses.replace(materials.catalog("Na11Sn2PS12"), bundled_model=None)
    assert "bundled model  : none bundled" in bare.describe()
    assert [v.name for v in materials.variants("LiBH4")] == ["study", "P63mc-12", "Pnma"]
    assert [v.name for v in materials.variants("Li3PS4")] == ["study", "beta-Pnma"]
    assert "beta" in materials.catalog("Li3PS4").variant("beta-Pnma").description
    assert "alpha" in materials.catalog("Li3PS4").phase
    with pytest.raises(KeyError, match="no structure variant 'alpha'.*study, beta-Pnma"):
        materials.get("Li3PS4", variant="alpha")


def test_explicit_supercell_and_metadata():
    atoms = materials.get("Na3OBH4", (2, 1, 1), variant="P-43m-9")
    assert len(atoms) == 18
    assert atoms.info["material"] == "Na3OBH4" and atoms.info["trust"] == "M"
    np.testing.assert_allclose(atoms.cell.lengths(), [2 * 4.6146, 4.6146, 4.6146])
    atoms = materials.get("Na3OBH4", (2, 1, 1))
    assert atoms.info["trust"] == "S" and atoms.info["variant"] == "study"
    np.testing.assert_allclose(atoms.cell.lengths(), [2 * 4.57, 4.57, 4.57])


def test_old_default_structures_still_selectable():
    old = {"LiBH4": ("P63mc-12", 12), "Na2B10H10": ("I422", 88), "Na3OBH4": ("P-43m-9", 9),
           "Li3PS4": ("beta-Pnma", 32), "Na4P2S6": ("bcc-model", 24)}
    for name, (variant, n) in old.items():
        cell = materials.unit_cell(name, variant=variant)
        assert len(cell) == n and not cell.info["source"].startswith("study/")
    np.testing.assert_allclose(materials.unit_cell("LiBH4", "P63mc-12").cell.lengths(),
                               [4.27631, 4.27631, 6.94844])


def test_unknown_material_lists_known():
    with pytest.raises(KeyError, match="LiBH4"):
        materials.get("LiAlH4")


@pytest.mark.parametrize("size", ["huge", (1, 2), (0, 1, 1), (1.5, 1, 1), "x"])
def test_bad_size(size):
    with pytest.raises(ValueError, match="supercell|size"):
        materials.get("LiBH4", size)


def test_from_cif_roundtrip_and_user_material(tmp_path):
    import ase.io

    atoms = materials.get("LiBH4", (1, 1, 1))
    f = tmp_path / "mine.cif"
    ase.io.write(f, atoms)
    user = materials.from_cif(f, material="LiBH4", size=(2, 1, 1))
    assert len(user) == 96 and user.info["trust"] == "user"
    assert materials.detect(user).n_rotors == 16


def test_from_cif_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.cif"):
        materials.from_cif(tmp_path / "nope.cif")


def test_from_cif_wrong_formula(tmp_path):
    import ase.io

    f = tmp_path / "li3ps4.cif"
    ase.io.write(f, materials.get("Li3PS4", (1, 1, 1)))
    with pytest.raises(StructureError, match="does not match LiBH4"):
        materials.from_cif(f, material="LiBH4")


def test_from_cif_malformed(tmp_path):
    f = tmp_path / "bad.cif"
    f.write_text("data_x\n_cell_length_a 5.0\nloop_\n_atom_site_label\n_atom_site_fract_x\nLi1 0.1 0.2\n garbage ' \n")
    with pytest.raises(StructureError):
        materials.from_cif(f)


def test_from_cif_partial_occupancy_refused(tmp_path):
    from rotorlab._paths import structures_dir

    with pytest.raises(StructureError, match="partially occupied.*order"):
        materials.from_cif(structures_dir() / "Na3OBH4_Pm-3m_disordered.cif")
    with pytest.raises(StructureError, match="partially occupied"):
        materials.from_cif(structures_dir() / "Li3PS4_beta_Pnma_OBELiX-noisy.cif")


def test_study_files_ship_with_licence_and_provenance():
    from rotorlab._paths import structures_dir

    d = structures_dir()
    assert "MIT License" in (d / "study" / "LICENSE").read_text()
    prov = (d / "PROVENANCE.md").read_text()
    assert "80eb530" in prov
    for n in NAMES:
        for v in materials.variants(n):
            assert (d / v.file).exists(), v.file
            if v.trust == "S":
                assert v.file.split("/")[-1] in prov


# ------------------------------------------------------------------ MD smoke test

def _smoke(name, mode):
    import rotorlab

    mat = materials.catalog(name)
    temperature = min(mat.temperatures_study_runs["UC"])
    atoms = materials.get(name, "quick")
    sim = rotorlab.Simulation(atoms, "reference", mode=mode, temperature=temperature,
                              steps=200, progress=False, seed=7)
    integ = sim.integrator
    h0, x0 = integ.conserved_energy, integ.x.copy()
    sim.run()  # raises SimulationExploded on NaN, T > 5x target or atoms closer than 0.5 Å
    assert sim.step == 200
    assert np.isfinite([integ.potential_energy, integ.kinetic_energy,
                        integ.conserved_energy]).all()
    assert 0.1 * temperature < sim.temperature < 2.5 * temperature
    # the extended-system energy is conserved (|drift| well below k_B T per atom)
    assert abs(integ.conserved_energy - h0) / len(atoms) < 2e-3
    # rotors stay intact: every bond within 25 % of its reference length (thermal vibration
    # of the reference force field reaches ~13 % for B–H at these temperatures)
    top = sim.topology
    b = top.bonds
    ref = np.linalg.norm(x0[b[:, 1]] - x0[b[:, 0]], axis=1)
    now = np.linalg.norm(integ.x[b[:, 1]] - integ.x[b[:, 0]], axis=1)
    assert np.all(np.abs(now / ref - 1) < 0.25)
    if mode == "RTVC":  # rotors are fixed in space
        ra = top.rotor_atoms
        np.testing.assert_allclose(integ.x[ra], x0[ra], atol=1e-8)


@pytest.mark.parametrize("name", NAMES)
def test_md_smoke_rc_every_material(name):
    _smoke(name, "RC")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["UC", "RTC", "RTVC"])
@pytest.mark.parametrize("name", NAMES)
def test_md_smoke_every_mode(name, mode):
    _smoke(name, mode)
