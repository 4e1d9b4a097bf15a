"""Rotor detection under PBC: whole molecules, orientation atoms, and loud failures."""

import numpy as np
import pytest
from ase import Atoms

from rotorlab import materials
from rotorlab.materials.catalog import BH4, O
from rotorlab.topology import TopologyError, UnitSpec, detect


def _bh4_box(a=8.0, shift=(0, 0, 0), cell=None):
    """One BH4 (tetrahedral, B-H 1.22 Å) straddling the corner of a cubic box, plus 1 Li."""
    d = 1.22 / np.sqrt(3)
    h = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) * d
    pos = np.vstack([[0, 0, 0], h, [a / 2, a / 2, a / 2]]) + np.asarray(shift)
    atoms = Atoms("BH4Li", positions=pos, cell=[a, a, a] if cell is None else cell, pbc=True)
    atoms.wrap()
    return atoms


def test_rotor_made_whole_across_boundary():
    atoms = _bh4_box()
    top = detect(atoms, [BH4], mobile="Li")
    assert top.n_rotors == 1 and list(top.mobile) == [5]
    ref = top.reference
    np.testing.assert_allclose(np.linalg.norm(ref[1:] - ref[0], axis=1), 1.22, atol=1e-12)
    # COM at the B (symmetric tetrahedron), inside the cell
    np.testing.assert_allclose(top.reference_com[0] % 8.0, 0.0, atol=1e-9)
    whole = top.whole_positions(atoms.positions, atoms.cell.array)
    np.testing.assert_allclose(np.linalg.norm(whole[1:5] - whole[0], axis=1), 1.22, atol=1e-12)
    i, j = top.orientation_atoms[0]
    assert atoms[i].symbol == "B" and atoms[j].symbol == "H"


def test_triclinic_cell_whole():
    atoms = _bh4_box(cell=[[7, 0, 0], [3.0, 6.5, 0], [1.5, 2.0, 6.0]])
    assert atoms.positions[1:5].max() > 5  # the rotor really straddles the boundary
    top = detect(atoms, [BH4], mobile="Li")
    np.testing.assert_allclose(np.linalg.norm(top.reference[1:] - top.reference[0], axis=1), 1.22,
                               atol=1e-12)


def test_missing_hydrogen_named():
    atoms = _bh4_box()
    del atoms[4]
    with pytest.raises(TopologyError, match=r"fragment BH3 matches no unit.*B0, H1, H2, H3"):
        detect(atoms, [BH4], mobile="Li")


def test_stray_hydrogen_named():
    atoms = _bh4_box()
    atoms.append("H")
    atoms.positions[-1] = [2.0, 2.0, 6.0]
    with pytest.raises(TopologyError, match=r"fragment H matches no unit.*H6"):
        detect(atoms, [BH4], mobile="Li")


def test_two_merged_anions():
    a = _bh4_box(a=10)
    b = _bh4_box(a=10, shift=(1.6, 0, 0))
    merged = a + b[:5]
    with pytest.raises(TopologyError, match="B2H8"):
        detect(merged, [BH4], mobile="Li")


def test_p_without_four_s():
    atoms = materials.get("Li3PS4", (1, 1, 1))
    s = [i for i, x in enumerate(atoms.get_chemical_symbols()) if x == "S"][0]
    del atoms[s]
    with pytest.raises(TopologyError, match=r"fragment PS3 matches no unit"):
        materials.detect(atoms)


def test_mobile_species_absent():
    atoms = _bh4_box()
    with pytest.raises(TopologyError, match="mobile species 'Na'"):
        detect(atoms, [BH4], mobile="Na")


def test_framework_unit_selectable_as_rotor():
    atoms = materials.get("Na3OBH4", (2, 2, 2))
    top = materials.detect(atoms)
    assert top.rotor_kinds == ["BH4"] and len(top.framework["O"]) == 8
    top2 = materials.detect(atoms, rotors=["BH4", "O"])
    assert sorted(set(top2.rotor_kind)) == ["BH4", "O"] and top2.n_rotors == 16
    with pytest.raises(ValueError, match="not present"):
        top.rotor_mask(["PS4"])


def test_unknown_rotor_unit():
    with pytest.raises(TopologyError, match="unknown rotor unit"):
        materials.detect(materials.get("LiBH4"), rotors=["PS4x"])


def test_generic_detect_needs_units_and_mobile():
    atoms = _bh4_box()
    with pytest.raises(ValueError, match="unit definitions"):
        detect(atoms, None, mobile="Li")
    with pytest.raises(ValueError, match="UnitSpec"):
        detect(atoms, ["BH4"], mobile="Li")
    with pytest.raises(ValueError, match="mobile species"):
        detect(atoms, [BH4], mobile="")
    with pytest.raises(TypeError):
        detect(atoms, [BH4])  # mobile is a required keyword
    # a requested rotor kind that does not occur is an error, not silently ignored
    with pytest.raises(TopologyError, match=r"requested rotor kind\(s\) \['O'\] not found"):
        detect(atoms, [BH4, O], mobile="Li", rotors=["BH4", "O"])
    # an absent framework-only unit is fine
    top = detect(atoms, (u for u in [BH4, O]), mobile="Li", mobile_charge=2.0)  # any iterable
    assert top.n_rotors == 1 and top.mobile_charge == 2.0 and top.framework == {}


