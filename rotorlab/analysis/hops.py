"""Cation hops: site assignment with a residence filter, hop frequency, partial site occupancies.

Definitions (DESIGN §5)
-----------------------
* Sites are given (fractional coordinates, e.g. the tetrahedral and octahedral Na sites of
  the reference structure, with optional labels) or found as maxima of the smoothed
  time-averaged mobile-ion density (:func:`find_sites`).
* Every frame each ion is assigned to the nearest site (minimum image, triclinic safe) if it
  lies within ``r_cut`` (default: 0.45 × the smallest site–site distance), else to none.
* Residence filter: an ion changes site only after ``residence_ps`` consecutive time at the
  new site; brief visits (rattling, transit) do not count.  A hop is a committed change.
* Hop frequency = hops per ion per ns of trajectory.
* Partial site occupancy = fraction of time a site is held (0…1 per site for exclusive
  sites); per label, the mean over its sites and the fraction of ions on that label.
* Displacement variant (:class:`DisplacementHops`): a hop when the smoothed position moves
  farther than ``threshold`` Å from its previous resting point.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from . import _data
from ._kernels import assign_sites, displacement_events, residence_filter
from .structure import MobileIonDensity
from .base import Analyzer, Result, scalar


def _site_distances(site_frac: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Minimum-image distances [Å] between sites given in fractional coordinates."""
    from rotorlab.geometry import minimum_image

    d = (site_frac[:, None] - site_frac[None]) @ cell
    return np.linalg.norm(minimum_image(d, cell), axis=-1)


def find_sites(ds: xr.Dataset, species: str | None = None, spacing: float = 0.25, smooth: float = 0.4,
               threshold: float = 0.05, min_separation: float = 1.0,
               memory: float = _data.DEFAULT_MEMORY) -> np.ndarray:
    """Sites as maxima of the smoothed time-averaged mobile-ion density.

    Parameters
    ----------
    spacing : float
        Grid spacing (Å).
    smooth : float
        Gaussian smoothing width (Å).
    threshold : float
        Keep maxima above this fraction of the largest density.
    min_separation : float
        Merge maxima closer than this (Å), keeping the denser.

    Returns
    -------
    xarray.DataArray, shape (S, 3)
        Fractional coordinates in [0, 1), dims (site, xyz), units "1".
    """
    from scipy.ndimage import gaussian_filter, maximum_filter

    dens = MobileIonDensity(species=species, spacing=spacing, memory=memory).compute(ds)
    d = dens.density.values
    cell = np.asarray(dens.density.attrs["cell"])
    shape = np.array(d.shape)
    sig = [smooth / (np.linalg.norm(cell[k]) / shape[k]) for k in range(3)]
    s = gaussian_filter(d, sig, mode="wrap")
    peaks = (s == maximum_filter(s, size=3, mode="wrap")) & (s > threshold * s.max())
    ijk = np.argwhere(peaks)
    vals = s[peaks]
    order = np.argsort(-vals)
    frac = (ijk[order] + 0.5) / shape
    keep: list[int] = []
    for i in range(len(frac)):
        if all(_site_distances(frac[[i, j]], cell)[0, 1] >= min_separation for j in keep):
            keep.append(i)
    if not keep:
        raise ValueError("no density maxima found: lower the threshold or check the mobile species")
    return _site_array(frac[keep] % 1.0, "maxima of the smoothed time-averaged density")


def _site_array(frac: np.ndarray, method: str) -> xr.DataArray:
    return xr.DataArray(np.asarray(frac, dtype=float), dims=("site", "xyz"),
                        coords={"site": np.arange(len(frac))}, name="site_positions",
                        attrs={"units": "1", "long_name": "fractional site coordinates", "method": method})


def reference_sites(ds: xr.Dataset, species: str | None = None) -> np.ndarray:
    """Sites of the reference structure: the mobile ions' positions in the first frame.

    Parameters
    ----------
    ds : xarray.Dataset
        Trajectory (first frame = the starting, ordered structure).
    species : str, optional
        Mobile species (default ``ds.attrs["mobile_species"]``).

    Returns
    -------
    xarray.DataArray, shape (S, 3)
        Fractional coordinates in [0, 1), one site per mobile ion, dims (site, xyz), units "1".
    """
    idx = _data.mobile_indices(ds, species)
    x0 = np.asarray(ds["positions"].isel(frame=0).values, dtype=float)[idx]
    cell = _data.cells(ds, slice(0, 1))[0]
    return _site_array((x0 @ np.linalg.inv(cell)) % 1.0, "mobile-ion positions of the first frame")


