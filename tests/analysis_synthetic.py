"""Synthetic trajectories matching the store schema (DESIGN §3) with known analytic answers."""

from __future__ import annotations

import numpy as np
import xarray as xr

MASS = {"Li": 6.94, "Na": 22.99, "B": 10.81, "H": 1.008, "P": 30.974, "S": 32.06, "O": 15.999, "Ar": 39.95}


def make_dataset(positions, cell, species, *, dt_fs=1.0, stride=1, velocities=None, masses=None,
                 rotor_id=None, rotor_kind=(), orientation_atoms=None, mode="UC", temperature=300.0,
                 mobile="Li", charge=1.0, material="synthetic", chunks=None):
    """Build a trajectory Dataset.

    positions (T, N, 3) Å unwrapped; cell (3, 3) or (T, 3, 3); velocities (T, N, 3) Å/fs.
    """
    positions = np.asarray(positions, dtype=float)
    T, N, _ = positions.shape
    species = np.asarray(species).astype(str)
    if masses is None:
        masses = np.array([MASS[s] for s in species])
    if rotor_id is None:
        rotor_id = np.full(N, -1)
    cell = np.asarray(cell, dtype=float)
    if cell.ndim == 2:
        cell = np.broadcast_to(cell, (T, 3, 3)).copy()
    time_ps = np.arange(T) * dt_fs * stride / 1000.0
    ds = xr.Dataset(
        {
            "positions": (("frame", "atom", "xyz"), positions, {"units": "Å"}),
            "cell": (("frame", "cell_a", "xyz"), cell, {"units": "Å"}),
            "temperature": (("frame",), np.full(T, float(temperature)), {"units": "K"}),
            "potential_energy": (("frame",), np.zeros(T), {"units": "eV"}),
        },
        coords={
            "time": ("frame", time_ps, {"units": "ps"}),
            "species": ("atom", species),
            "mass": ("atom", np.asarray(masses, dtype=float), {"units": "amu"}),
            "rotor_id": ("atom", np.asarray(rotor_id, dtype=np.int64)),
        },
        attrs={"material": material, "constraint_mode": mode, "target_temperature": float(temperature),
               "timestep": float(dt_fs), "mobile_species": mobile, "mobile_charge": float(charge)},
    )
    if velocities is not None:
        ds["velocities"] = (("frame", "atom", "xyz"), np.asarray(velocities, dtype=float), {"units": "Å/fs"})
    if len(rotor_kind):
        ds = ds.assign_coords(rotor_kind=("rotor", np.asarray(rotor_kind).astype(str)))
        ds["orientation_atoms"] = (("rotor", "pair"), np.asarray(orientation_atoms, dtype=np.int64))
    if chunks:
        ds = ds.chunk({"frame": chunks})
    return ds


def brownian(n_ions=64, n_frames=2000, D_A2_ps=0.5, dt_fs=10.0, box=20.0, seed=0, n_frame_atoms=16,
             mode="RTC", drift_A_per_ps=0.0, temperature=600.0):
    """Li ions performing a random walk with diffusion coefficient D (Å²/ps) among static B atoms.

    ``drift_A_per_ps`` adds a uniform drift to *all* atoms (what COM removal must cancel).
    """
    rng = np.random.default_rng(seed)
    dt_ps = dt_fs / 1000.0
    steps = rng.normal(0.0, np.sqrt(2 * D_A2_ps * dt_ps), size=(n_frames, n_ions, 3))
    steps[0] = 0.0
    x = rng.uniform(0, box, size=(1, n_ions, 3)) + np.cumsum(steps, axis=0)
    fr = np.broadcast_to(rng.uniform(0, box, size=(1, n_frame_atoms, 3)), (n_frames, n_frame_atoms, 3))
    pos = np.concatenate([x, fr], axis=1)
    t = np.arange(n_frames) * dt_ps
    pos = pos + drift_A_per_ps * t[:, None, None] * np.array([1.0, 0.5, -0.3])
    spec = ["Li"] * n_ions + ["B"] * n_frame_atoms
    return make_dataset(pos, np.eye(3) * box, spec, dt_fs=dt_fs, mode=mode, temperature=temperature)


