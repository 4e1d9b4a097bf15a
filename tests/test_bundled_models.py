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
