"""Structure analyses: ideal-gas g(r) = 1 (cubic and triclinic), COM, density grid, cube export."""

import numpy as np
import pytest

from analysis_synthetic import ideal_gas, make_dataset, rotor_jumps, triclinic_cell
from rotorlab.analysis import structure as st


@pytest.mark.parametrize("cell", [np.eye(3) * 15.0, triclinic_cell()], ids=["cubic", "triclinic"])
def test_ideal_gas_rdf_is_one(cell):
    ds = ideal_gas(n_a=120, n_b=90, n_frames=60, cell=cell)
    for a, b in [("Li", "Li"), ("Li", "Ar")]:
        g = st.RDF(a, b, nbins=30).compute(ds).rdf
        sel = g["r"].values > 2.0  # small shells have few counts
        assert abs(g.values[sel].mean() - 1.0) < 0.03
        assert np.all(np.abs(g.values[sel] - 1.0) < 0.25)
    assert g["r"].attrs["units"] == "Å"


def _rdf_reference(pa, pb, cell, r_max, nbins, same):
    """Brute force over all 125 images: counts ordered pairs (distinct) within r_max."""
    h = np.zeros(nbins)
    shifts = np.array([[i, j, k] for i in range(-2, 3) for j in range(-2, 3) for k in range(-2, 3)]) @ cell
    V = abs(np.linalg.det(cell))
    for i in range(len(pa)):
        for j in range(len(pb)):
            if same and i == j:
                continue
            f = (pb[j] - pa[i]) @ np.linalg.inv(cell)
            d = np.linalg.norm((f - np.floor(f)) @ cell + shifts, axis=1)
            d = d[d < r_max]
            np.add.at(h, (d / (r_max / nbins)).astype(int), V)
    return h


@pytest.mark.parametrize("seed,same", [(0, True), (1, False), (2, True), (3, False)])
def test_rdf_kernel_matches_bruteforce(seed, same):
    rng = np.random.default_rng(seed)
    cell = triclinic_cell(9, 10, 11, 60 + 5 * seed, 75, 55)
    pa = (rng.uniform(-1, 2, size=(1, 25, 3))) @ cell  # unwrapped: outside the cell
    pb = pa if same else rng.uniform(size=(1, 17, 3)) @ cell
    r_max = 0.5 * st.perpendicular_widths(cell).min() * 0.999
    h, _, _ = st.rdf_arrays(pa, pb, cell[None], r_max, 20, same)
    np.testing.assert_allclose(h, _rdf_reference(pa[0], pb[0], cell, r_max, 20, same))


def test_rdf_rejects_too_large_rmax_and_missing_species():
    ds = ideal_gas(n_frames=2)
    with pytest.raises(ValueError, match="half the smallest"):
        st.RDF("Li", r_max=10.0).compute(ds)
    with pytest.raises(ValueError, match="not present"):
        st.RDF("Na").compute(ds)


def test_rotor_com_whole_across_boundary():
    ds, _ = rotor_jumps(n_rotors=2, n_frames=5, jumps_per_rotor=(0,), box=20.0)
    pos = ds["positions"].values.copy()
    pos[:, 1] += np.array([20.0, 0, -20.0])  # one H of rotor 0 in another image
    ds["positions"] = (("frame", "atom", "xyz"), pos)
    com = st.rotor_com(ds, slice(0, 5))
    # symmetric BH4: centre of mass = B position up to the libration-induced offset
    assert np.abs(com[:, 0] - pos[:, 0]).max() < 0.1


def test_anion_free_energy_units_and_finite():
    ds, _ = rotor_jumps(n_rotors=4, n_frames=50, jumps_per_rotor=(0,), box=20.0)
    rng = np.random.default_rng(0)
    li = rng.uniform(0, 20, size=(50, 30, 3))
    pos = np.concatenate([ds["positions"].values, li], axis=1)
    spec = list(ds["species"].values) + ["Li"] * 30
    ds2 = make_dataset(pos, np.eye(3) * 20, spec, rotor_id=list(ds["rotor_id"].values) + [-1] * 30,
                       rotor_kind=["BH4"] * 4, orientation_atoms=ds["orientation_atoms"].values)
    fe = st.AnionFreeEnergy(nbins=20).compute(ds2)
    assert fe.free_energy.attrs["units"] == "eV"
    g = fe.rdf.values
    assert abs(g[g > 0][5:].mean() - 1) < 0.3  # uncorrelated Li


def test_density_grid_normalisation_and_cube_roundtrip(tmp_path):
    from ase.io.cube import read_cube_data

    ds = ideal_gas(n_a=40, n_b=10, n_frames=20, cell=triclinic_cell())
    d = st.MobileIonDensity(shape=(10, 12, 14)).compute(ds)
    V = abs(np.linalg.det(triclinic_cell()))
    assert d.density.values.sum() * V / (10 * 12 * 14) == pytest.approx(40.0)
    assert d.density.attrs["units"] == "1/Å^3"
    p = tmp_path / "li.cube"
    d.write_cube(p)
    data, atoms = read_cube_data(str(p))
    assert data.shape == (10, 12, 14)
    np.testing.assert_allclose(data, d.density.values * st.BOHR**3, rtol=1e-4, atol=1e-12)
    np.testing.assert_allclose(atoms.cell[:], triclinic_cell(), atol=1e-4)
    assert set(atoms.get_chemical_symbols()) == {"Ar"}


def test_density_profile_integrates_to_n():
    ds = ideal_gas(n_a=40, n_b=10, n_frames=20)
    prof = st.density_profile(ds, "c", nbins=25)
    assert prof.values.sum() * 15.0**3 / 25 == pytest.approx(40.0)
