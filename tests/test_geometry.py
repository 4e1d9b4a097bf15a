"""Periodic geometry: exact minimum image (brute force on skewed cells), cell list, closest pair."""

import subprocess
import sys

import numpy as np
import pytest

from rotorlab.geometry import (
    cell_list,
    mic,
    mic_batch,
    min_pair_distance,
    minimum_image,
    perpendicular_widths,
)

CELLS = {
    "cubic": np.eye(3) * 7.0,
    "hexagonal": np.array([[8.5, 0, 0], [-4.25, 7.361, 0], [0, 0, 6.9]]),
    "triclinic": np.array([[7.0, 0, 0], [3.0, 6.5, 0], [1.5, 2.0, 6.0]]),
    # strongly skewed: rounding alone is wrong here for many vectors
    "skewed": np.array([[6.0, 0, 0], [5.7, 1.2, 0], [5.1, 0.9, 1.4]]),
    # so skewed that even the 27 neighbours of the rounded vector miss the nearest image
    "very_skewed": np.array([[5.0, 0, 0], [9.7, 1.5, 0], [-6.2, 7.4, 1.9]]),
}


def _brute(d, cell, n=6):
    """Distance to the nearest image by scanning all shifts in [-n, n]^3."""
    r = np.arange(-n, n + 1)
    best = np.full(len(d), np.inf)
    for i in r:
        for j in r:
            sh = np.stack([np.full(len(r), i), np.full(len(r), j), r], 1) @ cell
            best = np.minimum(best, np.sqrt(((d[:, None, :] - sh[None]) ** 2).sum(-1)).min(1))
    return best


def _rounded_27(d, cell):
    f = d @ np.linalg.inv(cell)
    base = (f - np.round(f)) @ cell
    sh = np.array([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)])
    return np.sqrt(((base[:, None] - (sh @ cell)[None]) ** 2).sum(-1)).min(1)


@pytest.mark.parametrize("name", list(CELLS))
def test_minimum_image_matches_brute_force(name):
    cell = CELLS[name]
    rng = np.random.default_rng(1)
    d = rng.uniform(-3, 3, (400, 3)) @ cell  # displacements spanning several cells
    ref = _brute(d, cell, n=10)
    np.testing.assert_array_equal(ref, _brute(d, cell, n=14))  # the brute force has converged
    got = minimum_image(d, cell)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), ref, rtol=0, atol=1e-9)
    # an image of the input: the difference is an integer lattice vector
    n = (d - got) @ np.linalg.inv(cell)
    np.testing.assert_allclose(n, np.round(n), atol=1e-8)
    nb = mic_batch(np.ascontiguousarray(d), np.ascontiguousarray(cell))
    np.testing.assert_allclose(np.linalg.norm(nb, axis=1), ref, rtol=0, atol=1e-9)
    n = (d - nb) @ np.linalg.inv(cell)
    np.testing.assert_allclose(n, np.round(n), atol=1e-8)


def test_rounding_and_27_neighbours_are_not_exact_for_skewed_cells():
    """The cells above are hard: the usual shortcuts fail on them, so the test can fail."""
    rng = np.random.default_rng(1)
    cell = CELLS["skewed"]
    d = rng.uniform(-3, 3, (400, 3)) @ cell
    f = d @ np.linalg.inv(cell)
    rounded = (f - np.round(f)) @ cell
    assert (np.linalg.norm(rounded, axis=1) > _brute(d, cell) + 1e-6).sum() > 20
    cell = CELLS["very_skewed"]
    d = rng.uniform(-3, 3, (400, 3)) @ cell
    assert (_rounded_27(d, cell) > _brute(d, cell, n=10) + 1e-6).sum() > 100


def test_minimum_image_shapes_and_orthorhombic_case():
    cell = np.diag([4.0, 5.0, 6.0])
    d = np.array([[3.9, -2.6, 3.1], [0.1, 0.2, -0.3]])
    np.testing.assert_allclose(minimum_image(d, cell), [[-0.1, 2.4, -2.9], [0.1, 0.2, -0.3]])
    one = minimum_image(np.array([3.9, -2.6, 3.1]), cell)
    assert one.shape == (3,)
    np.testing.assert_allclose(mic(np.array([3.9, -2.6, 3.1]), cell, np.linalg.inv(cell)),
                               [-0.1, 2.4, -2.9])
    assert minimum_image(np.zeros((2, 5, 3)), cell).shape == (2, 5, 3)
    with pytest.raises(ValueError, match="degenerate"):
        minimum_image(d, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="shape"):
        minimum_image(np.zeros((4, 2)), cell)


def test_stack_of_cells_broadcasts():
    """Per-frame cells (n_frames, 1, 3, 3) against (n_frames, n_atoms, 3), as analyses use."""
    rng = np.random.default_rng(2)
    cells = np.stack([CELLS["triclinic"], CELLS["skewed"], CELLS["triclinic"]])
    d = rng.uniform(-2, 2, (3, 50, 3)) @ cells
    got = minimum_image(d, cells[:, None])
    for f in range(3):
        np.testing.assert_allclose(got[f], minimum_image(d[f], cells[f]), atol=1e-12)
    with pytest.raises(ValueError, match="cell must have shape"):
        minimum_image(d, np.zeros((3, 1, 2, 3)))


def test_perpendicular_widths():
    cell = CELLS["triclinic"]
    w = perpendicular_widths(cell)
    vol = abs(np.linalg.det(cell))
    # each width times the area of the opposite face is the volume
    for k in range(3):
        area = np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3]))
        assert w[k] * area == pytest.approx(vol)
    np.testing.assert_allclose(perpendicular_widths(np.diag([3.0, 4.0, 5.0])), [3, 4, 5])


@pytest.mark.parametrize("name", ["cubic", "triclinic", "skewed"])
def test_min_pair_distance_and_cell_list(name):
    cell = CELLS[name]
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1, (40, 3)) @ cell + rng.normal(0, 5, (40, 3))  # some unwrapped
    i, j = np.triu_indices(len(x), 1)
    ref = _brute(x[j] - x[i], cell).min()
    # an atom and its own periodic image are a pair too: the shortest lattice vector
    lattice = np.linalg.norm(np.stack(np.meshgrid(*[np.arange(-4, 5)] * 3, indexing="ij"), -1)
                             .reshape(-1, 3) @ cell, axis=1)
    ref = min(ref, lattice[lattice > 1e-9].min())
    got = min_pair_distance(np.ascontiguousarray(x), np.ascontiguousarray(cell), 6.0)
    assert got == pytest.approx(min(ref, 6.0), rel=1e-12)
    xw, cidx, nc, reach, start, order = cell_list(np.ascontiguousarray(x), cell, 2.0, 48)
    f = xw @ np.linalg.inv(cell)
    assert f.min() >= -1e-12 and f.max() < 1 + 1e-12
    np.testing.assert_allclose(minimum_image(xw - x, cell), 0, atol=1e-9)  # same atoms
    assert sorted(order.tolist()) == list(range(len(x))) and start[-1] == len(x)
    for c in range(len(start) - 1):
        assert (cidx[order[start[c]:start[c + 1]]] == c).all()


def test_geometry_and_topology_do_not_import_materials():
    for mod in ("rotorlab.geometry", "rotorlab.topology"):
        code = (f"import sys, {mod}; "
                "bad = [m for m in sys.modules if m.startswith('rotorlab.materials')]; "
                "assert not bad, bad")
        subprocess.run([sys.executable, "-c", code], check=True)
