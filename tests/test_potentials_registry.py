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


@pytest.mark.parametrize("name", materials.names())
def test_no_material_has_a_bundled_model_yet(name):
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


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.pb"):
        load(str(tmp_path / "absent.pb"))
    with pytest.raises(ValueError, match="unrecognised potential 'nonsense'"):
        load("nonsense")
    with pytest.raises(ValueError, match="atoms=atoms"):
        load("reference")
    with pytest.raises(NoBundledModel):
        load("bundled", material="LiBH4")
    with pytest.raises(ValueError, match="material="):
        load("bundled")
    with pytest.raises(ValueError, match="cannot make a force field"):
        load(42)
