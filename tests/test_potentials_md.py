"""End to end: constrained (RC) MD driven by the tiny DeePMD model, with a model ensemble."""

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("deepmd")

from rotorlab import materials  # noqa: E402
from rotorlab.md.simulation import Simulation  # noqa: E402
from rotorlab.potentials.deepmd import DeePMD, DeePMDEnsemble, max_force_deviation  # noqa: E402

MODEL_DIR = Path(__file__).resolve().parents[1] / "datasets" / "models" / "tiny-LiBH4"
PATHS = [MODEL_DIR / "model.pb", MODEL_DIR / "model-seed2.pb"]


def test_rc_run_with_deepmd_ensemble(tmp_path):
    atoms = materials.get("LiBH4", (2, 2, 2), variant="P63mc-12")
    ens = DeePMDEnsemble(PATHS, atoms, k=5, sigma_high=100.0)
    seen = []

    def record(ev):  # per step: the deviation the ensemble holds after the step
        seen.append((ev.simulation.integrator.step_count, ens.last_check_call, ens.last_model_deviation))

    sim = Simulation(atoms, ens, mode="RC", temperature=300.0, steps=30, frame_interval=5,
                     store=tmp_path / "rc.zarr", seed=3, progress=False, observers=[record])
    sim.run()
    ds = sim.dataset()
    assert ds.sizes["frame"] == 7
    assert ds.attrs["potential_id"] == ens.id
    for var in ("potential_energy", "kinetic_energy", "conserved_energy", "temperature"):
        assert np.all(np.isfinite(ds[var].values)), var
    # the rotation constraint holds with DeePMD forces (Eckart residual at round-off)
    eck, _ = sim.constraints.residuals(ds["positions"].values[-1])
    assert eck.max() < 1e-9
    # NHC conserved quantity: drift small compared with the kinetic energy fluctuations
    ce = ds["conserved_energy"].values
    assert abs(ce[-1] - ce[0]) < 0.05 * len(atoms) * 8.617e-5 * 300
    # one compute per step: checks on steps 0, 5, ..., 30 -> one per stored frame
    assert [c for c, _ in ens.history] == list(range(0, 31, 5))
    assert all(step == call for step, call, _ in seen if step % 5 == 0)
    # the recorded deviation of the last frame equals a fresh evaluation of that frame
    x, cell = ds["positions"].values[-1], ds["cell"].values[-1]
    assert ens.history[-1][1] == pytest.approx(ens.model_deviation(x, cell), rel=1e-6)


def test_rc_run_resumes_with_deepmd(tmp_path):
    atoms = materials.get("LiBH4", (2, 2, 2), variant="P63mc-12")
    ff = DeePMD(MODEL_DIR / "model.pb", atoms)
    store = tmp_path / "rc.zarr"
    Simulation(atoms, ff, mode="RC", temperature=300.0, steps=10, frame_interval=5,
               checkpoint_interval=5, store=store, seed=4, progress=False).run()
    sim = Simulation.resume(store, steps=10, progress=False).run()
    assert isinstance(sim.forcefield, DeePMD) and sim.forcefield.version == ff.version
    assert sim.dataset().sizes["frame"] == 5


def test_rc_run_stores_model_deviation(tmp_path):
    atoms = materials.get("LiBH4", (2, 2, 2), variant="P63mc-12")
    ens = DeePMDEnsemble(PATHS, atoms, k=5, sigma_high=100.0)
    sim = Simulation(atoms, ens, mode="RC", temperature=300.0, steps=20, frame_interval=5,
                     store=tmp_path / "rc.zarr", seed=5, progress=False)
    sim.run()
    ds = sim.dataset()
    assert "model_deviation" in ds
    assert ds["model_deviation"].attrs.get("units") == "eV/Å"
    np.testing.assert_allclose(ds["model_deviation"].values, [e for _, e in ens.history])
    x, cell = ds["positions"].values[2], ds["cell"].values[2]
    assert ds["model_deviation"].values[2] == pytest.approx(
        max_force_deviation(ens.evaluate_all(x, cell)[1]), rel=1e-6)


def test_model_paths_as_potential_spec_and_bitwise_resume(tmp_path):
    """`potential=[paths]` builds an ensemble; a run cut at its checkpoint and resumed
    gives the same frames (model deviation included) as an uninterrupted run."""
    atoms = materials.get("LiBH4", (2, 2, 2), variant="P63mc-12")
    spec = [str(p) for p in PATHS]
    kw = dict(mode="RC", temperature=300.0, frame_interval=5, checkpoint_interval=10,
              seed=11, progress=False)
    full = Simulation(atoms, spec, steps=20, store=tmp_path / "full.zarr", **kw)
    assert isinstance(full.forcefield, DeePMDEnsemble)
    full.run()
    part = Simulation(atoms, spec, steps=10, store=tmp_path / "part.zarr", **kw)
    part.run()
    resumed = Simulation.resume(tmp_path / "part.zarr", steps=10, progress=False)
    assert isinstance(resumed.forcefield, DeePMDEnsemble)
    resumed.run()
    a, b = full.dataset(), resumed.dataset()
    assert a.sizes["frame"] == b.sizes["frame"] == 5
    np.testing.assert_array_equal(a["positions"].values, b["positions"].values)
    np.testing.assert_array_equal(a["model_deviation"].values, b["model_deviation"].values)
    assert np.all(np.isfinite(a["model_deviation"].values))


def test_missing_model_path_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pb"):
        Simulation(materials.get("LiBH4", (2, 2, 2), variant="P63mc-12"), str(tmp_path / "nope.pb"), mode="RC",
                   temperature=300.0, steps=5, progress=False)
