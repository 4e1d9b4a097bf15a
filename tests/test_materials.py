"""Materials catalog: compositions, rotor counts, bond lengths, atom counts, bad input."""

from collections import Counter

import numpy as np
import pytest

from rotorlab import materials
from rotorlab.materials import StructureError
from rotorlab.topology import detect

WITH_STRUCTURE = [n for n in materials.names() if materials.catalog(n).has_structure]

# Expected per formula unit: rotors per formula unit and rotor bond-length windows (Å)
BONDS = {
    "LiBH4": {("B", "H"): (1.15, 1.30)},
    "Na2B10H10": {("B", "H"): (1.1, 1.3), ("B", "B"): (1.6, 1.95)},
    "Na3OBH4": {("B", "H"): (1.15, 1.30)},
    "Li3PS4": {("P", "S"): (1.98, 2.12)},
    "Na4P2S6": {("P", "S"): (1.95, 2.15), ("P", "P"): (2.1, 2.35)},
}
ROTORS_PER_FU = {"LiBH4": 1, "Na2B10H10": 1, "Na3OBH4": 1, "Li3PS4": 1, "Na4P2S6": 1}


def test_catalog_has_six_materials_with_paper_settings():
    assert materials.names() == ["LiBH4", "Na2B10H10", "Na3OBH4", "Li3PS4", "Na4P2S6", "Na11Sn2PS12"]
    atoms = {n: materials.catalog(n).paper_atoms for n in materials.names()}
    assert atoms == {"LiBH4": 768, "Na2B10H10": 1056, "Na3OBH4": 1125, "Li3PS4": 864,
                     "Na4P2S6": 648, "Na11Sn2PS12": 832}
    for n in ["LiBH4", "Na2B10H10", "Na3OBH4"]:
        assert materials.catalog(n).timestep == 0.5
    for n in ["Li3PS4", "Na4P2S6", "Na11Sn2PS12"]:
        assert materials.catalog(n).timestep == 2.0
    assert materials.catalog("LiBH4").temperatures == (600, 550, 525, 500, 475, 450, 350)
    assert materials.catalog("Na11Sn2PS12").temperatures[-1] == 300
    assert len(materials.catalog("Li3PS4").temperatures) == 9


@pytest.mark.parametrize("name", WITH_STRUCTURE)
def test_paper_supercell_atom_count_and_composition(name):
    mat = materials.catalog(name)
    atoms = materials.get(name, "paper")
    assert len(atoms) == mat.paper_atoms
    counts = Counter(atoms.get_chemical_symbols())
    nfu = counts[mat.mobile] / mat.formula[mat.mobile]
    assert nfu == int(nfu)
    assert dict(counts) == {el: int(k * nfu) for el, k in mat.formula.items()}
    top = detect(atoms)
    assert top.n_rotors == ROTORS_PER_FU[name] * nfu
    assert len(top.mobile) == counts[mat.mobile]
    assert atoms.info["supercell"] == mat.paper_supercell


@pytest.mark.parametrize("name", WITH_STRUCTURE)
def test_quick_size_and_bond_lengths(name):
    atoms = materials.get(name, "quick")
    assert 85 <= len(atoms) <= 260
    top = detect(atoms)
    pos = top.whole_positions(atoms.positions, atoms.cell.array)
    sym = top.symbols
    seen = set()
    for i, j in top.bonds:
        key = tuple(sorted((sym[i], sym[j])))
        lo, hi = BONDS[name][key]
        d = np.linalg.norm(pos[i] - pos[j])
        assert lo <= d <= hi, (name, key, d)
        seen.add(key)
    assert seen == set(BONDS[name])
    # reference geometry is centred on each rotor's centre of mass
    for r in range(top.n_rotors):
        m = top.rotor_members(r)
        a = top.reference[top.rotor_ptr[r]:top.rotor_ptr[r + 1]]
        np.testing.assert_allclose((top.masses[m][:, None] * a).sum(0), 0, atol=1e-10)


def test_explicit_supercell_and_metadata():
    atoms = materials.get("Na3OBH4", (2, 1, 1))
    assert len(atoms) == 18
    assert atoms.info["material"] == "Na3OBH4" and atoms.info["trust"] == "M"
    np.testing.assert_allclose(atoms.cell.lengths(), [2 * 4.6146, 4.6146, 4.6146])


def test_li3ps4_is_documented_beta_stand_in():
    mat = materials.catalog("Li3PS4")
    assert "STAND-IN" in mat.phase and "beta" in mat.phase


def test_na11sn2ps12_has_no_structure_and_says_so():
    mat = materials.catalog("Na11Sn2PS12")
    assert not mat.has_structure
    with pytest.raises(StructureError, match="from_cif"):
        materials.get("Na11Sn2PS12")


def test_unknown_material_lists_known():
    with pytest.raises(KeyError, match="LiBH4"):
        materials.get("LiAlH4")


@pytest.mark.parametrize("size", ["huge", (1, 2), (0, 1, 1), (1.5, 1, 1)])
def test_bad_size(size):
    with pytest.raises(ValueError, match="supercell|size"):
        materials.get("LiBH4", size)


def test_from_cif_roundtrip_and_user_material(tmp_path):
    import ase.io

    atoms = materials.get("LiBH4", (1, 1, 1))
    f = tmp_path / "mine.cif"
    ase.io.write(f, atoms)
    user = materials.from_cif(f, material="LiBH4", size=(2, 2, 1))
    assert len(user) == 48 and user.info["trust"] == "user"
    assert detect(user).n_rotors == 8


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
