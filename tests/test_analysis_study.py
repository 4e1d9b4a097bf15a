"""Issue 10: the study's estimators against synthetic truths.

Collective MSD / conductivity / Haven ratio, framework drift, temperature-free transport,
C1/C2 with integrated times and the Ivanov jump fit, full-rotation reorientation events on
mixed-symmetry jumps, replica pooling, bounds for non-diffusive sigma, direct zarr reads,
and the analyze CLI options of issues 8/10.
"""

import warnings

import numpy as np
import pytest
import xarray as xr

from analysis_synthetic import (TETRA, brownian, ivanov_rotors, make_dataset, mixed_rotor_jumps, rotor_jumps,
                                write_store)
from rotorlab import units as U
from rotorlab.analysis import rotation as rot
from rotorlab.analysis import transport as tr
from rotorlab.analysis.replicas import ReplicaSet, check_condition
from rotorlab.analysis.rotor_dynamics import RotorDynamics, fit_ivanov, integrated_time, ivanov_tau
from rotorlab.cli import main
from rotorlab.store.chunks import LocalChunks

# ------------------------------------------------------------------------ collective transport


def test_collective_msd_matches_direct_reference():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 5, 3)).cumsum(0)
    X = x.sum(axis=1)
    ref = np.array([0.0] + [np.mean(np.sum((X[m:] - X[:-m]) ** 2, axis=-1)) for m in range(1, 120)])
    np.testing.assert_allclose(tr.collective_msd(x), ref, rtol=1e-9, atol=1e-9)
    # one carrier: collective = tracer
    np.testing.assert_allclose(tr.collective_msd(x[:, :1]), tr.msd_fft_rows(x[:, 0][None])[0], atol=1e-9)


def test_independent_walkers_collective_is_n_times_tracer():
    D_true = 0.5 * U.A2_PER_PS_TO_CM2_PER_S
    Ds, Hs = [], []
    for seed in range(3):
        t = tr.Transport().compute(brownian(n_ions=64, n_frames=2000, seed=seed))
        r = t.result
        Ds.append(float(r["D_sigma"]))
        Hs.append(float(r["haven_ratio"]))
        assert t.msd_collective.attrs["units"] == "Å^2" and t.msd_collective.attrs["n_carriers"] == 64
        # sigma_collective follows from D_sigma exactly as NE sigma follows from D_tr
        assert float(r["sigma_collective"]) == pytest.approx(float(r["sigma"]) * float(r["D_sigma"]) / float(r["D_tr"]))
        assert abs(float(r["D_sigma"]) - D_true) < 4 * float(r["D_sigma_err"]) + 0.1 * D_true
    # averaged over three replicas: D_sigma = D_tr (Haven ratio 1) within ~25 %
    assert np.mean(Ds) == pytest.approx(D_true, rel=0.25)
    assert np.mean(Hs) == pytest.approx(1.0, rel=0.25)


