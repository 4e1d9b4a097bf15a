"""``rotorlab analyze`` driven by the registry: selection, short runs, overwrite and store safety."""

import os

import numpy as np
import pytest
import xarray as xr

from analysis_synthetic import brownian, every_analysis, write_store
from rotorlab.cli import main


def _tree(path):
    return sorted((str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns)
                  for p in path.rglob("*"))


@pytest.fixture(scope="module")
def full_store(tmp_path_factory):
    return write_store(every_analysis(n_frames=200), tmp_path_factory.mktemp("s") / "full.zarr", chunk_frames=50)


def test_subset_selection_runs_only_those(full_store, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["analyze", str(full_store), "-o", str(out), "--analyses", "rdf,dos"]) == 0
    res = xr.open_dataset(out / "results.nc", engine="scipy")
    assert list(res["analysis"].values) == ["rdf", "dos"]
    assert (res["analysis_status"].values == "ok").all()
    assert np.isnan(float(res["D_tr"][0]))  # transport not selected
    assert np.isfinite(float(res["rdf_peak_position"][0])) and res["rdf_peak_position"].attrs["units"] == "Å"
    assert np.isfinite(float(res["cation_band_centre"][0]))
    res.close()
    assert (out / "rdf.png").stat().st_size > 1000 and (out / "dos.png").exists()
    assert not (out / "msd.png").exists()
    assert "transport not selected" in capsys.readouterr().out


def test_default_runs_every_applicable_analysis(full_store, tmp_path):
    from rotorlab.analysis import registry as R

    assert main(["analyze", str(full_store), "-o", str(tmp_path / "o"), "--no-figures"]) == 0
    res = xr.open_dataset(tmp_path / "o" / "results.nc", engine="scipy")
    assert list(res["analysis"].values) == R.names()
    assert (res["analysis_status"].values == "ok").all(), res["analysis_status"].values
    for k in ("D_tr", "reorientation_frequency", "hop_frequency", "cation_band_centre", "rdf_peak_position",
              "dihedral_jump_frequency", "p2_relaxation_time"):
        assert k in res and "units" in res[k].attrs, k
    assert float(res["dihedral_jump_frequency"][0]) > 0
    res.close()


def test_no_rotation_and_unknown_analysis(full_store, tmp_path, capsys):
    assert main(["analyze", str(full_store), "-o", str(tmp_path / "a"), "--no-rotation", "--no-figures",
                 "--no-hops", "--no-vibrations"]) == 0
    res = xr.open_dataset(tmp_path / "a" / "results.nc", engine="scipy")
    assert list(res["analysis"].values) == ["transport", "rdf", "anion_free_energy", "density"]
    res.close()
    assert main(["analyze", str(full_store), "-o", str(tmp_path / "b"), "--analyses", "rdf,bogus"]) == 2
    err = capsys.readouterr().err
    assert "unknown analysis 'bogus'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "b").exists()


def test_short_run_still_gets_rdf_and_dos(tmp_path, capsys):
    ds = brownian(n_frames=24, n_ions=10)  # too short for 5 blocks of >= 8 frames
    ds["velocities"] = (("frame", "atom", "xyz"), np.gradient(ds["positions"].values, 10.0, axis=0),
                        {"units": "Å/fs"})
    p = write_store(ds, tmp_path / "short.zarr", chunk_frames=8)
    assert main(["analyze", str(p), "-o", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "transport failed: ValueError: too few frames" in out
    res = xr.open_dataset(tmp_path / "o" / "results.nc", engine="scipy")
    st = {str(a): str(x) for a, x in zip(res["analysis"].values, res["analysis_status"].values[0])}
    assert st["transport"].startswith("failed: ValueError: too few frames")
    assert st["rdf"] == "ok" and st["dos"] == "ok" and st["density"] == "ok"
    assert np.isnan(float(res["D_tr"][0])) and np.isfinite(float(res["cation_band_centre"][0]))
    assert "transport failed" in res.attrs["notes"]
    res.close()
    assert (tmp_path / "o" / "rdf.png").exists() and (tmp_path / "o" / "dos.png").exists()


def test_existing_results_are_not_replaced_without_overwrite(full_store, tmp_path, capsys):
    out = tmp_path / "o"
    args = ["analyze", str(full_store), "-o", str(out), "--analyses", "rdf", "--no-figures"]
    assert main(args) == 0
    before = (out / "results.nc").read_bytes(), (out / "results.nc").stat().st_mtime_ns
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "exists" in err and "--overwrite" in err
    assert ((out / "results.nc").read_bytes(), (out / "results.nc").stat().st_mtime_ns) == before
    assert main(args + ["--overwrite"]) == 0
    assert (out / "results.nc").stat().st_mtime_ns >= before[1]


def test_refuses_to_write_into_an_input_store(full_store, capsys):
    before = _tree(full_store)
    for target in (full_store, full_store / "analysis"):
        assert main(["analyze", str(full_store), "-o", str(target)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "input store" in err and "nothing written" in err
    assert _tree(full_store) == before
    assert not os.path.exists(full_store / "results.nc")


def test_refuses_another_zarr_store_as_output(full_store, tmp_path, capsys):
    other = write_store(brownian(n_frames=20, n_ions=2), tmp_path / "other.zarr")
    before = _tree(other)
    assert main(["analyze", str(full_store), "-o", str(other)]) == 2
    assert "zarr store" in capsys.readouterr().err
    assert _tree(other) == before


def test_list_needs_no_store_and_missing_arguments_are_clear(capsys):
    assert main(["analyze", "--list"]) == 0
    assert "transport" in capsys.readouterr().out
    assert main(["analyze"]) == 2
    assert "no trajectory stores" in capsys.readouterr().err
    assert main(["analyze", "x.zarr"]) == 2
    assert "-o/--output" in capsys.readouterr().err


def test_python_analyze_refuses_store_output_too(full_store):
    from rotorlab.analysis import analyze

    with pytest.raises(ValueError, match="input store"):
        analyze([full_store], full_store / "x")
    with pytest.raises(FileExistsError, match="overwrite"):
        d = full_store.parent / "py"
        analyze([full_store], d, analyses="rdf", figures=False)
        analyze([full_store], d, analyses="rdf", figures=False, overwrite=False)


def test_existing_options_still_reach_their_analyses(full_store, tmp_path):
    assert main(["analyze", str(full_store), "-o", str(tmp_path / "o"), "--analyses", "transport,hops",
                 "--sites", "reference", "--blocks", "4", "--no-figures"]) == 0
    res = xr.open_dataset(tmp_path / "o" / "results.nc", engine="scipy")
    assert "first frame" in res["hop_frequency"].attrs["method"]
    err = float(res["D_tr_err"][0])
    res.close()
    from rotorlab.analysis import Transport
    from rotorlab.store import open_store

    ds = open_store(full_store)
    assert err == pytest.approx(float(Transport(n_blocks=4).compute(ds).D_err), rel=1e-12)
    assert err != pytest.approx(float(Transport().compute(ds).D_err), rel=1e-6)
