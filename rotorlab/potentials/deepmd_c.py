"""DeePMD-kit's C API (``libdeepmd_c.so``, shipped in the deepmd-kit wheel) driven from
Python with a Verlet neighbour list, the way LAMMPS ``pair_style deepmd`` drives it.

Why: DeePMD-kit's Python ``DeepPot.eval`` rebuilds the neighbour list inside the
TensorFlow graph on every call and adds Python overhead around the session. LAMMPS hands
its Verlet list (local atoms, ghost images within ``rcut + skin``, rebuilt only when an
atom has moved more than half the skin) to the C++ API with ``ago > 0`` so that the C++
side reuses its formatted copy. This module does the same from Python:

* :func:`ghost_pairs` — a Numba kernel over rotorlab's cell list: every pair (i, j, image
  shift) with ``|x_j + s·cell − x_i| < r_list``, for local atoms i and all images j.
* :class:`GhostList` — ghosts (one per distinct (j, shift) with a non-zero shift), the
  CSR neighbour list the C API takes, per-step ghost coordinates, and the fold of ghost
  forces back onto their atoms.
* :class:`CModel` — a ``DP_DeepPot`` handle (load, type map, cut-off, compute with a
  list or, for clusters, without one) with every C++ exception turned into a Python
  ``RuntimeError``.

Results agree with ``DeepPot.eval`` to round-off (tested);
:class:`rotorlab.potentials.deepmd.DeePMD` uses this engine for TensorFlow ``.pb`` models
when the library loads.
"""

from __future__ import annotations

import ctypes
import importlib.util
import math
import os
import threading
from pathlib import Path

import numpy as np
from numba import njit

from rotorlab.geometry import cell_list

__all__ = ["CModel", "GhostList", "CAPIUnavailable", "ghost_pairs", "library", "DEFAULT_SKIN",
           "max_displacement2", "fill_coordinates", "fold_forces"]

#: Verlet skin [Å]: the list holds pairs within ``rcut + skin`` and is rebuilt once an atom
#: has moved more than ``skin / 2`` since the last build (or the cell changed).
DEFAULT_SKIN = 2.0

_D = ctypes.POINTER(ctypes.c_double)
_I = ctypes.POINTER(ctypes.c_int)


class CAPIUnavailable(RuntimeError):
    """DeePMD-kit's C library cannot be loaded here (the Python engine is used instead)."""


# ----------------------------------------------------------------------------- library

_LIB = None
_LIB_ERROR = None
_LIB_LOCK = threading.Lock()


