"""Cation hops: exact hop count on synthetic hops, occupancies, site finding, kernels vs NumPy."""

import numpy as np
import pytest

from analysis_synthetic import site_hops
from rotorlab.analysis import hops as hp


def test_exact_hop_count_with_given_sites():
    ds, expected, sites = site_hops(n_res=5)
    h = hp.SiteHops(sites=sites, residence_ps=5 * 0.01).compute(ds)
    np.testing.assert_array_equal(h.hops.values, expected)
    dur_ns = (ds.sizes["frame"] - 1) * 10.0 / 1e6
    np.testing.assert_allclose(h.frequency.values, expected / dur_ns)
    assert h.frequency.attrs["units"] == "1/ns"
    # chunked processing (state carried across blocks) gives the same answer
    h2 = hp.SiteHops(sites=sites, residence_ps=0.05, memory=20_000).compute(ds.chunk({"frame": 97}))
    np.testing.assert_array_equal(h2.hops.values, expected)
    np.testing.assert_allclose(h2.occupancy.values, h.occupancy.values)


def test_without_residence_filter_excursions_count():
    ds, expected, sites = site_hops(n_res=5)
    h = hp.SiteHops(sites=sites, residence_ps=0.0).compute(ds)
    assert h.hops.sum() > expected.sum()


def test_found_sites_give_same_hops():
    ds, expected, sites = site_hops(n_res=5)
    h = hp.SiteHops(residence_ps=0.05).compute(ds)
    assert len(h.site_positions) == len(sites)
    np.testing.assert_array_equal(h.hops.values, expected)


def test_partial_occupancies_by_label():
    ds, _, sites = site_hops(n_res=5)
    labels = ["even" if i % 2 == 0 else "odd" for i in range(len(sites))]
    h = hp.SiteHops(sites=sites, labels=labels, residence_ps=0.05).compute(ds)
    lo = h.label_occupancy
    # every ion is held at some site at (almost) all times
    assert float(lo["ion_fraction"].sum()) == pytest.approx(1.0, abs=0.02)
    assert np.all((h.occupancy.values >= 0) & (h.occupancy.values <= 1))
    assert float(h.occupancy.sum()) == pytest.approx(ds.sizes["atom"], rel=0.02)


def _residence_reference(raw, n_res):
    T, N = raw.shape
    hops = np.zeros(N, int)
    for n in range(N):
        cur, cand, run = -1, -1, 0
        for t in range(T):
            s = raw[t, n]
            if s == -1 or s == cur:
                cand, run = -1, 0
                continue
            run = run + 1 if s == cand else 1
            cand = s
            if run >= n_res:
                hops[n] += cur != -1
                cur, cand, run = s, -1, 0
    return hops


@pytest.mark.parametrize("seed,n_res", [(0, 1), (1, 3), (2, 6)])
def test_residence_filter_matches_reference(seed, n_res):
    rng = np.random.default_rng(seed)
    raw = np.repeat(rng.integers(-1, 4, size=(100, 5)), rng.integers(1, 5), axis=0).astype(np.int64)
    N = raw.shape[1]
    st = [np.full(N, -1, np.int64), np.full(N, -1, np.int64), np.zeros(N, np.int64)]
    occ = np.zeros(5)
    hops = np.zeros(N, np.int64)
    filt = hp.residence_filter(raw, n_res, *st, occ, hops)
    np.testing.assert_array_equal(hops, _residence_reference(raw, n_res))
    assert occ.sum() == raw.size
    # occupancy counts agree with the filtered trajectory (block is whole)
    for s in range(4):
        assert occ[s] == (filt == s).sum()


@pytest.mark.parametrize("seed", [0, 1])
def test_assign_sites_matches_numpy(seed):
    from analysis_synthetic import triclinic_cell

    rng = np.random.default_rng(seed)
    cell = triclinic_cell(8, 9, 10, 65, 80, 70)
    sites = rng.uniform(size=(7, 3))
    pos = rng.uniform(-1, 2, size=(4, 11, 3)) @ cell
    cells = np.broadcast_to(cell, (4, 3, 3)).copy()
    out = hp.assign_sites(pos, cells, np.linalg.inv(cells), sites, 2.5)
    shifts = np.array([[i, j, k] for i in range(-2, 3) for j in range(-2, 3) for k in range(-2, 3)])
    for t in range(4):
        for n in range(11):
            f = pos[t, n] @ np.linalg.inv(cell)
            d = np.linalg.norm(((f - sites)[:, None, :] - np.floor(f - sites)[:, None, :] + shifts[None]) @ cell, axis=-1).min(1)
            ref = int(np.argmin(d)) if d.min() <= 2.5 else -1
            assert out[t, n] == ref


def test_displacement_variant_counts_hops():
    ds, expected, _ = site_hops(n_res=5)
    h = hp.DisplacementHops(threshold=2.5, smooth_ps=0.1).compute(ds)  # excursions < window
    np.testing.assert_array_equal(h.hops.values, expected)


def test_reference_structure_sites_count_exchanges():
    """Two ions exchange sites twice; with the first frame's positions as sites
    (``sites="reference"``) each ion makes exactly two hops."""
    from analysis_synthetic import make_dataset

    from rotorlab.analysis.hops import SiteHops, reference_sites

    rng = np.random.default_rng(0)
    A, B = np.array([1.0, 1.0, 1.0]), np.array([4.0, 1.0, 1.0])
    n = 600
    pos = np.empty((n, 2, 3))
    pos[:, 0], pos[:, 1] = A, B
    pos[200:400, 0], pos[200:400, 1] = B, A          # exchange at 200, back at 400
    for t in (200, 400):                              # two transit frames each time
        pos[t:t + 2, :] = 0.5 * (A + B) + np.array([0.0, 1.0, 0.0])
    pos += rng.normal(0, 0.1, size=pos.shape)
    ds = make_dataset(pos, np.eye(3) * 8.0, ["Li", "Li"], dt_fs=10.0, mobile="Li")
    np.testing.assert_allclose(reference_sites(ds) * 8.0, pos[0], atol=1e-12)
    h = SiteHops(sites="reference").compute(ds)
    np.testing.assert_array_equal(h.hops.values, [2, 2])
    with pytest.raises(ValueError, match="'density' or 'reference'"):
        SiteHops(sites="crystal")
