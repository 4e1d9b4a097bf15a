"""DeePMD force field: real tiny DeePMD-kit model (datasets/models/tiny-LiBH4)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("deepmd")

from rotorlab import materials  # noqa: E402
from rotorlab.potentials.deepmd import DeePMD, set_threads, thread_settings  # noqa: E402

MODEL_DIR = Path(__file__).resolve().parents[1] / "datasets" / "models" / "tiny-LiBH4"
MODEL = MODEL_DIR / "model.pb"
COMPRESSED = MODEL_DIR / "model-compressed.pb"


@pytest.fixture(scope="module")
def atoms():
    a = materials.get("LiBH4", (2, 2, 2), variant="P63mc-12")
    rng = np.random.default_rng(11)
    a.positions += rng.normal(0.0, 0.04, a.positions.shape)
    return a


@pytest.fixture(scope="module")
def ff(atoms):
    return DeePMD(MODEL, atoms)


def test_loads_and_describes(ff, atoms):
    from rotorlab.potentials.base import ForceField, check_species

    assert isinstance(ff, ForceField)
    check_species(ff, atoms.get_chemical_symbols())
    assert ff.type_names == ("Li", "B", "H")
    assert ff.n_atoms == len(atoms)
    assert ff.id == "deepmd:model.pb" and len(ff.version) == 16
    assert 4.0 < ff.rcut < 6.0
    assert "model.pb" in repr(ff)


def test_compute_shapes_units_and_finite(ff, atoms):
    e, f, w = ff.compute(atoms.positions, atoms.cell.array)
    assert isinstance(e, float) and np.isfinite(e)
    assert f.shape == (len(atoms), 3) and f.dtype == np.float64 and np.all(np.isfinite(f))
    assert w.shape == (3, 3)
    np.testing.assert_allclose(w, w.T, atol=1e-8)
    # a model of a solid: no net force (translation invariance)
    np.testing.assert_allclose(f.sum(axis=0), 0.0, atol=1e-8)


def test_forces_are_minus_energy_gradient(ff, atoms):
    x0, cell = atoms.positions.copy(), atoms.cell.array
    _, f, _ = ff.compute(x0, cell)
    h = 1e-4
    for i in (0, 2, 7, 50):  # Li, B, H, H
        for k in range(3):
            x = x0.copy()
            x[i, k] += h
            ep = ff.compute(x, cell)[0]
            x[i, k] -= 2 * h
            em = ff.compute(x, cell)[0]
            assert -(ep - em) / (2 * h) == pytest.approx(f[i, k], abs=2e-5, rel=1e-5)


def test_virial_is_minus_strain_derivative(ff, atoms):
    x0, cell = atoms.positions, atoms.cell.array
    _, _, w = ff.compute(x0, cell)
    h = 1e-5
    for a, b in ((0, 0), (1, 2), (2, 2)):
        eps = np.zeros((3, 3))
        eps[a, b] = eps[b, a] = h / (1 if a == b else 2)  # symmetric strain
        ep = ff.compute(x0 @ (np.eye(3) + eps), cell @ (np.eye(3) + eps))[0]
        em = ff.compute(x0 @ (np.eye(3) - eps), cell @ (np.eye(3) - eps))[0]
        dE = (ep - em) / (2 * h)  # dE/d(eps_ab) for the symmetric strain
        assert -dE == pytest.approx(w[a, b], abs=1e-4, rel=1e-5)


def test_agrees_with_deepmd_ase_calculator(ff, atoms):
    from deepmd.calculator import DP

    a = atoms.copy()
    a.calc = DP(str(MODEL))
    e, f, w = ff.compute(atoms.positions, atoms.cell.array)
    assert e == pytest.approx(a.get_potential_energy(), abs=1e-8)
    np.testing.assert_allclose(f, a.get_forces(), atol=1e-9)
    stress = a.get_stress(voigt=False)
    np.testing.assert_allclose(-w / a.get_volume(), stress, atol=1e-9)


def test_unwrapped_positions_and_atom_order_handled(ff, atoms):
    x, cell = atoms.positions.copy(), atoms.cell.array
    e0, f0, _ = ff.compute(x, cell)
    shifts = np.random.default_rng(3).integers(-2, 3, (len(x), 3))
    x2 = x + shifts @ cell  # unwrapped: atoms displaced by whole lattice vectors
    e1, f1, _ = ff.compute(x2, cell)
    assert e1 == pytest.approx(e0, abs=1e-8)
    np.testing.assert_allclose(f1, f0, atol=1e-8)
    # reversed atom order: same physics
    rev = atoms[::-1]
    e2, f2, _ = DeePMD(MODEL, rev).compute(rev.positions, rev.cell.array)
    assert e2 == pytest.approx(e0, abs=1e-8)
    np.testing.assert_allclose(f2[::-1], f0, atol=1e-8)


def test_species_mismatch_names_missing_elements(atoms):
    bad = atoms.copy()
    syms = bad.get_chemical_symbols()
    syms[0], syms[2] = "Na", "P"
    bad.set_chemical_symbols(syms)
    with pytest.raises(ValueError, match=r"\['Na', 'P'\].*type_map is \['Li', 'B', 'H'\]"):
        DeePMD(MODEL, bad)
    ff = DeePMD(MODEL)
    with pytest.raises(ValueError, match="Na"):
        ff.check_species(bad)
    ff.check_species(atoms)  # fine


def test_type_map_override(atoms):
    with pytest.raises(ValueError, match="type_map has 2 entries"):
        DeePMD(MODEL, type_map=["Li", "B"])
    # the model's type names relabelled: elements in the system must follow the new names
    ff = DeePMD(MODEL, type_map=["Na", "B", "H"])
    with pytest.raises(ValueError, match=r"\['Li'\]"):
        ff.bind(atoms)
    renamed = atoms.copy()
    renamed.set_chemical_symbols(["Na" if s == "Li" else s for s in atoms.get_chemical_symbols()])
    e1 = ff.bind(renamed).compute(renamed.positions, renamed.cell.array)[0]
    e0 = DeePMD(MODEL, atoms).compute(atoms.positions, atoms.cell.array)[0]
    assert e1 == pytest.approx(e0, abs=1e-10)


def test_missing_file_names_it(tmp_path):
    missing = tmp_path / "nowhere" / "model.pb"
    with pytest.raises(FileNotFoundError, match="nowhere/model.pb"):
        DeePMD(missing)


@pytest.mark.parametrize("suffix", [".dp", ".yaml"])
def test_numpy_backend_refused(tmp_path, suffix):
    p = tmp_path / f"model{suffix}"
    p.write_bytes(b"not used")
    with pytest.raises(ValueError, match="NaN forces"):
        DeePMD(p)


def test_unloadable_file_gives_clear_error(tmp_path):
    p = tmp_path / "broken.pb"
    p.write_bytes(b"\x00 this is not a TensorFlow graph")
    with pytest.raises(RuntimeError, match="could not load .*broken.pb"):
        DeePMD(p)


def test_compute_needs_species_and_matching_shapes(atoms):
    ff = DeePMD(MODEL)
    with pytest.raises(RuntimeError, match="bind"):
        ff.compute(atoms.positions, atoms.cell.array)
    ff.bind(atoms.get_chemical_symbols())
    with pytest.raises(ValueError, match="96 atoms"):
        ff.compute(atoms.positions[:10], atoms.cell.array)
    with pytest.raises(ValueError, match="cell"):
        ff.compute(atoms.positions, np.zeros((3, 3)))


def test_compressed_model_matches_uncompressed(ff, atoms):
    if not COMPRESSED.exists():
        pytest.skip("no compressed model")
    e0, f0, _ = ff.compute(atoms.positions, atoms.cell.array)
    e1, f1, _ = DeePMD(COMPRESSED, atoms).compute(atoms.positions, atoms.cell.array)
    assert e1 == pytest.approx(e0, abs=1e-3 * len(atoms))
    np.testing.assert_allclose(f1, f0, atol=5e-3)


def test_state_round_trip(ff, atoms):
    arrays, meta = ff.get_state()
    ff2 = DeePMD.from_state(arrays, meta)
    assert ff2.version == ff.version and ff2.symbols == ff.symbols
    np.testing.assert_array_equal(ff2.compute(atoms.positions, atoms.cell.array)[1],
                                  ff.compute(atoms.positions, atoms.cell.array)[1])


def test_thread_settings_fixed_after_initialisation(ff):
    cur = thread_settings()
    assert cur["initialised"] is True
    with pytest.warns(RuntimeWarning, match="cannot change"):
        assert set_threads(cur["intra"] + 3, cur["inter"] + 2) is False
    with pytest.raises(ValueError):
        set_threads(0)


def test_threads_and_lazy_import_in_fresh_process():
    code = (
        "import sys, rotorlab, rotorlab.potentials.deepmd as d, rotorlab.potentials.registry;"
        "assert 'deepmd' not in sys.modules and 'tensorflow' not in sys.modules, 'eager import';"
        f"ff = d.DeePMD({str(MODEL)!r}, ['Li'], threads=1);"
        "s = d.thread_settings(); print(s['intra'], s['inter'], s['omp'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-3:] == ["1", "1", "1"]