def _package_dir(name):
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise CAPIUnavailable(f"the {name} package is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def library():
    """The loaded ``libdeepmd_c.so`` with its argument types declared (loaded once).

    TensorFlow's ``libtensorflow_framework.so.2`` and ``libtensorflow_cc.so.2`` are loaded
    first from the tensorflow package, with ``RTLD_LOCAL``: loading them ``RTLD_GLOBAL``
    makes a later ``import tensorflow`` crash (measured with deepmd-kit 3.2, TF 2.x).

    Raises
    ------
    CAPIUnavailable
        With the reason (package or file missing, loader error).
    """
    global _LIB, _LIB_ERROR
    with _LIB_LOCK:
        if _LIB is not None:
            return _LIB
        if _LIB_ERROR is not None:
            raise CAPIUnavailable(_LIB_ERROR)
        try:
            _LIB = _load()
        except CAPIUnavailable as exc:
            _LIB_ERROR = str(exc)
            raise
        except OSError as exc:
            _LIB_ERROR = f"cannot load DeePMD-kit's C library: {exc}"
            raise CAPIUnavailable(_LIB_ERROR) from exc
        return _LIB


def _load():
    lib_dir = _package_dir("deepmd") / "lib"
    path = lib_dir / "libdeepmd_c.so"
    if not path.is_file():
        raise CAPIUnavailable(f"{path} is missing (deepmd-kit built without its C API)")
    tf_dir = _package_dir("tensorflow")
    for name in ("libtensorflow_framework.so.2", "libtensorflow_cc.so.2"):
        if (tf_dir / name).is_file():
            ctypes.CDLL(str(tf_dir / name), mode=ctypes.RTLD_LOCAL)
    lib = ctypes.CDLL(str(path), mode=ctypes.RTLD_LOCAL)
    vp, cp, ci = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    sig = {
        "DP_NewDeepPot": (vp, [cp]),
        "DP_DeleteDeepPot": (None, [vp]),
        "DP_DeepPotCheckOK": (cp, [vp]),
        "DP_DeepPotGetTypeMap": (cp, [vp]),
        "DP_DeepPotGetCutoff": (ctypes.c_double, [vp]),
        "DP_DeepPotGetNumbTypes": (ci, [vp]),
        "DP_DeepPotGetDimFParam": (ci, [vp]),
        "DP_DeepPotGetDimAParam": (ci, [vp]),
        "DP_NewNlist": (vp, [ci, _I, _I, ctypes.POINTER(_I)]),
        "DP_DeleteNlist": (None, [vp]),
        "DP_NlistCheckOK": (cp, [vp]),
        "DP_DeepPotCompute": (None, [vp, ci, _D, _I, _D, _D, _D, _D, _D, _D]),
        "DP_DeepPotComputeNList": (None, [vp, ci, _D, _I, _D, ci, vp, ci, _D, _D, _D, _D, _D]),
        "DP_DeleteChar": (None, [vp]),
    }
    for name, (res, args) in sig.items():
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args
    # strings the library allocates (type map, error text) are read, not freed: they are
    # small and DP_DeleteChar's ownership rules differ between releases
    return lib


# ----------------------------------------------------------------------------- kernels


@njit(cache=True)
def _pairs_pass(xw, cell, r_list, nc, reach, start, order, cidx, fill, out_j, out_s):
    """Count (fill=False) or write (fill=True) the pairs of every local atom."""
    n = xw.shape[0]
    r2max = r_list * r_list
    count = np.zeros(n, dtype=np.int64)
    k_out = 0
    for i in range(n):
        ci = cidx[i]
        cz = ci % nc[2]
        cy = (ci // nc[2]) % nc[1]
        cx = ci // (nc[1] * nc[2])
        for ddx in range(-reach[0], reach[0] + 1):
            jx = cx + ddx
            wx = jx % nc[0]
            sx = (jx - wx) // nc[0]
            for ddy in range(-reach[1], reach[1] + 1):
                jy = cy + ddy
                wy = jy % nc[1]
                sy = (jy - wy) // nc[1]
                for ddz in range(-reach[2], reach[2] + 1):
                    jz = cz + ddz
                    wz = jz % nc[2]
                    sz = (jz - wz) // nc[2]
                    shx = sx * cell[0, 0] + sy * cell[1, 0] + sz * cell[2, 0]
                    shy = sx * cell[0, 1] + sy * cell[1, 1] + sz * cell[2, 1]
                    shz = sx * cell[0, 2] + sy * cell[1, 2] + sz * cell[2, 2]
                    cj = (wx * nc[1] + wy) * nc[2] + wz
                    for kk in range(start[cj], start[cj + 1]):
                        j = order[kk]
                        if j == i and sx == 0 and sy == 0 and sz == 0:
                            continue
                        dx = xw[j, 0] + shx - xw[i, 0]
                        dy = xw[j, 1] + shy - xw[i, 1]
                        dz = xw[j, 2] + shz - xw[i, 2]
                        if dx * dx + dy * dy + dz * dz >= r2max:
                            continue
                        if fill:
                            out_j[k_out] = j
                            out_s[k_out, 0] = sx
                            out_s[k_out, 1] = sy
                            out_s[k_out, 2] = sz
                        k_out += 1
                        count[i] += 1
    return count


@njit(cache=True)
def ghost_pairs(x, cell, r_list):
    """Every neighbour of every atom within ``r_list`` over all periodic images.

    Parameters
    ----------
    x : ndarray, shape (N, 3)
        Positions [Å] (wrapped or not).
    cell : ndarray, shape (3, 3)
        Lattice vectors as rows [Å].
    r_list : float
        List radius [Å] (model cut-off + skin); may exceed half the cell width (several
        images of one atom are then neighbours).

    Returns
    -------
    xw : ndarray, shape (N, 3)
        The positions wrapped into the cell [Å]; shifts refer to these.
    count : ndarray of int64, shape (N,)
        Neighbours of each atom (CSR lengths, atom order).
    j : ndarray of int64, shape (P,)
        Neighbour atom of each pair, grouped by the first atom in order.
    shift : ndarray of int64, shape (P, 3)
        Image of the neighbour in cell units: it sits at ``xw[j] + shift @ cell``.
    """
    xw, cidx, nc, reach, start, order = cell_list(x, cell, r_list, 64)
    dummy_j = np.empty(0, dtype=np.int64)
    dummy_s = np.empty((0, 3), dtype=np.int64)
    count = _pairs_pass(xw, cell, r_list, nc, reach, start, order, cidx, False,
                        dummy_j, dummy_s)
    total = 0
    for c in count:
        total += c
    out_j = np.empty(total, dtype=np.int64)
    out_s = np.empty((total, 3), dtype=np.int64)
    _pairs_pass(xw, cell, r_list, nc, reach, start, order, cidx, True, out_j, out_s)
    return xw, count, out_j, out_s


@njit(cache=True)
def max_displacement2(x, x0):
    """Largest squared displacement [Å²] of any atom between ``x0`` and ``x`` (N, 3)."""
    best = 0.0
    for i in range(x.shape[0]):
        dx = x[i, 0] - x0[i, 0]
        dy = x[i, 1] - x0[i, 1]
        dz = x[i, 2] - x0[i, 2]
        d2 = dx * dx + dy * dy + dz * dz
        if d2 > best:
            best = d2
    return best


@njit(cache=True)
def fill_coordinates(x, offset, mapping, ghost_shift, out):
    """Local coordinates ``x + offset`` then ghosts ``local[mapping[g]] + ghost_shift``
    into ``out`` (N + G, 3) [Å]."""
    n = x.shape[0]
    for i in range(n):
        for k in range(3):
            out[i, k] = x[i, k] + offset[i, k]
    for g in range(ghost_shift.shape[0]):
        j = mapping[n + g]
        for k in range(3):
            out[n + g, k] = out[j, k] + ghost_shift[g, k]


@njit(cache=True)
def fold_forces(f_all, n, mapping, out):
    """Forces on the N local atoms: their own plus their ghosts' (``out`` (N, 3) [eV/Å])."""
    for i in range(n):
        for k in range(3):
            out[i, k] = f_all[i, k]
    for g in range(n, f_all.shape[0]):
        j = mapping[g]
        for k in range(3):
            out[j, k] += f_all[g, k]


def ghost_pairs_numpy(x, cell, r_list):
    """Reference for :func:`ghost_pairs` by brute force over image shifts (tests): the set
    of (i, j, shift) with ``|xw_j + shift·cell − xw_i| < r_list``, sorted."""
    x = np.asarray(x, float)
    cell = np.asarray(cell, float)
    frac = x @ np.linalg.inv(cell)
    frac -= np.floor(frac)
    frac[frac >= 1.0] = 0.0
    xw = frac @ cell
    vol = abs(np.linalg.det(cell))
    widths = [vol / np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3]))
              for k in range(3)]
    m = [int(math.ceil(r_list / w)) + 1 for w in widths]
    out = []
    for s in np.ndindex(*(2 * mk + 1 for mk in m)):
        s = np.array(s) - np.array(m)
        d = xw[None, :, :] + s @ cell - xw[:, None, :]
        r = np.linalg.norm(d, axis=2)
        ii, jj = np.nonzero(r < r_list)
        for i, j in zip(ii, jj):
            if i == j and not s.any():
                continue
            out.append((int(i), int(j), int(s[0]), int(s[1]), int(s[2])))
    return sorted(out)


