"""Bundled DeePMD models: every catalog entry that names one ships it, with a complete card,
within the size limit, and the model is a physical force field on its own material
(finite, forces the gradient of the energy, an energy-conserving and bonded short run).

Materials without a bundled model are checked in ``test_potentials_registry.py``.
"""

import numpy as np
import pytest

from rotorlab import materials
from rotorlab.analysis._data import read_block
from rotorlab.geometry import minimum_image
from rotorlab.md.simulation import Simulation
from rotorlab.potentials.registry import bundled, has_bundled
from rotorlab.store import open_store

WITH = [m for m in materials.names() if has_bundled(m)]

#: card keys the model card must carry (issue: model card layout)
CARD_KEYS = ("teacher", "type_map", "versions", "data", "training", "models",
             "energy_rmse_test_meV_atom", "force_rmse_test_meV_A", "energy_rmse_train_meV_atom",
             "force_rmse_train_meV_A", "ensemble", "cross_check", "inference_ms_per_step",
             "exploration", "sanity", "not_measured", "wall_time_s", "stop_reason")


def test_some_material_has_a_bundled_model():
    assert "Li3PS4" in WITH


@pytest.mark.parametrize("name", WITH)
def test_card_is_complete_and_every_file_ships(name):
    info = bundled(name)
    card = info.card
    missing = [k for k in CARD_KEYS if k not in card]
    assert not missing, missing
    assert card["material"] == name and info.material == name
    # the measured errors are numbers (a missing one would be in not_measured instead)
    assert np.isfinite(card["force_rmse_test_meV_A"]) and card["force_rmse_test_meV_A"] > 0
    assert np.isfinite(card["energy_rmse_test_meV_atom"])
    assert info.files[0].name == "model.pb"
    assert len(info.files) >= 1 + card["ensemble"]["members"]  # production + ensemble
    assert (info.directory / "data.tar.xz").is_file()
    assert (info.directory / "README.md").read_text().strip()
    size = sum(p.stat().st_size for p in info.directory.iterdir() if p.is_file())
    assert size <= 20 * 2**20, f"{name}: {size / 2**20:.1f} MB in git (limit 20 MB)"
    # the elements of the material are in the model's type map
    species = set(materials.get(name, (1, 1, 1)).get_chemical_symbols())
    assert species <= set(card["type_map"])