class SiteHops(Analyzer):
    """Site-to-site hops with a residence filter.

    Parameters
    ----------
    sites : ndarray (S, 3) or {"density", "reference"}, optional
        Fractional site coordinates; ``"density"`` (default): maxima of the time-averaged
        ion density (:func:`find_sites`); ``"reference"``: the mobile-ion positions of the
        first frame (the reference structure's sites, :func:`reference_sites`).
    labels : sequence of str (S,), optional
        Site classes (e.g. "tet", "oct") for partial occupancies.
    r_cut : float, optional
        Assignment radius (Å); default 0.45 × smallest site–site distance.
    residence_ps : float
        Residence threshold (default 0.1 ps; at least one frame).
    species : str, optional
    """

    def __init__(self, sites: np.ndarray | None = None, labels: Sequence[str] | None = None,
                 r_cut: float | None = None, residence_ps: float = 0.1, species: str | None = None,
                 memory: float = _data.DEFAULT_MEMORY):
        if isinstance(sites, str):
            if sites not in ("density", "reference"):
                raise ValueError(f"sites must be an (S, 3) array, 'density' or 'reference'; got {sites!r}")
            self.sites = None if sites == "density" else sites
        else:
            self.sites = None if sites is None else np.asarray(sites, dtype=float).reshape(-1, 3)
        if labels is not None and isinstance(self.sites, np.ndarray) and len(labels) != len(self.sites):
            raise ValueError("labels must have one entry per site")
        self.labels, self.r_cut, self.residence_ps = labels, r_cut, residence_ps
        self.species, self.memory = species, memory

    def compute(self, ds: xr.Dataset) -> "SiteHops":
        _data._require(ds, ["positions", "cell"], "SiteHops")
        if _data.n_frames(ds) < 2:
            raise ValueError("too few frames for hops (need >= 2)")
        idx = _data.mobile_indices(ds, self.species)
        if isinstance(self.sites, str):
            sites = reference_sites(ds, self.species).values
        else:
            sites = self.sites if self.sites is not None else find_sites(ds, self.species, memory=self.memory).values
        S = len(sites)
        cell0 = _data.cells(ds).mean(axis=0)
        if self.r_cut is None:
            if S > 1:
                sd = _site_distances(sites, cell0)
                np.fill_diagonal(sd, np.inf)
                r_cut = 0.45 * sd.min()
            else:
                r_cut = 0.45 * float(np.min(np.linalg.norm(cell0, axis=1)))
        else:
            r_cut = float(self.r_cut)
        nf = _data.n_frames(ds)
        dt = _data.frame_dt_ps(ds)
        n_res = max(1, int(round(self.residence_ps / dt)))
        N = idx.size
        cur = np.full(N, -1, np.int64)
        cand = np.full(N, -1, np.int64)
        run = np.zeros(N, np.int64)
        occ = np.zeros(S + 1)
        hops = np.zeros(N, np.int64)
        sf = np.ascontiguousarray(sites)
        for fs in _data.frame_chunks(ds, N * 3 * 8 * 4, self.memory):
            x = _data.read_block(ds, "positions", fs, idx)
            c = _data.cells(ds, fs)
            raw = assign_sites(x, c, np.linalg.inv(c), sf, r_cut)
            residence_filter(raw, n_res, cur, cand, run, occ, hops)
        dur_ns = (nf - 1) * dt / 1000.0
        ion = {"ion": idx}
        labels = np.asarray(self.labels if self.labels is not None else [f"site{i}" for i in range(S)]).astype(str)
        so = {"site": np.arange(S), "site_label": ("site", labels)}
        occ_da = xr.DataArray(occ[:S] / nf, dims="site", coords=so, name="site_occupancy",
                              attrs={"units": "1", "long_name": "fraction of time each site is held"})
        ul = sorted(set(labels.tolist()))
        per_label = [occ_da.values[labels == lab].mean() for lab in ul]
        frac_ions = [occ_da.values[labels == lab].sum() / N for lab in ul]
        label_occ = xr.Dataset(
            {"occupancy": ("label", per_label, {"units": "1", "long_name": "mean occupancy of the label's sites"}),
             "ion_fraction": ("label", frac_ions, {"units": "1", "long_name": "fraction of ions on the label"}),
             "n_sites": ("label", [int((labels == lab).sum()) for lab in ul], {"units": "1"})},
            coords={"label": ul})
        self._set(
            hops=xr.DataArray(hops, dims="ion", coords=ion, name="hops", attrs={"units": "1"}),
            frequency=xr.DataArray(hops / dur_ns, dims="ion", coords=ion, name="hop_frequency",
                                   attrs={"units": "1/ns", "long_name": "hops per ion per ns",
                                          "residence_frames": n_res, "r_cut_A": r_cut}),
            occupancy=occ_da, label_occupancy=label_occ,
            site_positions=xr.DataArray(np.asarray(sites, dtype=float), dims=("site", "xyz"), coords=so,
                                        name="site_positions",
                                        attrs={"units": "1", "long_name": "fractional site coordinates"}),
            unassigned_fraction=scalar(float(occ[S] / (nf * N)), "1", name="unassigned_fraction",
                                       long_name="fraction of ion-frames on no site"))
        return self

    hops = Result("1", "Hop count per ion, dims (ion,).")
    frequency = Result("1/ns", "Hops per ion per ns, dims (ion,).")
    occupancy = Result("1", "Per-site fraction of time held (residence filtered), dims (site,).")
    label_occupancy = Result(None, "Partial occupancies per site label (Dataset, dim label).")
    site_positions = Result("1", "(site, xyz) fractional site coordinates used (given or found).")
    unassigned_fraction = Result("1", "0-d fraction of ion-frames assigned to no site.")

    @property
    def mean_frequency(self) -> xr.DataArray:
        """Mean hop frequency over ions, 0-d in 1/ns."""
        return scalar(float(self.frequency.mean()), "1/ns", name="hop_frequency",
                      long_name="mean hops per ion per ns")

    def _plot(self, P, ax=None, **kw):
        return P.plot_bars(self.occupancy, ax=ax, xlabel="site", ylabel="occupancy", **kw)