def _paired_walkers(n_pairs=32, n_frames=2000, D=0.5, dt_ps=0.01, seed=0):
    """Ions moving in rigidly correlated pairs: D_sigma = 2 D_tr, Haven ratio 0.5."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0, np.sqrt(2 * D * dt_ps), size=(n_frames, n_pairs, 3))
    steps[0] = 0
    x = rng.uniform(0, 20, (1, n_pairs, 3)) + steps.cumsum(0)
    pos = np.concatenate([x, x + 1.5], axis=1)
    return make_dataset(pos, np.eye(3) * 20, ["Li"] * (2 * n_pairs), dt_fs=10.0, mode="RTC")


def test_correlated_walkers_give_the_haven_ratio():
    # the collective MSD is one trajectory (the summed displacement), so one run is noisy:
    # pool 8 replicas (pooled-MSD estimate) and check each run against its own error bar
    reps = [_paired_walkers(seed=seed) for seed in range(8)]
    rs = ReplicaSet(tr.Transport).compute(reps)
    D = 0.5 * U.A2_PER_PS_TO_CM2_PER_S
    for k in range(8):
        r = rs.replicas.isel(replica=k)
        assert abs(float(r["D_sigma"]) - 2 * D) < 4 * float(r["D_sigma_err"])
    assert float(rs.pooled["haven_ratio"]) == pytest.approx(0.5, rel=0.2)
    assert float(rs.pooled["D_sigma"]) == pytest.approx(2 * D, rel=0.2)


def test_framework_drift_removal():
    ds = brownian(n_ions=32, n_frames=1000, mode="UC", drift_A_per_ps=2.0)
    D_true = 0.5 * U.A2_PER_PS_TO_CM2_PER_S
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fw = tr.Transport(drift="framework").compute(ds)
        none = tr.Transport(drift="none").compute(ds)
    assert float(fw.D) == pytest.approx(D_true, rel=0.2)
    assert float(none.D) > 3 * D_true  # the drift dominates without removal
    assert fw.msd.attrs["drift_removed"] == "framework"
    only_ions = make_dataset(ds["positions"].values[:, :32], np.eye(3) * 20, ["Li"] * 32, dt_fs=10.0)
    with pytest.raises(ValueError, match="framework"):
        tr.Transport(drift="framework").compute(only_ions)
    with pytest.raises(ValueError, match="drift must be"):
        tr.Transport(drift="anion")


def test_transport_needs_no_temperature():
    ds = brownian(n_ions=32, n_frames=1000).drop_vars("temperature")
    del ds.attrs["target_temperature"]
    t = tr.Transport().compute(ds)
    assert np.isfinite(float(t.D)) and np.isnan(float(t.sigma))
    assert "temperature" in t.result["sigma"].attrs["reason"]
    t2 = tr.Transport(temperature=600.0).compute(ds)
    assert float(t2.D) == float(t.D)
    V = float(t2.result["volume"])
    assert float(t2.sigma) == pytest.approx(float(tr.nernst_einstein(float(t2.D), 32, V, 600.0)))
    with pytest.raises(ValueError, match="temperature must be"):
        tr.Transport(temperature=-5)
    with pytest.raises(ValueError, match="n_blocks"):
        tr.Transport(n_blocks=0)


def test_not_diffusive_reason_names_the_failed_condition():
    # long enough slope ~1 but tiny MSD: the reason must be the MSD, not the slope
    ds = brownian(n_ions=32, n_frames=1000, D_A2_ps=0.02)
    with pytest.warns(RuntimeWarning) as rec:
        r = tr.Transport().compute(ds).result
    reason = r["diffusive"].attrs["reason"]
    assert "MSD" in reason and "< 1 Å²" in reason and "slope" not in reason
    assert "slope" not in str(rec[0].message).split("(")[1].split(")")[0]


def test_non_diffusive_sigma_is_an_upper_bound_in_mode_contributions():
    modes = ["UC", "RC", "RTC", "RTVC"]
    res = xr.Dataset({"sigma": ("run", [10.0, 1.0, 0.5, 0.1]), "sigma_bound": ("run", [np.nan] * 4),
                      "diffusive": ("run", [True, True, False, True])},
                     coords={"constraint_mode": ("run", modes), "target_temperature": ("run", [600.0] * 4)})
    s, b = tr.sigma_table(res)
    assert np.isnan(float(s.sel(mode="RTC"))) and float(b.sel(mode="RTC")) == 0.5
    mc = tr.mode_contributions(s, b)
    kinds = dict(zip(mc["contribution"].values, mc["delta_kind"].values[:, 0]))
    assert kinds == {"Rot": "value", "Trs": "lower_bound", "Vib": "upper_bound"}
    assert mc["r_kind"].sel(contribution="Rot").item() != "value"  # r of every mode is no longer a value


# --------------------------------------------------------------------------- rotor dynamics


def _lambda_numeric(delta, l, n=20001):
    """⟨P_l(u·R u)⟩ over uniformly random axes for a rotation by delta (independent quadrature)."""
    from numpy.polynomial import legendre

    x = np.linspace(-1, 1, n)  # x = n·u, uniform for random axes
    c = np.cos(delta) + (1 - np.cos(delta)) * x ** 2
    return np.trapezoid(legendre.legval(c, [0] * l + [1]), x) / 2


@pytest.mark.parametrize("delta_deg", [30.0, 90.0, 109.47, 180.0])
def test_ivanov_formula_matches_quadrature(delta_deg):
    d = np.radians(delta_deg)
    for l in (1, 2):
        lam = 1 - 1 / ivanov_tau(1.0, d, l)
        assert lam == pytest.approx(_lambda_numeric(d, l), abs=1e-6)
    # small jumps: rotational diffusion limit tau1/tau2 -> 3
    assert ivanov_tau(1.0, 1e-3, 1) / ivanov_tau(1.0, 1e-3, 2) == pytest.approx(3.0, rel=1e-4)


def test_fit_ivanov_on_exact_curves():
    lag = np.arange(2000) * 0.02
    tau0, d = 1.5, np.radians(100.0)
    c1 = 0.9 * np.exp(-lag / ivanov_tau(tau0, d, 1))
    c2 = 0.8 * np.exp(-lag / ivanov_tau(tau0, d, 2))
    f = fit_ivanov(lag, c1, c2)
    assert f["converged"] and f["tau0"] == pytest.approx(tau0, rel=1e-4) and f["delta"] == pytest.approx(100.0, abs=0.05)
    assert f["a1"] == pytest.approx(0.9, rel=1e-4)
    tau, tstar, bound = integrated_time(lag, np.exp(-lag / 2.0), cutoff=0.02)
    assert tau == pytest.approx(2.0 * (1 - 0.02), rel=0.01) and np.isnan(bound)
    tau, _, bound = integrated_time(lag, np.ones_like(lag))
    assert np.isnan(tau) and bound == pytest.approx(lag[-1])


@pytest.mark.parametrize("delta_deg", [90.0, 120.0])
def test_rotor_dynamics_recovers_tau0_and_delta(delta_deg):
    ds, ex = ivanov_rotors(delta_deg=delta_deg, n_frames=4000, n_rotors=32, seed=int(delta_deg))
    rd = RotorDynamics().compute(ds)
    r = rd.result
    assert int(r["n_vectors"]) == 128 and rd.c1.attrs["units"] == "1"
    assert float(r["tau0"]) == pytest.approx(ex["tau0"], rel=0.06)
    assert float(r["delta"]) == pytest.approx(delta_deg, abs=4.0)
    assert float(r["tau_c1_int"]) == pytest.approx(ex["tau1"], rel=0.08)
    assert float(r["tau_c2_int"]) == pytest.approx(ex["tau2"], rel=0.08)
    assert float(r["frequency_c2_int"]) == pytest.approx(1e3 / float(r["tau_c2_int"]))
    assert float(r["jump_frequency"]) == pytest.approx(1e3 / float(r["tau0"]))
    assert r["tau0"].attrs["units"] == "ps" and r["delta"].attrs["units"] == "degree"


def test_rotor_dynamics_replicas_give_errors_over_replicas():
    reps = [ivanov_rotors(n_rotors=12, n_frames=2500, delta_deg=90.0, seed=40 + s)[0] for s in range(3)]
    rs = ReplicaSet(RotorDynamics).compute(reps)
    assert rs.replicas.sizes["replica"] == 3
    m, e = float(rs.mean["tau0"]), float(rs.sem["tau0"])
    assert e > 0 and abs(m - 2.0) < max(4 * e, 0.15)
    assert abs(float(rs.mean["delta"]) - 90.0) < max(4 * float(rs.sem["delta"]), 5.0)
    assert float(rs.pooled["tau0"]) == pytest.approx(2.0, rel=0.1)
    assert rs.curves["c1"].dims == ("replica", "lag_time")


# ------------------------------------------------------------------ reorientation events


def test_full_rotation_counts_every_mixed_symmetry_jump():
    ds, ex = mixed_rotor_jumps(n_rotors=6, n_jumps=9, libration_deg=6.0)
    assert (ex["S4"] > 0).all() and (ex["C2"] > 0).all() and (ex["C3"] > 0).all()
    r = rot.Reorientation(smooth_ps=0.05).compute(ds)
    np.testing.assert_array_equal(r.counts_rotation.values, ex["total"])
    np.testing.assert_array_equal(r.counts.values, ex["total"])  # default method = rotation
    # the single-vector definition cannot see a C3 turn about the tracked bond
    assert (r.counts_vector.values <= ex["total"] - ex["c3_tracked"]).all()
    assert "rotation" in r.frequency.attrs["method"]
    v = rot.Reorientation(smooth_ps=0.05, method="vector").compute(ds)
    np.testing.assert_array_equal(v.counts.values, r.counts_vector.values)
    assert r.rotation_angle.attrs["units"] == "degree"


def test_kabsch_recovers_known_rotation():
    from analysis_synthetic import _batch_rot

    rng = np.random.default_rng(3)
    Rs = _batch_rot(rng.normal(size=(50, 3)))
    ref = TETRA[None]
    cur = np.einsum("nij,kj->nki", Rs, TETRA)
    np.testing.assert_allclose(rot.kabsch(ref, cur), Rs, atol=1e-10)


def test_librations_only_no_rotation_events():
    ds, _ = rotor_jumps(n_rotors=3, jumps_per_rotor=(0,), libration_deg=12.0, seed=2)
    assert rot.Reorientation(smooth_ps=0.05).compute(ds).counts_rotation.sum() == 0


# ----------------------------------------------------------------------------- replicas


def test_transport_replicas_pool_and_refuse_mixed_conditions():
    reps = [brownian(n_ions=32, n_frames=1000, seed=s) for s in range(4)]
    rs = ReplicaSet("transport").compute(reps)
    per = rs.replicas["D_tr"].values
    assert per.shape == (4,) and rs.replicas["D_tr"].attrs["units"] == "cm^2/s"
    assert float(rs.mean["D_tr"]) == pytest.approx(per.mean())
    assert float(rs.sem["D_tr"]) == pytest.approx(per.std(ddof=1) / 2)
    assert float(rs.pooled["D_tr"]) == pytest.approx(0.5 * U.A2_PER_PS_TO_CM2_PER_S, rel=0.1)
    # pooled MSD is the mean of the replicas' MSDs: its fit equals the mean of the fits (linear)
    assert float(rs.pooled["D_tr"]) == pytest.approx(per.mean(), rel=1e-9)
    other = brownian(n_ions=32, n_frames=1000, seed=9, mode="UC")
    with pytest.raises(ValueError, match="constraint_mode"):
        ReplicaSet("transport").compute(reps[:2] + [other])
    with pytest.raises(ValueError, match="at least 2"):
        ReplicaSet("transport").compute(reps[:1])
    assert check_condition(reps)["target_temperature"] == 600.0


# ---------------------------------------------------------------------- direct zarr reads


def test_store_reads_equal_dataset_and_views(tmp_path):
    from rotorlab.analysis import _data
    from rotorlab.store import open_store

    ds = brownian(n_ions=16, n_frames=400, mode="UC", drift_A_per_ps=0.5)
    p = write_store(ds, tmp_path / "s.zarr", chunk_frames=30)
    st = open_store(p)
    assert _data._zarr_source(st, "positions") is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        a = tr.Transport().compute(ds).result
        b = tr.Transport().compute(st).result
    np.testing.assert_allclose(float(a["D_tr"]), float(b["D_tr"]), rtol=1e-10)
    # a frame slice of the store is read at its offset
    view = st.isel(frame=slice(37, 311))
    assert _data._zarr_source(view, "positions")[1] == 37
    np.testing.assert_array_equal(_data.read_block(view, "positions", slice(5, 90), np.array([1, 3, 4])),
                                  ds["positions"].values[42:127][:, [1, 3, 4]])
    np.testing.assert_array_equal(_data.frame_times_ps(view), ds["time"].values[37:311])
    # a modified (computed) variable is never read from disk
    mod = st.assign(positions=st["positions"] + 1.0)
    assert _data._zarr_source(mod, "positions") is None
    np.testing.assert_allclose(_data.read_block(mod, "positions", slice(0, 10)), ds["positions"].values[:10] + 1)
    # a reversed frame order is not a contiguous run: falls back to dask, values still right
    rev = st.isel(frame=slice(None, None, -1))
    assert _data._zarr_source(rev, "positions") is None


def test_views_the_store_built_are_trusted_and_nothing_else(tmp_path):
    """``open_store`` registers the dask arrays it builds; analyses read those straight from
    the chunks without re-verifying them (that verification cost ~40 ms a store). Any other
    array, a slice, a computed one, one of another store, must not pass as the store's."""
    from rotorlab.analysis import _data
    from rotorlab.store import open_store
    from rotorlab.store.trajectory import store_view

    ds = brownian(n_ions=16, n_frames=400, mode="UC", drift_A_per_ps=0.5)
    p = write_store(ds, tmp_path / "s.zarr", chunk_frames=30)
    q = write_store(ds, tmp_path / "t.zarr", chunk_frames=30)
    st, other = open_store(p), open_store(q)
    z = store_view(st["positions"].data)
    assert z is not None and z[2] == "positions" and z[1] == str(p)
    assert tuple(z[0].shape) == ds["positions"].shape
    assert store_view(st["time"].data)[2] == "time"
    assert store_view((st["positions"] + 0.0).data) is None
    assert store_view(st.isel(frame=slice(3, None))["positions"].data) is None
    assert store_view(st["positions"].chunk({"frame": 70}).data) is None
    assert store_view(np.zeros(3)) is None and store_view(ds["positions"].data) is None
    assert _data._zarr_source(st, "positions") == (z[0], 0)
    # the other store's positions put into this store's Dataset: its source differs, so the
    # trusted path refuses it (and the verified path, comparing frames, does as well)
    mixed = st.assign(positions=other["positions"].copy(data=other["positions"].data + 1.0))
    assert _data._zarr_source(mixed, "positions") is None
    swapped = st.copy()
    swapped["cell"] = other["cell"]
    swapped.encoding["source"] = str(p)
    # (the two stores hold equal frames, so the verified path may accept this store's own
    # array: never the other store's)
    got = _data._zarr_source(swapped, "cell")
    assert got is None or got[0] is not store_view(other["cell"].data)[0]
    # results through the trusted path equal the in-memory ones, and the frame times too
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        a = tr.Transport().compute(ds).result
        b = tr.Transport().compute(open_store(p)).result
    np.testing.assert_allclose(float(a["D_tr"]), float(b["D_tr"]), rtol=1e-10)
    np.testing.assert_array_equal(_data.frame_times_ps(open_store(p)), ds["time"].values)
    np.testing.assert_array_equal(_data.read_block(st, "positions", slice(31, 95), np.array([0, 5])),
                                  ds["positions"].values[31:95][:, [0, 5]])


