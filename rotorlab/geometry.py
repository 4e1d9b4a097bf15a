"""Periodic geometry: exact minimum image for any (triclinic) cell, cell lists, closest pair.

One place for the periodic-boundary arithmetic used by the topology, the reference force
field, the run loop and the analyses. Conventions: lattice vectors are the **rows** of
``cell`` [Å]; fractional coordinates are ``s = x @ inv(cell)``.

Minimum image
-------------
The usual reduction by rounding fractional coordinates is exact only for cells that are not
too skewed. The functions here return the *true* nearest image for any cell:

1. reduce by rounding, giving a candidate ``r0`` (an image of ``d``);
2. if ``|r0|`` is below half the smallest perpendicular cell width ``w_min`` it is the unique
   nearest image (any other image differs from it by a lattice vector, which is at least
   ``w_min`` long) — the fast path, taken for all displacements in ordinary cells;
3. otherwise every image ``t = d − n·cell`` with ``|t| ≤ |r0|`` has fractional coordinates
   bounded by ``|s_k − n_k| ≤ |r0| · |b*_k|`` (``b*_k`` the reciprocal vectors, the columns
   of ``inv(cell)``), so the finite box of integer shifts is searched exhaustively.

The vectorised NumPy version (:func:`minimum_image`) first Minkowski-reduces the cell
(``ase.geometry.minkowski_reduce``, the same lattice) so the search box stays small; the numba
version (:func:`mic`) works on the cell as given.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["minimum_image", "mic", "mic_batch", "perpendicular_widths", "cell_list",
           "min_pair_distance"]


def perpendicular_widths(cell) -> np.ndarray:
    """Distances between opposite faces of a cell [Å], shape (3,).

    Parameters
    ----------
    cell : array_like, shape (3, 3)
        Lattice vectors as rows [Å].
    """
    cell = np.asarray(cell, dtype=float)
    vol = abs(np.linalg.det(cell))
    return vol / np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)


def _check_cell(cell) -> np.ndarray:
    cell = np.asarray(cell, dtype=float)
    if cell.shape != (3, 3) or not np.isfinite(cell).all():
        raise ValueError(f"cell must be a finite 3x3 array (rows = lattice vectors); got "
                         f"shape {cell.shape}")
    if abs(np.linalg.det(cell)) < 1e-12:
        raise ValueError("cell is degenerate (zero volume): minimum image undefined")
    return cell


def minimum_image(d, cell) -> np.ndarray:
    """Exact minimum-image displacement(s) for a periodic 3D cell (any shape, any skew).

    Parameters
    ----------
    d : array_like, shape (..., 3)
        Displacements [Å].
    cell : array_like, shape (3, 3) or (..., 3, 3)
        Lattice vectors as rows [Å]; a stack of cells (e.g. one per frame, shape
        (n_frames, 1, 3, 3) against displacements (n_frames, n_atoms, 3)) broadcasts
        against ``d``.

    Returns
    -------
    ndarray, shape (..., 3)
        For each displacement the image ``d − n·cell`` (integer ``n``) of smallest length [Å].
        Ties (a displacement exactly half-way between two images) resolve to one of them.

    Raises
    ------
    ValueError
        Degenerate or non-finite cell, or shapes that do not broadcast.
    """
    d = np.asarray(d, dtype=float)
    if d.shape[-1:] != (3,):
        raise ValueError(f"displacements must have shape (..., 3); got {d.shape}")
    cell = np.asarray(cell, dtype=float)
    if cell.ndim == 2:
        return _minimum_image_one(d, _check_cell(cell))
    if cell.shape[-2:] != (3, 3):
        raise ValueError(f"cell must have shape (3, 3) or (..., 3, 3); got {cell.shape}")
    batch = np.broadcast_shapes(d.shape[:-1], cell.shape[:-2])
    # distinct cells first (on the small cell stack), then map them onto the displacements
    uniq, inverse = np.unique(cell.reshape(-1, 9), axis=0, return_inverse=True)
    which = np.broadcast_to(inverse.reshape(cell.shape[:-2]), batch).ravel()
    db = np.broadcast_to(d, batch + (3,)).reshape(-1, 3)
    if len(uniq) == 1:  # NVT: one cell, one pass
        return _minimum_image_one(db, _check_cell(uniq[0].reshape(3, 3))).reshape(batch + (3,))
    out = np.empty_like(db)
    for k, c in enumerate(uniq):
        sel = which == k
        out[sel] = _minimum_image_one(db[sel], _check_cell(c.reshape(3, 3)))
    return out.reshape(batch + (3,))


def _minimum_image_one(d, cell):
    from ase.geometry import minkowski_reduce

    shape = d.shape
    if not np.any(cell - np.diag(np.diag(cell))):
        # orthorhombic: each Cartesian component is minimised on its own (exact)
        L = np.diag(cell)
        return d - L * np.round(d / L)
    rcell, _ = minkowski_reduce(cell)
    rcell = np.asarray(rcell, dtype=float)
    inv = np.linalg.inv(rcell)
    flat = d.reshape(-1, 3)
    frac = flat @ inv
    frac -= np.round(frac)
    r0 = frac @ rcell
    # fast path: |r0| < w_min / 2 is the unique nearest image (see module docstring)
    r2 = (r0 ** 2).sum(1)
    w_min = 1.0 / np.linalg.norm(inv, axis=0).max()
    todo = np.flatnonzero(4.0 * r2 >= w_min * w_min)
    best = r0
    if len(todo) == 0:
        return best.reshape(shape)
    # the remaining ones: every image not longer than r0 has |n_k| <= 1/2 + |r0| |b*_k|
    sub = r0[todo]
    rmax = float(np.sqrt(r2[todo].max()))
    nmax = np.floor(rmax * np.linalg.norm(inv, axis=0) + 0.5 + 1e-9).astype(int)
    rng = [np.arange(-k, k + 1) for k in nmax]
    shifts = np.stack(np.meshgrid(*rng, indexing="ij"), -1).reshape(-1, 3).astype(float)
    shifts = shifts @ rcell
    sbest = sub.copy()
    best2 = r2[todo].copy()
    for s in shifts:  # loop over images, vectorised over displacements (memory O(N))
        cand = sub - s
        c2 = (cand ** 2).sum(1)
        better = c2 < best2 - 1e-12
        if better.any():
            sbest[better] = cand[better]
            best2[better] = c2[better]
    best[todo] = sbest
    return best.reshape(shape)


@njit(cache=True)
def mic(d, cell, inv_cell):
    """Exact minimum image of one displacement (numba).

    Parameters
    ----------
    d : ndarray, shape (3,)
        Displacement [Å].
    cell : ndarray, shape (3, 3)
        Lattice vectors as rows [Å].
    inv_cell : ndarray, shape (3, 3)
        ``inv(cell)``.

    Returns
    -------
    ndarray, shape (3,)
        Nearest image [Å]. For ordinary cells the fractional rounding alone is exact and
        is returned directly; otherwise the bounded box of images is searched.
    """
    s0 = d[0] * inv_cell[0, 0] + d[1] * inv_cell[1, 0] + d[2] * inv_cell[2, 0]
    s1 = d[0] * inv_cell[0, 1] + d[1] * inv_cell[1, 1] + d[2] * inv_cell[2, 1]
    s2 = d[0] * inv_cell[0, 2] + d[1] * inv_cell[1, 2] + d[2] * inv_cell[2, 2]
    n0 = np.floor(s0 + 0.5)
    n1 = np.floor(s1 + 0.5)
    n2 = np.floor(s2 + 0.5)
    out = np.empty(3)
    for k in range(3):
        out[k] = d[k] - n0 * cell[0, k] - n1 * cell[1, k] - n2 * cell[2, k]
    r2 = out[0] * out[0] + out[1] * out[1] + out[2] * out[2]
    # |b*_k| = 1 / (perpendicular width k)
    g0 = math.sqrt(inv_cell[0, 0] ** 2 + inv_cell[1, 0] ** 2 + inv_cell[2, 0] ** 2)
    g1 = math.sqrt(inv_cell[0, 1] ** 2 + inv_cell[1, 1] ** 2 + inv_cell[2, 1] ** 2)
    g2 = math.sqrt(inv_cell[0, 2] ** 2 + inv_cell[1, 2] ** 2 + inv_cell[2, 2] ** 2)
    gmax = max(g0, max(g1, g2))
    if 4.0 * r2 * gmax * gmax < 1.0:  # |r0| < w_min / 2: unique nearest image
        return out
    r = math.sqrt(r2)
    m0 = int(math.floor(r * g0 + 0.5 + 1e-9))  # |n_k| <= 1/2 + |r0| |b*_k|
    m1 = int(math.floor(r * g1 + 0.5 + 1e-9))
    m2 = int(math.floor(r * g2 + 0.5 + 1e-9))
    best = out.copy()
    best2 = r2
    c = np.empty(3)
    for i in range(-m0, m0 + 1):
        for j in range(-m1, m1 + 1):
            for k in range(-m2, m2 + 1):
                for q in range(3):
                    c[q] = out[q] - i * cell[0, q] - j * cell[1, q] - k * cell[2, q]
                c2 = c[0] * c[0] + c[1] * c[1] + c[2] * c[2]
                if c2 < best2 - 1e-12:
                    best2 = c2
                    for q in range(3):
                        best[q] = c[q]
    return best


@njit(cache=True)
def mic_batch(d, cell):
    """Exact minimum images of many displacements (numba), shape (N, 3) → (N, 3) [Å]."""
    inv_cell = np.linalg.inv(cell)
    out = np.empty_like(d)
    for i in range(d.shape[0]):
        out[i] = mic(d[i], cell, inv_cell)
    return out


@njit(cache=True)
def cell_list(x, cell, rc, max_cells):
    """Fractional-coordinate cell list of a periodic (triclinic) box.

    Parameters
    ----------
    x : ndarray, shape (N, 3)
        Positions [Å] (wrapped or unwrapped).
    cell : ndarray, shape (3, 3)
        Lattice vectors as rows [Å].
    rc : float
        Interaction range [Å]; cells along each axis are at least ``rc`` wide unless the
        count is capped.
    max_cells : int
        Largest number of cells along one axis.

    Returns
    -------
    xw : ndarray, shape (N, 3)
        Positions wrapped into the cell [Å].
    cidx : ndarray of int64, shape (N,)
        Cell index of each atom.
    nc, reach : ndarray of int64, shape (3,)
        Cells per axis and how many neighbour cells to scan each way to cover ``rc``.
    start : ndarray of int64, shape (n_cells + 1,)
        CSR offsets into ``order``.
    order : ndarray of int64, shape (N,)
        Atom indices sorted by cell.
    """
    n = x.shape[0]
    inv_cell = np.linalg.inv(cell)
    vol = abs(np.linalg.det(cell))
    nc = np.empty(3, dtype=np.int64)
    reach = np.empty(3, dtype=np.int64)
    for k in range(3):
        a1 = cell[(k + 1) % 3]
        a2 = cell[(k + 2) % 3]
        cx = a1[1] * a2[2] - a1[2] * a2[1]
        cy = a1[2] * a2[0] - a1[0] * a2[2]
        cz = a1[0] * a2[1] - a1[1] * a2[0]
        h = vol / math.sqrt(cx * cx + cy * cy + cz * cz)
        m = min(max(int(h / rc), 1), max_cells)
        nc[k] = m
        reach[k] = max(1, int(math.ceil(rc * m / h - 1e-12)))
    s = x @ inv_cell
    xw = np.empty_like(x)
    cidx = np.empty(n, dtype=np.int64)
    for i in range(n):
        c = 0
        for k in range(3):
            f = s[i, k] - math.floor(s[i, k])
            if f >= 1.0:
                f = 0.0
            s[i, k] = f
            c = c * nc[k] + min(int(f * nc[k]), nc[k] - 1)
        cidx[i] = c
        for k in range(3):
            xw[i, k] = s[i, 0] * cell[0, k] + s[i, 1] * cell[1, k] + s[i, 2] * cell[2, k]
    ncell = nc[0] * nc[1] * nc[2]
    start = np.zeros(ncell + 1, dtype=np.int64)
    for i in range(n):
        start[cidx[i] + 1] += 1
    for c in range(ncell):
        start[c + 1] += start[c]
    fill = start[:-1].copy()
    order = np.empty(n, dtype=np.int64)
    for i in range(n):
        order[fill[cidx[i]]] = i
        fill[cidx[i]] += 1
    return xw, cidx, nc, reach, start, order


@njit(cache=True)
def min_pair_distance(x, cell, rmax):
    """Smallest interatomic distance [Å] over all periodic images, capped at ``rmax``.

    Parameters
    ----------
    x : ndarray, shape (N, 3)
        Positions [Å].
    cell : ndarray, shape (3, 3)
        Lattice vectors as rows [Å].
    rmax : float
        Search radius [Å]; returns ``rmax`` when no pair is closer.
    """
    n = x.shape[0]
    xw, cid, nc, reach, start, order = cell_list(x, cell, rmax, 48)
    best2 = rmax * rmax
    for i in range(n):
        ci = cid[i]
        cz = ci % nc[2]
        cy = (ci // nc[2]) % nc[1]
        cx = ci // (nc[1] * nc[2])
        for dx in range(-reach[0], reach[0] + 1):
            jx = cx + dx
            wx = jx % nc[0]
            sx = (jx - wx) // nc[0]
            for dy in range(-reach[1], reach[1] + 1):
                jy = cy + dy
                wy = jy % nc[1]
                sy = (jy - wy) // nc[1]
                for dz in range(-reach[2], reach[2] + 1):
                    jz = cz + dz
                    wz = jz % nc[2]
                    sz = (jz - wz) // nc[2]
                    cj = (wx * nc[1] + wy) * nc[2] + wz
                    for kk in range(start[cj], start[cj + 1]):
                        j = order[kk]
                        d2 = 0.0
                        for k in range(3):
                            d = (xw[j, k] + sx * cell[0, k] + sy * cell[1, k] + sz * cell[2, k]
                                 - xw[i, k])
                            d2 += d * d
                        if d2 < best2 and not (j == i and sx == 0 and sy == 0 and sz == 0):
                            best2 = d2
    return math.sqrt(best2)
