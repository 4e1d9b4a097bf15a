"""relax() through ASE optimizers, and the run/resume/relax CLI functions."""

import argparse

import ase.io
import numpy as np
import pytest

from rotorlab.md.cli_commands import add_run_parsers
from rotorlab.md.relax import ForceFieldCalculator, RelaxationError, relax
from rotorlab.md.testing import tetrahedral_salt
from rotorlab.potentials import ReferenceForceField
from rotorlab.store import open_store


def _salt():
    atoms, topo = tetrahedral_salt(a=6.4, seed=2, shear=0.05)
    ff = ReferenceForceField.from_topology(topo, atoms.positions, atoms.cell.array, cutoff=6.0)
    return atoms, ff


def test_relax_positions_and_cell():
    atoms, ff = _salt()
    out = relax(atoms, ff, cell=True, fmax=0.02, steps=2000)
    assert out.info["relax_converged"]
    e, f, w = ff.compute(out.positions, out.cell.array)
    assert np.abs(f).max() < 0.03
    # FrechetCellFilter's cell forces are virial / N (exp_cell_factor = N atoms)
    assert np.abs(w).max() / len(atoms) < 0.03
    assert e < ff.compute(atoms.positions, atoms.cell.array)[0]
    assert out.get_volume() != pytest.approx(atoms.get_volume(), rel=1e-6)


def test_relax_not_converged_raises_with_structure():
    atoms, ff = _salt()
    with pytest.raises(RelaxationError, match="did not converge") as ei:
        relax(atoms, ff, steps=2, fmax=1e-4)
    assert ei.value.atoms is not None and len(ei.value.atoms) == len(atoms)


def test_calculator_stress_sign_matches_finite_difference():
    atoms, ff = _salt()
    atoms.calc = ForceFieldCalculator(ff)
    s = atoms.get_stress(voigt=False)
    h = 1e-5
    eps = np.zeros((3, 3))
    eps[0, 0] = h
    e = []
    for sign in (1, -1):
        a = atoms.copy()
        a.set_cell(atoms.cell.array @ (np.eye(3) + sign * eps), scale_atoms=True)
        e.append(ff.compute(a.positions, a.cell.array)[0])
    assert s[0, 0] == pytest.approx((e[0] - e[1]) / (2 * h) / atoms.get_volume(), rel=1e-5)


def _parser():
    p = argparse.ArgumentParser()
    add_run_parsers(p.add_subparsers(dest="command", required=True))
    return p


def test_cli_run_resume_relax(tmp_path):
    pytest.importorskip("rotorlab.materials")
    p = _parser()
    store = tmp_path / "run.zarr"
    args = p.parse_args(["run", "LiBH4", "--mode", "RC", "--temperature", "500", "--steps",
                         "20", "--frame-interval", "10", "--seed", "1", "-q", "-o", str(store)])
    assert args.func(args) == 0
    assert open_store(store).sizes["frame"] == 3
    args = p.parse_args(["resume", str(store), "--steps", "10", "-q"])
    assert args.func(args) == 0
    assert open_store(store).sizes["frame"] == 4
    out = tmp_path / "relaxed.extxyz"
    args = p.parse_args(["relax", "Na4P2S6", "--fixed-cell", "--steps", "300", "--fmax",
                         "0.1", "-o", str(out)])
    assert args.func(args) == 0
    assert len(ase.io.read(out)) > 0
    with pytest.raises(ValueError, match="unknown constraint mode"):
        a = p.parse_args(["run", "LiBH4", "--mode", "XYZ", "-T", "300", "--steps", "1", "-o",
                          str(tmp_path / "bad.zarr")])
        a.func(a)
    with pytest.raises(ValueError, match="--size"):
        a = p.parse_args(["run", "LiBH4", "--size", "2", "2", "-T", "300", "--steps", "1",
                          "-o", str(tmp_path / "bad2.zarr")])
        a.func(a)
