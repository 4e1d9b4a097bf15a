"""Pinning a frozen DeePMD model's per-type atomic energies (rotorlab.training.dp).

Labels are built from the model itself plus a known per-type shift, so the least-squares
shift must come back exactly; the rewritten model must move energies by Σ n_t δ_t and leave
forces and virials bit-identical.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("deepmd", reason="deepmd-kit evaluates the model")

from rotorlab._paths import datasets_dir  # noqa: E402
from rotorlab.materials import get  # noqa: E402

MODEL = datasets_dir() / "models" / "Li3PS4" / "model.pb"
SHIFT = {"Li": 0.0123, "P": -0.0311, "S": 0.0047}  # eV per atom


def _frames(drop=None, n=3, seed=0):
    a = get("Li3PS4", (1, 1, 1), variant="beta-Pnma")
    if drop is not None:
        del a[[i for i, s in enumerate(a.get_chemical_symbols()) if s == drop][0]]
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        b = a.copy()
        b.positions += rng.normal(0.0, 0.05, b.positions.shape)
        out.append(b)
    return out


def _write_system(path, frames, energy, force):
    """A DeePMD npy system (the format dpdata writes)."""
    tmap = ["Li", "P", "S"]
    path.mkdir(parents=True)
    sym = frames[0].get_chemical_symbols()
    (path / "type_map.raw").write_text("\n".join(tmap) + "\n")
    (path / "type.raw").write_text("\n".join(str(tmap.index(s)) for s in sym) + "\n")
    st = path / "set.000"
    st.mkdir()
    np.save(st / "coord.npy", np.array([f.positions.ravel() for f in frames]))
    np.save(st / "box.npy", np.array([f.cell.array.ravel() for f in frames]))
    np.save(st / "energy.npy", np.asarray(energy))
    np.save(st / "force.npy", np.asarray(force).reshape(len(frames), -1))


def _eval(model, frames):
    from deepmd.infer import DeepPot

    dp = DeepPot(str(model))
    tmap = dp.get_type_map()
    es, fs, vs = [], [], []
    for f in frames:
        atype = [tmap.index(s) for s in f.get_chemical_symbols()]
        e, frc, v = dp.eval(f.positions.reshape(1, -1), f.cell.array.reshape(1, 9), atype)[:3]
        es.append(float(np.asarray(e).ravel()[0]))
        fs.append(np.asarray(frc).reshape(-1, 3))
        vs.append(np.asarray(v).reshape(3, 3))
    return np.array(es), fs, vs


def _counts(f):
    sym = f.get_chemical_symbols()
    return np.array([sym.count(t) for t in ("Li", "P", "S")])


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("bias")
    groups = {"full": _frames(), "noLi": _frames("Li", seed=1), "noS": _frames("S", seed=2)}
    for name, frames in groups.items():
        e, f, _ = _eval(MODEL, frames)
        shift = np.array([_counts(x) @ np.array(list(SHIFT.values())) for x in frames])
        _write_system(root / "sets" / name, frames, e + shift, f)
    return root, groups


def test_shift_is_recovered_from_three_compositions(data):
    from rotorlab.training import dp

    root, _ = data
    info = dp.energy_bias_shift(MODEL, [root / "sets"])
    assert info["rank"] == 3 and info["n_frames"] == 9
    for t, v in SHIFT.items():
        assert info["delta_eV"][t] == pytest.approx(v, abs=1e-9)
    assert info["energy_rmse_before_meV_atom"] > 1.0
    assert info["energy_rmse_after_meV_atom"] < 1e-6


def test_pinned_model_moves_energies_only(data, tmp_path):
    from rotorlab.training import dp

    root, groups = data
    out = tmp_path / "pinned.pb"
    info = dp.pin_energy_bias(MODEL, [root / "sets"], out)
    assert info["model"] == str(out)
    for t, v in SHIFT.items():
        assert info["bias_after_eV"][t] - info["bias_before_eV"][t] == pytest.approx(v, abs=1e-9)
    assert dp.read_energy_bias(out) == info["bias_after_eV"]
    frames = groups["noLi"] + groups["full"]
    e0, f0, v0 = _eval(MODEL, frames)
    e1, f1, v1 = _eval(out, frames)
    want = np.array([_counts(x) @ np.array(list(SHIFT.values())) for x in frames])
    np.testing.assert_allclose(e1 - e0, want, rtol=0, atol=1e-8)
    for a, b in zip(f0, f1):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(v0, v1):
        np.testing.assert_array_equal(a, b)
    # the pinned model's errors on the labelled data: energies now match, forces as before
    r = dp.test(out, [root / "sets"])
    assert r["energy_rmse_meV_atom"] < 1e-6 and r["force_rmse_meV_A"] < 1e-9


def test_one_composition_gives_the_minimum_norm_shift(data, tmp_path):
    """Rank 1: only the shift per formula unit is determined; the minimum-norm solution is
    proportional to the composition and still matches every energy."""
    from rotorlab.training import dp

    root, groups = data
    info = dp.energy_bias_shift(MODEL, [root / "sets" / "full"])
    assert info["rank"] == 1
    n = _counts(groups["full"][0])
    d = np.array([info["delta_eV"][t] for t in ("Li", "P", "S")])
    np.testing.assert_allclose(d / n, d[0] / n[0], rtol=1e-9)
    assert n @ d == pytest.approx(n @ np.array(list(SHIFT.values())), abs=1e-8)
    assert info["energy_rmse_after_meV_atom"] < 1e-6


def test_bias_refusals_leave_files_alone(data, tmp_path):
    from rotorlab.training import dp

    taken = tmp_path / "taken.pb"
    taken.write_bytes(b"mine")
    with pytest.raises(FileExistsError, match="exists"):
        dp.set_energy_bias(MODEL, taken, {"Li": 0.1})
    assert taken.read_bytes() == b"mine"
    with pytest.raises(ValueError, match=r"\['Na'\] are not in the model's type map"):
        dp.set_energy_bias(MODEL, tmp_path / "x.pb", {"Na": 0.1})
    assert not (tmp_path / "x.pb").exists()
    from deepmd.tf.env import tf as dtf

    gd = dtf.compat.v1.GraphDef()
    other = tmp_path / "other.pb"
    other.write_bytes(gd.SerializeToString())
    with pytest.raises(ValueError, match="t_bias_atom_e"):
        dp.set_energy_bias(other, tmp_path / "y.pb", {"Li": 0.1})
    assert not (tmp_path / "y.pb").exists()