# ---------------------------------------------------------------------------- CLI options


@pytest.fixture(scope="module")
def bare_store(tmp_path_factory):
    """An 'imported' store without temperature or mobile species."""
    from rotorlab.store import TrajectoryStore

    ds = brownian(n_ions=16, n_frames=300)
    p = tmp_path_factory.mktemp("b") / "bare.zarr"
    st = TrajectoryStore.create(p, species=[str(s) for s in ds["species"].values], masses=ds["mass"].values,
                                rotor_id=ds["rotor_id"].values, attrs={"material": "X", "timestep": 10.0},
                                chunk_frames=100, velocities=False)
    for a in range(0, 300, 100):
        sl = slice(a, a + 100)
        st.append({"positions": ds["positions"].values[sl], "cell": ds["cell"].values[sl],
                   "time": ds["time"].values[sl], "step": np.arange(a, a + 100)})
    st.close()
    return p


@pytest.mark.parametrize("argv, msg", [(["--blocks", "0"], "--blocks must be >= 2"),
                                       (["--blocks", "1"], "--blocks must be >= 2"),
                                       (["--memory-mb", "0"], "--memory-mb must be > 0"),
                                       (["--temperature", "-3"], "temperature must be a positive")])
def test_cli_refuses_bad_options_and_writes_nothing(bare_store, tmp_path, capsys, argv, msg):
    out = tmp_path / "o"
    rc = main(["analyze", str(bare_store), "-o", str(out), "--species", "Li"] + argv)
    err = capsys.readouterr().err
    assert rc != 0 and msg in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_cli_species_and_temperature_for_imported_store(bare_store, tmp_path, capsys):
    out = tmp_path / "o1"
    assert main(["analyze", str(bare_store), "-o", str(out), "--species", "Li", "--analyses", "transport,rdf"]) == 0
    res = xr.open_dataset(out / "results.nc", engine="scipy")
    assert np.isfinite(float(res["D_tr"][0])) and np.isnan(float(res["sigma"][0]))
    assert "sigma needs a temperature" in capsys.readouterr().out
    res.close()
    out2 = tmp_path / "o2"
    assert main(["analyze", str(bare_store), "-o", str(out2), "--species", "Li", "--temperature", "600",
                 "--charge", "1", "--analyses", "transport"]) == 0
    res = xr.open_dataset(out2 / "results.nc", engine="scipy")
    assert np.isfinite(float(res["sigma"][0])) and float(res["target_temperature"][0]) == 600.0
    res.close()
    # a store that records its temperature is never overridden
    rec = write_store(brownian(n_ions=8, n_frames=100), tmp_path / "rec.zarr")
    rc = main(["analyze", str(rec), "-o", str(tmp_path / "o3"), "--temperature", "900"])
    assert rc != 0 and "refusing to override" in capsys.readouterr().err
    assert not (tmp_path / "o3").exists()


