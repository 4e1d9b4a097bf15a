"""DeePMD-kit through its C API with a Verlet list (rotorlab.potentials.deepmd_c) against
DeePMD-kit's Python API on the same model: the tiny LiBH4 test model."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("deepmd")

from rotorlab import materials  # noqa: E402
from rotorlab.potentials import deepmd_c  # noqa: E402
from rotorlab.potentials.deepmd import DeePMD  # noqa: E402

MODEL_DIR = Path(__file__).resolve().parents[1] / "datasets" / "models" / "tiny-LiBH4"
MODEL = MODEL_DIR / "model.pb"
COMPRESSED = MODEL_DIR / "model-compressed.pb"

try:
    deepmd_c.library()
    HAVE_C = True
except deepmd_c.CAPIUnavailable:  # pragma: no cover - a deepmd-kit without its C API
    HAVE_C = False
needs_c = pytest.mark.skipif(not HAVE_C, reason="DeePMD-kit's C library is not loadable")


@pytest.fixture(scope="module")
def atoms():
    return materials.get("LiBH4", "quick")


@pytest.fixture(scope="module")
def pair(atoms):
    return (DeePMD(COMPRESSED, atoms, engine="c"), DeePMD(COMPRESSED, atoms, engine="python"))


def _as_set(count, j, s):
    i = np.repeat(np.arange(len(count)), count)
    return sorted(zip(i.tolist(), j.tolist(), *s.T.tolist()))


@pytest.mark.parametrize("scale,r_list", [(1.0, 7.0), (0.5, 7.0), (0.35, 5.0)])
def test_ghost_pairs_match_brute_force_images(atoms, scale, r_list):
    # small cells: one atom's several images are neighbours of another (and of itself)
    rng = np.random.default_rng(3)
    cell = atoms.cell.array * scale
    cell[1] += 0.3 * cell[0]  # triclinic
    x = rng.random((30, 3)) @ cell + rng.normal(0, 3.0, (30, 3))  # some outside the cell
    xw, count, j, s = deepmd_c.ghost_pairs(x, cell, r_list)
    assert _as_set(count, j, s) == deepmd_c.ghost_pairs_numpy(x, cell, r_list)
    # the wrapped positions are lattice translations of the input
    frac = (xw - x) @ np.linalg.inv(cell)
    np.testing.assert_allclose(frac, np.round(frac), atol=1e-9)
    assert np.all((xw @ np.linalg.inv(cell) >= 0) & (xw @ np.linalg.inv(cell) < 1))


def test_list_kernels_match_numpy():
    rng = np.random.default_rng(8)
    n, g = 12, 30
    x, x0 = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
    assert deepmd_c.max_displacement2(x, x0) == pytest.approx(((x - x0) ** 2).sum(1).max())
    offset = rng.normal(size=(n, 3))
    mapping = np.concatenate([np.arange(n), rng.integers(0, n, g)])
    shift = rng.normal(size=(g, 3))
    out = np.empty((n + g, 3))
    deepmd_c.fill_coordinates(x, offset, mapping, shift, out)
    np.testing.assert_allclose(out[:n], x + offset)
    np.testing.assert_allclose(out[n:], (x + offset)[mapping[n:]] + shift)
    f_all = rng.normal(size=(n + g, 3))
    f = np.empty((n, 3))
    deepmd_c.fold_forces(f_all, n, mapping, f)
    ref = f_all[:n].copy()
    np.add.at(ref, mapping[n:], f_all[n:])
    np.testing.assert_allclose(f, ref, atol=1e-14)


@needs_c
def test_c_engine_equals_python_engine_through_rebuilds(pair, atoms):
    _, p = pair
    c = DeePMD(COMPRESSED, atoms, engine="c", skin=0.5)
    assert c.engine == "c" and p.engine == "python" and c.rcut == p.rcut
    assert c.type_names == p.type_names == ("Li", "B", "H")
    rng = np.random.default_rng(1)
    x, cell = atoms.positions.copy(), atoms.cell.array
    builds0 = c._c.builds
    worst = 0.0
    for _ in range(30):  # a random walk: atoms cross cell faces, the list is rebuilt
        x = x + rng.normal(0.0, 0.04, x.shape)
        e1, f1, v1 = c.compute(x, cell)
        e2, f2, v2 = p.compute(x, cell)
        worst = max(worst, abs(e1 - e2) / len(x), np.abs(f1 - f2).max(), np.abs(v1 - v2).max())
        assert f1.shape == (len(x), 3) and v1.shape == (3, 3)
    assert worst < 1e-9, worst
    assert 1 < c._c.builds - builds0 < 30  # rebuilt, but not on every call
    # forces sum to zero (translation invariance) and the virial is symmetric
    assert np.abs(f1.sum(axis=0)).max() < 1e-9
    np.testing.assert_allclose(v1, v1.T, atol=1e-9)


@needs_c
def test_verlet_list_rebuild_rule(atoms):
    ff = DeePMD(COMPRESSED, atoms, engine="c", skin=1.0)
    x, cell = atoms.positions.copy(), atoms.cell.array.copy()
    ff.compute(x, cell)
    b = ff._c.builds
    y = x.copy()
    y[5] += [0.49, 0.0, 0.0]  # under skin/2: the list still covers rcut
    ff.compute(y, cell)
    assert ff._c.builds == b
    y[5] += [0.02, 0.0, 0.0]  # past skin/2
    ff.compute(y, cell)
    assert ff._c.builds == b + 1
    ff.compute(y + cell[0], cell)  # a lattice translation of everything: still 1 rebuild
    assert ff._c.builds == b + 2
    e_shift = ff.compute(y + cell[0], cell)[0]
    assert e_shift == pytest.approx(ff.compute(y, cell)[0], abs=1e-9)
    ff.compute(y, cell * 1.01)  # another cell: rebuilt
    assert ff._c.builds == b + 4
    # skin 0: a list built for every new configuration, same numbers
    z = DeePMD(COMPRESSED, atoms, engine="c", skin=0.0)
    np.testing.assert_allclose(z.compute(y, cell)[1], ff.compute(y, cell)[1], atol=1e-10)
    with pytest.raises(ValueError, match="skin"):
        DeePMD(COMPRESSED, atoms, engine="c", skin=-1.0)


@needs_c
def test_same_list_gives_bitwise_same_forces_and_checkpoint_keeps_it(atoms):
    a = DeePMD(COMPRESSED, atoms, engine="c")
    x, cell = atoms.positions.copy(), atoms.cell.array
    rng = np.random.default_rng(5)
    a.compute(x, cell)
    x1 = x + rng.normal(0, 0.02, x.shape)
    ref = a.compute(x1, cell)  # list built at x
    arrays, meta = a.get_state()
    assert arrays["deepmd_list_x"].shape == x.shape
    b = DeePMD.from_state(arrays, meta)  # primes the list at x
    got = b.compute(x1, cell)
    assert got[0] == ref[0] and np.array_equal(got[1], ref[1]) and np.array_equal(got[2], ref[2])
    # without the list state the numbers differ at round-off only
    c = DeePMD.from_state({}, meta)
    other = c.compute(x1, cell)
    np.testing.assert_allclose(other[1], ref[1], atol=1e-10)


@needs_c
def test_cluster_without_cell(atoms, pair):
    c, p = pair
    x = atoms.positions[:20].copy()
    syms = atoms.get_chemical_symbols()[:20]
    cc = DeePMD(COMPRESSED, syms, engine="c")
    pp = DeePMD(COMPRESSED, syms, engine="python")
    e1, f1, v1 = cc.compute(x, None)
    e2, f2, v2 = pp.compute(x, None)
    assert e1 == pytest.approx(e2, abs=1e-9)
    np.testing.assert_allclose(f1, f2, atol=1e-9)


@needs_c
def test_ensemble_members_share_engine_and_resume_lists(atoms):
    from rotorlab.potentials.deepmd import DeePMDEnsemble

    paths = [MODEL, MODEL_DIR / "model-seed2.pb", MODEL_DIR / "model-seed3.pb"]
    ens = DeePMDEnsemble(paths, atoms, k=1, sigma_high=100.0)
    assert all(m.engine == "c" for m in ens.models)
    x, cell = atoms.positions.copy(), atoms.cell.array
    ens.compute(x, cell)
    x1 = x + 0.01
    arrays, meta = ens.get_state()
    assert {f"ens{k}_deepmd_list_x" for k in range(3)} <= set(arrays)
    again = DeePMDEnsemble.from_state(arrays, meta)
    r1, r2 = ens.compute(x1, cell), again.compute(x1, cell)
    assert np.array_equal(r1[1], r2[1])
    assert again.last_model_deviation == ens.last_model_deviation


def test_engine_choice_and_errors(atoms, monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="engine must be"):
        DeePMD(COMPRESSED, atoms, engine="fortran")
    monkeypatch.setenv("ROTORLAB_DEEPMD_ENGINE", "python")
    assert DeePMD(COMPRESSED, atoms).engine == "python"
    monkeypatch.setenv("ROTORLAB_DEEPMD_ENGINE", "gpu")
    with pytest.raises(ValueError, match="ROTORLAB_DEEPMD_ENGINE"):
        DeePMD(COMPRESSED, atoms)
    monkeypatch.delenv("ROTORLAB_DEEPMD_ENGINE")
    # no C library: auto falls back to the Python API and says so; engine="c" refuses
    monkeypatch.setattr(deepmd_c, "library", lambda: (_ for _ in ()).throw(
        deepmd_c.CAPIUnavailable("libdeepmd_c.so is missing")))
    ff = DeePMD(COMPRESSED, atoms)
    assert ff.engine == "python" and "libdeepmd_c.so is missing" in ff.engine_note
    with pytest.raises(RuntimeError, match="engine='c'.*missing"):
        DeePMD(COMPRESSED, atoms, engine="c")


@needs_c
def test_broken_model_file_is_a_clear_error(tmp_path, atoms):
    bad = tmp_path / "broken.pb"
    bad.write_bytes(b"this is not a TensorFlow graph")
    with pytest.raises(RuntimeError, match="could not load.*broken.pb"):
        DeePMD(bad, atoms, engine="c")
    with pytest.raises(RuntimeError, match="could not load"):
        DeePMD(bad, atoms)  # auto: the C API fails, the Python API gives its own message
    assert bad.read_bytes() == b"this is not a TensorFlow graph"


@needs_c
def test_c_engine_alone_loads_without_tensorflow_python(tmp_path):
    """The C engine does not import TensorFlow's Python package (seconds of start-up)."""
    code = ("import sys, numpy as np; from rotorlab.potentials.deepmd import DeePMD, "
            f"thread_settings; ff = DeePMD({str(COMPRESSED)!r}, ['Li', 'B', 'H', 'H', 'H', 'H'],"
            " threads=1); print(ff.engine, 'tensorflow' in sys.modules, "
            "thread_settings()['intra'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["c", "False", "1"], out.stdout
    assert "implib-gen" not in out.stderr and "Environmental variable" not in out.stderr
