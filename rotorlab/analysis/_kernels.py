"""Pure array kernels for the analysis suite (NumPy FFT and numba).

Kernels never import the user API.  Numba kernels are decorated with ``cache=True`` and
compile lazily on their first call (nothing is compiled at import time).  Every numba kernel
has a plain-NumPy reference in ``tests/test_analysis_kernels.py``.

Array conventions: ``T`` frames, ``N`` particles, Cartesian ``3``; cells are row lattice
vectors (``cell[k]`` is the k-th lattice vector) in Å.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# ---------------------------------------------------------------------------------------
# FFT correlation kernels (all time origins)
# ---------------------------------------------------------------------------------------


def _next_fast_len(n: int) -> int:
    try:
        from scipy.fft import next_fast_len

        return int(next_fast_len(n, real=True))
    except Exception:  # pragma: no cover - scipy is a hard dependency
        return 1 << int(np.ceil(np.log2(n)))


def _autocorr_rows(y: np.ndarray, T: int) -> np.ndarray:
    """Unnormalised all-origin autocorrelation of each row of ``y`` (M, T), lags 0 … T-1.

    Wiener–Khinchin with zero padding to an even ``n ≥ 2T``: the power spectrum
    ``|rfft(y)|²`` is real and even, so its inverse transform is a type-I DCT of the
    ``n/2 + 1`` non-negative frequencies (``irfft(P)[k] = DCT-I(P)[k] / n``), about four
    times cheaper than a complex inverse FFT.
    """
    from scipy import fft as sfft

    nfft = 2 * _next_fast_len(T)
    f = sfft.rfft(y, n=nfft, axis=-1)
    p = f.real * f.real
    p += f.imag * f.imag
    del f
    c = sfft.dct(p, type=1, axis=-1)[:, :T]
    c /= nfft
    return c


def autocorr_fft(x: np.ndarray) -> np.ndarray:
    """All-origin autocorrelation along axis 0, summed over the last axis.

    The transforms run over contiguous rows (particle × component, time) with
    :mod:`scipy.fft`, which is several times faster than transforming along a strided axis.

    Parameters
    ----------
    x : ndarray, shape (T, N, C)
        Time series of ``N`` particles with ``C`` components (e.g. velocity xyz).

    Returns
    -------
    ndarray, shape (T, N)
        ``c[m, n] = 1/(T-m) Σ_k Σ_c x[k, n, c] x[k+m, n, c]`` for lags ``m = 0 … T-1``.
    """
    x = np.asarray(x, dtype=np.float64)
    T, N, C = x.shape
    y = np.ascontiguousarray(x.reshape(T, N * C).T)  # (N*C, T)
    c = _autocorr_rows(y, T).reshape(N, C, T).sum(axis=1).T  # (T, N)
    c /= (T - np.arange(T))[:, None]
    return c


def msd_fft(x: np.ndarray) -> np.ndarray:
    """Per-particle mean squared displacement over all time origins (FFT algorithm).

    Uses ``MSD(m) = S1(m) - 2 S2(m)`` with the square-sum recursion for ``S1`` and an FFT
    autocorrelation for ``S2`` (Calandrini et al., Collection SFN 12, 201 (2011)), O(T log T).

    Parameters
    ----------
    x : ndarray, shape (T, N, 3)
        Unwrapped positions (Å).

    Returns
    -------
    ndarray, shape (T, N)
        MSD (Å²) at lag ``m`` frames, ``msd[0] = 0``.
    """
    x = np.asarray(x, dtype=np.float64)
    return msd_fft_rows(np.ascontiguousarray(x.transpose(1, 0, 2))).T


def msd_fft_rows(xa: np.ndarray) -> np.ndarray:
    """:func:`msd_fft` for atom-major input ``xa`` (N, T, 3); returns (N, T) Å²."""
    xa = np.asarray(xa, dtype=np.float64)
    N, T, _ = xa.shape
    # component-major rows, minus each particle's mean (displacements unchanged, better precision)
    y = np.ascontiguousarray(xa.transpose(0, 2, 1))  # (N, 3, T), a copy: the caller's data is untouched
    y -= y.mean(axis=-1, keepdims=True)
    D = np.einsum("nct,nct->nt", y, y)  # (N, T)
    S2 = _autocorr_rows(y.reshape(N * 3, T), T).reshape(N, 3, T).sum(axis=1)
    norm = 1.0 / (T - np.arange(T))
    Q0 = 2.0 * D.sum(axis=1)
    c = np.cumsum(D + D[:, ::-1], axis=1)
    msd = np.empty_like(D)
    msd[:, 0] = 0.0
    msd[:, 1:] = (Q0[:, None] - c[:, :-1]) * norm[1:] - 2.0 * S2[:, 1:] * norm[1:]
    np.maximum(msd, 0.0, out=msd)
    return msd


def msd_fft_sum(xa: np.ndarray) -> np.ndarray:
    """Sum over particles of the all-origin MSD, for atom-major input; one inverse transform.

    The autocorrelation is linear in the power spectrum, so the per-particle spectra are
    summed before the single inverse (type-I DCT) transform: half the transforms of
    :func:`msd_fft_rows` followed by a sum, with the same result to rounding.

    Parameters
    ----------
    xa : ndarray, shape (..., N, T, 3)
        Unwrapped positions (Å) of ``N`` particles over ``T`` frames; leading axes (e.g.
        independent blocks) are kept.

    Returns
    -------
    ndarray, shape (..., T)
        ``Σ_n MSD_n(m)`` in Å² at lag ``m`` frames (divide by ``N`` for the mean MSD).
    """
    from scipy import fft as sfft

    xa = np.asarray(xa, dtype=np.float64)
    *lead, N, T, _ = xa.shape
    lead = tuple(lead)
    nfft = 2 * _next_fast_len(T)
    # particles go through the transform in batches whose zero-padded rows fit in the CPU
    # cache (one buffer reused; the caller's data is untouched): fresh 10 MB buffers per
    # call cost more in page faults and cache misses than the FFT itself
    per = 3 * nfft * 8 * max(1, int(np.prod(lead)))
    nb = int(min(max(N, 1), max(1, _FFT_BATCH_BYTES // per)))
    buf = np.empty(lead + (nb, 3, nfft))
    p = np.zeros(lead + (nfft // 2 + 1,))
    D = np.empty(lead + (N, T))
    for a in range(0, N, nb):
        b = min(N, a + nb)
        rows = buf[..., : b - a, :, :]
        y = rows[..., :T]
        y[...] = np.moveaxis(xa[..., a:b, :, :], -1, -2)  # component-major rows
        y -= y.mean(axis=-1, keepdims=True)               # centred on each row's mean
        rows[..., T:] = 0.0
        D[..., a:b, :] = np.einsum("...nct,...nct->...nt", y, y)
        f = sfft.rfft(rows, axis=-1)
        p += np.einsum("...ncf,...ncf->...f", f.real, f.real)
        p += np.einsum("...ncf,...ncf->...f", f.imag, f.imag)
    del buf
    S2 = sfft.dct(p, type=1, axis=-1)[..., :T] / nfft  # (..., T)
    norm = 1.0 / (T - np.arange(T))
    Q0 = 2.0 * D.sum(axis=(-2, -1))  # (...,)
    c = np.cumsum((D + D[..., ::-1]).sum(axis=-2), axis=-1)  # (..., T)
    out = np.empty(lead + (T,))
    out[..., 0] = 0.0
    out[..., 1:] = (Q0[..., None] - c[..., :-1]) * norm[1:] - 2.0 * S2[..., 1:] * norm[1:]
    np.maximum(out, 0.0, out=out)
    return out


#: bytes of zero-padded rows one FFT batch of :func:`msd_fft_sum` holds (cache-sized)
_FFT_BATCH_BYTES = 2 * 2**20


def msd_direct(x: np.ndarray) -> np.ndarray:
    """Reference O(T²) all-origin MSD, shape (T, N) — for tests and tiny inputs."""
    x = np.asarray(x, dtype=np.float64)
    T = x.shape[0]
    out = np.zeros((T, x.shape[1]))
    for m in range(1, T):
        d = x[m:] - x[:-m]
        out[m] = (d**2).sum(axis=-1).mean(axis=0)
    return out


# ---------------------------------------------------------------------------------------
# numba kernels
# ---------------------------------------------------------------------------------------


@njit(cache=True, parallel=True, fastmath=False)
def rdf_hist(pos_a, pos_b, cells, inv_cells, r_max, nbins, same, orthogonal, weights):
    """Weighted pair-distance histogram under the minimum image, triclinic safe.

    Parameters
    ----------
    pos_a : float64 (T, NA, 3) ; pos_b : float64 (T, NB, 3)
        Cartesian positions (Å); need not be wrapped.
    cells, inv_cells : float64 (T, 3, 3)
        Row lattice vectors and their inverses.
    r_max : float
        Largest distance (Å); must not exceed half the smallest perpendicular cell width,
        so at most one periodic image of a pair lies within ``r_max``.
    nbins : int
    same : bool
        ``pos_a`` and ``pos_b`` are the same set: count unordered pairs i<j twice.
    orthogonal : bool
        All cells orthorhombic: fractional rounding gives the minimum image directly.
        Otherwise the 27 neighbouring images of the rounded vector are checked.
    weights : float64 (T,)
        Per-frame weight multiplied into every count.

    Returns
    -------
    float64 (nbins,)
        Sum over frames of weight × number of ordered pairs per distance bin.
    """
    T = pos_a.shape[0]
    na = pos_a.shape[1]
    nb = pos_b.shape[1]
    dr = r_max / nbins
    rmax2 = r_max * r_max
    hist = np.zeros((T, nbins))
    for t in prange(T):
        c = cells[t]
        ic = inv_cells[t]
        w = weights[t]
        add = 2.0 * w if same else w
        shifts = np.zeros((27, 3))
        k = 0
        for s0 in range(-1, 2):
            for s1 in range(-1, 2):
                for s2 in range(-1, 2):
                    for q in range(3):
                        shifts[k, q] = s0 * c[0, q] + s1 * c[1, q] + s2 * c[2, q]
                    k += 1
        for i in range(na):
            ax = pos_a[t, i, 0]
            ay = pos_a[t, i, 1]
            az = pos_a[t, i, 2]
            j0 = i + 1 if same else 0
            for j in range(j0, nb):
                dx = pos_b[t, j, 0] - ax
                dy = pos_b[t, j, 1] - ay
                dz = pos_b[t, j, 2] - az
                f0 = dx * ic[0, 0] + dy * ic[1, 0] + dz * ic[2, 0]
                f1 = dx * ic[0, 1] + dy * ic[1, 1] + dz * ic[2, 1]
                f2 = dx * ic[0, 2] + dy * ic[1, 2] + dz * ic[2, 2]
                f0 -= np.floor(f0 + 0.5)
                f1 -= np.floor(f1 + 0.5)
                f2 -= np.floor(f2 + 0.5)
                ex = f0 * c[0, 0] + f1 * c[1, 0] + f2 * c[2, 0]
                ey = f0 * c[0, 1] + f1 * c[1, 1] + f2 * c[2, 1]
                ez = f0 * c[0, 2] + f1 * c[1, 2] + f2 * c[2, 2]
                if orthogonal:
                    r2 = ex * ex + ey * ey + ez * ez
                    if r2 < rmax2:
                        b = int(np.sqrt(r2) / dr)
                        if b < nbins:
                            hist[t, b] += add
                else:
                    for s in range(27):
                        gx = ex + shifts[s, 0]
                        gy = ey + shifts[s, 1]
                        gz = ez + shifts[s, 2]
                        r2 = gx * gx + gy * gy + gz * gz
                        if r2 < rmax2:
                            b = int(np.sqrt(r2) / dr)
                            if b < nbins:
                                hist[t, b] += add
    out = np.zeros(nbins)
    for t in range(T):
        for b in range(nbins):
            out[b] += hist[t, b]
    return out


@njit(cache=True, parallel=True)
def assign_sites(pos, cells, inv_cells, site_frac, r_cut):
    """Nearest site (minimum image, triclinic safe) of every particle in every frame.

    Parameters
    ----------
    pos : float64 (T, N, 3)
        Cartesian positions (Å), wrapped or unwrapped.
    cells, inv_cells : float64 (T, 3, 3)
    site_frac : float64 (S, 3)
        Site positions in fractional coordinates.
    r_cut : float
        Particles farther than ``r_cut`` (Å) from every site get ``-1``.

    Returns
    -------
    int64 (T, N)
        Site index or -1.
    """
    T = pos.shape[0]
    N = pos.shape[1]
    S = site_frac.shape[0]
    out = np.full((T, N), -1, dtype=np.int64)
    rc2 = r_cut * r_cut
    for t in prange(T):
        c = cells[t]
        ic = inv_cells[t]
        for n in range(N):
            px = pos[t, n, 0]
            py = pos[t, n, 1]
            pz = pos[t, n, 2]
            fx = px * ic[0, 0] + py * ic[1, 0] + pz * ic[2, 0]
            fy = px * ic[0, 1] + py * ic[1, 1] + pz * ic[2, 1]
            fz = px * ic[0, 2] + py * ic[1, 2] + pz * ic[2, 2]
            best = 1e300
            bi = -1
            for s in range(S):
                d0 = fx - site_frac[s, 0]
                d1 = fy - site_frac[s, 1]
                d2 = fz - site_frac[s, 2]
                d0 -= np.floor(d0 + 0.5)
                d1 -= np.floor(d1 + 0.5)
                d2 -= np.floor(d2 + 0.5)
                for s0 in range(-1, 2):
                    for s1 in range(-1, 2):
                        for s2 in range(-1, 2):
                            g0 = d0 + s0
                            g1 = d1 + s1
                            g2 = d2 + s2
                            ex = g0 * c[0, 0] + g1 * c[1, 0] + g2 * c[2, 0]
                            ey = g0 * c[0, 1] + g1 * c[1, 1] + g2 * c[2, 1]
                            ez = g0 * c[0, 2] + g1 * c[1, 2] + g2 * c[2, 2]
                            r2 = ex * ex + ey * ey + ez * ez
                            if r2 < best:
                                best = r2
                                bi = s
            if best <= rc2:
                out[t, n] = bi
    return out


@njit(cache=True)
def residence_filter(raw, n_res, cur, cand, run, occ, hops):
    """Residence-filtered site trajectory, hop counts and occupancies, chainable over blocks.

    A particle is committed to a new site only after ``n_res`` consecutive frames there;
    shorter visits (rattling, transit through another site) and unassigned frames (``-1``)
    keep the previous site.  Each commit to a site different from a previously held one is
    one hop.  The ``n_res`` frames leading up to a commit are re-labelled to the new site
    (also across block boundaries, through ``occ``).

    Parameters
    ----------
    raw : int64 (T, N)
        Per-frame nearest site of this block, -1 when between sites.
    n_res : int
        Residence threshold in frames (>= 1).
    cur, cand, run : int64 (N,)
        State, updated in place: held site (-1 = none yet), pending candidate and its run.
    occ : float64 (S + 1,)
        Frame counts per site, updated in place; ``occ[S]`` counts frames with no held site.
    hops : int64 (N,)
        Hop counts, updated in place.

    Returns
    -------
    int64 (T, N)
        Held site per frame of this block (frames before a commit inside the block are
        re-labelled; earlier blocks are corrected only through ``occ``).
    """
    T = raw.shape[0]
    N = raw.shape[1]
    S = occ.shape[0] - 1
    filtered = np.full((T, N), -1, dtype=np.int64)
    for n in range(N):
        c = cur[n]
        cd = cand[n]
        rn = run[n]
        for t in range(T):
            s = raw[t, n]
            if s == -1 or s == c:
                cd = -1
                rn = 0
            else:
                if s == cd:
                    rn += 1
                else:
                    cd = s
                    rn = 1
                if rn >= n_res:
                    if c != -1:
                        hops[n] += 1
                    # re-label the previous rn-1 frames from the old holder to s
                    old = c if c != -1 else S
                    occ[old] -= rn - 1
                    occ[s] += rn - 1
                    lo = t - rn + 1
                    if lo < 0:
                        lo = 0
                    for q in range(lo, t):
                        filtered[q, n] = s
                    c = s
                    cd = -1
                    rn = 0
            filtered[t, n] = c
            if c == -1:
                occ[S] += 1
            else:
                occ[c] += 1
        cur[n] = c
        cand[n] = cd
        run[n] = rn
    return filtered


@njit(cache=True)
def displacement_events(x, threshold, settle):
    """Count moves of (smoothed) positions farther than ``threshold`` from the resting point.

    Parameters
    ----------
    x : float64 (T, N, 3)
        Smoothed unwrapped positions (Å).
    threshold : float
        Distance (Å).
    settle : int
        Frames after an event at which the new resting point is taken.

    Returns
    -------
    int64 (N,)
    """
    T = x.shape[0]
    N = x.shape[1]
    thr2 = threshold * threshold
    counts = np.zeros(N, dtype=np.int64)
    for n in range(N):
        r0 = x[0, n, 0]
        r1 = x[0, n, 1]
        r2 = x[0, n, 2]
        t = 1
        while t < T:
            d0 = x[t, n, 0] - r0
            d1 = x[t, n, 1] - r1
            d2 = x[t, n, 2] - r2
            if d0 * d0 + d1 * d1 + d2 * d2 > thr2:
                counts[n] += 1
                t2 = t + settle
                if t2 > T - 1:
                    t2 = T - 1
                r0 = x[t2, n, 0]
                r1 = x[t2, n, 1]
                r2 = x[t2, n, 2]
                t = t2 + 1
            else:
                t += 1
    return counts


@njit(cache=True)
def reorientation_events(u, cos_threshold, settle):
    """Count turns of unit vectors by more than a threshold angle from the resting direction.

    Parameters
    ----------
    u : float64 (T, R, 3)
        Libration-smoothed unit orientation vectors.
    cos_threshold : float
        cos of the threshold angle (70° → 0.342).
    settle : int
        After an event, the new resting direction is taken ``settle`` frames later (the
        vector has finished its jump); detection resumes from there.

    Returns
    -------
    counts : int64 (R,)
    events : bool (T, R)
        True at the frame where an event is detected.
    """
    T = u.shape[0]
    R = u.shape[1]
    counts = np.zeros(R, dtype=np.int64)
    events = np.zeros((T, R), dtype=np.bool_)
    for r in range(R):
        rx = u[0, r, 0]
        ry = u[0, r, 1]
        rz = u[0, r, 2]
        t = 1
        while t < T:
            c = u[t, r, 0] * rx + u[t, r, 1] * ry + u[t, r, 2] * rz
            if c < cos_threshold:
                counts[r] += 1
                events[t, r] = True
                t2 = t + settle
                if t2 > T - 1:
                    t2 = T - 1
                rx = u[t2, r, 0]
                ry = u[t2, r, 1]
                rz = u[t2, r, 2]
                t = t2 + 1
            else:
                t += 1
    return counts, events


def histogram_grid(frac, shape0, shape1, shape2):
    """Count fractional coordinates (wrapped into [0, 1)) on a periodic grid.

    Parameters
    ----------
    frac : float64 (M, 3)
    shape0, shape1, shape2 : int

    Returns
    -------
    float64 (shape0, shape1, shape2)
    """
    g = np.zeros((shape0, shape1, shape2))
    histogram_grid_add(frac, g)
    return g


@njit(cache=True)
def histogram_grid_add(frac, g):
    """Add the counts of fractional coordinates ``frac`` (M, 3) to the grid ``g`` in place.

    Coordinates are wrapped into [0, 1); ``g`` is float64 (n0, n1, n2).
    """
    shape0, shape1, shape2 = g.shape
    for m in range(frac.shape[0]):
        a = frac[m, 0] - np.floor(frac[m, 0])
        b = frac[m, 1] - np.floor(frac[m, 1])
        c = frac[m, 2] - np.floor(frac[m, 2])
        i = int(a * shape0)
        j = int(b * shape1)
        k = int(c * shape2)
        if i >= shape0:
            i = shape0 - 1
        if j >= shape1:
            j = shape1 - 1
        if k >= shape2:
            k = shape2 - 1
        g[i, j, k] += 1.0


@njit(cache=True)
def rotation_events(rm, cos_threshold, settle):
    """Count rotations by more than a threshold angle away from the resting orientation.

    Parameters
    ----------
    rm : float64 (T, R, 3, 3)
        Orientation of each rotor as a rotation matrix (body reference → frame t).
    cos_threshold : float
        cos of the threshold rotation angle.
    settle : int
        After an event the new resting orientation is taken ``settle`` frames later.

    Returns
    -------
    counts : int64 (R,)
    events : bool (T, R)
    angle_cos : float64 (T, R)
        cos of the rotation angle from the current resting orientation,
        ``(tr(R_restᵀ R_t) − 1) / 2``.
    """
    T = rm.shape[0]
    R = rm.shape[1]
    counts = np.zeros(R, dtype=np.int64)
    events = np.zeros((T, R), dtype=np.bool_)
    cosang = np.ones((T, R))
    for r in range(R):
        rest = rm[0, r].copy()
        t = 1
        while t < T:
            tr = 0.0
            for i in range(3):
                for j in range(3):
                    tr += rest[i, j] * rm[t, r, i, j]
            c = 0.5 * (tr - 1.0)
            cosang[t, r] = c
            if c < cos_threshold:
                counts[r] += 1
                events[t, r] = True
                t2 = t + settle
                if t2 > T - 1:
                    t2 = T - 1
                rest[:, :] = rm[t2, r]
                t = t2 + 1
            else:
                t += 1
    return counts, events, cosang


# ---------------------------------------------------------------------------------------
# best rotations (Horn's quaternion method)
# ---------------------------------------------------------------------------------------


@njit(cache=True)
def _horn_rotation(S, out):
    """Proper rotation R maximising tr(R S^T) — i.e. minimising Σ_k |b_k − R a_k|² for
    ``S = Σ_k a_k b_kᵀ`` — written into ``out`` (3, 3).

    Horn (J. Opt. Soc. Am. A 4, 629 (1987)): the unit quaternion of the best rotation is
    the eigenvector of the largest eigenvalue of a symmetric 4×4 matrix built from ``S``;
    the eigenproblem is solved by cyclic Jacobi rotations (exact to rounding, also for
    degenerate eigenvalues, where any vector of the top eigenspace is a best rotation).
    """
    Sxx, Sxy, Sxz = S[0, 0], S[0, 1], S[0, 2]
    Syx, Syy, Syz = S[1, 0], S[1, 1], S[1, 2]
    Szx, Szy, Szz = S[2, 0], S[2, 1], S[2, 2]
    N = np.empty((4, 4))
    N[0, 0] = Sxx + Syy + Szz
    N[0, 1] = Syz - Szy
    N[0, 2] = Szx - Sxz
    N[0, 3] = Sxy - Syx
    N[1, 1] = Sxx - Syy - Szz
    N[1, 2] = Sxy + Syx
    N[1, 3] = Szx + Sxz
    N[2, 2] = -Sxx + Syy - Szz
    N[2, 3] = Syz + Szy
    N[3, 3] = -Sxx - Syy + Szz
    for i in range(4):
        for j in range(i):
            N[i, j] = N[j, i]
    V = np.eye(4)
    scale = 0.0
    for i in range(4):
        for j in range(4):
            scale += N[i, j] * N[i, j]
    tol = 1e-30 * scale + 1e-300
    for _sweep in range(50):
        off = 0.0
        for p in range(3):
            for q in range(p + 1, 4):
                off += N[p, q] * N[p, q]
        if off <= tol:
            break
        for p in range(3):
            for q in range(p + 1, 4):
                apq = N[p, q]
                if apq == 0.0:
                    continue
                theta = (N[q, q] - N[p, p]) / (2.0 * apq)
                t = (1.0 if theta >= 0 else -1.0) / (abs(theta) + np.sqrt(theta * theta + 1.0))
                c = 1.0 / np.sqrt(t * t + 1.0)
                s = t * c
                for k in range(4):  # N <- Jᵀ N J (columns p, q; then rows p, q)
                    akp, akq = N[k, p], N[k, q]
                    N[k, p] = c * akp - s * akq
                    N[k, q] = s * akp + c * akq
                for k in range(4):
                    apk, aqk = N[p, k], N[q, k]
                    N[p, k] = c * apk - s * aqk
                    N[q, k] = s * apk + c * aqk
                for k in range(4):
                    vkp, vkq = V[k, p], V[k, q]
                    V[k, p] = c * vkp - s * vkq
                    V[k, q] = s * vkp + c * vkq
    best = 0
    for i in range(1, 4):
        if N[i, i] > N[best, best]:
            best = i
    w, x, y, z = V[0, best], V[1, best], V[2, best], V[3, best]
    n = np.sqrt(w * w + x * x + y * y + z * z)
    w, x, y, z = w / n, x / n, y / n, z / n
    out[0, 0] = w * w + x * x - y * y - z * z
    out[0, 1] = 2.0 * (x * y - w * z)
    out[0, 2] = 2.0 * (x * z + w * y)
    out[1, 0] = 2.0 * (x * y + w * z)
    out[1, 1] = w * w - x * x + y * y - z * z
    out[1, 2] = 2.0 * (y * z - w * x)
    out[2, 0] = 2.0 * (x * z - w * y)
    out[2, 1] = 2.0 * (y * z + w * x)
    out[2, 2] = w * w - x * x - y * y + z * z


@njit(cache=True)
def best_rotations(S):
    """:func:`_horn_rotation` for a stack of correlation matrices.

    Parameters
    ----------
    S : float64 (M, 3, 3)
        ``S[m] = Σ_k a_k b_kᵀ`` of reference vectors ``a`` and current vectors ``b``.

    Returns
    -------
    float64 (M, 3, 3)
        Proper rotations (det +1) minimising ``Σ_k |b_k − R a_k|²``.
    """
    M = S.shape[0]
    out = np.empty((M, 3, 3))
    for m in range(M):
        _horn_rotation(S[m], out[m])
    return out