def test_two_materials_are_analysed_separately(tmp_path):
    from rotorlab.analysis import analyze

    a = brownian(n_ions=16, n_frames=400, seed=1)
    b = brownian(n_ions=16, n_frames=400, seed=2)
    a.attrs["material"], b.attrs["material"] = "LiBH4", "Li3PS4"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = analyze([a, b], tmp_path, analyses="transport", figures=False)
    assert list(res["material"].values) == ["LiBH4", "Li3PS4"]
    assert "several materials, analysed separately" in res.attrs["notes"]
    assert "LiBH4: run0" in res.attrs["notes"] and "Li3PS4: run1" in res.attrs["notes"]


def test_analyze_pools_replicas_of_one_condition(tmp_path):
    from rotorlab.analysis import analyze

    runs = [brownian(n_ions=16, n_frames=600, seed=s) for s in range(3)] + [brownian(n_ions=16, n_frames=600,
                                                                                     seed=7, temperature=700.0)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = analyze(runs, tmp_path, analyses="transport", figures=False)
    assert list(res["condition"].values) == ["synthetic/RTC/600K"]
    assert int(res["n_replicas"][0]) == 3
    d = res["D_tr"].values[:3]
    assert float(res["D_tr_mean"][0]) == pytest.approx(d.mean())
    assert float(res["D_tr_sem"][0]) == pytest.approx(d.std(ddof=1) / np.sqrt(3))
    assert res["D_tr_sem"].attrs["units"] == "cm^2/s"


def test_zarr_blocks_read_in_chunk_pieces_are_exact(tmp_path, monkeypatch):
    from rotorlab.analysis import _data
    from rotorlab.store import open_store

    ds = brownian(n_ions=16, n_frames=400)
    st = open_store(write_store(ds, tmp_path / "s.zarr", chunk_frames=30))
    monkeypatch.setattr(_data, "ZARR_DECODE_BYTES", 1)  # one chunk per zarr call
    ref = ds["positions"].values[7:333]
    for atoms in (None, np.array([1, 2, 3]), np.array([0, 5, 9]), np.array([0, 30]), np.array([], dtype=int)):
        got = _data.read_block(st, "positions", slice(7, 333), atoms)
        np.testing.assert_array_equal(got, ref if atoms is None else ref[:, atoms])


def test_direct_chunk_reads_equal_zarr_and_other_layouts_use_zarr(tmp_path, monkeypatch):
    """The analyses' direct reader of a store's chunk files returns exactly what zarr
    returns, for every frame range and atom selection; arrays in any other layout (another
    codec, chunks split along atoms) are read through zarr."""
    import zarr

    from rotorlab.analysis import _data

    ds = brownian(n_ions=16, n_frames=400)
    p = write_store(ds, tmp_path / "s.zarr", chunk_frames=30)
    z = zarr.open_group(p, mode="r")["positions"]
    lc = LocalChunks.for_array(z)
    assert lc is not None
    calls = []
    orig = LocalChunks.chunk
    monkeypatch.setattr(LocalChunks, "chunk", lambda self, i, out=None: calls.append(i) or orig(self, i, out))
    rng = np.random.default_rng(3)
    for _ in range(25):
        a = int(rng.integers(0, 399))
        b = int(rng.integers(a + 1, 401))
        atoms = [None, np.arange(z.shape[1]), np.sort(rng.choice(z.shape[1], 5, replace=False)),
                 np.arange(2, 9)][int(rng.integers(0, 4))]
        got = _data._read_zarr_block(z, a, b, atoms)
        ref = z[a:b] if atoms is None else z[a:b][:, atoms]
        assert got.dtype == np.float64 and got.flags.writeable
        np.testing.assert_array_equal(got, ref)
    assert calls  # the direct reader did the work
    # other layouts: gzip instead of zstd, and chunks split along the atom axis
    g = zarr.open_group(tmp_path / "other.zarr", mode="w", zarr_format=3)
    data = rng.normal(size=(50, 6, 3))
    for name, kw in (("gz", {"chunks": (10, 6, 3), "compressors": [zarr.codecs.GzipCodec()]}),
                     ("split", {"chunks": (10, 3, 3)})):
        arr = g.create_array(name, shape=data.shape, dtype="f8", **kw)
        arr[...] = data
        assert LocalChunks.for_array(arr) is None
        np.testing.assert_array_equal(_data._read_zarr_block(arr, 3, 47, np.array([0, 4])),
                                      data[3:47][:, [0, 4]])
