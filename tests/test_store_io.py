"""Import/export of trajectories: AMBER netCDF, extxyz, and ASE-readable formats with
unwrapping across periodic boundaries in triclinic cells."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.geometry import cell_to_cellpar, cellpar_to_cell
from scipy.io import netcdf_file

import ase.io
from rotorlab.store import TrajectoryStore, export_extxyz, export_netcdf, import_trajectory
from rotorlab.store.io import AMBER_VELOCITY_SCALE, unwrap_positions

# LAMMPS-orientation triclinic cell: a along x, b in the xy plane
LX, LY, LZ, XY, XZ, YZ = 10.0, 9.0, 11.0, 2.5, -1.5, 1.0
TRICLINIC = np.array([[LX, 0, 0], [XY, LY, 0], [XZ, YZ, LZ]])
SYMBOLS = ["Li", "Li", "B", "H", "S"]


def true_trajectory(n_frames=40, cell=TRICLINIC, seed=0):
    """Unwrapped positions (n, 5, 3) with atom 0 running through several faces."""
    rng = np.random.default_rng(seed)
    start = np.array([[0.3, 0.2, 0.95], [0.5, 0.5, 0.5], [0.1, 0.8, 0.3],
                      [0.7, 0.1, 0.6], [0.9, 0.9, 0.05]]) @ cell
    vel = rng.normal(size=(5, 3)) * 0.05
    vel[0] = [-0.45, 0.3, 0.5]  # Å/frame: crosses x-, y- and z-faces over the run
    steps = vel[None] * np.arange(n_frames)[:, None, None]
    jitter = rng.normal(size=(n_frames, 5, 3)) * 0.02
    jitter[0] = 0
    return start[None] + steps + jitter


def wrap(pos, cell):
    frac = np.linalg.solve(cell.T, pos.reshape(-1, 3).T).T
    frac -= np.floor(frac)
    return (frac @ cell).reshape(pos.shape)


def test_unwrap_positions_triclinic_matches_truth():
    truth = true_trajectory()
    cells = np.repeat(TRICLINIC[None], len(truth), 0)
    w = np.array([wrap(p, TRICLINIC) for p in truth])
    assert np.abs(w - truth).max() > 5  # the test trajectory does cross boundaries
    np.testing.assert_allclose(unwrap_positions(w, cells), truth, atol=1e-10)
    np.testing.assert_allclose(unwrap_positions(truth, cells), truth, atol=1e-10)


# --------------------------------------------------------------------- store fixture
def make_store(path, n=12, cell=TRICLINIC, chunk=5, scale_cell=True):
    truth = true_trajectory(n, cell)
    rng = np.random.default_rng(3)
    vel = rng.normal(size=truth.shape) * 0.01  # Å/fs
    st = TrajectoryStore.create(path, species=SYMBOLS, masses=[6.94, 6.94, 10.81, 1.008, 32.06],
                                rotor_id=[-1, -1, 0, 0, -1], rotor_kind=["BH"],
                                orientation_atoms=[[2, 3]], forces=True,
                                attrs={"material": "LiBH4", "constraint_mode": "UC",
                                       "timestep": 0.5}, chunk_frames=chunk)
    fr = {"positions": truth, "velocities": vel, "forces": rng.normal(size=truth.shape),
          "cell": np.repeat(cell[None], n, 0)
          * (1 + (1e-3 if scale_cell else 0.0) * np.arange(n))[:, None, None],
          "time": np.arange(n) * 0.01, "step": np.arange(n) * 20,
          "potential_energy": -50 + 0.01 * np.arange(n), "kinetic_energy": np.full(n, 0.3),
          "conserved_energy": np.full(n, -49.7), "temperature": 300 + np.arange(n) * 1.0}
    st.append(fr)
    st.flush()
    return st, fr


# --------------------------------------------------------------------------- netCDF
def _read_nc(path):
    with netcdf_file(str(path), "r", mmap=False) as f:
        out = {k: v.data.copy() for k, v in f.variables.items()}
        attrs = {k: v for k, v in f._attributes.items()}
        vattrs = {k: dict(v._attributes) for k, v in f.variables.items()}
        dims = dict(f.dimensions)
    return out, attrs, vattrs, dims


def test_export_netcdf_amber_convention(tmp_path):
    st, fr = make_store(tmp_path / "r.zarr")
    out = export_netcdf(st, tmp_path / "t.nc")
    assert out.read_bytes()[:4] == b"CDF\x02"  # netCDF3 64-bit offset
    v, attrs, va, dims = _read_nc(out)
    assert attrs["Conventions"] == b"AMBER" and attrs["ConventionVersion"] == b"1.0"
    assert attrs["rotorlab_positions"] == b"unwrapped"
    assert dims["frame"] is None and dims["atom"] == 5 and dims["label"] == 5
    assert v["coordinates"].dtype == np.dtype(">f4") and v["coordinates"].shape == (12, 5, 3)
    assert va["coordinates"]["units"] == b"angstrom"
    assert va["time"]["units"] == b"picosecond"
    assert va["cell_angles"]["units"] == b"degree"
    assert va["velocities"]["units"] == b"angstrom/picosecond"
    assert np.isclose(va["velocities"]["scale_factor"], 20.455)
    assert b"".join(v["spatial"]) == b"xyz" and b"".join(v["cell_spatial"]) == b"abc"
    assert [b"".join(r) for r in v["cell_angular"]] == [b"alpha", b"beta ", b"gamma"]
    np.testing.assert_allclose(v["time"], fr["time"], rtol=1e-6)
    for i in range(12):
        par = cell_to_cellpar(fr["cell"][i])
        np.testing.assert_allclose(v["cell_lengths"][i], par[:3], rtol=1e-12)
        np.testing.assert_allclose(v["cell_angles"][i], par[3:], rtol=1e-12)
    # the LAMMPS-orientation cell is already AMBER's standard frame: no rotation
    np.testing.assert_allclose(v["coordinates"], fr["positions"], atol=2e-5)
    vel_ps = v["velocities"] * va["velocities"]["scale_factor"]
    np.testing.assert_allclose(vel_ps, fr["velocities"] * 1000.0, rtol=1e-5, atol=1e-6)


def test_export_netcdf_rotates_general_cell_preserving_fractions(tmp_path):
    from scipy.spatial.transform import Rotation

    rot = Rotation.from_euler("zyx", [30, 20, 10], degrees=True).as_matrix()
    cell = TRICLINIC @ rot.T  # same lattice, arbitrary orientation
    st, fr = make_store(tmp_path / "r.zarr", cell=cell)
    v, *_ = _read_nc(export_netcdf(st, tmp_path / "t.nc"))
    for i in (0, 7):
        std = cellpar_to_cell(np.r_[v["cell_lengths"][i], v["cell_angles"][i]])
        frac_nc = np.linalg.solve(std.T, v["coordinates"][i].astype(float).T).T
        frac_st = np.linalg.solve(fr["cell"][i].T, fr["positions"][i].T).T
        np.testing.assert_allclose(frac_nc, frac_st, atol=3e-6)
        # velocities are rotated too: speeds are unchanged
        sp = np.linalg.norm(v["velocities"][i] * AMBER_VELOCITY_SCALE, axis=1)
        np.testing.assert_allclose(sp, np.linalg.norm(fr["velocities"][i], axis=1) * 1000,
                                   rtol=1e-5)
    w, attrs, *_ = _read_nc(export_netcdf(st, tmp_path / "w.nc", wrap=True, frames=slice(2, 6)))
    assert attrs["rotorlab_positions"] == b"wrapped" and w["coordinates"].shape[0] == 4
    std = cellpar_to_cell(np.r_[w["cell_lengths"][0], w["cell_angles"][0]])
    frac = np.linalg.solve(std.T, w["coordinates"][0].astype(float).T).T
    assert frac.min() >= -1e-6 and frac.max() < 1 + 1e-6


def test_export_netcdf_read_by_mdanalysis(tmp_path):
    mda_trj = pytest.importorskip("MDAnalysis.coordinates.TRJ")
    st, fr = make_store(tmp_path / "r.zarr")
    path = export_netcdf(st, tmp_path / "t.nc")
    r = mda_trj.NCDFReader(str(path))
    try:
        assert r.n_frames == 12 and r.n_atoms == 5
        for i, ts in enumerate(r):
            np.testing.assert_allclose(ts.positions, fr["positions"][i], atol=2e-5)
            np.testing.assert_allclose(ts.dimensions, cell_to_cellpar(fr["cell"][i]), rtol=1e-5)
            np.testing.assert_allclose(ts.velocities, fr["velocities"][i] * 1000, rtol=1e-4,
                                       atol=1e-5)  # MDAnalysis: Å/ps
            assert np.isclose(ts.time, fr["time"][i], atol=1e-6)
    finally:
        r.close()


# --------------------------------------------------------------------------- extxyz
def test_extxyz_export_import_roundtrip(tmp_path):
    st, fr = make_store(tmp_path / "r.zarr")
    path = export_extxyz(st, tmp_path / "t.extxyz")
    images = ase.io.read(path, ":")
    assert len(images) == 12 and images[0].get_chemical_symbols() == SYMBOLS
    assert images[3].info["step"] == 60 and images[3].get_potential_energy() == pytest.approx(
        fr["potential_energy"][3])
    st2 = import_trajectory(path, store_path=tmp_path / "i.zarr")  # no timestep needed
    ds = st2.to_xarray()
    np.testing.assert_allclose(ds["positions"].values, fr["positions"], atol=1e-7)
    np.testing.assert_allclose(ds["cell"].values, fr["cell"], atol=1e-7)
    np.testing.assert_allclose(ds["velocities"].values, fr["velocities"], atol=1e-9)
    np.testing.assert_allclose(ds["forces"].values, fr["forces"], atol=1e-7)
    np.testing.assert_allclose(ds["time"].values, fr["time"], atol=1e-12)
    np.testing.assert_array_equal(ds["step"].values, fr["step"])
    for k in ("potential_energy", "kinetic_energy", "conserved_energy", "temperature"):
        np.testing.assert_allclose(ds[k].values, fr[k], rtol=1e-10, err_msg=k)
    assert ds.attrs["timestep"] == pytest.approx(0.5)
    assert list(ds["species"].values) == SYMBOLS
    # wrapped export re-imports to the same unwrapped trajectory (fixed cell: with a
    # changing cell, wrapped coordinates do not determine the fixture's unwrapped ones)
    st, fr = make_store(tmp_path / "c.zarr", scale_cell=False)
    export_extxyz(st, tmp_path / "w.extxyz", wrap=True)
    ds3 = import_trajectory(tmp_path / "w.extxyz", store_path=tmp_path / "w.zarr").to_xarray()
    in_file = np.array([a.positions for a in ase.io.read(tmp_path / "w.extxyz", ":")])
    assert np.abs(in_file - fr["positions"]).max() > 1  # the file really is wrapped
    shift = fr["positions"][0] - ds3["positions"].values[0]  # frame 0 is wrapped
    np.testing.assert_allclose(ds3["positions"].values + shift, fr["positions"], atol=1e-7)


def test_import_extxyz_wrapped_triclinic_boundary_crossing(tmp_path):
    truth = true_trajectory()
    images = [Atoms(SYMBOLS, positions=wrap(p, TRICLINIC), cell=TRICLINIC, pbc=True)
              for p in truth]
    ase.io.write(tmp_path / "w.xyz", images, format="extxyz")
    with pytest.raises(ValueError, match="timestep_fs"):
        import_trajectory(tmp_path / "w.xyz", store_path=tmp_path / "x.zarr")
    st = import_trajectory(tmp_path / "w.xyz", "extxyz", store_path=tmp_path / "s.zarr",
                           material="toy", timestep_fs=0.5, frame_stride=10, chunk_frames=7)
    ds = st.to_xarray()
    assert ds.sizes["frame"] == 40
    np.testing.assert_allclose(ds["positions"].values, truth, atol=1e-7)
    np.testing.assert_allclose(ds["cell"].values[5], TRICLINIC, atol=1e-12)
    np.testing.assert_allclose(ds["time"].values, np.arange(40) * 10 * 0.5 / 1000)
    np.testing.assert_array_equal(ds["step"].values, np.arange(40) * 10)
    assert np.all(np.isnan(ds["potential_energy"].values))
    assert "velocities" not in ds
    assert np.all(ds["rotor_id"].values == -1)
    assert ds.attrs["material"] == "toy" and ds.attrs["timestep"] == 0.5
    # index selects file frames; steps follow the file's frame numbers
    st = import_trajectory(tmp_path / "w.xyz", "extxyz", store_path=tmp_path / "t.zarr",
                           timestep_fs=2.0, index="10::3")
    ds = st.to_xarray()
    np.testing.assert_array_equal(ds["step"].values, np.arange(10, 40, 3))
    np.testing.assert_allclose(ds["positions"].values - ds["positions"].values[0],
                               truth[10::3] - truth[10], atol=1e-7)


def _lammps_dump(path, truth, vel_ps, steps, wrap_pos=True):
    xlo_b = min(0.0, XY, XZ, XY + XZ)
    xhi_b = LX + max(0.0, XY, XZ, XY + XZ)
    ylo_b, yhi_b = min(0.0, YZ), LY + max(0.0, YZ)
    type_of = {"Li": 1, "B": 2, "H": 3, "S": 4}
    lines = []
    for pos, v, step in zip(truth, vel_ps, steps):
        p = wrap(pos, TRICLINIC) if wrap_pos else pos
        lines += ["ITEM: TIMESTEP", str(step), "ITEM: NUMBER OF ATOMS", str(len(p)),
                  "ITEM: BOX BOUNDS xy xz yz pp pp pp",
                  f"{xlo_b:.10f} {xhi_b:.10f} {XY:.10f}", f"{ylo_b:.10f} {yhi_b:.10f} {XZ:.10f}",
                  f"0.0 {LZ:.10f} {YZ:.10f}", "ITEM: ATOMS id type x y z vx vy vz"]
        # atoms listed in scrambled id order: the reader must sort them
        for i in [3, 0, 4, 2, 1]:
            lines.append(f"{i + 1} {type_of[SYMBOLS[i]]} " + " ".join(f"{x:.12f}" for x in p[i])
                         + " " + " ".join(f"{x:.12f}" for x in v[i]))
    path.write_text("\n".join(lines) + "\n")


def test_import_lammps_dump_triclinic(tmp_path):
    truth = true_trajectory(25)
    vel_ps = np.random.default_rng(7).normal(size=truth.shape)  # metal units: Å/ps
    steps = 1000 + 50 * np.arange(25)
    _lammps_dump(tmp_path / "dump.lammpstrj", truth, vel_ps, steps)
    st = import_trajectory(tmp_path / "dump.lammpstrj", "lammps-dump-text",
                           store_path=tmp_path / "l.zarr", timestep_fs=2.0,
                           read_kwargs={"specorder": ["Li", "B", "H", "S"]})
    ds = st.to_xarray()
    assert list(ds["species"].values) == SYMBOLS
    np.testing.assert_allclose(ds["cell"].values[0], TRICLINIC, atol=1e-9)
    np.testing.assert_allclose(ds["positions"].values, truth, atol=1e-9)
    np.testing.assert_allclose(ds["velocities"].values, vel_ps / 1000.0, rtol=1e-9, atol=1e-14)
    np.testing.assert_array_equal(ds["step"].values, steps)  # from ITEM: TIMESTEP
    np.testing.assert_allclose(ds["time"].values, steps * 2.0 / 1000)
    # the ASE reader's placeholder energy 0 is not taken as a potential energy
    assert np.all(np.isnan(ds["potential_energy"].values))
    ke = 0.5 * np.einsum("i,fij,fij->f", ds["mass"].values, vel_ps / 1000, vel_ps / 1000) \
        * 103.642696562621738
    np.testing.assert_allclose(ds["kinetic_energy"].values, ke, rtol=1e-9)


def test_import_cp2k_xyz_needs_cell_and_timestep(tmp_path):
    truth = true_trajectory(15)
    cell = TRICLINIC
    with open(tmp_path / "pos.xyz", "w") as f:  # CP2K -pos-1.xyz layout
        for i, p in enumerate(wrap(truth, cell)):
            f.write(f"{len(p)}\n i = {i * 5:8d}, time = {i * 2.5:12.3f}, E = {-10.0 - i:.10f}\n")
            for s, x in zip(SYMBOLS, p):
                f.write(f"{s:>3s} {x[0]:20.10f} {x[1]:20.10f} {x[2]:20.10f}\n")
    with pytest.raises(ValueError, match="cell="):
        import_trajectory(tmp_path / "pos.xyz", "xyz", store_path=tmp_path / "a.zarr",
                          timestep_fs=0.5)
    with pytest.raises(ValueError, match="timestep_fs"):
        import_trajectory(tmp_path / "pos.xyz", "xyz", store_path=tmp_path / "b.zarr",
                          cell=cell)
    st = import_trajectory(tmp_path / "pos.xyz", "xyz", store_path=tmp_path / "c.zarr",
                           cell=cell, timestep_fs=0.5, frame_stride=5)
    ds = st.to_xarray()
    np.testing.assert_allclose(ds["positions"].values, truth, atol=1e-9)
    np.testing.assert_allclose(ds["time"].values, np.arange(15) * 2.5e-3)


def test_import_vasp_xdatcar(tmp_path):
    from ase.io.vasp import write_vasp_xdatcar

    truth = true_trajectory(20)
    # wrapped positions: the file holds fractional coordinates in [0, 1)
    images = [Atoms(SYMBOLS, positions=wrap(p, TRICLINIC), cell=TRICLINIC, pbc=True)
              for p in truth]
    with open(tmp_path / "XDATCAR", "w") as fd:
        write_vasp_xdatcar(fd, images)
    seen = {}

    def topology(atoms):
        seen["n"] = len(atoms)
        return [-1, -1, 0, 0, -1], ["BH"], [[2, 3]]

    st = import_trajectory(tmp_path / "XDATCAR", "vasp-xdatcar", store_path=tmp_path / "v.zarr",
                           timestep_fs=1.0, topology=topology)
    ds = st.to_xarray()
    assert seen["n"] == 5
    np.testing.assert_array_equal(ds["rotor_id"].values, [-1, -1, 0, 0, -1])
    assert list(ds["rotor_kind"].values) == ["BH"]
    np.testing.assert_array_equal(ds["orientation_atoms"].values, [[2, 3]])
    assert list(ds["species"].values) == SYMBOLS  # (already grouped by element)
    # XDATCAR holds fractional coordinates with 8 digits
    np.testing.assert_allclose(ds["positions"].values, truth, atol=1e-6)
    np.testing.assert_allclose(ds["time"].values, np.arange(20) * 1e-3)
    np.testing.assert_allclose(ds["cell"].values[-1], TRICLINIC, atol=1e-6)


def test_import_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.xyz"):
        import_trajectory(tmp_path / "missing.xyz", store_path=tmp_path / "m.zarr")
    (tmp_path / "junk.xyz").write_text("this is not\na trajectory\n")
    with pytest.raises(ValueError, match="cannot read"):
        import_trajectory(tmp_path / "junk.xyz", "extxyz", store_path=tmp_path / "j.zarr",
                          timestep_fs=1.0)
    images = [Atoms("LiH", positions=[[0, 0, 0], [1, 0, 0]], cell=np.eye(3) * 5, pbc=True),
              Atoms("LiHH", positions=[[0, 0, 0], [1, 0, 0], [2, 0, 0]], cell=np.eye(3) * 5,
                    pbc=True)]
    ase.io.write(tmp_path / "var.xyz", images, format="extxyz")
    with pytest.raises(ValueError, match="fixed atom count"):
        import_trajectory(tmp_path / "var.xyz", store_path=tmp_path / "v.zarr", timestep_fs=1.0)


def test_import_with_material_detects_rotors(tmp_path):
    """A trajectory made elsewhere, of a catalog material, gets its rotors and mobile ions."""
    import ase.io

    from rotorlab import materials
    from rotorlab.store import import_trajectory, open_store
    from rotorlab.materials import detect

    atoms = materials.get("LiBH4", (2, 2, 1), variant="P63mc-12")
    rng = np.random.default_rng(0)
    frames = []
    for k in range(4):
        a = atoms.copy()
        a.positions += rng.normal(scale=0.02, size=a.positions.shape)
        a.wrap()
        frames.append(a)
    f = tmp_path / "ext.xyz"
    ase.io.write(f, frames, format="extxyz")
    import_trajectory(f, store_path=tmp_path / "imp.zarr", material="LiBH4", timestep_fs=0.5)
    ds = open_store(tmp_path / "imp.zarr")
    top = detect(atoms)
    assert ds.sizes["rotor"] == top.n_rotors == 8
    np.testing.assert_array_equal(ds["rotor_id"].values, top.rotor_id)
    assert ds.attrs["mobile_species"] == "Li" and ds.attrs["mobile_charge"] == 1.0
    assert list(ds["rotor_kind"].values) == ["BH4"] * 8