# ----------------------------------------------------------------------------- lists


class _CHandle:
    """Owner of one handle of the C library, freed by ``_free_name`` on :meth:`close`
    (also at garbage collection)."""

    _free_name = ""
    handle = None

    def close(self):
        if getattr(self, "handle", None):
            getattr(self._lib, self._free_name)(self.handle)
            self.handle = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class GhostList(_CHandle):
    """A Verlet list in LAMMPS form: N local atoms, then ghost images within the list
    radius, and each local atom's neighbours as indices into local + ghost atoms.

    Parameters
    ----------
    x : ndarray, shape (N, 3)
        Positions at the build [Å].
    cell : ndarray, shape (3, 3)
        Lattice vectors as rows [Å].
    rcut : float
        Model cut-off [Å].
    skin : float
        Extra list radius [Å]; rebuild once an atom moved more than ``skin / 2``.
    lib : ctypes.CDLL
        From :func:`library` (``DP_NewNlist``).

    Attributes
    ----------
    n, nghost : int
        Local and ghost atoms.
    mapping : ndarray of int64, shape (N + nghost,)
        Atom each local/ghost atom is an image of.
    """

    _free_name = "DP_DeleteNlist"

    def __init__(self, x, cell, rcut, skin, lib):
        self._lib = lib
        self.skin = float(skin)
        self.cell = np.array(cell, dtype=np.float64)
        self.x_build = np.array(x, dtype=np.float64)
        n = len(self.x_build)
        xw, count, j, s = ghost_pairs(self.x_build, self.cell, float(rcut) + self.skin)
        # a lattice translation per atom takes the caller's positions to the wrapped ones
        self.offset = xw - self.x_build
        nz = np.any(s != 0, axis=1)
        smax = int(np.abs(s).max()) if len(s) else 0
        base = 2 * smax + 1
        key = ((j[nz] * base + (s[nz, 0] + smax)) * base + (s[nz, 1] + smax)) * base \
            + (s[nz, 2] + smax)
        uniq, inv = np.unique(key, return_inverse=True)
        g_s = np.empty((len(uniq), 3), dtype=np.int64)
        rest = uniq.copy()
        for k in (2, 1, 0):
            g_s[:, k] = rest % base - smax
            rest //= base
        g_j = rest
        neigh = j.copy()
        neigh[nz] = n + inv.ravel()
        self.n = n
        self.nghost = int(len(uniq))
        self.mapping = np.concatenate([np.arange(n, dtype=np.int64), g_j])
        self.ghost_shift = g_s.astype(np.float64) @ self.cell  # (nghost, 3) [Å]
        self.n_pairs = int(len(j))
        # CSR arrays the C side reads through (kept alive with this object)
        self._neigh = np.ascontiguousarray(neigh, dtype=np.int32)
        self._numneigh = np.ascontiguousarray(count, dtype=np.int32)
        self._ilist = np.arange(n, dtype=np.int32)
        offs = np.zeros(n, dtype=np.int64)
        np.cumsum(count[:-1], out=offs[1:])
        # int** firstneigh: an array of addresses into the flat neighbour array
        self._first = np.ascontiguousarray(self._neigh.ctypes.data + 4 * offs, dtype=np.uintp)
        self.handle = lib.DP_NewNlist(n, self._ilist.ctypes.data_as(_I),
                                      self._numneigh.ctypes.data_as(_I),
                                      self._first.ctypes.data_as(ctypes.POINTER(_I)))
        msg = lib.DP_NlistCheckOK(self.handle)
        if msg:
            raise RuntimeError(f"DeePMD-kit neighbour list: {msg.decode(errors='replace')}")
        self._xall = np.empty((n + self.nghost, 3), dtype=np.float64)

    def stale(self, x, cell) -> bool:
        """True when the list no longer covers ``rcut`` for positions ``x`` in ``cell``."""
        if cell.shape != self.cell.shape or not np.array_equal(cell, self.cell):
            return True
        return max_displacement2(x, self.x_build) > (0.5 * self.skin) ** 2

    def coordinates(self, x) -> np.ndarray:
        """Local then ghost coordinates [Å], shape (N + nghost, 3), for positions ``x``."""
        fill_coordinates(x, self.offset, self.mapping, self.ghost_shift, self._xall)
        return self._xall

    def fold(self, f_all) -> np.ndarray:
        """Forces on local atoms: their own plus those of their ghost images, (N, 3)."""
        f = np.empty((self.n, 3))
        fold_forces(f_all, self.n, self.mapping, f)
        return f



