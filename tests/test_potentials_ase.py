"""Any ASE calculator as a force field (EMT here)."""

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from rotorlab.potentials.ase import ASECalculator


@pytest.fixture
def cu():
    a = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 2, 2))
    a.positions += np.random.default_rng(2).normal(0.0, 0.05, a.positions.shape)
    return a


def test_matches_ase_directly(cu):
    ff = ASECalculator(EMT(), cu)
    e, f, w = ff.compute(cu.positions, cu.cell.array)
    ref = cu.copy()
    ref.calc = EMT()
    assert e == pytest.approx(ref.get_potential_energy(), abs=1e-12)
    np.testing.assert_allclose(f, ref.get_forces(), atol=1e-12)
    np.testing.assert_allclose(w, -ref.get_stress(voigt=False) * ref.get_volume(), atol=1e-10)
    assert ff.id == "ase:EMT" and ff.version != "" and ff.type_names is None


def test_forces_are_minus_gradient_and_updates_follow_positions(cu):
    ff = ASECalculator(EMT(), cu.get_chemical_symbols())
    x0, cell = cu.positions.copy(), cu.cell.array
    _, f, _ = ff.compute(x0, cell)
    h = 1e-5
    for i, k in ((0, 0), (3, 1), (17, 2)):
        x = x0.copy()
        x[i, k] += h
        ep = ff.compute(x, cell)[0]
        x[i, k] -= 2 * h
        em = ff.compute(x, cell)[0]
        assert -(ep - em) / (2 * h) == pytest.approx(f[i, k], abs=1e-6)
    # a new cell is taken
    e_strained = ff.compute(x0 * 1.01, cell * 1.01)[0]
    assert e_strained != pytest.approx(ff.compute(x0, cell)[0])


def test_virial_options_and_errors(cu):
    ff = ASECalculator(EMT(), cu, virial=False)
    assert ff.compute(cu.positions, cu.cell.array)[2] is None
    unbound = ASECalculator(EMT())
    with pytest.raises(RuntimeError, match="bind"):
        unbound.compute(cu.positions, cu.cell.array)
    with pytest.raises(ValueError, match="32 atoms"):
        ASECalculator(EMT(), cu).compute(cu.positions[:3], cu.cell.array)
    with pytest.raises(TypeError, match="ASE calculator"):
        ASECalculator(object())


def test_deepmd_ase_calculator_through_wrapper_matches_direct():
    pytest.importorskip("deepmd")
    from pathlib import Path

    from deepmd.calculator import DP

    from rotorlab import materials
    from rotorlab.potentials.deepmd import DeePMD

    model = Path(__file__).resolve().parents[1] / "datasets/models/tiny-LiBH4/model.pb"
    atoms = materials.get("LiBH4", (2, 2, 2), variant="P63mc-12")
    e0, f0, w0 = DeePMD(model, atoms).compute(atoms.positions, atoms.cell.array)
    e1, f1, w1 = ASECalculator(DP(str(model)), atoms).compute(atoms.positions, atoms.cell.array)
    assert e1 == pytest.approx(e0, abs=1e-8)
    np.testing.assert_allclose(f1, f0, atol=1e-9)
    # DP's stress is the symmetrised virial
    np.testing.assert_allclose(w1, 0.5 * (w0 + w0.T), atol=1e-8)
