"""DeePMD model ensembles: model deviation against plain NumPy and DeePMD-kit's own definition."""

import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("deepmd")

from rotorlab import materials  # noqa: E402
from rotorlab.potentials.deepmd import (  # noqa: E402
    DeePMD,
    DeePMDEnsemble,
    ModelDeviationError,
    ModelDeviationWarning,
    force_deviation,
    max_force_deviation,
)

MODEL_DIR = Path(__file__).resolve().parents[1] / "datasets" / "models" / "tiny-LiBH4"
PATHS = [MODEL_DIR / "model.pb", MODEL_DIR / "model-seed2.pb", MODEL_DIR / "model-seed3.pb"]


def numpy_max_devi(forces):
    """Plain-loop reference: max over atoms of sqrt(mean over models |F_m - F_mean|^2)."""
    m, n, _ = forces.shape
    best = 0.0
    for i in range(n):
        mean = [sum(forces[k, i, c] for k in range(m)) / m for c in range(3)]
        msd = sum(sum((forces[k, i, c] - mean[c]) ** 2 for c in range(3)) for k in range(m)) / m
        best = max(best, msd ** 0.5)
    return best


@pytest.fixture(scope="module")
def atoms():
    a = materials.get("LiBH4", (2, 2, 2), variant="P63mc-12")
    a.positions += np.random.default_rng(5).normal(0.0, 0.05, a.positions.shape)
    return a


def test_deviation_functions_match_numpy_loop_and_deepmd():
    from deepmd.infer.model_devi import calc_model_devi_f

    rng = np.random.default_rng(0)
    for m in (2, 3, 5):
        f = rng.normal(size=(m, 17, 3))
        ref = numpy_max_devi(f)
        assert max_force_deviation(f) == pytest.approx(ref, rel=1e-12)
        per_atom = force_deviation(f)
        assert per_atom.shape == (17,)
        np.testing.assert_allclose(per_atom, calc_model_devi_f(f[:, None], atomic=True)[3][0],
                                   rtol=1e-12)
        assert max_force_deviation(f) == pytest.approx(calc_model_devi_f(f[:, None])[0][0])
    # two models: half their force difference
    f = rng.normal(size=(2, 4, 3))
    np.testing.assert_allclose(force_deviation(f), np.linalg.norm(f[0] - f[1], axis=1) / 2)
    assert max_force_deviation(np.repeat(f[:1], 3, axis=0)) == pytest.approx(0.0, abs=1e-14)
    with pytest.raises(ValueError, match="n_models >= 2"):
        max_force_deviation(f[:1])


def test_ensemble_deviation_equals_numpy_reference(atoms):
    ens = DeePMDEnsemble(PATHS, atoms, k=1, sigma_high=10.0)
    x, cell = atoms.positions, atoms.cell.array
    e, f, w = ens.compute(x, cell)
    singles = [DeePMD(p, atoms).compute(x, cell) for p in PATHS]
    forces = np.stack([s[1] for s in singles])
    ref = numpy_max_devi(forces)
    assert ens.last_model_deviation == pytest.approx(ref, rel=1e-10)
    assert ens.model_deviation() == ens.last_model_deviation
    assert ens.model_deviation(x, cell) == pytest.approx(ref, rel=1e-10)
    # the first model drives
    assert e == pytest.approx(singles[0][0], abs=1e-10)
    np.testing.assert_allclose(f, singles[0][1], atol=1e-12)
    np.testing.assert_allclose(w, singles[0][2], atol=1e-12)
    # different seeds really differ, but not wildly (a trained ensemble)
    assert 1e-3 < ref < 5.0
    np.testing.assert_allclose(ens.last_force_deviation, force_deviation(forces), rtol=1e-10)


def test_every_k_calls_and_statistics(atoms):
    ens = DeePMDEnsemble(PATHS[:2], atoms, k=3, sigma_low=0.0, sigma_high=1e9)
    x, cell = atoms.positions.copy(), atoms.cell.array
    rng = np.random.default_rng(1)
    for _ in range(7):
        ens.compute(x + rng.normal(0, 0.01, x.shape), cell)
    assert [c for c, _ in ens.history] == [0, 3, 6]
    assert ens.n_calls == 7 and ens.n_checks == 3 and ens.last_check_call == 6
    s = ens.summary()
    assert s["fraction_candidate"] == 1.0 and s["fraction_high"] == 0.0
    assert s["max"] == pytest.approx(max(e for _, e in ens.history))


def test_warning_when_too_many_frames_above_sigma_high(atoms):
    ens = DeePMDEnsemble(PATHS[:2], atoms, k=1, sigma_low=0.0, sigma_high=1e-6,
                         max_fraction_high=0.5)
    x, cell = atoms.positions, atoms.cell.array
    with pytest.warns(ModelDeviationWarning, match="sigma_high"):
        ens.compute(x, cell)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once only
        ens.compute(x, cell)
    assert ens.fraction_high == 1.0
    # a generous bound never warns
    quiet = DeePMDEnsemble(PATHS[:2], atoms, k=1, sigma_high=1e3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet.compute(x, cell)


def test_optional_stop(atoms):
    ens = DeePMDEnsemble(PATHS[:2], atoms, k=1, sigma_low=0.0, sigma_high=1e-6,
                         max_fraction_high=0.0, stop_on_high=True)
    with pytest.raises(ModelDeviationError, match="eps_f"):
        ens.compute(atoms.positions, atoms.cell.array)


def test_bad_arguments():
    with pytest.raises(ValueError, match="at least 2"):
        DeePMDEnsemble(PATHS[:1])
    with pytest.raises(ValueError, match="k must"):
        DeePMDEnsemble(PATHS[:2], k=0)
    with pytest.raises(ValueError, match="sigma_low <= sigma_high"):
        DeePMDEnsemble(PATHS[:2], sigma_low=0.3, sigma_high=0.2)
    with pytest.raises(FileNotFoundError, match="missing.pb"):
        DeePMDEnsemble([PATHS[0], MODEL_DIR / "missing.pb"])


def test_state_round_trip(atoms):
    ens = DeePMDEnsemble(PATHS[:2], atoms, k=2, sigma_high=10.0)
    for _ in range(3):
        ens.compute(atoms.positions, atoms.cell.array)
    arrays, meta = ens.get_state()
    ens2 = DeePMDEnsemble.from_state(arrays, meta)
    assert ens2.history == ens.history and ens2.n_calls == ens.n_calls == 3
    assert ens2.last_model_deviation == ens.last_model_deviation
    ens.compute(atoms.positions, atoms.cell.array)
    ens2.compute(atoms.positions, atoms.cell.array)
    assert ens2.history == ens.history
