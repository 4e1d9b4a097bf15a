"""Rotor orientation: vectors, lattice-frame angles, reorientation events, P1/P2 ACFs, F(θ, φ), P2S6 dihedrals.

Definitions (DESIGN §5)
-----------------------
* Orientation vector of rotor r: ``u = x_j − x_i`` (minimum image), normalised, with
  ``(i, j) = orientation_atoms[r]`` (centre→ligand for tetrahedra, apical B→B for B10H10,
  P→P for P2S6).
* ``θ_k = arccos(u · a_k/|a_k|)`` against the lattice vectors a, b, c (degrees).
* Reorientation event: the libration-smoothed vector (centred running mean over
  ``smooth_ps``, renormalised) turns by more than ``threshold_deg`` (70°) from its previous
  resting direction.  After an event the new resting direction is the smoothed vector
  ``settle_ps`` later (default: ``smooth_ps``), i.e. once the jump has completed.
* ``P_l`` autocorrelation ``C_l(τ) = ⟨P_l(u(t)·u(t+τ))⟩`` over all origins (FFT) and rotors.
* Rotational free energy ``F(θ, φ) = −k_B T ln p(θ, φ)`` with p the probability per solid
  angle of u in the orthonormal lattice frame (e1 ∥ a, e3 ∥ a × b), shifted so min F = 0.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from rotorlab import units as U

from . import _data
from ._kernels import autocorr_fft, best_rotations, reorientation_events, rotation_events
from .base import Analyzer, Result, scalar


def _rotor_indices(ds: xr.Dataset, kind: str | None) -> np.ndarray:
    if "rotor" not in ds.dims or ds.sizes["rotor"] == 0 or "orientation_atoms" not in ds:
        raise ValueError("the trajectory has no rotors (needs dim 'rotor' and 'orientation_atoms')")
    if kind is None:
        return np.arange(ds.sizes["rotor"])
    kinds = np.asarray(ds["rotor_kind"].values).astype(str)
    idx = np.flatnonzero(kinds == kind)
    if idx.size == 0:
        raise ValueError(f"rotor kind {kind!r} not present (kinds present: {sorted(set(kinds.tolist()))})")
    return idx


def lattice_frame(cell: np.ndarray) -> np.ndarray:
    """Orthonormal frame (rows e1, e2, e3) with e1 ∥ a and e3 ∥ a × b; ``cell`` (3, 3) rows."""
    a, b = cell[0], cell[1]
    e1 = a / np.linalg.norm(a)
    e3 = np.cross(a, b)
    e3 /= np.linalg.norm(e3)
    return np.array([e1, np.cross(e3, e1), e3])


def orientation_vectors(ds: xr.Dataset, kind: str | None = None,
                        memory: float = _data.DEFAULT_MEMORY) -> xr.DataArray:
    """Unit orientation vector of every rotor, read chunk by chunk.

    Parameters
    ----------
    ds : xarray.Dataset
        Trajectory with ``orientation_atoms`` (rotor, pair).
    kind : str, optional
        Restrict to one ``rotor_kind``.

    Returns
    -------
    xarray.DataArray, dims (frame, rotor, xyz), unitless (Å/Å)
    """
    _data._require(ds, ["positions", "cell"], "orientation vectors")
    ridx = _rotor_indices(ds, kind)
    pairs = np.asarray(ds["orientation_atoms"].values)[ridx].astype(np.int64)
    atoms = np.unique(pairs.ravel())
    pi = np.searchsorted(atoms, pairs[:, 0])
    pj = np.searchsorted(atoms, pairs[:, 1])
    nf = _data.n_frames(ds)
    u = np.empty((nf, ridx.size, 3))
    for fs in _data.frame_chunks(ds, atoms.size * 3 * 8 * 3, memory):
        x = _data.read_block(ds, "positions", fs, atoms)
        c = _data.cells(ds, fs)
        d = _data.min_image(x[:, pj] - x[:, pi], c[:, None])
        u[fs] = d / np.linalg.norm(d, axis=-1, keepdims=True)
    out = xr.DataArray(u, dims=("frame", "rotor", "xyz"), name="orientation",
                       coords={"rotor": ridx, "time": ("frame", _data.frame_times_ps(ds))},
                       attrs={"units": "1", "long_name": "unit orientation vector"})
    out["time"].attrs["units"] = "ps"
    return out


def smooth_vectors(u: np.ndarray, window: int) -> np.ndarray:
    """Centred running mean over ``window`` frames along axis 0 (edges shrink), renormalised.

    Parameters
    ----------
    u : ndarray (T, R, 3)
    window : int (frames)
    """
    if window <= 1:
        return u.copy()
    s = _running_mean(u, window)
    n = np.linalg.norm(s, axis=-1, keepdims=True)
    return s / np.where(n > 0, n, 1.0)


def angle_projections(u: xr.DataArray, cell: np.ndarray) -> xr.DataArray:
    """θ_a, θ_b, θ_c: angles (degrees) between orientation vectors and the lattice vectors.

    Parameters
    ----------
    u : DataArray (frame, rotor, xyz)
    cell : ndarray (3, 3) or (frame, 3, 3), row lattice vectors
    """
    c = np.asarray(cell, dtype=float)
    ax = c / np.linalg.norm(c, axis=-1, keepdims=True)
    if ax.ndim == 2:
        cosang = np.einsum("fri,ki->frk", u.values, ax)
    else:
        cosang = np.einsum("fri,fki->frk", u.values, ax)
    th = np.degrees(np.arccos(np.clip(cosang, -1.0, 1.0)))
    out = xr.DataArray(th, dims=("frame", "rotor", "axis"), coords={"rotor": u["rotor"], "axis": ["a", "b", "c"]},
                       name="theta", attrs={"units": "degree", "long_name": "angle to lattice vector"})
    return out


class RotorOrientation(Analyzer):
    """Orientation vectors and θ_a/θ_b/θ_c projections of the rotors (optionally one kind).

    Parameters
    ----------
    kind : str, optional
        Restrict to one ``rotor_kind``.
    memory : float
        Bytes per materialised block.
    """

    def __init__(self, kind: str | None = None, memory: float = _data.DEFAULT_MEMORY):
        self.kind, self.memory = kind, memory

    vectors = Result("1", "(frame, rotor, xyz) unit orientation vectors.")
    theta = Result("degree", "(frame, rotor, axis) angles to lattice vectors a, b, c in degrees.")

    def compute(self, ds: xr.Dataset) -> "RotorOrientation":
        u = orientation_vectors(ds, self.kind, self.memory)
        self._set(vectors=u, theta=angle_projections(u, _data.cells(ds)))
        return self

    def _plot(self, P, ax=None, **kw):
        th = self.theta
        return P.plot_histograms([th.sel(axis=a) for a in th["axis"].values],
                                 [f"θ_{a}" for a in th["axis"].values], ax=ax, bins=kw.pop("bins", 36),
                                 xlabel="angle to lattice vector (degree)", **kw)


def _frames_for(ps: float, dt_ps: float) -> int:
    return max(1, int(round(ps / dt_ps)))


def kabsch(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Best rotations mapping reference vectors onto current ones (the Kabsch problem).

    Parameters
    ----------
    ref : ndarray, shape (..., K, 3)
        Reference (resting) vectors.
    cur : ndarray, shape (..., K, 3)
        Current vectors (same leading shape or broadcastable).

    Returns
    -------
    ndarray, shape (..., 3, 3)
        Proper rotations R (det +1) minimising ``Σ_k |cur_k − R ref_k|²``.
    """
    H = np.einsum("...ki,...kj->...ij", ref, cur)
    lead = H.shape[:-2]
    # Horn's quaternion method in a numba kernel (one 4x4 Jacobi eigenproblem per rotor and
    # frame): the same rotations as the SVD Kabsch solution (tested), several times faster
    R = best_rotations(np.ascontiguousarray(H.reshape(-1, 3, 3), dtype=np.float64))
    return R.reshape(lead + (3, 3))