def test_materials_detect_needs_a_material():
    atoms = _bh4_box()
    with pytest.raises(ValueError, match="catalog material"):
        materials.detect(atoms)
    top = materials.detect(atoms, "LiBH4")
    assert top.n_rotors == 1 and top.mobile_species == "Li" and top.unit_specs == {"BH4": BH4}
    with pytest.raises(KeyError, match="unknown material"):
        materials.detect(atoms, "LiAlH4")


def test_custom_unit_outside_catalog():
    """The generic detector takes any unit definitions (here an NH4-like cation unit)."""
    nh4 = UnitSpec("NH4", {"N": 1, "H": 4}, center="N", charge=+1.0)
    atoms = _bh4_box()
    atoms.symbols[0] = "N"
    top = detect(atoms, [nh4], mobile="Li")
    assert top.rotor_kinds == ["NH4"] and top.n_rotors == 1


@pytest.mark.parametrize("variant", ["study", "I422"])
def test_b10h10_apical_axis(variant):
    atoms = materials.get("Na2B10H10", (1, 1, 1), variant=variant)
    top = materials.detect(atoms)
    pos = top.whole_positions(atoms.positions, atoms.cell.array)
    i, j = top.orientation_atoms.T
    d = np.linalg.norm(pos[j] - pos[i], axis=1)
    # apical B–B distance of a B10 bicapped square antiprism (~3.7–3.8 Å)
    assert np.all((d > 3.5) & (d < 4.0))
    # the apical atoms are the two B with 4 B neighbours (the others have 5)
    for r in range(top.n_rotors):
        m = top.rotor_members(r)
        b = m[top.symbols[m] == "B"]
        nb = [(np.linalg.norm(pos[b] - pos[k], axis=1) < 2.0).sum() - 1 for k in b]
        apex = sorted(int(b[k]) for k in range(len(b)) if nb[k] == 4)
        assert apex == sorted(top.orientation_atoms[r].tolist())
    axis = (pos[j] - pos[i]) / d[:, None]
    if variant == "I422":  # the rotorlab model has every cage axis along c
        np.testing.assert_allclose(np.abs(axis[:, 2]), 1.0, atol=0.02)
    else:  # the study's cell: four parallel axes in the ab plane, ~20° from b
        np.testing.assert_allclose(np.abs(axis @ axis[0]), 1.0, atol=0.01)
        assert np.abs(axis[:, 2]).max() < 0.05


def _thio_cell():
    """A Na11Sn2PS12-like toy cell: one PS4, one SnS4 (tetrahedra) and Na, cubic 12 Å."""
    def tet(center, r):
        d = r / np.sqrt(3)
        return np.array(center) + np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) * d

    pos = np.vstack([[1.0, 1.0, 1.0], tet([1.0, 1.0, 1.0], 2.05),     # PS4 across the corner
                     [6.0, 6.0, 6.0], tet([6.0, 6.0, 6.0], 2.40),     # SnS4
                     [[3.5, 9.0, 3.0], [9.0, 3.5, 9.0], [3.0, 3.5, 9.5]]])
    atoms = Atoms("PS4SnS4Na3", positions=pos, cell=[12, 12, 12], pbc=True)
    atoms.wrap()
    return atoms


def test_sns4_framework_by_default_and_selectable():
    from rotorlab.materials import catalog

    atoms = _thio_cell()
    mat = catalog("Na11Sn2PS12")
    top = materials.detect(atoms, material=mat)
    assert top.rotor_kinds == ["PS4"] and top.n_rotors == 1
    assert top.framework["SnS4"].shape == (1, 5)
    both = materials.detect(atoms, material=mat, rotors=["PS4", "SnS4"])
    assert sorted(both.rotor_kind.tolist()) == ["PS4", "SnS4"]
    sn = [r for r in range(both.n_rotors) if both.rotor_kind[r] == "SnS4"][0]
    ref = both.reference[both.rotor_ptr[sn]:both.rotor_ptr[sn + 1]]
    sym = both.symbols[both.rotor_members(sn)]
    centre = ref[sym == "Sn"][0]
    np.testing.assert_allclose(np.linalg.norm(ref[sym == "S"] - centre, axis=1), 2.40, atol=1e-9)
    # PS4 straddles the periodic boundary and is still whole
    ps = [r for r in range(both.n_rotors) if both.rotor_kind[r] == "PS4"][0]
    ref = both.reference[both.rotor_ptr[ps]:both.rotor_ptr[ps + 1]]
    assert np.linalg.norm(ref, axis=1).max() < 2.1