@pytest.mark.parametrize("name", WITH)
def test_forces_are_the_negative_energy_gradient(name):
    atoms = materials.get(name, (1, 1, 1))
    ff = bundled(name).load(atoms.get_chemical_symbols())
    rng = np.random.default_rng(0)
    pos = atoms.get_positions() + rng.normal(0, 0.03, size=(len(atoms), 3))
    cell = np.asarray(atoms.get_cell())
    e0, f0 = ff.compute(pos, cell)[:2]
    assert np.isfinite(e0) and np.all(np.isfinite(f0))
    # translation invariance: the total force vanishes
    assert np.abs(f0.sum(axis=0)).max() < 1e-3 * max(1.0, np.abs(f0).max() * len(atoms) ** 0.5)
    h = 1e-3
    for i, k in [(0, 0), (len(atoms) // 2, 1), (len(atoms) - 1, 2)]:
        p1, p2 = pos.copy(), pos.copy()
        p1[i, k] += h
        p2[i, k] -= h
        fd = -(ff.compute(p1, cell)[0] - ff.compute(p2, cell)[0]) / (2 * h)
        assert fd == pytest.approx(f0[i, k], abs=2e-3 + 2e-3 * abs(f0[i, k]))


@pytest.mark.slow
@pytest.mark.parametrize("name", WITH)
def test_short_nve_run_conserves_energy_and_keeps_anions_bonded(name, tmp_path):
    card = bundled(name).card
    T = float(card["sanity"]["uc_md"]["temperature_K"])  # the card's sanity temperature
    # hydrogen vibrates at ~70 THz: 0.5 fs (the study's step for the borohydrides)
    dt = 0.5 if "H" in card["type_map"] else 1.0
    sim = Simulation(name, potential="bundled", mode="UC", temperature=T, timestep=dt,
                     thermostat="nve", store=tmp_path / "s.zarr", seed=3, frame_interval=10,
                     steps=400, progress=False)
    sim.run()
    sim.close()
    ds = open_store(tmp_path / "s.zarr")
    etot = ds["conserved_energy"].values
    n = ds.sizes["atom"]
    drift = abs(etot[-1] - etot[0]) / n
    assert drift < 2e-3, f"NVE energy drift {drift * 1e3:.2f} meV/atom over {400 * dt:.0f} fs"
    # every anion keeps its bonds: the rotor atoms stay within 1.3x the start's largest bond
    rid = ds["rotor_id"].values
    x = read_block(ds, "positions", slice(0, ds.sizes["frame"]))
    cell = ds["cell"].values
    for r in np.unique(rid[rid >= 0])[:8]:
        idx = np.flatnonzero(rid == r)
        d0 = np.linalg.norm(minimum_image(x[0, idx[1:]] - x[0, idx[0]], cell[0]), axis=-1)
        d1 = np.linalg.norm(minimum_image(x[-1, idx[1:]] - x[-1, idx[0]], cell[-1]), axis=-1)
        assert d1.max() < 1.3 * d0.max() + 0.3, (r, d0, d1)


def _card(**over):
    good = {"force_rmse_test_meV_A": 35.0, "energy_rmse_test_meV_atom": 0.8,
            "sanity": {"uc_md": {"temperature_K": 900.0, "length_ps": 20.0,
                                 "anions_bonded": True, "exploded": None,
                                 "max_bond_A": {"PS4": 2.4}, "bond_cutoff_A": {"PS4": 2.76},
                                 "msd": {"slope": 0.98}},
                       "vs_teacher": {"rdf": {"teacher_vs_student": 0.1,
                                              "student_vs_student": 0.2},
                                      "vacf": {"teacher_vs_student": 0.2,
                                               "student_vs_student": 0.2}}}}
    for k, v in over.items():
        if k in ("uc_md", "vs_teacher"):
            good["sanity"][k].update(v)
        else:
            good[k] = v
    from rotorlab.potentials.registry import BundledModel
    from pathlib import Path

    return BundledModel(id="x", directory=Path("."), card=good)


def test_caveats_name_each_missed_target_and_nothing_else():
    assert _card().caveats() == []
    assert _card(force_rmse_test_meV_A=47.8).caveats() == [
        "held-out force RMSE 47.8 meV/Å against the teacher (aim ≤ 40; under the limit of 60)"]
    assert "above the limit" in _card(force_rmse_test_meV_A=61.0).caveats()[0]
    assert "energy RMSE 3.40" in _card(energy_rmse_test_meV_atom=3.4).caveats()[0]
    bond = _card(uc_md={"anions_bonded": False, "max_bond_A": {"PS4": 2.9}}).caveats()
    assert bond == ["an anion bond stretched past its cutoff in 20 ps of UC MD at 900 K "
                    "(PS4 2.90 Å > 2.76)"]  # a card from before the connectivity criterion
    apart = _card(uc_md={"anions_bonded": False, "anion_criterion": "connected",
                         "broken_anions_max": 2, "broken_frames": 3, "n_frames": 1001,
                         "max_bond_A": {"B10H10 B-B": 2.9, "B10H10 B-H": 1.3},
                         "bond_cutoff_A": {"B10H10 B-B": 2.18, "B10H10 B-H": 1.57}}).caveats()
    assert apart == ["2 anions came apart (bonds past their cutoff left atoms unconnected) "
                     "in 3 of 1001 frames in 20 ps of UC MD at 900 K (B10H10 B-B 2.90 Å > "
                     "2.18)"]
    # a cage edge past its cutoff with every anion still connected is no caveat
    assert _card(uc_md={"anions_bonded": True, "anion_criterion": "connected",
                        "bonds_stretched": True, "max_bond_A": {"B10H10 B-B": 2.29},
                        "bond_cutoff_A": {"B10H10 B-B": 2.18}}).caveats() == []
    assert "slope 0.40" in _card(uc_md={"msd": {"slope": 0.4}}).caveats()[0]
    assert "exploded" in _card(uc_md={"exploded": "T = 1e5 K at step 12"}).caveats()[0]
    # further runs (other temperatures, seeds): explosions and broken anions are caveats,
    # a slow MSD below the highest temperature is not
    runs = _card()
    runs.card["sanity"]["uc_md_runs"] = [
        {"temperature_K": 550.0, "length_ps": 8.06, "seed": 0, "anions_bonded": False,
         "anion_criterion": "connected", "broken_anions_max": 4, "broken_frames": 677,
         "n_frames": 807, "max_bond_A": {"BH4": 6.74}, "bond_cutoff_A": {"BH4": 1.495},
         "exploded": "at step 16140 (8.07 ps): atoms closer than 0.5 Å",
         "msd": {"slope": -0.02}},
        {"temperature_K": 800.0, "length_ps": 20.0, "seed": 1, "anions_bonded": True,
         "exploded": None, "msd": {"slope": 0.1}}]
    assert runs.caveats() == [
        "the UC sanity run at 550 K (seed 0) exploded (at step 16140 (8.07 ps): atoms closer than 0.5 Å)",
        "4 anions came apart (bonds past their cutoff left atoms unconnected) in 677 of 807 "
        "frames in 8.06 ps of UC MD at 550 K (seed 0) (BH4 6.74 Å > 1.50)"]
    far = _card(vs_teacher={"vacf": {"teacher_vs_student": 0.5, "student_vs_student": 0.2}})
    assert far.caveats() == ["student vs teacher VACF distance 0.50 beyond the noise floor 0.20"]
    # a test-fixture card (no rotorlab-train keys) has none
    from rotorlab.potentials.registry import BundledModel, model_info

    assert BundledModel(id="t", directory=model_info("tiny-LiBH4").directory,
                        card=model_info("tiny-LiBH4").card).caveats() == []


@pytest.mark.parametrize("name", WITH)
def test_using_a_bundled_model_warns_once_with_its_card_caveats(name, recwarn):
    import warnings

    from rotorlab.potentials import registry

    info = bundled(name)
    registry._WARNED.discard(info.id)
    atoms = materials.get(name, (1, 1, 1))
    atoms.info["material"] = name
    registry.resolve("bundled", atoms=atoms)
    got = [w for w in recwarn if issubclass(w.category, registry.BundledModelCaveat)]
    if info.caveats():
        assert len(got) == 1 and all(c in str(got[0].message) for c in info.caveats())
    else:
        assert not got
    with warnings.catch_warnings():
        warnings.simplefilter("error", registry.BundledModelCaveat)
        registry.resolve("bundled", atoms=atoms)  # once per process
