"""RunSpec: validation naming the field, JSON/YAML round trips, deterministic store names,
the store keeps the spec, and a spec written by the CLI reproduces the run bit for bit."""

import json

import numpy as np
import pytest

from rotorlab.cli import main
from rotorlab.md.simulation import Simulation
from rotorlab.spec import RunSpec, SpecError
from rotorlab.store import open_store


def _spec(**kw):
    base = dict(material="LiBH4", size=(1, 1, 1), mode="RC", temperature=400.0,
                equilibration_steps=10, steps=40, frame_interval=5, seed=7)
    base.update(kw)
    return RunSpec(**base)


def test_round_trips_json_yaml_and_files(tmp_path):
    spec = _spec(mode={"BH4": "rtc"}, potential="a.pb,b.pb", rotors="BH4")
    assert spec.mode == (("BH4", "RTC"),) and spec.potential == ("a.pb", "b.pb")
    assert spec.rotors == ("BH4",)
    for text, back in ((spec.to_json(), RunSpec.from_json),
                       (spec.to_yaml(), RunSpec.from_yaml)):
        assert back(text) == spec
    for name in ("s.json", "s.yaml"):
        assert RunSpec.load(spec.save(tmp_path / name)) == spec
    assert RunSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_normalisation_and_equality():
    a = _spec(material="libh4", mode="rc", thermostat="Nose-Hoover", size=[1, 1, 1])
    b = _spec()
    assert a == b and a.material == "LiBH4" and a.thermostat == "nhc"
    assert a.store_name == b.store_name


def test_store_name_is_deterministic_and_distinguishes_runs():
    a = _spec()
    assert a.store_name == _spec().store_name
    assert a.store_name.startswith("LiBH4-1x1x1-RC-400K-r0-") and a.store_name.endswith(".zarr")
    names = {a.store_name, _spec(steps=41).store_name, _spec(seed=8).store_name,
             _spec(replica=1).store_name, _spec(potential="x.pb").store_name,
             _spec(mode="UC").store_name}
    assert len(names) == 6


@pytest.mark.parametrize("kw,field,text", [
    ({"material": None}, "material", "catalog material"),
    ({"material": "Unobtainium"}, "material", "unknown material"),
    ({"temperature": 0.0}, "temperature", "> 0 K"),
    ({"temperature": -5}, "temperature", "> 0 K"),
    ({"temperature": float("nan")}, "temperature", "finite"),
    ({"temperature": None}, "temperature", "required"),
    ({"timestep": 1e6}, "timestep", r"\(0, 20\]"),
    ({"timestep": 0}, "timestep", r"\(0, 20\]"),
    ({"steps": 1.5}, "steps", "whole number"),
    ({"steps": -1}, "steps", ">= 0"),
    ({"steps": True}, "steps", "whole number"),
    ({"equilibration_steps": "ten"}, "equilibration_steps", "whole number"),
    ({"frame_interval": 0}, "frame_interval", ">= 1"),
    ({"checkpoint_interval": 0}, "checkpoint_interval", ">= 1"),
    ({"mode": "XC"}, "mode", "unknown constraint mode"),
    ({"mode": {"BH4": "ZZ"}}, "mode", "unknown constraint mode"),
    ({"mode": {}}, "mode", "unknown constraint mode|empty"),
    ({"thermostat": "berendsen"}, "thermostat", "unknown thermostat"),
    ({"thermostat_tau": 0}, "thermostat_tau", "> 0"),
    ({"thermostat_chain": 0}, "thermostat_chain", ">= 1"),
    ({"size": "big"}, "size", "quick"),
    ({"size": (2, 2)}, "size", "three"),
    ({"size": (2, 0, 1)}, "size", ">= 1"),
    ({"potential": None}, "potential", "no potential"),
    ({"potential": ""}, "potential", "empty"),
    ({"seed": -1}, "seed", ">= 0"),
    ({"replica": -1}, "replica", ">= 0"),
    ({"relax": "yes"}, "relax", "true or false"),
    ({"explosion_factor": 1.0}, "explosion_factor", "> 1"),
    ({"min_distance": -1}, "min_distance", ">= 0"),
    ({"chunk_frames": 0}, "chunk_frames", ">= 1"),
    ({"variant": "x", "structure": "a.cif"}, "variant", "cannot be combined"),
    ({"mode": {"BH4": "RC"}, "constrain_species": "BH4"}, "constrain_species", "cannot"),
])
def test_invalid_specs_fail_at_construction_naming_the_field(kw, field, text):
    with pytest.raises(SpecError, match=rf"RunSpec\.{field}: .*({text})"):
        _spec(**kw)


