"""Training presets: every catalog material has one, consistent with its catalog entry and
with the cell ``rotorlab train`` starts from (``materials.unit_cell``)."""

import numpy as np
import pytest

from rotorlab import materials
from rotorlab.training.presets import PRESETS, settings_for


@pytest.mark.parametrize("name", materials.names())
def test_preset_matches_the_catalog(name):
    assert name in PRESETS, f"{name} has no training preset"
    s = settings_for(name)
    mat = materials.catalog(name)
    unit = materials.unit_cell(name)
    # the type map covers exactly the material's elements
    assert set(s.type_map) == set(mat.formula) == set(unit.get_chemical_symbols())
    # the explored extremes are the lowest and highest temperatures of the study's runs
    study = sorted({t for ts in mat.temperatures_study_runs.values() for t in ts})
    assert min(s.temperatures) == pytest.approx(study[0])
    assert max(s.temperatures) == pytest.approx(study[-1])
    # the held-out temperature lies strictly between two study temperatures (not trained on)
    assert min(s.temperatures) < s.test_temperature < max(s.temperatures)
    assert s.test_temperature not in s.temperatures
    assert s.timestep == pytest.approx(mat.timestep)
    n_unit = len(unit)
    train = [n_unit * int(np.prod(sc)) for sc in s.train_supercells]
    test = n_unit * int(np.prod(s.test_supercell or s.large_supercell or s.train_supercells[0]))
    # training cells big enough to hold a rotor with its neighbours, test cell not smaller
    assert min(train) >= 24, (name, train)
    assert test >= max(train), (name, train, test)
    # no cell edge below the model cut-off radius in a training cell (the teacher and the
    # student both see periodic images, but a shorter edge would correlate a rotor with
    # itself)
    for sc in s.train_supercells:
        lengths = unit.cell.lengths() * np.asarray(sc)
        assert lengths.min() > s.rcut * 0.8, (name, sc, lengths)
