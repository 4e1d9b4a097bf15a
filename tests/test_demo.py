"""`rotorlab demo` end to end with tiny settings: four constrained runs, analysis, re-use."""

import numpy as np
import pytest
import xarray as xr

from rotorlab.cli import main


@pytest.mark.slow
def test_demo_end_to_end_and_resumable(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--outdir", str(out), "--steps", "400"]) == 0
    text = capsys.readouterr().out
    for mode in ("UC", "RC", "RTC", "RTVC"):
        found = sorted(out.glob(f"LiBH4-quick-{mode}-600K-r0-*.zarr"))
        assert len(found) == 1 and found[0].is_dir(), mode
    res = xr.open_dataset(out / "analysis" / "results.nc")
    assert list(res["constraint_mode"].values) == ["UC", "RC", "RTC", "RTVC"]
    assert res["D_tr"].attrs["units"] == "cm^2/s"
    # rotor reorientation is only possible without the rotation constraint
    rf = res["reorientation_frequency"].values
    assert np.all(rf[1:] == 0)
    assert (out / "analysis" / "msd.png").exists() and (out / "analysis" / "msd.svg").exists()
    assert "results.nc" in text and "not LiBH4 physics" in text  # the demo potential is labelled
    # a second call re-uses complete stores instead of recomputing them
    assert main(["demo", "--outdir", str(out), "--steps", "400"]) == 0
    assert capsys.readouterr().out.count("reused") == 4