def test_nve_may_start_at_zero_kelvin_and_unknown_keys_are_named():
    assert _spec(thermostat="nve", temperature=0).temperature == 0.0
    with pytest.raises(SpecError, match="unknown field.*temprature"):
        RunSpec.from_dict({**_spec().to_dict(), "temprature": 300})
    with pytest.raises(SpecError, match="newer rotorlab"):
        RunSpec.from_dict({**_spec().to_dict(), "version": 99})


def test_warnings_for_surprising_but_valid_specs():
    assert any("only the first frame" in w for w in _spec(steps=10, frame_interval=50).warnings())
    assert _spec().warnings() == []


def test_supercell_limit_is_checked_before_building():
    spec = _spec(size=(100, 100, 100))
    with pytest.raises(SpecError, match=r"RunSpec\.size: .*atoms \(limit 50000"):
        spec.build_structure()
    assert len(_spec(size=(2, 1, 1)).build_structure(max_atoms=10**6)) > 0


def test_store_keeps_the_resolved_spec_and_resume_rebuilds_it(tmp_path):
    spec = _spec(seed=None)
    sim = Simulation.from_spec(spec, store=tmp_path / "a.zarr", progress=False)
    assert sim.spec.seed is not None and sim.spec.timestep == 0.5  # filled in
    sim.run()
    ds = open_store(tmp_path / "a.zarr")
    stored = RunSpec.from_dict(ds.attrs["run_spec"])
    assert stored == sim.spec and ds.attrs["store_name"] == spec.store_name  # as given
    again = Simulation.resume(tmp_path / "a.zarr", progress=False)
    assert again.spec == sim.spec
    # the topology is rebuilt from the checkpoint, identical to the detected one
    for name in ("rotor_id", "rotor_ptr", "rotor_atoms", "reference", "orientation_atoms",
                 "bonds", "mobile", "masses"):
        np.testing.assert_array_equal(getattr(again.topology, name),
                                      getattr(sim.topology, name), err_msg=name)
    assert list(again.topology.rotor_kind) == list(sim.topology.rotor_kind)


def _frames(path):
    ds = open_store(path)
    return {k: ds[k].values for k in ("positions", "velocities", "conserved_energy",
                                      "temperature", "step", "time")}


def test_cli_spec_reproduces_the_run_bit_for_bit_from_python(tmp_path, capsys):
    cli_store = tmp_path / "cli.zarr"
    spec_file = tmp_path / "spec.yaml"
    assert main(["run", "LiBH4", "--size", "1", "1", "1", "--mode", "RC", "-T", "450",
                 "--steps", "30", "--equilibration", "6", "--frame-interval", "3",
                 "--thermostat", "csvr", "-q", "-o", str(cli_store),
                 "--write-spec", str(spec_file)]) == 0
    spec = RunSpec.load(spec_file)
    assert spec.seed is not None                  # drawn by the CLI run and recorded
    assert RunSpec.from_dict(open_store(cli_store).attrs["run_spec"]) == spec
    Simulation.from_spec(spec, store=tmp_path / "py.zarr", progress=False).run()
    got, want = _frames(tmp_path / "py.zarr"), _frames(cli_store)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    # and `run --spec` runs the same file again
    assert main(["run", "--spec", str(spec_file), "-q", "-o", str(tmp_path / "again.zarr")]) == 0
    np.testing.assert_array_equal(_frames(tmp_path / "again.zarr")["positions"],
                                  want["positions"])


def test_cli_spec_cannot_be_mixed_with_run_options(tmp_path, capsys):
    f = _spec().save(tmp_path / "s.json")
    assert main(["run", "--spec", str(f), "-T", "500", "-o", str(tmp_path / "x.zarr")]) == 2
    err = capsys.readouterr().err
    assert "--temperature" in err and "Traceback" not in err
    assert not (tmp_path / "x.zarr").exists()


def test_cli_default_store_name_is_the_spec_name(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "LiBH4", "--size", "1", "1", "1", "-T", "300", "--steps", "4",
                 "--frame-interval", "2", "--seed", "3", "-q"]) == 0
    expected = RunSpec(material="LiBH4", size=(1, 1, 1), temperature=300, steps=4,
                       frame_interval=2, seed=3).store_name
    assert (tmp_path / expected).is_dir()


def test_in_memory_structure_needs_the_structure_again(tmp_path):
    from rotorlab.md.testing import tetrahedral_salt

    atoms, topo = tetrahedral_salt(a=6.4, seed=1)
    sim = Simulation(atoms, "reference", temperature=300, timestep=0.5, steps=4, seed=1,
                     frame_interval=2, topology=topo, progress=False)
    assert sim.spec.structure.startswith("memory:")
    with pytest.raises(SpecError, match="in-memory structure"):
        Simulation.from_spec(sim.spec)
    again = Simulation.from_spec(sim.spec, structure=atoms, topology=topo, progress=False)
    np.testing.assert_array_equal(again.integrator.v, sim.integrator.v)
