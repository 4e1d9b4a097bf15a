"""`rotorlab demo` end to end with tiny settings: the demo campaign (four constrained runs at
two temperatures on a local Dask cluster), collection, the figure report, and re-use."""

import numpy as np
import pytest
import xarray as xr

from rotorlab.cli import main


@pytest.mark.slow
def test_demo_end_to_end_and_resumable(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--outdir", str(out), "--steps", "400", "-q"]) == 0
    text = capsys.readouterr().out
    assert len(sorted((out / "runs").glob("Li3PS4-quick-*.zarr"))) == 8
    res = xr.open_dataset(out / "campaign.nc")
    assert list(res["mode"].values) == ["UC", "RC", "RTC", "RTVC"]
    assert [float(t) for t in res["temperature"].values] == [700.0, 900.0]
    assert res["sigma"].attrs["units"] == "mS/cm"
    assert set(np.ravel(res["status"].values)) == {"done"}
    # rotor reorientation is only possible without the rotation constraint
    rf = res["reorientation_frequency"].sel(mode=["RC", "RTC", "RTVC"]).values
    assert np.all(rf[np.isfinite(rf)] == 0) and np.isfinite(rf).any()
    assert (out / "report" / "index.html").is_file()
    assert "campaign.nc" in text and "report" in text
    from rotorlab.potentials.registry import has_bundled

    if has_bundled("Li3PS4"):  # the demo runs on the bundled model, no fallback warning
        assert "NOT a physics-grade model" not in text
        assert res.attrs["potential_fallback_materials"] == "none"
        assert int(res["fallback"].sum()) == 0
    else:  # the fallback (test) potential is labelled loudly
        assert "NOT a physics-grade model" in text
    # a second call recomputes nothing that finished
    assert main(["demo", "--outdir", str(out), "--steps", "400", "-q"]) == 0
    again = capsys.readouterr().out
    assert "0 started, 0 resumed, 8 already complete" in again
