"""numba kernels against plain NumPy/Python reference loops on random data."""

import numpy as np
import pytest

from rotorlab.analysis import _kernels as K


def _events_ref(u, c, settle):
    T, R, _ = u.shape
    out = np.zeros(R, int)
    for r in range(R):
        rest, t = u[0, r], 1
        while t < T:
            if u[t, r] @ rest < c:
                out[r] += 1
                t2 = min(t + settle, T - 1)
                rest, t = u[t2, r], t2 + 1
            else:
                t += 1
    return out


@pytest.mark.parametrize("seed,settle", [(0, 1), (1, 3), (2, 10)])
def test_reorientation_events_matches_reference(seed, settle):
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(300, 4, 3))
    u /= np.linalg.norm(u, axis=-1, keepdims=True)
    c = np.cos(np.radians(70))
    counts, ev = K.reorientation_events(u, c, settle)
    np.testing.assert_array_equal(counts, _events_ref(u, c, settle))
    np.testing.assert_array_equal(ev.sum(0), counts)


@pytest.mark.parametrize("seed,thr", [(0, 0.5), (1, 2.0)])
def test_displacement_events_matches_reference(seed, thr):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(200, 3, 3)).cumsum(0) * 0.3
    got = K.displacement_events(x, thr, 4)
    ref = np.zeros(3, int)
    for n in range(3):
        rest, t = x[0, n], 1
        while t < 200:
            if np.sum((x[t, n] - rest) ** 2) > thr * thr:
                ref[n] += 1
                t2 = min(t + 4, 199)
                rest, t = x[t2, n], t2 + 1
            else:
                t += 1
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("shape", [(4, 5, 6), (1, 1, 1), (7, 3, 2)])
def test_histogram_grid_matches_histogramdd(shape):
    f = np.random.default_rng(1).uniform(-2, 3, size=(500, 3))
    got = K.histogram_grid(f, *shape)
    ref, _ = np.histogramdd(f % 1.0, bins=shape, range=[(0, 1)] * 3)
    np.testing.assert_array_equal(got, ref)


def test_horn_best_rotations_match_the_svd_kabsch_solution():
    """The numba quaternion kernel behind Reorientation gives the SVD Kabsch rotations:
    random rotations with noise, exact rotations (incl. 180° turns, identity), and
    degenerate sets (collinear vectors), where only the residual is defined."""
    from scipy.spatial.transform import Rotation

    from rotorlab.analysis.rotation import kabsch, kabsch_svd

    rng = np.random.default_rng(5)
    M = 2000
    ref = rng.normal(size=(M, 4, 3))
    R = Rotation.random(M, random_state=6).as_matrix()
    R[:3] = [np.eye(3), np.diag([1.0, -1.0, -1.0]), np.diag([-1.0, -1.0, 1.0])]  # 0°, 180°
    cur = np.einsum("mij,mkj->mki", R, ref)
    np.testing.assert_allclose(kabsch(ref, cur), R, atol=1e-10)
    noisy = cur + rng.normal(0, 0.1, size=cur.shape)
    got, ref_R = kabsch(ref, noisy), kabsch_svd(ref, noisy)
    np.testing.assert_allclose(got, ref_R, atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(got), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.einsum("mij,mkj->mik", got, got), np.broadcast_to(np.eye(3), got.shape),
                               atol=1e-12)
    # collinear vectors: the rotation about the line is arbitrary; the residual is optimal
    line = rng.normal(size=(50, 1, 3)) * np.array([1.0, -2.0, 0.5])[None, :, None]
    lcur = np.einsum("mij,mkj->mki", R[:50], line)
    for f in (kabsch, kabsch_svd):
        Rf = f(line, lcur)
        res = np.linalg.norm(lcur - np.einsum("mij,mkj->mki", Rf, line), axis=-1).max()
        assert res < 1e-9, f.__name__
    # leading batch dimensions are kept
    assert kabsch(ref.reshape(40, 50, 4, 3), cur.reshape(40, 50, 4, 3)).shape == (40, 50, 3, 3)
