"""Registry of bundled models and the load() entry point."""

import json
from pathlib import Path

import numpy as np
import pytest

from rotorlab import materials
from rotorlab.potentials.registry import (
    NoBundledModel,
    bundled,
    has_bundled,
    load,
    model_dirs,
    model_info,
)

MODEL_DIR = Path(__file__).resolve().parents[1] / "datasets" / "models" / "tiny-LiBH4"


def test_materials_without_a_bundled_model_say_so(material_without_model):
    name = material_without_model
    assert has_bundled(name) is False
    with pytest.raises(NoBundledModel, match=f"no DeePMD model is bundled for {name}"):
        bundled(name)


def test_unknown_material():
    with pytest.raises(KeyError, match="unknown material"):
        bundled("Unobtainium")


def test_tiny_model_card_and_files():
    assert "tiny-LiBH4" in model_dirs()
    info = model_info("tiny-LiBH4")
    card = json.loads((MODEL_DIR / "card.json").read_text())
    assert info.card == card and "test fixture" in card["purpose"]
    assert card["type_map"] == ["Li", "B", "H"]
    assert [p.name for p in info.files][:1] == ["model.pb"] and len(info.files) >= 2
    for m in card["models"]:
        assert (MODEL_DIR / m["file"]).stat().st_size <= 5 * 1024 * 1024
        for key in ("rmse_energy_train_meV_per_atom", "rmse_energy_test_meV_per_atom",
                    "rmse_force_train_meV_per_A", "rmse_force_test_meV_per_A"):
            assert np.isfinite(m[key]) and m[key] >= 0
    assert (MODEL_DIR / "make_model.py").is_file() and (MODEL_DIR / "CARD.md").is_file()
    assert "RMSE" in info.describe()


def test_load_specs():
    pytest.importorskip("deepmd")
    from rotorlab.potentials.deepmd import DeePMD, DeePMDEnsemble
    from rotorlab.potentials.reference import ReferenceForceField

    atoms = materials.get("LiBH4", (2, 2, 2), variant="P63mc-12")
    ff = load(str(MODEL_DIR / "model.pb"), atoms=atoms)
    assert isinstance(ff, DeePMD) and ff.n_atoms == len(atoms)
    ens = load([MODEL_DIR / "model.pb", MODEL_DIR / "model-seed2.pb"], symbols=atoms, k=4)
    assert isinstance(ens, DeePMDEnsemble) and ens.k == 4
    fid = load("tiny-LiBH4", atoms=atoms)
    assert isinstance(fid, DeePMD) and fid.path.name == "model.pb"
    assert isinstance(load("tiny-LiBH4", symbols=atoms, ensemble=True), DeePMDEnsemble)
    assert isinstance(load(MODEL_DIR, atoms=atoms), DeePMD)
    assert load(ff) is ff
    ref = load("reference", atoms=atoms)
    assert isinstance(ref, ReferenceForceField)
    e_ref = ref.compute(atoms.positions, atoms.cell.array)[0]
    assert np.isfinite(e_ref)


def test_load_errors(tmp_path, material_without_model):
    with pytest.raises(FileNotFoundError, match="absent.pb"):
        load(str(tmp_path / "absent.pb"))
    with pytest.raises(ValueError, match="unrecognised potential 'nonsense'"):
        load("nonsense")
    with pytest.raises(ValueError, match="atoms=atoms"):
        load("reference")
    with pytest.raises(NoBundledModel):
        load("bundled", material=material_without_model)
    with pytest.raises(ValueError, match="material="):
        load("bundled")
    with pytest.raises(ValueError, match="cannot make a force field"):
        load(42)


# --------------------------------------------------------------------------------------
# the open registry: kinds by name, both directions, checkpoint restore
# --------------------------------------------------------------------------------------

from rotorlab.potentials import registry as reg  # noqa: E402


def test_registered_kind_resolves_and_runs_through_simulation(tmp_path):
    from rotorlab.md.simulation import Simulation
    from rotorlab.md.testing import tetrahedral_salt
    from rotorlab.potentials.reference import ReferenceForceField

    calls = []

    def factory(arg, *, topology=None, positions=None, cell=None, **ctx):
        calls.append(arg)
        ff = ReferenceForceField.from_topology(topology, positions, cell)
        ff.spec = f"scaledref:{arg}"
        return ff

    reg.register("scaledref", factory, description="test kind")
    try:
        assert "scaledref" in reg.kinds()
        with pytest.raises(ValueError, match="already registered"):
            reg.register("scaledref", factory)
        atoms, topo = tetrahedral_salt(a=6.4, seed=1)
        sim = Simulation(atoms, "scaledref:1.0", temperature=300, timestep=0.5, steps=6,
                         frame_interval=3, seed=1, topology=topo, progress=False,
                         store=tmp_path / "k.zarr")
        sim.run()
        assert calls == ["1.0"]
        assert sim.spec.potential == "scaledref:1.0"
        assert open_store_attrs(tmp_path / "k.zarr")["potential_spec"] == "scaledref:1.0"
        # the reference force field's state is checkpointed, so resume needs no factory call
        again = Simulation.resume(tmp_path / "k.zarr", steps=3, progress=False)
        again.run()
        assert calls == ["1.0"] and again.step == 9
    finally:
        reg.unregister("scaledref")
    with pytest.raises(reg.PotentialSpecError, match="registered kind"):
        reg.resolve("scaledref:1.0", symbols=["Li"])