def kabsch_svd(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Reference implementation of :func:`kabsch` by batched SVD (for tests)."""
    H = np.einsum("...ki,...kj->...ij", ref, cur)
    U, _, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(np.einsum("...ji,...kj->...ik", Vt, U)))
    d = np.where(d == 0, 1.0, d)
    Vt = Vt.copy()
    Vt[..., 2, :] *= d[..., None]
    return np.einsum("...ji,...kj->...ik", Vt, U)


class Reorientation(Analyzer):
    """Reorientation events and frequency, from the full rotation and from one orientation vector.

    Two definitions, both always reported when the rotors have ligands:

    * ``rotation`` (default for ``counts``/``frequency``): the orientation of each rotor is
      the Kabsch rotation of its libration-smoothed centre→ligand vectors (all ligands,
      :func:`rotorlab.analysis.rotor_dynamics.ligand_vectors`) relative to the first frame;
      an event is a rotation by more than ``rotation_threshold_deg`` (default 60°) away
      from the last resting orientation.  Because MD atoms are labelled, this sees every
      jump, including symmetry-equivalent ones that one vector misses (a 120° C3 turn about
      the tracked B–H bond leaves it in place; a 90° S4 turn moves it by only 70.5°).
    * ``vector``: the libration-smoothed orientation vector (``orientation_atoms``) turns by
      more than ``threshold_deg`` (70°) from its previous resting direction.

    After an event the new resting orientation is the one ``settle_ps`` later.

    Parameters
    ----------
    threshold_deg : float
        Turn angle of the orientation vector defining a ``vector`` event (default 70°).
    smooth_ps : float
        Width of the centred running mean removing librations (default 0.1 ps).
    settle_ps : float, optional
        Delay after an event before the new resting direction is taken (default ``smooth_ps``).
    kind : str, optional
        Restrict to one rotor kind.
    method : {"rotation", "vector"}
        Which definition fills ``counts``/``frequency`` (both are always in the results as
        ``counts_rotation``/``counts_vector``).  ``rotation`` falls back to ``vector``
        (stated in ``frequency.attrs["method"]``) when the rotors have no ligand atoms.
    rotation_threshold_deg : float
        Rotation angle defining a ``rotation`` event (default 60°: two thirds of the
        smallest tetrahedral jump of 90°, well above smoothed librations).
    """

    def __init__(self, threshold_deg: float = 70.0, smooth_ps: float = 0.1, settle_ps: float | None = None,
                 kind: str | None = None, memory: float = _data.DEFAULT_MEMORY, method: str = "rotation",
                 rotation_threshold_deg: float = 60.0):
        if not 0 < threshold_deg < 180:
            raise ValueError("threshold_deg must be in (0, 180)")
        if not 0 < rotation_threshold_deg < 180:
            raise ValueError("rotation_threshold_deg must be in (0, 180)")
        if method not in ("rotation", "vector"):
            raise ValueError(f"method must be 'rotation' or 'vector', got {method!r}")
        self.threshold_deg, self.smooth_ps = threshold_deg, smooth_ps
        self.settle_ps = smooth_ps if settle_ps is None else settle_ps
        self.kind, self.memory = kind, memory
        self.method, self.rotation_threshold_deg = method, float(rotation_threshold_deg)

    def compute(self, ds: xr.Dataset) -> "Reorientation":
        u = orientation_vectors(ds, self.kind, self.memory)
        nf = u.sizes["frame"]
        if nf < 3:
            raise ValueError("too few frames for reorientation analysis (need >= 3)")
        dt = _data.frame_dt_ps(ds)
        w = _frames_for(self.smooth_ps, dt)
        settle = _frames_for(self.settle_ps, dt)
        us = smooth_vectors(u.values, w)
        counts_v, events_v = reorientation_events(np.ascontiguousarray(us),
                                                  float(np.cos(np.radians(self.threshold_deg))), settle)
        dur_ns = (nf - 1) * dt / 1000.0
        rc = {"rotor": u["rotor"]}
        counts_r = events_r = angle_r = None
        why = ""
        try:
            from .rotor_dynamics import ligand_vectors

            lv = ligand_vectors(ds, self.kind, memory=self.memory).values  # (T, R, L, 3)
            if lv.shape[2] < 2 or not np.all(np.isfinite(lv[0])):
                raise ValueError("full rotation needs >= 2 ligands per rotor, all rotors of one size")
            ls = _running_mean(lv, w)
            ls /= np.linalg.norm(ls, axis=-1, keepdims=True)
            rm = kabsch(ls[:1], ls)  # (T, R, 3, 3) relative to the first frame
            counts_r, events_r, cang = rotation_events(np.ascontiguousarray(rm),
                                                       float(np.cos(np.radians(self.rotation_threshold_deg))),
                                                       settle)
            angle_r = np.degrees(np.arccos(np.clip(cang, -1.0, 1.0)))
        except ValueError as exc:
            why = str(exc)
        use_rot = self.method == "rotation" and counts_r is not None
        counts, events = (counts_r, events_r) if use_rot else (counts_v, events_v)
        meth = ("rotation" if use_rot else "vector") + (f" (full rotation unavailable: {why})"
                                                          if self.method == "rotation" and not use_rot else "")
        fa = {"units": "1/ns", "long_name": "reorientation events per rotor per ns", "method": meth,
              "threshold_deg": self.rotation_threshold_deg if use_rot else self.threshold_deg,
              "smooth_ps": self.smooth_ps}
        out = dict(
            counts=xr.DataArray(counts, dims="rotor", coords=rc, name="reorientation_count",
                                attrs={"units": "1", "method": meth}),
            frequency=xr.DataArray(counts / dur_ns, dims="rotor", coords=rc, name="reorientation_frequency",
                                   attrs=fa),
            events=xr.DataArray(events, dims=("frame", "rotor"), coords=rc, attrs={"units": "1"}),
            smoothed=xr.DataArray(us, dims=("frame", "rotor", "xyz"), coords=rc, attrs={"units": "1"}),
            counts_vector=xr.DataArray(counts_v, dims="rotor", coords=rc, attrs={
                "units": "1", "method": f"orientation vector turns > {self.threshold_deg:g} deg"}),
            frequency_vector=xr.DataArray(counts_v / dur_ns, dims="rotor", coords=rc, attrs={"units": "1/ns"}))
        if counts_r is not None:
            out.update(
                counts_rotation=xr.DataArray(counts_r, dims="rotor", coords=rc, attrs={
                    "units": "1", "method": f"Kabsch rotation of all ligands > {self.rotation_threshold_deg:g} deg"}),
                frequency_rotation=xr.DataArray(counts_r / dur_ns, dims="rotor", coords=rc, attrs={"units": "1/ns"}),
                rotation_angle=xr.DataArray(angle_r, dims=("frame", "rotor"), coords=rc, attrs={
                    "units": "degree", "long_name": "rotation angle from the resting orientation"}))
        self._set(**out)
        return self

    counts = Result("1", "Number of events per rotor (definition: ``method``), dims (rotor,).")
    frequency = Result("1/ns", "Events per rotor per ns, dims (rotor,).")
    events = Result("1", "(frame, rotor) True where an event is detected.")
    smoothed = Result("1", "(frame, rotor, xyz) libration-smoothed unit vectors.")
    counts_rotation = Result("1", "Full-rotation (Kabsch) events per rotor, dims (rotor,).")
    frequency_rotation = Result("1/ns", "Full-rotation events per rotor per ns, dims (rotor,).")
    rotation_angle = Result("degree", "(frame, rotor) rotation angle from the resting orientation.")
    counts_vector = Result("1", "Single-vector events per rotor, dims (rotor,).")
    frequency_vector = Result("1/ns", "Single-vector events per rotor per ns, dims (rotor,).")

    @property
    def mean_frequency(self) -> xr.DataArray:
        """Mean reorientation frequency over rotors, 0-d in 1/ns."""
        return scalar(float(self.frequency.mean()), "1/ns", name="reorientation_frequency",
                      long_name="mean reorientation events per rotor per ns",
                      method=self.frequency.attrs.get("method", ""))

    def _plot(self, P, ax=None, **kw):
        return P.plot_bars(self.frequency, ax=ax, xlabel="rotor", ylabel="reorientations per ns", **kw)


def legendre_acf(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All-origin P1 and P2 orientation autocorrelations averaged over rotors.

    Parameters
    ----------
    u : ndarray (T, R, 3) unit vectors

    Returns
    -------
    p1, p2 : ndarray (T,)
    """
    p1 = autocorr_fft(u).mean(axis=1)
    s2 = np.sqrt(2.0)
    q = np.stack([u[..., 0] ** 2, u[..., 1] ** 2, u[..., 2] ** 2, s2 * u[..., 0] * u[..., 1],
                  s2 * u[..., 0] * u[..., 2], s2 * u[..., 1] * u[..., 2]], axis=-1)
    c2 = autocorr_fft(q).mean(axis=1)
    return p1, 1.5 * c2 - 0.5


class OrientationACF(Analyzer):
    """P1/P2 orientation autocorrelations ``⟨P_l(u(t)·u(t+τ))⟩`` (all origins, FFT).

    Parameters
    ----------
    kind : str, optional
        Restrict to one ``rotor_kind``.
    memory : float
        Bytes per materialised block.

    Results ``p1``, ``p2``: DataArrays (lag_time,), unitless, lag_time in ps, averaged over rotors.
    """

    def __init__(self, kind: str | None = None, memory: float = _data.DEFAULT_MEMORY):
        self.kind, self.memory = kind, memory

    def compute(self, ds: xr.Dataset) -> "OrientationACF":
        u = orientation_vectors(ds, self.kind, self.memory)
        p1, p2 = legendre_acf(u.values)
        lag = np.arange(u.sizes["frame"]) * _data.frame_dt_ps(ds)
        co = {"lag_time": lag}
        a1 = xr.DataArray(p1, dims="lag_time", coords=co, name="P1", attrs={"units": "1"})
        a2 = xr.DataArray(p2, dims="lag_time", coords=co, name="P2", attrs={"units": "1"})
        for a in (a1, a2):
            a["lag_time"].attrs["units"] = "ps"
        self._set(p1=a1, p2=a2)
        return self

    p1 = Result("1", "⟨P1(u(t)·u(t+τ))⟩, dims (lag_time,), lag_time in ps.")
    p2 = Result("1", "⟨P2(u(t)·u(t+τ))⟩, dims (lag_time,), lag_time in ps.")

    @property
    def p2_time(self) -> xr.DataArray:
        """First lag (ps) where P2 drops below 1/e, 0-d; NaN if it never does within the run."""
        p2 = self.p2
        below = np.flatnonzero(p2.values < np.exp(-1.0))
        t = float(p2["lag_time"].values[below[0]]) if below.size else float("nan")
        return scalar(t, "ps", name="p2_relaxation_time", long_name="first lag with P2 < 1/e")

    def _plot(self, P, ax=None, **kw):
        return P.plot_curves([self.p1, self.p2], ["P1", "P2"], ax=ax, xlabel="lag time (ps)",
                             ylabel="orientation autocorrelation", **kw)


class RotationalFreeEnergy(Analyzer):
    """``F(θ, φ) = −k_B T ln p(θ, φ)`` of the orientation vectors in the lattice frame.

    Parameters
    ----------
    bins : (int, int)
        Bins in θ (uniform in cos θ, so every θ-row has equal solid angle per φ bin) and φ.
    kind : str, optional
    """

    def __init__(self, bins: tuple[int, int] = (36, 72), kind: str | None = None,
                 memory: float = _data.DEFAULT_MEMORY):
        self.bins, self.kind, self.memory = bins, kind, memory

    def compute(self, ds: xr.Dataset) -> "RotationalFreeEnergy":
        u = orientation_vectors(ds, self.kind, self.memory).values
        E = lattice_frame(_data.cells(ds).mean(axis=0))
        w = np.einsum("fri,ki->frk", u, E).reshape(-1, 3)
        nt, nphi = self.bins
        cos_edges = np.linspace(1.0, -1.0, nt + 1)
        phi_edges = np.linspace(-180.0, 180.0, nphi + 1)
        cth = np.clip(w[:, 2], -1, 1)
        phi = np.degrees(np.arctan2(w[:, 1], w[:, 0]))
        H, _, _ = np.histogram2d(-cth, phi, bins=[-cos_edges, phi_edges])
        dOmega = (2.0 / nt) * np.radians(360.0 / nphi)
        p = H / (H.sum() * dOmega)
        kT = U.KB * _data.temperature_K(ds)
        with np.errstate(divide="ignore"):
            F = -kT * np.log(p)
        F = F - np.min(F[np.isfinite(F)])
        F[~np.isfinite(F)] = np.nan
        th_c = np.degrees(np.arccos(0.5 * (cos_edges[:-1] + cos_edges[1:])))
        ph_c = 0.5 * (phi_edges[:-1] + phi_edges[1:])
        co = {"theta": th_c, "phi": ph_c}
        pa = xr.DataArray(p, dims=("theta", "phi"), coords=co, name="probability", attrs={"units": "1/sr"})
        Fa = xr.DataArray(F, dims=("theta", "phi"), coords=co, name="free_energy",
                          attrs={"units": "eV", "long_name": "-kT ln p(theta, phi), min shifted to 0"})
        for a in (pa, Fa):
            a["theta"].attrs["units"] = "degree"
            a["phi"].attrs["units"] = "degree"
        self._set(probability=pa, free_energy=Fa)
        return self

    probability = Result("1/sr", "p(θ, φ) per solid angle, dims (theta, phi) in degrees.")
    free_energy = Result("eV", "F(θ, φ) = −kT ln p, min shifted to 0, NaN where p = 0; dims (theta, phi).")

    def _plot(self, P, ax=None, **kw):
        return P.plot_map(self.free_energy, ax=ax, xdim="phi", ydim="theta", label="F (eV)", **kw)


def dihedral(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, p3: np.ndarray) -> np.ndarray:
    """Dihedral angle p0–p1–p2–p3 in degrees (−180, 180].

    Parameters
    ----------
    p0, p1, p2, p3 : ndarray, shape (..., 3)
        Cartesian positions (Å), molecule already whole.

    Returns
    -------
    ndarray, shape (...)
        Degrees.
    """
    b0 = p0 - p1
    b1 = p2 - p1
    b2 = p3 - p2
    b1n = b1 / np.linalg.norm(b1, axis=-1, keepdims=True)
    v = b0 - np.sum(b0 * b1n, axis=-1, keepdims=True) * b1n
    w = b2 - np.sum(b2 * b1n, axis=-1, keepdims=True) * b1n
    x = np.sum(v * w, axis=-1)
    y = np.sum(np.cross(b1n, v) * w, axis=-1)
    return np.degrees(np.arctan2(y, x))


class P2S6Dihedral(Analyzer):
    """S–P–P–S dihedral of every P2S6 rotor and its jumps.

    The dihedral uses the P–P pair of ``orientation_atoms`` and, on each P, the S atom of the
    rotor closest to it in the first frame.  The angle is unwrapped in time, smoothed over
    ``smooth_ps``, and a jump is counted when it departs by more than ``threshold_deg``
    (default 60°, half the 120° step of the threefold PS3 rotation) from the previous
    resting value; the new resting value is taken ``smooth_ps`` later.

    Parameters
    ----------
    threshold_deg : float
        Departure (degrees) from the resting dihedral that counts as a jump.
    smooth_ps : float
        Running-mean width (ps).
    kind : str
        Rotor kind holding the P2S6 anions (default "P2S6").
    memory : float
        Bytes per materialised block.

    Results: ``dihedral`` (frame, rotor) in degrees, ``jumps`` (rotor,), ``frequency`` (rotor,) in 1/ns.
    """

    def __init__(self, threshold_deg: float = 60.0, smooth_ps: float = 0.1, kind: str = "P2S6",
                 memory: float = _data.DEFAULT_MEMORY):
        self.threshold_deg, self.smooth_ps, self.kind, self.memory = threshold_deg, smooth_ps, kind, memory

    def compute(self, ds: xr.Dataset) -> "P2S6Dihedral":
        ridx = _rotor_indices(ds, self.kind)
        spec = _data.species(ds)
        rid = np.asarray(ds["rotor_id"].values)
        pairs = np.asarray(ds["orientation_atoms"].values)[ridx]
        x0 = _data.read_block(ds, "positions", slice(0, 1))[0]
        c0 = _data.cells(ds, slice(0, 1))[0]
        quads = []
        for r, (pa, pb) in zip(ridx, pairs):
            if spec[pa] != "P" or spec[pb] != "P":
                raise ValueError(f"rotor {r}: orientation atoms are {spec[pa]}, {spec[pb]}, expected P, P")
            s_idx = np.flatnonzero((rid == r) & (spec == "S"))
            if s_idx.size < 2:
                raise ValueError(f"rotor {r} has fewer than 2 S atoms")
            da = np.linalg.norm(_data.min_image(x0[s_idx] - x0[pa], c0), axis=-1)
            db = np.linalg.norm(_data.min_image(x0[s_idx] - x0[pb], c0), axis=-1)
            quads.append([s_idx[np.argmin(da)], pa, pb, s_idx[np.argmin(db)]])
        quads = np.asarray(quads)
        atoms = np.unique(quads.ravel())
        loc = np.searchsorted(atoms, quads)
        nf = _data.n_frames(ds)
        ang = np.empty((nf, ridx.size))
        for fs in _data.frame_chunks(ds, atoms.size * 3 * 8 * 3, self.memory):
            x = _data.read_block(ds, "positions", fs, atoms)
            c = _data.cells(ds, fs)[:, None]
            p1 = x[:, loc[:, 1]]
            p0 = p1 + _data.min_image(x[:, loc[:, 0]] - p1, c)
            p2 = p1 + _data.min_image(x[:, loc[:, 2]] - p1, c)
            p3 = p2 + _data.min_image(x[:, loc[:, 3]] - x[:, loc[:, 2]], c)
            ang[fs] = dihedral(p0, p1, p2, p3)
        dt = _data.frame_dt_ps(ds)
        unw = np.degrees(np.unwrap(np.radians(ang), axis=0))
        w = _frames_for(self.smooth_ps, dt)
        sm = _running_mean(unw, w)
        counts = np.zeros(ridx.size, dtype=np.int64)
        for r in range(ridx.size):
            rest = sm[0, r]
            t = 1
            while t < nf:
                if abs(sm[t, r] - rest) > self.threshold_deg:
                    counts[r] += 1
                    t2 = min(t + w, nf - 1)
                    rest = sm[t2, r]
                    t = t2 + 1
                else:
                    t += 1
        del sm
        rc = {"rotor": ridx}
        dih = xr.DataArray(ang, dims=("frame", "rotor"), coords=rc, name="dihedral",
                           attrs={"units": "degree", "long_name": "S-P-P-S dihedral"})
        dih = dih.assign_coords(time=("frame", _data.frame_times_ps(ds), {"units": "ps"}))
        self._set(dihedral=dih,
                  jumps=xr.DataArray(counts, dims="rotor", coords=rc, name="dihedral_jumps", attrs={"units": "1"}),
                  frequency=xr.DataArray(counts / ((nf - 1) * dt / 1000.0), dims="rotor", coords=rc,
                                         name="dihedral_jump_frequency", attrs={"units": "1/ns"}))
        return self

    dihedral = Result("degree", "S-P-P-S dihedral, dims (frame, rotor), in (−180, 180].")
    jumps = Result("1", "Dihedral jumps per rotor, dims (rotor,).")
    frequency = Result("1/ns", "Dihedral jumps per rotor per ns, dims (rotor,).")

    @property
    def mean_frequency(self) -> xr.DataArray:
        """Mean dihedral-jump frequency over rotors, 0-d in 1/ns."""
        return scalar(float(self.frequency.mean()), "1/ns", name="dihedral_jump_frequency")

    def _plot(self, P, ax=None, **kw):
        d = self.dihedral
        return P.plot_curves([d.isel(rotor=k) for k in range(min(d.sizes["rotor"], 6))],
                             [f"rotor {int(r)}" for r in d["rotor"].values[:6]], ax=ax, x="time",
                             xlabel="time (ps)", ylabel="S-P-P-S dihedral (degree)", **kw)


def _running_mean(a: np.ndarray, window: int) -> np.ndarray:
    """Centred running mean along axis 0 with shrinking edges, any trailing shape."""
    if window <= 1:
        return a.copy()
    T = a.shape[0]
    c = np.concatenate([np.zeros((1,) + a.shape[1:]), np.cumsum(a, axis=0)])
    h = window // 2
    lo = np.clip(np.arange(T) - h, 0, T)
    hi = np.clip(np.arange(T) + (window - h), 0, T)
    shp = (T,) + (1,) * (a.ndim - 1)
    return (c[hi] - c[lo]) / (hi - lo).reshape(shp)