# ----------------------------------------------------------------------------- model


class CModel(_CHandle):
    """One DeePMD-kit model loaded through the C API.

    Parameters
    ----------
    path : str or Path
        Frozen model file.
    skin : float, default :data:`DEFAULT_SKIN`
        Verlet skin [Å].

    Raises
    ------
    CAPIUnavailable
        The library cannot be loaded.
    RuntimeError
        DeePMD-kit cannot load the model (its message).
    """

    _free_name = "DP_DeleteDeepPot"

    def __init__(self, path, skin: float = DEFAULT_SKIN):
        self._lib = lib = library()
        self.path = Path(path)
        if not float(skin) >= 0.0:
            raise ValueError(f"skin must be >= 0 Å; got {skin}")
        self.skin = float(skin)
        self.handle = lib.DP_NewDeepPot(str(self.path).encode())
        self._check("load " + self.path.name)
        self.type_map = lib.DP_DeepPotGetTypeMap(self.handle).decode().split()
        self.rcut = float(lib.DP_DeepPotGetCutoff(self.handle))
        self.dim_fparam = int(lib.DP_DeepPotGetDimFParam(self.handle))
        self.dim_aparam = int(lib.DP_DeepPotGetDimAParam(self.handle))
        self._lock = threading.Lock()
        self._list = None
        self._atype_all = None
        self._fresh = False
        self.builds = 0
        self.calls = 0

    def _check(self, what):
        msg = self._lib.DP_DeepPotCheckOK(self.handle)
        if msg:
            raise RuntimeError(f"DeePMD-kit ({what}): {msg.decode(errors='replace')}")

    def compute(self, x, cell, atype):
        """Energy [eV], forces (N, 3) [eV/Å] and virial (3, 3) [eV] of one configuration.

        ``x`` (N, 3) float64 [Å]; ``cell`` (3, 3) rows [Å] or None (cluster); ``atype``
        (N,) int32 model types. Not re-entrant per object (a lock serialises callers).
        """
        x = np.ascontiguousarray(x, dtype=np.float64)
        n = len(x)
        e = np.zeros(1)
        v = np.zeros(9)
        with self._lock:
            self.calls += 1
            if cell is None:
                at = np.ascontiguousarray(atype, dtype=np.int32)
                f = np.zeros((n, 3))
                self._lib.DP_DeepPotCompute(self.handle, n, x.ctypes.data_as(_D),
                                            at.ctypes.data_as(_I), None, e.ctypes.data_as(_D),
                                            f.ctypes.data_as(_D), v.ctypes.data_as(_D), None,
                                            None)
                self._check("compute")
                return float(e[0]), f, v.reshape(3, 3)
            c = np.ascontiguousarray(cell, dtype=np.float64)
            if self._list is None or self._list.n != n or self._list.stale(x, c):
                self._build(x, c, atype)
            ago = 0 if self._fresh else 1
            self._fresh = False
            gl = self._list
            xa = gl.coordinates(x)
            fa = np.zeros((gl.n + gl.nghost, 3))
            self._lib.DP_DeepPotComputeNList(
                self.handle, gl.n + gl.nghost, xa.ctypes.data_as(_D),
                self._atype_all.ctypes.data_as(_I), c.ctypes.data_as(_D), gl.nghost,
                gl.handle, ago, e.ctypes.data_as(_D), fa.ctypes.data_as(_D),
                v.ctypes.data_as(_D), None, None)
            self._check("compute")
            return float(e[0]), gl.fold(fa), v.reshape(3, 3)

    def _build(self, x, c, atype):
        if self._list is not None:
            self._list.close()
        self._list = None
        self._list = GhostList(x, c, self.rcut, self.skin, self._lib)
        self._atype_all = np.ascontiguousarray(
            np.asarray(atype, dtype=np.int32)[self._list.mapping])
        self._fresh = True  # the C side formats this list at the next call (ago = 0)
        self.builds += 1

    def list_state(self):
        """``(x_build (N, 3) [Å], cell (3, 3) [Å])`` of the current list, or None.

        Forces with a Verlet list depend at round-off level (≈1e-13 eV/Å) on where the
        list was built; a checkpoint keeps these so a resumed run rebuilds the same list
        and continues bit for bit."""
        gl = self._list
        return None if gl is None else (gl.x_build.copy(), gl.cell.copy())

    def prime(self, x_build, cell, atype):
        """Build the list at ``x_build`` in ``cell`` now (see :meth:`list_state`)."""
        with self._lock:
            self._build(np.ascontiguousarray(x_build, dtype=np.float64),
                        np.ascontiguousarray(cell, dtype=np.float64), atype)

    def reset_list(self):
        """Forget the neighbour list (the next call rebuilds it)."""
        with self._lock:
            if self._list is not None:
                self._list.close()
            self._list = None

    def close(self):
        if getattr(self, "_list", None) is not None:
            self.reset_list()
        super().close()


def engine_default() -> str:
    """``ROTORLAB_DEEPMD_ENGINE`` (``c``, ``python`` or ``auto``; default ``auto``)."""
    v = os.environ.get("ROTORLAB_DEEPMD_ENGINE", "auto").strip().lower() or "auto"
    if v not in ("auto", "c", "python"):
        raise ValueError(f"ROTORLAB_DEEPMD_ENGINE must be auto, c or python; got {v!r}")
    return v
