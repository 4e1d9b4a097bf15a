"""Registry of analyses: requirements and reasons, registration, a custom analysis through the CLI."""

import textwrap

import numpy as np
import pytest
import xarray as xr

from analysis_synthetic import brownian, every_analysis, rotor_jumps, write_store
from rotorlab.analysis import available
from rotorlab.analysis import registry as R
from rotorlab.analysis.base import Analyzer, Result, scalar


class MeanTemperature(Analyzer):
    """Mean instantaneous temperature (a third-party style analysis)."""

    mean = Result("K", "mean temperature, 0-d")

    def __init__(self, offset: float = 0.0):
        self.offset = offset

    def compute(self, ds):
        self._set(mean=scalar(float(ds["temperature"].mean()) + self.offset, "K"))


@pytest.fixture
def custom():
    spec = R.register("mean_temperature", MeanTemperature, description="mean instantaneous temperature",
                      requires=("temperature",), returns={"mean": "K"},
                      summary=lambda a: {"mean_temperature": a.mean})
    yield spec
    R.unregister("mean_temperature")


def _reasons(ds):
    return {a.name: a.reason for a in available(ds)}


def test_everything_applicable_on_the_full_synthetic_store():
    av = available(every_analysis(n_frames=200))
    assert [a.name for a in av] == R.names()
    assert all(a.applicable and a.reason == "" for a in av), [a for a in av if not a.applicable]


def test_reasons_name_what_is_missing():
    ds = brownian(n_frames=30, n_ions=4)  # no velocities, no rotors, 30 frames
    r = _reasons(ds)
    assert "velocities" in r["dos"]
    for n in ("reorientation", "orientation_acf", "rotational_free_energy", "anion_free_energy", "p2s6_dihedral"):
        assert "no rotors" in r[n]
    assert r["transport"] == "" and r["rdf"] == "" and r["hops"] == ""
    bh4, _ = rotor_jumps(n_rotors=1, n_frames=50, jumps_per_rotor=(0,))
    assert "no P2S6 rotor" in _reasons(bh4)["p2s6_dihedral"] and "BH4" in _reasons(bh4)["p2s6_dihedral"]
    assert _reasons(bh4)["reorientation"] == ""
    short = brownian(n_frames=10, n_ions=4)
    assert "too few frames: 10 (needs >= 16)" in _reasons(short)["transport"]
    nomob = brownian(n_frames=30, n_ions=4)
    del nomob.attrs["mobile_species"]
    assert "mobile_species" in _reasons(nomob)["transport"]
    wrong = brownian(n_frames=30, n_ions=4)
    wrong.attrs["mobile_species"] = "Na"
    assert "'Na' not in the store" in _reasons(wrong)["rdf"]
    one = brownian(n_frames=30, n_ions=1)
    assert "at least two" in _reasons(one)["rdf"]
    notemp = brownian(n_frames=30, n_ions=4).drop_vars("temperature")
    del notemp.attrs["target_temperature"]
    # D needs no temperature (issue 10): transport runs, sigma then needs one
    assert _reasons(notemp)["transport"] == ""
    assert "temperature" in R.get("rotational_free_energy").applicable(notemp).reason


def test_check_is_falsy_with_reasons():
    c = R.get("dos").applicable(brownian(n_frames=30, n_ions=4))
    assert not c and c.reasons and c.reason == "; ".join(c.reasons)
    assert R.get("transport").applicable(brownian(n_frames=30, n_ions=4))


def test_register_rejects_duplicates_and_bad_names(custom):
    with pytest.raises(ValueError, match="already registered"):
        R.register("mean_temperature", MeanTemperature, description="x")
    R.register("mean_temperature", MeanTemperature, description="replaced", replace=True,
               summary=custom.summary)
    assert R.get("mean_temperature").description == "replaced"
    for bad in ("", "a,b", "two words"):
        with pytest.raises(ValueError, match="analysis name"):
            R.register(bad, MeanTemperature, description="x")
    with pytest.raises(ValueError, match="unknown analysis 'nope'.*transport"):
        R.get("nope")


def test_decorator_registration_and_lazy_class_path():
    @R.register("toy_decorated", description="decorated", requires=("positions",), returns={"mean": "K"})
    class Toy(MeanTemperature):
        pass

    try:
        assert R.get("toy_decorated").cls is Toy
        assert isinstance(R.get("transport").analyzer, str)  # listed without importing numba modules
        a = R.get("toy_decorated").run(brownian(n_frames=20, n_ions=2, temperature=321.0), offset=1.0)
        assert float(a.mean) == pytest.approx(322.0)
    finally:
        R.unregister("toy_decorated")


def test_custom_analysis_listed_and_run_by_rotorlab_analyze(tmp_path, custom, capsys):
    from rotorlab.cli import main

    assert main(["analyze", "--list"]) == 0
    out = capsys.readouterr().out
    for n in R.names():
        assert n in out
    assert "mean instantaneous temperature" in out and "requires: temperature" in out

    p = write_store(brownian(n_frames=120, n_ions=8, temperature=450.0), tmp_path / "run.zarr")
    assert main(["analyze", str(p), "-o", str(tmp_path / "out"), "--analyses", "transport,mean_temperature",
                 "--no-figures"]) == 0
    out = capsys.readouterr().out
    assert "ran: transport, mean_temperature" in out
    res = xr.open_dataset(tmp_path / "out" / "results.nc", engine="scipy")
    assert list(res["analysis"].values) == ["transport", "mean_temperature"]
    assert float(res["mean_temperature"][0]) == pytest.approx(450.0)
    assert res["mean_temperature"].attrs["units"] == "K"
    assert np.isfinite(float(res["D_tr"][0]))
    res.close()


def test_plugin_module_registers_through_the_cli(tmp_path, monkeypatch, capsys):
    mod = tmp_path / "my_rotorlab_plugin.py"
    mod.write_text(textwrap.dedent('''
        from rotorlab.analysis.base import Analyzer, Result, scalar
        from rotorlab.analysis.registry import register

        @register("n_atoms_plugin", description="number of atoms (plugin)", requires=("species",),
                  returns={"n": "1"}, summary=lambda a: {"plugin_n_atoms": a.n})
        class NAtoms(Analyzer):
            n = Result("1")

            def compute(self, ds):
                self._set(n=scalar(int(ds.sizes["atom"]), "1"))
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    from rotorlab.cli import main

    p = write_store(brownian(n_frames=40, n_ions=3, n_frame_atoms=2), tmp_path / "s.zarr")
    try:
        assert main(["analyze", str(p), "-o", str(tmp_path / "o"), "--plugin", "my_rotorlab_plugin",
                     "--analyses", "n_atoms_plugin", "--no-figures"]) == 0
        res = xr.open_dataset(tmp_path / "o" / "results.nc", engine="scipy")
        assert int(res["plugin_n_atoms"][0]) == 5
        assert str(res["analysis_status"].values[0, 0]) == "ok"
        res.close()
    finally:
        R.unregister("n_atoms_plugin")