def ballistic(n_pairs=16, n_frames=200, speed=0.02, dt_fs=1.0, box=30.0, seed=1, mode="UC"):
    """Ions in ± pairs moving at constant speed (Å/fs) in random directions: MSD = v² t² exactly."""
    rng = np.random.default_rng(seed)
    d = rng.normal(size=(n_pairs, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    v = np.concatenate([d, -d]) * speed
    t = np.arange(n_frames) * dt_fs
    x0 = rng.uniform(0, box, size=(2 * n_pairs, 3))
    pos = x0[None] + t[:, None, None] * v[None]
    vel = np.broadcast_to(v, pos.shape).copy()
    return make_dataset(pos, np.eye(3) * box, ["Li"] * (2 * n_pairs), dt_fs=dt_fs, mode=mode, velocities=vel)


def triclinic_cell(a=12.0, b=13.0, c=14.0, alpha=70.0, beta=80.0, gamma=65.0):
    """Row lattice vectors from lengths and angles (degrees)."""
    al, be, ga = np.radians([alpha, beta, gamma])
    ax = np.array([a, 0, 0])
    bx = np.array([b * np.cos(ga), b * np.sin(ga), 0])
    cx = c * np.cos(be)
    cy = c * (np.cos(al) - np.cos(be) * np.cos(ga)) / np.sin(ga)
    cz = np.sqrt(c * c - cx * cx - cy * cy)
    return np.array([ax, bx, [cx, cy, cz]])


def ideal_gas(n_a=100, n_b=80, n_frames=50, cell=None, seed=2):
    """Uncorrelated uniform particles (species Li and Ar) in a (possibly triclinic) cell."""
    rng = np.random.default_rng(seed)
    cell = np.eye(3) * 15.0 if cell is None else np.asarray(cell, dtype=float)
    f = rng.uniform(size=(n_frames, n_a + n_b, 3))
    pos = f @ cell
    return make_dataset(pos, cell, ["Li"] * n_a + ["Ar"] * n_b)


def harmonic(freqs_THz=(5.0, 12.0), n_per=8, n_frames=4000, dt_fs=2.0, kinetic_eV=0.025, seed=3, species=("Li", "Na")):
    """Independent harmonic oscillators; oscillator k vibrates at ``freqs_THz[k]``.

    Each atom has the same mean kinetic energy, so the kinetic (mass-weighted) DOS has equal
    weight at each frequency and the band centre is the plain mean of ``freqs_THz`` (if all
    frequencies belong to one species) — species[k] is the species of the k-th group.
    """
    from rotorlab import units as U

    rng = np.random.default_rng(seed)
    t = np.arange(n_frames) * dt_fs  # fs
    pos, vel, spec = [], [], []
    for k, f in enumerate(freqs_THz):
        sp = species[k % len(species)]
        m = MASS[sp]
        w = 2 * np.pi * f * 1e-3  # rad/fs
        vamp = np.sqrt(2 * 2 * kinetic_eV / (m * U.MVV2E))  # <v²> = vamp²/2 = 2 KE/m
        for _ in range(n_per):
            d = rng.normal(size=3)
            d /= np.linalg.norm(d)
            ph = rng.uniform(0, 2 * np.pi)
            v = vamp * np.cos(w * t + ph)
            x = vamp / w * np.sin(w * t + ph)
            x0 = rng.uniform(0, 20, size=3)
            pos.append(x0[None] + x[:, None] * d[None])
            vel.append(v[:, None] * d[None])
            spec.append(sp)
    pos = np.stack(pos, axis=1)
    vel = np.stack(vel, axis=1)
    return make_dataset(pos, np.eye(3) * 20.0, spec, dt_fs=dt_fs, velocities=vel, mobile=species[0])


def _rot(axis, ang):
    axis = np.asarray(axis, dtype=float)
    axis = axis / np.linalg.norm(axis)
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(ang) * K + (1 - np.cos(ang)) * K @ K


TETRA = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=float) / np.sqrt(3)


def rotor_jumps(n_rotors=4, n_frames=3000, jumps_per_rotor=(3, 5, 0, 7), libration_deg=8.0, dt_fs=5.0,
                seed=4, box=20.0, bond=1.22, transition_frames=3):
    """BH4 rotors performing C2 jumps (each moves the tracked B–H by 109.47°) with libration noise.

    Returns (ds, expected_counts).  Librations are small random rotations (about 3 frames
    correlated, ``libration_deg`` RMS per axis) superposed on the resting orientation.
    """
    rng = np.random.default_rng(seed)
    c2_axes = np.eye(3)
    pos = np.zeros((n_frames, 5 * n_rotors, 3))
    species, rid, oa = [], [], []
    centres = rng.uniform(2, box - 2, size=(n_rotors, 3))
    for r in range(n_rotors):
        nj = jumps_per_rotor[r % len(jumps_per_rotor)]
        # well separated jump times
        jt = np.sort(rng.choice(np.arange(1, n_frames // 60), size=nj, replace=False) * 60 + 10) if nj else []
        R = np.eye(3)
        Rs = np.empty((n_frames, 3, 3))
        last = 0
        for j in jt:
            Rs[last:j] = R
            ax = c2_axes[rng.integers(3)]
            Rnew = _rot(ax, np.pi) @ R
            for q in range(transition_frames):  # continuous turn through the transition frames
                Rs[j + q] = _rot(ax, np.pi * (q + 1) / (transition_frames + 1)) @ R
            R = Rnew
            last = j + transition_frames
        Rs[last:] = R
        # libration: smoothed noise rotations
        noise = rng.normal(0, np.radians(libration_deg), size=(n_frames + 2, 3))
        noise = (noise[:-2] + noise[1:-1] + noise[2:]) / np.sqrt(3)
        for t in range(n_frames):
            ang = np.linalg.norm(noise[t])
            L = _rot(noise[t], ang) if ang > 0 else np.eye(3)
            lig = (L @ Rs[t] @ (TETRA.T * bond)).T
            pos[t, 5 * r] = centres[r]
            pos[t, 5 * r + 1:5 * r + 5] = centres[r] + lig
        species += ["B", "H", "H", "H", "H"]
        rid += [r] * 5
        oa.append([5 * r, 5 * r + 1])
    expected = np.array([jumps_per_rotor[r % len(jumps_per_rotor)] for r in range(n_rotors)])
    ds = make_dataset(pos, np.eye(3) * box, species, dt_fs=dt_fs, rotor_id=rid, rotor_kind=["BH4"] * n_rotors,
                      orientation_atoms=oa, mobile="B")
    return ds, expected


def site_hops(n_ions=6, n_frames=3000, a=4.0, reps=3, noise=0.15, dt_fs=10.0, seed=5, n_res=5):
    """Ions on a simple-cubic site lattice hopping between neighbouring sites at known frames.

    Each ion also makes brief excursions (fewer than ``n_res`` frames) to a neighbouring site
    and spends a couple of transit frames between sites; neither must count as a hop.
    Returns (ds, expected_hops per ion, site_frac).
    """
    rng = np.random.default_rng(seed)
    box = a * reps
    g = np.arange(reps) / reps
    site_frac = np.array(np.meshgrid(g, g, g, indexing="ij")).reshape(3, -1).T
    sites = site_frac * box
    nsite = len(sites)
    pos = np.zeros((n_frames, n_ions, 3))
    expected = np.zeros(n_ions, dtype=int)
    start = rng.choice(nsite, size=n_ions, replace=False)
    for i in range(n_ions):
        cur = sites[start[i]].copy()
        offset = np.zeros(3)
        t = 0
        while t < n_frames:
            stay = int(rng.integers(40, 120))
            seg_end = min(n_frames, t + stay)
            pos[t:seg_end, i] = cur + offset
            # brief excursion in the middle of the stay
            if stay > 60 and seg_end - t > 30 and rng.random() < 0.5:
                e0 = t + 20
                ln = int(rng.integers(1, n_res))
                step = np.zeros(3)
                step[rng.integers(3)] = a * rng.choice([-1, 1])
                pos[e0:e0 + ln, i] = cur + offset + step
            t = seg_end
            if t >= n_frames - 30:
                pos[t:, i] = cur + offset
                break
            step = np.zeros(3)
            step[rng.integers(3)] = a * rng.choice([-1, 1])
            # two transit frames half way
            pos[t:t + 2, i] = cur + offset + 0.5 * step
            offset = offset + step  # unwrapped position keeps growing
            t += 2
            expected[i] += 1
        pos[:, i] += rng.normal(0, noise, size=(n_frames, 3))
    ds = make_dataset(pos, np.eye(3) * box, ["Na"] * n_ions, dt_fs=dt_fs, mobile="Na")
    return ds, expected, site_frac


def p2s6_jumps(n_rotors=3, n_frames=2000, jumps_per_rotor=(2, 4, 0), noise_deg=6.0, dt_fs=5.0, seed=6, box=20.0):
    """P2S6 rotors whose upper PS3 group turns by ±120° about the P–P axis at known frames.

    Returns (ds, expected_jumps).
    """
    rng = np.random.default_rng(seed)
    pos = np.zeros((n_frames, 8 * n_rotors, 3))
    spec, rid, oa = [], [], []
    ang_s = np.radians(109.5 - 90.0)
    for r in range(n_rotors):
        c = rng.uniform(3, box - 3, size=3)
        R0 = _rot(rng.normal(size=3), rng.uniform(0, np.pi))
        nj = jumps_per_rotor[r % len(jumps_per_rotor)]
        jt = np.sort(rng.choice(np.arange(1, n_frames // 80), size=nj, replace=False) * 80) if nj else np.array([], int)
        phi = np.zeros(n_frames)
        for j in jt:
            phi[j:] += rng.choice([-1, 1]) * 2 * np.pi / 3
        phi += np.radians(noise_deg) * rng.normal(size=n_frames)
        pa = np.array([0, 0, -1.1])
        pb = np.array([0, 0, 1.1])
        for t in range(n_frames):
            pts = [pa, pb]
            for k in range(3):  # lower S on pa (fixed), upper S on pb (rotated by phi)
                a = 2 * np.pi * k / 3
                pts.append(pa + 2.05 * np.array([np.cos(ang_s) * np.cos(a), np.cos(ang_s) * np.sin(a), -np.sin(ang_s)]))
            for k in range(3):
                a = 2 * np.pi * k / 3 + np.pi / 3 + phi[t]
                pts.append(pb + 2.05 * np.array([np.cos(ang_s) * np.cos(a), np.cos(ang_s) * np.sin(a), np.sin(ang_s)]))
            pos[t, 8 * r:8 * r + 8] = c + np.asarray(pts) @ R0.T
        spec += ["P", "P"] + ["S"] * 6
        rid += [r] * 8
        oa.append([8 * r, 8 * r + 1])
    expected = np.array([jumps_per_rotor[r % len(jumps_per_rotor)] for r in range(n_rotors)])
    ds = make_dataset(pos, np.eye(3) * box, spec, dt_fs=dt_fs, rotor_id=rid, rotor_kind=["P2S6"] * n_rotors,
                      orientation_atoms=oa, mobile="S")
    return ds, expected


def spinning_rotors(n_rotors=3, n_frames=500, omega_rad_per_ps=3.0, dt_fs=10.0, box=20.0):
    """Rotors whose orientation vector spins uniformly in the xy plane: P1 = cos ωτ exactly."""
    t = np.arange(n_frames) * dt_fs / 1000.0
    pos = np.zeros((n_frames, 2 * n_rotors, 3))
    for r in range(n_rotors):
        c = np.array([5.0 + 3 * r, 10.0, 10.0])
        ph = 0.7 * r
        u = np.stack([np.cos(omega_rad_per_ps * t + ph), np.sin(omega_rad_per_ps * t + ph), 0 * t], axis=1)
        pos[:, 2 * r] = c
        pos[:, 2 * r + 1] = c + 1.2 * u
    return make_dataset(pos, np.eye(3) * box, ["B", "H"] * n_rotors, dt_fs=dt_fs,
                        rotor_id=np.repeat(np.arange(n_rotors), 2), rotor_kind=["BH"] * n_rotors,
                        orientation_atoms=[[2 * r, 2 * r + 1] for r in range(n_rotors)], mobile="B")


def write_store(ds, path, chunk_frames=50):
    """Write a synthetic Dataset into a rotorlab trajectory store (rotorlab.store) and return its path."""
    from rotorlab.store import TrajectoryStore

    has_v = "velocities" in ds
    attrs = {k: ds.attrs[k] for k in ("material", "constraint_mode", "target_temperature", "timestep",
                                      "mobile_species", "mobile_charge")}
    kw = {}
    if "rotor_kind" in ds.coords:
        kw = {"rotor_kind": [str(x) for x in ds["rotor_kind"].values],
              "orientation_atoms": ds["orientation_atoms"].values}
    st = TrajectoryStore.create(path, species=[str(s) for s in ds["species"].values], masses=ds["mass"].values,
                                rotor_id=ds["rotor_id"].values, attrs=attrs, chunk_frames=chunk_frames,
                                velocities=has_v, **kw)
    T = ds.sizes["frame"]
    for a in range(0, T, chunk_frames):
        sl = slice(a, min(a + chunk_frames, T))
        fr = {"positions": ds["positions"].values[sl], "cell": ds["cell"].values[sl],
              "time": ds["time"].values[sl], "step": np.arange(sl.start, sl.stop),
              "temperature": ds["temperature"].values[sl]}
        if has_v:
            fr["velocities"] = ds["velocities"].values[sl]
        st.append(fr)
    st.close()
    return path


def every_analysis(n_frames=240, n_ions=12, dt_fs=5.0, seed=7, D_A2_ps=2.0, box=20.0):
    """A small trajectory on which every built-in registered analysis is applicable.

    Two P2S6 rotors (one turning its upper PS3 group by 120°) among Na ions performing a
    random walk, with velocities (finite differences of the positions, Å/fs); mobile Na.
    """
    rot, _ = p2s6_jumps(n_rotors=2, n_frames=n_frames, jumps_per_rotor=(1, 0), dt_fs=dt_fs, seed=seed, box=box)
    rng = np.random.default_rng(seed)
    dt_ps = dt_fs / 1000.0
    steps = rng.normal(0.0, np.sqrt(2 * D_A2_ps * dt_ps), size=(n_frames, n_ions, 3))
    steps[0] = 0.0
    ions = rng.uniform(0, box, size=(1, n_ions, 3)) + np.cumsum(steps, axis=0)
    pos = np.concatenate([rot["positions"].values, ions], axis=1)
    vel = np.gradient(pos, dt_fs, axis=0)
    spec = [str(s) for s in rot["species"].values] + ["Na"] * n_ions
    rid = np.concatenate([rot["rotor_id"].values, np.full(n_ions, -1)])
    return make_dataset(pos, np.eye(3) * box, spec, dt_fs=dt_fs, velocities=vel, rotor_id=rid,
                        rotor_kind=["P2S6"] * 2, orientation_atoms=rot["orientation_atoms"].values, mobile="Na",
                        material="Na4P2S6-toy", temperature=500.0)


def _random_axes(rng, n):
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _batch_rot(w):
    """Rotation matrices (n, 3, 3) for rotation vectors w (n, 3) (Rodrigues)."""
    ang = np.linalg.norm(w, axis=1)
    n = w / np.where(ang > 0, ang, 1.0)[:, None]
    K = np.zeros((w.shape[0], 3, 3))
    K[:, 0, 1], K[:, 0, 2], K[:, 1, 2] = -n[:, 2], n[:, 1], -n[:, 0]
    K[:, 1, 0], K[:, 2, 0], K[:, 2, 1] = n[:, 2], -n[:, 1], n[:, 0]
    s, c = np.sin(ang)[:, None, None], np.cos(ang)[:, None, None]
    return np.eye(3) + s * K + (1 - c) * K @ K


def ivanov_rotors(n_rotors=32, n_frames=4000, tau0_ps=2.0, delta_deg=90.0, dt_fs=50.0, seed=11, box=30.0,
                  bond=1.22, libration_deg=0.0):
    """BH4 tetrahedra jumping by a fixed angle Δ about uniformly random axes (Ivanov model).

    A jump happens in each frame with probability ``p = dt/τ0`` (geometric residence times
    of mean τ0).  Returns ``(ds, expected)`` with the exact lattice-time correlation times
    ``expected["tau1"], expected["tau2"]`` = ``-dt / ln(1 − p (1 − λ_l))`` (ps), λ_l the
    Ivanov factor, and ``expected["tau0"]`` = τ0 (ps).
    """
    rng = np.random.default_rng(seed)
    dt_ps = dt_fs / 1000.0
    p = dt_ps / tau0_ps
    d = np.radians(delta_deg)
    pos = np.zeros((n_frames, 5 * n_rotors, 3))
    centres = np.stack(np.meshgrid(*[np.arange(4)] * 3, indexing="ij"), -1).reshape(-1, 3)[:n_rotors] * (box / 4) + 2.0
    for r in range(n_rotors):
        R = _rot(_random_axes(rng, 1)[0], rng.uniform(0, 2 * np.pi))
        jumps = rng.random(n_frames) < p
        jumps[0] = False
        axes = _random_axes(rng, int(jumps.sum()))
        Rl = [R]
        for ax in axes:
            Rl.append(_rot(ax, d) @ Rl[-1])
        Rs = np.asarray(Rl)[np.cumsum(jumps)]  # (T, 3, 3)
        if libration_deg > 0:
            Rs = _batch_rot(rng.normal(0, np.radians(libration_deg), (n_frames, 3))) @ Rs
        pos[:, 5 * r] = centres[r]
        pos[:, 5 * r + 1:5 * r + 5] = centres[r] + np.einsum("tij,kj->tki", Rs, TETRA * bond)
    lam = {l: np.sin((l + 0.5) * d) / ((2 * l + 1) * np.sin(0.5 * d)) for l in (1, 2)}
    expected = {"tau0": tau0_ps, "delta": delta_deg,
                "tau1": -dt_ps / np.log(1 - p * (1 - lam[1])), "tau2": -dt_ps / np.log(1 - p * (1 - lam[2]))}
    species = ["B", "H", "H", "H", "H"] * n_rotors
    rid = np.repeat(np.arange(n_rotors), 5)
    oa = [[5 * r, 5 * r + 1] for r in range(n_rotors)]
    ds = make_dataset(pos, np.eye(3) * box, species, dt_fs=dt_fs, rotor_id=rid, rotor_kind=["BH4"] * n_rotors,
                      orientation_atoms=oa, mobile="B")
    return ds, expected


def mixed_rotor_jumps(n_rotors=6, n_frames=3000, n_jumps=8, libration_deg=6.0, dt_fs=5.0, seed=12, box=20.0,
                      bond=1.22, transition_frames=3):
    """BH4 rotors making a known mix of 90° S4, 180° C2 and 120° C3 jumps with libration noise.

    S4/C2 jumps turn about one of the rotor's own twofold axes (body x, y, z); C3 jumps turn
    about one of its B–H bonds, a third of them about the tracked bond (orientation atom
    H1), which a single-vector criterion cannot see.  Returns ``(ds, expected)`` where
    ``expected`` has per-rotor ``total`` counts, the counts per ``kind`` (``S4``, ``C2``,
    ``C3``) and ``c3_tracked`` (C3 jumps about the tracked bond).
    """
    rng = np.random.default_rng(seed)
    pos = np.zeros((n_frames, 5 * n_rotors, 3))
    centres = rng.uniform(2, box - 2, size=(n_rotors, 3))
    kinds = {"S4": np.zeros(n_rotors, int), "C2": np.zeros(n_rotors, int), "C3": np.zeros(n_rotors, int)}
    tracked = np.zeros(n_rotors, int)
    gap = n_frames // (n_jumps + 1)
    for r in range(n_rotors):
        R = np.eye(3)
        Rs = np.empty((n_frames, 3, 3))
        last = 0
        for j in range(n_jumps):
            t0 = (j + 1) * gap + int(rng.integers(-gap // 4, gap // 4))
            Rs[last:t0] = R
            kind = ("S4", "C2", "C3")[(j + r) % 3]
            if kind == "C3":
                k = int(rng.integers(4)) if (j // 3) % 3 else 0  # every third C3 about the tracked bond
                axis, ang = R @ TETRA[k], 2 * np.pi / 3 * (1 if rng.random() < 0.5 else -1)
                tracked[r] += k == 0
            else:
                axis = R @ np.eye(3)[int(rng.integers(3))]
                ang = (np.pi / 2 * (1 if rng.random() < 0.5 else -1)) if kind == "S4" else np.pi
            kinds[kind][r] += 1
            for q in range(transition_frames):
                Rs[t0 + q] = _rot(axis, ang * (q + 1) / (transition_frames + 1)) @ R
            R = _rot(axis, ang) @ R
            last = t0 + transition_frames
        Rs[last:] = R
        noise = rng.normal(0, np.radians(libration_deg), size=(n_frames + 2, 3))
        noise = (noise[:-2] + noise[1:-1] + noise[2:]) / np.sqrt(3)
        Rs = _batch_rot(noise) @ Rs
        pos[:, 5 * r] = centres[r]
        pos[:, 5 * r + 1:5 * r + 5] = centres[r] + np.einsum("tij,kj->tki", Rs, TETRA * bond)
    species = ["B", "H", "H", "H", "H"] * n_rotors
    rid = np.repeat(np.arange(n_rotors), 5)
    oa = [[5 * r, 5 * r + 1] for r in range(n_rotors)]
    ds = make_dataset(pos, np.eye(3) * box, species, dt_fs=dt_fs, rotor_id=rid, rotor_kind=["BH4"] * n_rotors,
                      orientation_atoms=oa, mobile="B")
    expected = {"total": kinds["S4"] + kinds["C2"] + kinds["C3"], "c3_tracked": tracked, **kinds}
    return ds, expected