def open_store_attrs(path):
    from rotorlab.store import open_store

    return open_store(path).attrs


def test_to_spec_round_trips_every_builtin_kind():
    pytest.importorskip("deepmd")
    atoms = materials.get("LiBH4", (1, 1, 1))
    ref = reg.resolve("reference", atoms=atoms)
    assert reg.to_spec(ref) == "reference"
    ff = reg.resolve(str(MODEL_DIR / "model.pb"), atoms=atoms)
    assert reg.to_spec(ff) == str((MODEL_DIR / "model.pb").resolve())
    assert reg.resolve(reg.to_spec(ff), atoms=atoms).version == ff.version
    ens = reg.resolve(f"{MODEL_DIR / 'model.pb'},{MODEL_DIR / 'model-seed2.pb'}", atoms=atoms)
    spec = reg.to_spec(ens)
    assert isinstance(spec, tuple) and len(spec) == 2
    assert reg.resolve(spec, atoms=atoms).id == ens.id
    lj = reg.resolve("ase:ase.calculators.lj:LennardJones", atoms=atoms)
    assert reg.to_spec(lj) == "ase:ase.calculators.lj:LennardJones"
    e, f = lj.compute(atoms.positions, atoms.cell.array)[:2]
    assert np.isfinite(e) and f.shape == (len(atoms), 3)
    assert reg.to_spec(object()) is None


def test_resolve_errors_are_clear(tmp_path):
    with pytest.raises(reg.PotentialSpecError, match="ase:MODULE:FUNCTION"):
        reg.resolve("ase:nofunction", symbols=["Li"])
    with pytest.raises(reg.PotentialSpecError, match="cannot import"):
        reg.resolve("ase:no_such_module_xyz:f", symbols=["Li"])
    with pytest.raises(FileNotFoundError, match="ensemble member"):
        reg.resolve(f"{MODEL_DIR / 'model.pb'},{tmp_path / 'gone.pb'}", symbols=["Li"])
    with pytest.raises(reg.PotentialSpecError, match="bundled:compressed"):
        reg.resolve("bundled:weird", material="LiBH4", symbols=["Li"])
    with pytest.raises(ValueError, match="unknown kind 'evil'"):
        reg.restore("reference", {}, {"kind": "evil", "class": "os:system"})
    with pytest.raises(ValueError, match="pass it again"):
        reg.restore("custom:MyFF", None, None)


@pytest.mark.slow
def test_compressed_model_is_made_once_on_first_use(tmp_path, monkeypatch):
    """Cards that do not ship the compressed copy (size) give the dp compress settings; the
    copy is made on first use into a cache keyed by the model's hash, then reused."""
    pytest.importorskip("deepmd")
    import shutil

    d = tmp_path / "m"
    d.mkdir()
    shutil.copy(MODEL_DIR / "model.pb", d / "model.pb")
    shutil.copy(MODEL_DIR / "model-seed2.pb", d / "model-seed2.pb")
    card = json.loads((MODEL_DIR / "card.json").read_text())
    card["models"] = [{"file": "model.pb"}, {"file": "model-seed2.pb"}]
    card["compression"] = {"from": "model.pb", "step": 0.05}
    (d / "card.json").write_text(json.dumps(card))
    (d / "README.md").write_text("# a card written as README.md\n")
    monkeypatch.setenv("ROTORLAB_CACHE", str(tmp_path / "cache"))
    from rotorlab.potentials.registry import _load_dir

    info_ff = _load_dir(d, None, {"compressed": True})
    made = sorted((tmp_path / "cache" / "models").glob("*.pb"))
    assert len(made) == 1 and info_ff.path == made[0]
    mtime = made[0].stat().st_mtime_ns
    atoms = materials.get("LiBH4", (2, 2, 2), variant="P63mc-12")
    ref = _load_dir(d, atoms, {})
    comp = _load_dir(d, atoms, {"compressed": True})
    assert made[0].stat().st_mtime_ns == mtime                    # reused, not remade
    e0, f0 = ref.compute(atoms.positions, atoms.cell.array)[:2]
    e1, f1 = comp.compute(atoms.positions, atoms.cell.array)[:2]
    assert abs(e1 - e0) / len(atoms) < 1e-3 and np.abs(f1 - f0).max() < 0.05
