"""rotorlab.viz: every analyzer with a picture plots itself (Agg), PNGs are written and not blank."""

import warnings

import numpy as np
import pytest

from analysis_synthetic import every_analysis
from rotorlab.analysis import registry as R
from rotorlab.analysis.base import NotComputedError

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402

PLOTTABLE = [s.name for s in R.specs() if isinstance(s.analyzer, str) and s.cls.has_plot()]


@pytest.fixture(scope="module")
def ds():
    return every_analysis(n_frames=200)


def _nonblank(png):
    img = plt.imread(png)[..., :3]
    # a figure with data has many non-white pixels and more than two colours
    nonwhite = (img < 0.95).any(axis=-1).mean()
    return nonwhite > 0.02 and np.unique(img.reshape(-1, 3), axis=0).shape[0] > 2


def test_every_builtin_analysis_has_a_picture():
    assert set(PLOTTABLE) == {s.name for s in R.specs() if isinstance(s.analyzer, str)}


@pytest.mark.parametrize("name", PLOTTABLE)
def test_plot_returns_axes_and_writes_a_nonblank_png(name, ds, tmp_path):
    s = R.get(name)
    a = s.cls(**s.options_for(ds))
    with pytest.raises(NotComputedError):
        a.plot()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        a.compute(ds)
    ax = a.plot()
    assert isinstance(ax, Axes)
    png = tmp_path / f"{name}.png"
    ax.figure.savefig(png, dpi=60)
    plt.close(ax.figure)
    assert png.stat().st_size > 1000 and _nonblank(png)
    fig, given = plt.subplots()
    assert a.plot(ax=given) is given
    plt.close(fig)


def test_report_helpers_save_png_and_svg(tmp_path):
    from rotorlab.viz import plots as P

    x = np.linspace(0, 1, 50)
    import xarray as xr

    c = xr.DataArray(x**2, dims="t", coords={"t": x}, attrs={"units": "Å^2"})
    ax = P.plot_curves([c], ["x²"])
    paths = P.save(ax.figure, tmp_path, "curve")
    assert [p.suffix for p in paths] == [".png", ".svg"] and _nonblank(paths[0])
    with pytest.raises(ValueError, match="2-D"):
        P.plot_map(c)