class DisplacementHops(Analyzer):
    """Hops as moves of the smoothed position by more than ``threshold`` Å from rest.

    Parameters
    ----------
    threshold : float
        Displacement (Å) from the resting point that counts as a hop.
    smooth_ps : float
        Running-mean width (ps) removing vibrations; also the settle time after a hop.
    species : str, optional
        Mobile species (default ``ds.attrs["mobile_species"]``).
    memory : float
        Bytes per materialised block.

    Results: ``hops`` (ion,) counts and ``frequency`` (ion,) in 1/ns.
    """

    def __init__(self, threshold: float = 1.5, smooth_ps: float = 0.1, species: str | None = None,
                 memory: float = _data.DEFAULT_MEMORY):
        self.threshold, self.smooth_ps, self.species, self.memory = threshold, smooth_ps, species, memory

    def compute(self, ds: xr.Dataset) -> "DisplacementHops":
        from .rotation import _running_mean

        idx = _data.mobile_indices(ds, self.species)
        nf = _data.n_frames(ds)
        dt = _data.frame_dt_ps(ds)
        w = max(1, int(round(self.smooth_ps / dt)))
        counts = np.zeros(idx.size, np.int64)
        for b in _data.atom_batches(idx.size, nf, self.memory, copies=4):
            x = _data.read_series(ds, "positions", idx[b], self.memory)
            counts[b] = displacement_events(np.ascontiguousarray(_running_mean(x, w)), float(self.threshold), w)
        self._set(hops=xr.DataArray(counts, dims="ion", coords={"ion": idx}, attrs={"units": "1"}),
                  frequency=xr.DataArray(counts / ((nf - 1) * dt / 1000.0), dims="ion", coords={"ion": idx},
                                         attrs={"units": "1/ns", "threshold_A": self.threshold}))
        return self

    hops = Result("1", "Hop count per ion, dims (ion,).")
    frequency = Result("1/ns", "Hops per ion per ns, dims (ion,).")

    @property
    def mean_frequency(self) -> xr.DataArray:
        """Mean hop frequency over ions, 0-d in 1/ns."""
        return scalar(float(self.frequency.mean()), "1/ns", name="hop_frequency")

    def _plot(self, P, ax=None, **kw):
        return P.plot_bars(self.frequency, ax=ax, xlabel="ion", ylabel="hops per ns", **kw)
