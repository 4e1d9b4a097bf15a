"""DeePMD-kit models as rotorlab force fields, ensembles and live model deviation (DESIGN §6).

>>> from rotorlab.potentials.deepmd import DeePMD, DeePMDEnsemble
>>> ff = DeePMD("model.pb", symbols=atoms.get_chemical_symbols(), threads=2)
>>> energy, forces, virial = ff.compute(atoms.positions, atoms.cell.array)

Engines
-------
TensorFlow ``.pb`` models run by default through DeePMD-kit's **C API**
(``libdeepmd_c.so`` from the deepmd-kit wheel, :mod:`rotorlab.potentials.deepmd_c`) with a
Verlet neighbour list handed to it the way LAMMPS ``pair_style deepmd`` does (ghost images
within ``rcut + skin``, rebuilt once an atom moved more than ``skin / 2``; skin 2 Å). This
skips DeePMD-kit's per-call Python work and its in-graph neighbour search, and it does not
import TensorFlow's Python package (start-up under a second instead of several). Where the
library cannot be loaded, DeePMD-kit's Python ``DeepPot`` is used (``engine="python"``, or
``ROTORLAB_DEEPMD_ENGINE=python``); both give the same numbers to round-off (≈1e-13 eV/Å),
and a checkpoint keeps where the list was built so that resumed runs continue bit for bit.
Other backends' files (``.pth``, ``.savedmodel``, ...) go to DeePMD-kit's Python API where
their backend is installed. The NumPy reference backend (``.dp``, ``.yaml``) is refused:
in deepmd-kit 3.2 it returns NaN forces.

Threads
-------
DeePMD-kit's TensorFlow backend reads its thread settings **once**, when TensorFlow is
initialised in the process (the first model is loaded):

* ``DP_INTRA_OP_PARALLELISM_THREADS`` — threads inside one TensorFlow operation;
* ``DP_INTER_OP_PARALLELISM_THREADS`` — TensorFlow operations run concurrently;
* ``OMP_NUM_THREADS`` — OpenMP threads of DeePMD-kit's custom C++ operators.

Set them in the environment before starting Python, or call :func:`set_threads` (or pass
``threads=`` to the first :class:`DeePMD`) before any model is loaded. Later requests
that differ from the active setting cannot take effect and raise a ``RuntimeWarning``.
Unset variables let TensorFlow use every core (and DeePMD-kit logs a hint).

Importing this module does not import DeePMD-kit or TensorFlow; that happens when the
first model is loaded. Note that loading a TensorFlow model switches TensorFlow's eager
mode off for the whole process (``import deepmd.tf``).
"""

from __future__ import annotations

import hashlib
import os
import sys
import warnings
from pathlib import Path

import numpy as np

__all__ = [
    "DeePMD",
    "DeePMDEnsemble",
    "ModelDeviationWarning",
    "ModelDeviationError",
    "force_deviation",
    "max_force_deviation",
    "set_threads",
    "thread_settings",
    "REFUSED_SUFFIXES",
]

#: Suffixes of DeePMD-kit's NumPy reference backend, refused (NaN forces in deepmd-kit 3.2).
REFUSED_SUFFIXES = (".dp", ".yaml", ".yml")

_THREAD_VARS = ("DP_INTRA_OP_PARALLELISM_THREADS", "DP_INTER_OP_PARALLELISM_THREADS",
                "OMP_NUM_THREADS")


# ----------------------------------------------------------------------------- threads


def _tf_initialised() -> bool:
    """True once DeePMD-kit's TensorFlow environment (and its session config) exists."""
    return "deepmd.tf.env" in sys.modules


#: (intra, inter) the first model loaded through the C API read from the environment
#: (TensorFlow's C++ thread pools are process-wide and fixed by the first session).
_C_THREADS = None


def _note_c_threads():
    global _C_THREADS
    if _C_THREADS is None:
        _C_THREADS = (int(os.environ.get("DP_INTRA_OP_PARALLELISM_THREADS") or 0),
                      int(os.environ.get("DP_INTER_OP_PARALLELISM_THREADS") or 0))


def _threads_fixed() -> bool:
    return _tf_initialised() or _C_THREADS is not None


def thread_settings() -> dict:
    """The thread settings DeePMD-kit uses (or will use) in this process.

    Returns
    -------
    dict
        ``intra``, ``inter`` (TensorFlow thread pools; 0 means "TensorFlow decides"),
        ``omp`` (``OMP_NUM_THREADS`` or None), ``initialised`` (whether TensorFlow has
        already fixed them) and ``env`` (the three environment variables as set).
    """
    env = {k: os.environ.get(k) for k in _THREAD_VARS}
    if _tf_initialised():
        cfg = sys.modules["deepmd.tf.env"].default_tf_session_config
        intra, inter = cfg.intra_op_parallelism_threads, cfg.inter_op_parallelism_threads
    elif _C_THREADS is not None:
        intra, inter = _C_THREADS
    else:
        intra = int(env["DP_INTRA_OP_PARALLELISM_THREADS"] or 0)
        inter = int(env["DP_INTER_OP_PARALLELISM_THREADS"] or 0)
    omp = env["OMP_NUM_THREADS"]
    return {"intra": int(intra), "inter": int(inter), "omp": int(omp) if omp else None,
            "initialised": _threads_fixed(), "env": env}


def set_threads(intra: int, inter: int = 1, omp: int | None = None) -> bool:
    """Set DeePMD-kit/TensorFlow thread counts (must happen before the first model loads).

    Parameters
    ----------
    intra : int
        ``DP_INTRA_OP_PARALLELISM_THREADS`` (threads within one operation), ≥ 1.
    inter : int, default 1
        ``DP_INTER_OP_PARALLELISM_THREADS`` (concurrent operations), ≥ 1.
    omp : int, optional
        ``OMP_NUM_THREADS`` for DeePMD-kit's custom operators; default ``intra``.

    Returns
    -------
    bool
        True if the setting takes effect; False (with a ``RuntimeWarning``) if TensorFlow
        was already initialised in this process with different thread counts.
    """
    intra, inter = int(intra), int(inter)
    omp = intra if omp is None else int(omp)
    if min(intra, inter, omp) < 1:
        raise ValueError(f"thread counts must be >= 1; got intra={intra}, inter={inter}, omp={omp}")
    if _threads_fixed():
        cur = thread_settings()
        if (cur["intra"], cur["inter"]) != (intra, inter):
            warnings.warn(
                f"DeePMD-kit thread settings cannot change after TensorFlow was initialised in "
                f"this process (active: intra={cur['intra']}, inter={cur['inter']}; requested "
                f"intra={intra}, inter={inter}). Set DP_INTRA_OP_PARALLELISM_THREADS, "
                "DP_INTER_OP_PARALLELISM_THREADS and OMP_NUM_THREADS before the first model "
                "is loaded (or start a new process).", RuntimeWarning, stacklevel=2)
            return False
        return True
    os.environ["DP_INTRA_OP_PARALLELISM_THREADS"] = str(intra)
    os.environ["DP_INTER_OP_PARALLELISM_THREADS"] = str(inter)
    os.environ["OMP_NUM_THREADS"] = str(omp)
    return True


# ----------------------------------------------------------------------------- helpers


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _wrap(positions: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Positions wrapped into the cell (fractional coordinates in [0, 1))."""
    frac = positions @ np.linalg.inv(cell)
    frac -= np.floor(frac)
    return frac @ cell


def _symbols_of(obj) -> list:
    if hasattr(obj, "get_chemical_symbols"):
        return list(obj.get_chemical_symbols())
    return [str(s) for s in obj]


def force_deviation(forces) -> np.ndarray:
    """Per-atom force deviation of a model ensemble (DP-GEN definition).

    Parameters
    ----------
    forces : array_like, shape (M, N, 3)
        Forces of the same configuration from M ≥ 2 models [eV/Å].

    Returns
    -------
    ndarray, shape (N,)
        ``sqrt(mean_m |F_m,i − F̄_i|²)`` for each atom i [eV/Å], with ``F̄_i`` the mean over
        models (population standard deviation of the force vector).
    """
    f = np.asarray(forces, dtype=np.float64)
    if f.ndim != 3 or f.shape[2] != 3 or f.shape[0] < 2:
        raise ValueError(f"forces must have shape (n_models >= 2, n_atoms, 3); got {f.shape}")
    mean = f.mean(axis=0)
    return np.sqrt(np.mean(np.sum((f - mean) ** 2, axis=2), axis=0))


def max_force_deviation(forces) -> float:
    """Maximum force deviation ε_f = max_i ``force_deviation(forces)[i]`` [eV/Å].

    Parameters
    ----------
    forces : array_like, shape (M, N, 3)
        Forces from M ≥ 2 models [eV/Å].

    Returns
    -------
    float
        ε_f [eV/Å], the DP-GEN ``max_devi_f``.
    """
    return float(np.max(force_deviation(forces)))


# ----------------------------------------------------------------------------- DeePMD


#: Start-up lines of DeePMD-kit/TensorFlow on CPU-only machines that say nothing useful
#: (missing CUDA runtime, thread and batch-size advice). Shown with ``ROTORLAB_DEBUG=1``
#: (``rotorlab --debug``); every other line is passed through.
NOISE = ("libcudart", "implib-gen", "To get the best performance",
         "DP_INFER_BATCH_SIZE", "Cannot find libcudart", "cuda_", "oneDNN custom operations",
         "TF_ENABLE_ONEDNN_OPTS", "This TensorFlow binary is optimized",
         "rebuild TensorFlow with the appropriate compiler flags", "Unable to register cu",
         "computation placer already registered", "could not find cuda drivers",
         "cuInit", "All log messages before absl::InitializeLog",
         "DeePMD-kit WARNING: Environmental variable")


def _noisy(line: str) -> bool:
    return any(n in line for n in NOISE)


class quiet_native_startup:
    """Filter known start-up noise out of the process's stderr (file descriptor 2)
    while DeePMD-kit/TensorFlow load; other lines are written back unchanged.

    C++ libraries write to the descriptor directly, so Python-level redirection cannot
    catch them. Disabled (a no-op) with ``ROTORLAB_DEBUG=1`` or when stderr has no
    descriptor (e.g. some notebook kernels). An atexit hook silences the CUDA-unload
    lines printed after the interpreter has finished.
    """

    _atexit_installed = False

    def __enter__(self):
        self._saved = None
        if os.environ.get("ROTORLAB_DEBUG") == "1":
            return self
        try:
            fd = sys.stderr.fileno()
        except (AttributeError, OSError, ValueError):
            return self
        import tempfile

        sys.stderr.flush()
        self._fd = fd
        self._tmp = tempfile.TemporaryFile(mode="w+b")
        self._saved = os.dup(fd)
        os.dup2(self._tmp.fileno(), fd)
        return self

    def __exit__(self, *exc):
        if self._saved is None:
            return False
        try:
            sys.stderr.flush()
        except Exception:
            pass
        os.dup2(self._saved, self._fd)
        os.close(self._saved)
        self._tmp.seek(0)
        text = self._tmp.read().decode(errors="replace")
        self._tmp.close()
        keep = [ln for ln in text.splitlines() if ln.strip() and not _noisy(ln)]
        if keep:
            sys.stderr.write("\n".join(keep) + "\n")
            sys.stderr.flush()
        if not quiet_native_startup._atexit_installed:
            import atexit

            atexit.register(_silence_exit_noise)
            quiet_native_startup._atexit_installed = True
        return False


def _silence_exit_noise():
    """At interpreter exit, send fd 2 to /dev/null: CUDA stubs print unload errors then."""
    if os.environ.get("ROTORLAB_DEBUG") == "1":
        return
    try:
        sys.stderr.flush()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    except Exception:
        pass


class DeePMD:
    """A DeePMD-kit model as a rotorlab :class:`~rotorlab.potentials.base.ForceField`.

    Parameters
    ----------
    path : str or Path
        Model file: a frozen (optionally compressed) TensorFlow ``.pb``; files of other
        DeePMD-kit backends are accepted where that backend is installed. ``.dp``/``.yaml``
        (the NumPy reference backend) are refused.
    symbols : sequence of str or ase.Atoms, optional
        Chemical symbols of the system, in atom order (N,). Can be given later with
        :meth:`bind`; :meth:`compute` needs them.
    type_map : sequence of str, optional
        Element of each model type, in the model's type order, when the model's own
        ``type_map`` does not hold element symbols (or is wrong). Default: the model's.
    threads : int, optional
        Intra-op (and OpenMP) threads; see :func:`set_threads` (effective only before the
        first model is loaded in the process).
    engine : {"auto", "c", "python"}, optional
        ``"c"``: DeePMD-kit's C API with a Verlet list (``.pb`` only); ``"python"``: its
        Python ``DeepPot``; ``"auto"`` (default, or ``ROTORLAB_DEEPMD_ENGINE``): C where
        it loads.
    skin : float, optional
        Verlet skin of the C engine [Å] (default 2.0).

    Attributes
    ----------
    id : str
        ``"deepmd:<file name>"``.
    version : str
        First 16 hex digits of the model file's SHA-256.
    type_names : tuple of str
        Elements the model knows (model type order).
    path : Path
        Absolute path of the model file.
    rcut : float
        Model cut-off radius [Å].
    engine : str
        ``"c"`` or ``"python"`` (what runs); ``engine_note`` says why ``auto`` fell back.

    Raises
    ------
    FileNotFoundError
        The model file does not exist.
    ValueError
        Refused format, or ``type_map`` of the wrong length, or species the model lacks.
    RuntimeError
        DeePMD-kit cannot load the file (e.g. its backend is not installed).
    """

    def __init__(self, path, symbols=None, *, type_map=None, threads: int | None = None,
                 engine: str | None = None, skin: float | None = None):
        p = Path(path).expanduser()
        if not p.exists():
            raise FileNotFoundError(f"DeePMD model file not found: {p}")
        p = p.resolve()
        if p.suffix.lower() in REFUSED_SUFFIXES:
            raise ValueError(
                f"{p.name}: DeePMD-kit's NumPy reference backend ({', '.join(REFUSED_SUFFIXES)}) "
                "returns NaN forces in deepmd-kit 3.2 and cannot drive MD. Convert the model to "
                f"a TensorFlow graph first, e.g. `dp convert-backend {p.name} {p.stem}.pb`.")
        from rotorlab.potentials import deepmd_c

        want = deepmd_c.engine_default() if engine is None else str(engine).lower()
        if want not in ("auto", "c", "python"):
            raise ValueError(f"engine must be 'auto', 'c' or 'python'; got {engine!r}")
        if skin is not None and not float(skin) >= 0.0:
            raise ValueError(f"skin must be >= 0 Å; got {skin}")
        if threads is not None:
            set_threads(threads)
        # TensorFlow's C++ INFO/WARNING log lines (oneDNN, CPU features, MLIR) are noise
        # for users; keep errors. A value the user set is respected.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        self._dp = None
        self._c = None
        self.engine_note = None
        if want in ("auto", "c") and p.suffix.lower() == ".pb":
            try:
                with quiet_native_startup():
                    self._c = deepmd_c.CModel(p, deepmd_c.DEFAULT_SKIN if skin is None
                                              else float(skin))
                _note_c_threads()
            except deepmd_c.CAPIUnavailable as exc:
                if want == "c":
                    raise RuntimeError(f"engine='c': {exc}") from exc
                self.engine_note = f"C API unavailable ({exc}); DeePMD-kit's Python API used"
            except RuntimeError as exc:
                if want == "c":
                    raise RuntimeError(f"DeePMD-kit could not load {p}: {exc}") from exc
                self.engine_note = f"C API could not load the model ({exc}); Python API used"
        elif want == "c":
            raise ValueError(f"engine='c' takes TensorFlow .pb models; {p.name} is not one")
        if self._c is None:
            self._load_python(p)
            model_types = list(self._dp.get_type_map())
            rcut = float(self._dp.get_rcut())
        else:
            if self._c.dim_fparam or self._c.dim_aparam:
                raise ValueError(f"{p.name} needs frame/atomic parameters (fparam/aparam), "
                                 "which rotorlab does not provide")
            model_types = list(self._c.type_map)
            rcut = self._c.rcut
        self.engine = "c" if self._c is not None else "python"
        if type_map is not None:
            type_map = [str(t) for t in type_map]
            if len(type_map) != len(model_types):
                raise ValueError(f"type_map has {len(type_map)} entries but {p.name} has "
                                 f"{len(model_types)} types {model_types}")
            if len(set(type_map)) != len(type_map):
                raise ValueError(f"type_map has repeated elements: {type_map}")
        self.type_names = tuple(type_map if type_map is not None else model_types)
        self.model_type_map = tuple(model_types)
        self.path = p
        self.rcut = rcut
        self.id = f"deepmd:{p.name}"
        self.version = _file_digest(p)[:16]
        self.symbols: tuple | None = None
        self._atype: np.ndarray | None = None
        if symbols is not None:
            self.bind(symbols)

    def _load_python(self, p):
        try:
            with quiet_native_startup():
                from deepmd.infer import DeepPot
        except Exception as exc:  # pragma: no cover - environment problem
            raise RuntimeError(f"DeePMD-kit is not importable: {exc}") from exc
        try:
            with quiet_native_startup():
                self._dp = DeepPot(str(p))
        except Exception as exc:
            hint = ""
            if p.suffix in (".pth", ".pt", ".pte", ".pt2"):
                hint = (" PyTorch models need deepmd-kit's torch backend, which fails to import "
                        "with the torch in this environment; convert to .pb with "
                        "`dp convert-backend` where it works.")
            raise RuntimeError(f"DeePMD-kit could not load {p}: {type(exc).__name__}: {exc}.{hint}"
                               ) from exc
        if self._dp.get_dim_fparam() or self._dp.get_dim_aparam():
            raise ValueError(f"{p.name} needs frame/atomic parameters (fparam/aparam), which "
                             "rotorlab does not provide")

    # -- species ----------------------------------------------------------------------

    def check_species(self, symbols) -> None:
        """Raise ``ValueError`` naming every element of ``symbols`` the model lacks.

        Parameters
        ----------
        symbols : sequence of str or ase.Atoms
        """
        syms = _symbols_of(symbols)
        missing = sorted(set(syms) - set(self.type_names))
        if missing:
            raise ValueError(
                f"DeePMD model {self.path.name} cannot describe element(s) {missing}: its "
                f"type_map is {list(self.type_names)}; the system contains "
                f"{sorted(set(syms))}. Use a model trained on these elements, or pass "
                "type_map=[...] if the model's type names are not element symbols.")

    def bind(self, symbols) -> DeePMD:
        """Fix the system's species (maps atom types once).

        Parameters
        ----------
        symbols : sequence of str or ase.Atoms, shape (N,)

        Returns
        -------
        DeePMD
            ``self``.
        """
        syms = _symbols_of(symbols)
        self.check_species(syms)
        index = {t: k for k, t in enumerate(self.type_names)}
        atype = np.array([index[s] for s in syms], dtype=np.int32)
        if self._c is not None and not (self._atype is not None
                                        and np.array_equal(atype, self._atype)):
            self._c.reset_list()  # another system: its list does not apply
        self._atype = atype
        self.symbols = tuple(syms)
        return self

    @property
    def n_atoms(self) -> int | None:
        """Number of atoms bound (None before :meth:`bind`)."""
        return None if self._atype is None else len(self._atype)

    # -- evaluation -------------------------------------------------------------------

    def _check_args(self, positions, cell, wrap=True):
        if self._atype is None:
            raise RuntimeError(f"{self.id}: call bind(symbols) (or pass symbols=) before compute")
        x = np.asarray(positions, dtype=np.float64)
        if x.shape != (len(self._atype), 3):
            raise ValueError(f"{self.id} is bound to {len(self._atype)} atoms; got positions "
                             f"of shape {x.shape}")
        if cell is None:
            return x, None
        c = np.asarray(cell, dtype=np.float64)
        if c.shape != (3, 3) or abs(np.linalg.det(c)) < 1e-8:
            raise ValueError(f"cell must be a (3, 3) matrix with non-zero volume; got {c!r}")
        return (_wrap(x, c) if wrap else x), c

    def compute(self, positions, cell):
        """Energy, forces and virial of one configuration.

        Parameters
        ----------
        positions : ndarray, shape (N, 3)
            Cartesian positions [Å], wrapped or unwrapped.
        cell : ndarray, shape (3, 3) or None
            Lattice vectors as rows [Å]; None for a non-periodic cluster.

        Returns
        -------
        energy : float
            [eV].
        forces : ndarray, shape (N, 3)
            [eV/Å].
        virial : ndarray, shape (3, 3)
            [eV], ``W = -∂E/∂ε`` (stress ``σ = -W/V``), symmetric up to round-off.
        """
        if self._c is not None:
            # unwrapped positions: the Verlet list carries each atom's lattice offset, so an
            # atom crossing the cell face does not force a rebuild
            x, c = self._check_args(positions, cell, wrap=False)
            return self._c.compute(x, c, self._atype)
        x, c = self._check_args(positions, cell)
        e, f, v = self._dp.eval(x.reshape(1, -1), None if c is None else c.reshape(1, 9),
                                self._atype)
        return (float(np.asarray(e).reshape(-1)[0]),
                np.asarray(f, dtype=np.float64).reshape(-1, 3),
                np.asarray(v, dtype=np.float64).reshape(3, 3))

    __call__ = compute

    # -- state ------------------------------------------------------------------------

    def get_state(self):
        """Arrays and JSON metadata that rebuild this force field (for checkpoints).

        Returns
        -------
        arrays : dict
            Empty (the model file is referenced, not copied).
        meta : dict
            ``kind``, ``path``, ``sha256`` prefix, ``type_map``, ``symbols``.
        """
        return self._list_arrays(""), {
            "kind": "deepmd", "path": str(self.path), "version": self.version,
            "id": self.id, "type_map": list(self.type_names),
            "symbols": None if self.symbols is None else list(self.symbols)}

    def _list_arrays(self, prefix):
        st = self._c.list_state() if self._c is not None else None
        if st is None:
            return {}
        return {f"{prefix}deepmd_list_x": st[0], f"{prefix}deepmd_list_cell": st[1]}

    def _restore_list(self, arrays, prefix):
        """Rebuild the checkpoint's Verlet list (C engine; ignored otherwise)."""
        kx, kc = f"{prefix}deepmd_list_x", f"{prefix}deepmd_list_cell"
        if self._c is None or self._atype is None or kx not in arrays or kc not in arrays:
            return
        x = np.asarray(arrays[kx], dtype=np.float64)
        if x.shape == (len(self._atype), 3):
            self._c.prime(x, np.asarray(arrays[kc], dtype=np.float64), self._atype)

    @classmethod
    def from_state(cls, arrays, meta) -> DeePMD:
        """Inverse of :meth:`get_state`; refuses a model file that has changed since."""
        ff = cls(meta["path"], meta.get("symbols"), type_map=meta.get("type_map"))
        if ff.version != meta.get("version", ff.version):
            raise ValueError(f"model file {meta['path']} changed since the checkpoint "
                             f"(sha256 {ff.version} != {meta['version']})")
        ff._restore_list(arrays or {}, "")
        return ff

    def __repr__(self):
        bound = "unbound" if self._atype is None else f"{len(self._atype)} atoms"
        return (f"DeePMD({self.path.name!r}, type_map={list(self.type_names)}, "
                f"rcut={self.rcut:g} Å, {bound}, engine={self.engine}, "
                f"version={self.version})")


# ----------------------------------------------------------------------------- ensemble


class ModelDeviationWarning(UserWarning):
    """Too many checked frames have a model deviation above ``sigma_high``."""


class ModelDeviationError(RuntimeError):
    """Raised by :class:`DeePMDEnsemble` with ``stop_on_high=True`` (run left the models' domain)."""


class DeePMDEnsemble:
    """Several DeePMD models: the first drives the dynamics, all measure the model deviation.

    Every ``k``-th call of :meth:`compute` (the first call included) evaluates all models
    and records ε_f, the maximum over atoms of the per-atom force deviation (DP-GEN
    ``max_devi_f``, see :func:`force_deviation`); the other calls evaluate the first
    model only. One ``compute`` call per MD step makes "every k calls" "every k steps".

    Parameters
    ----------
    paths : sequence of str or Path
        Two or more model files (see :class:`DeePMD`); the first drives the dynamics.
    symbols : sequence of str or ase.Atoms, optional
        System species (or later via :meth:`bind`).
    k : int, default 10
        Evaluate all models every k calls.
    sigma_low, sigma_high : float, default 0.11, 0.26
        DP-GEN trust bounds [eV/Å]: ε_f < σ_low accurate, σ_low ≤ ε_f < σ_high candidate,
        ε_f ≥ σ_high failed.
    max_fraction_high : float, default 0.05
        A :class:`ModelDeviationWarning` is issued (once) when the fraction of checked
        frames with ε_f ≥ σ_high exceeds this.
    stop_on_high : bool, default False
        Raise :class:`ModelDeviationError` instead of warning when that fraction is exceeded.
    type_map : sequence of str, optional
        Applied to every model (see :class:`DeePMD`).
    threads : int, optional
        See :func:`set_threads`.

    Attributes
    ----------
    models : list of DeePMD
    last_model_deviation : float
        ε_f of the latest check [eV/Å] (NaN before the first).
    last_check_call : int
        Call number (0-based) of the latest check (-1 before the first).
    n_calls, n_checks, n_candidate, n_high : int
        Calls, checks, checks with σ_low ≤ ε_f < σ_high, checks with ε_f ≥ σ_high.
    history : list of (int, float)
        (call number, ε_f) of every check.
    id, version, type_names : see :class:`DeePMD`.
    """

    def __init__(self, paths, symbols=None, *, k: int = 10, sigma_low: float = 0.11,
                 sigma_high: float = 0.26, max_fraction_high: float = 0.05,
                 stop_on_high: bool = False, type_map=None, threads: int | None = None):
        paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
        if len(paths) < 2:
            raise ValueError(f"a model ensemble needs at least 2 model files; got {len(paths)}")
        if int(k) < 1:
            raise ValueError(f"k must be >= 1; got {k}")
        if not 0 <= sigma_low <= sigma_high:
            raise ValueError(f"need 0 <= sigma_low <= sigma_high; got {sigma_low}, {sigma_high}")
        if not 0 <= max_fraction_high <= 1:
            raise ValueError(f"max_fraction_high must lie in [0, 1]; got {max_fraction_high}")
        self.models = [DeePMD(p, type_map=type_map, threads=threads if i == 0 else None)
                       for i, p in enumerate(paths)]
        self.k = int(k)
        self.sigma_low = float(sigma_low)
        self.sigma_high = float(sigma_high)
        self.max_fraction_high = float(max_fraction_high)
        self.stop_on_high = bool(stop_on_high)
        common = set(self.models[0].type_names)
        for m in self.models[1:]:
            common &= set(m.type_names)
        self.type_names = tuple(t for t in self.models[0].type_names if t in common)
        self.id = "deepmd-ensemble:" + "+".join(m.path.name for m in self.models)
        self.version = hashlib.sha256("".join(m.version for m in self.models).encode()
                                      ).hexdigest()[:16]
        self.reset_statistics()
        if symbols is not None:
            self.bind(symbols)

    def reset_statistics(self) -> None:
        """Forget all checks (and restart the call counter)."""
        self.n_calls = 0
        self.n_checks = 0
        self.n_candidate = 0
        self.n_high = 0
        self.history: list = []
        self.last_model_deviation = float("nan")
        self.last_force_deviation: np.ndarray | None = None
        self.last_check_call = -1
        self._warned = False

    # -- species ----------------------------------------------------------------------

    def check_species(self, symbols) -> None:
        """Raise ``ValueError`` if any model lacks an element of ``symbols``."""
        for m in self.models:
            m.check_species(symbols)

    def bind(self, symbols) -> DeePMDEnsemble:
        """Bind every model to the system's species; returns ``self``."""
        for m in self.models:
            m.bind(symbols)
        return self

    @property
    def path(self) -> Path:
        """Path of the driving model."""
        return self.models[0].path

    @property
    def fraction_high(self) -> float:
        """Fraction of checks with ε_f ≥ σ_high (0 before the first check)."""
        return self.n_high / self.n_checks if self.n_checks else 0.0

    # -- evaluation -------------------------------------------------------------------

    def evaluate_all(self, positions, cell):
        """Evaluate every model (no bookkeeping).

        Returns
        -------
        energies : ndarray, shape (M,)
            [eV].
        forces : ndarray, shape (M, N, 3)
            [eV/Å].
        virials : ndarray, shape (M, 3, 3)
            [eV].
        """
        res = [m.compute(positions, cell) for m in self.models]
        return (np.array([r[0] for r in res]), np.stack([r[1] for r in res]),
                np.stack([r[2] for r in res]))

    def model_deviation(self, positions=None, cell=None) -> float:
        """ε_f [eV/Å]: of the given configuration, or (no arguments) of the latest check.

        With positions and cell, all models are evaluated now (statistics untouched).
        """
        if positions is None:
            return self.last_model_deviation
        return max_force_deviation(self.evaluate_all(positions, cell)[1])

    def compute(self, positions, cell):
        """Energy, forces and virial of the first model (see :meth:`DeePMD.compute`).

        Every k-th call also evaluates the other models and updates the deviation record.

        Raises
        ------
        ModelDeviationError
            With ``stop_on_high=True``, when the fraction of checks above σ_high exceeds
            ``max_fraction_high``.
        """
        call = self.n_calls
        self.n_calls += 1
        if call % self.k:
            return self.models[0].compute(positions, cell)
        e, f, v = self.evaluate_all(positions, cell)
        self._record(call, f)
        return float(e[0]), f[0], v[0]

    __call__ = compute

    def _record(self, call: int, forces: np.ndarray) -> None:
        per_atom = force_deviation(forces)
        eps = float(per_atom.max())
        self.last_force_deviation = per_atom
        self.last_model_deviation = eps
        self.last_check_call = call
        self.history.append((call, eps))
        self.n_checks += 1
        if eps >= self.sigma_high:
            self.n_high += 1
        elif eps >= self.sigma_low:
            self.n_candidate += 1
        if self.fraction_high > self.max_fraction_high:
            msg = (f"model deviation: {self.n_high} of {self.n_checks} checked frames "
                   f"({100 * self.fraction_high:.1f} %) have eps_f >= sigma_high = "
                   f"{self.sigma_high:g} eV/Å (limit {100 * self.max_fraction_high:g} %); latest "
                   f"eps_f = {eps:.3f} eV/Å at call {call} (atom {int(per_atom.argmax())}). "
                   "The configurations leave the models' training domain; the trajectory "
                   "is not trustworthy there.")
            if self.stop_on_high:
                raise ModelDeviationError(msg)
            if not self._warned:
                warnings.warn(msg, ModelDeviationWarning, stacklevel=3)
                self._warned = True

    def summary(self) -> dict:
        """Deviation statistics: checks, fractions accurate/candidate/failed, max/mean ε_f."""
        eps = np.array([h[1] for h in self.history]) if self.history else np.zeros(0)
        n = max(self.n_checks, 1)
        return {"n_calls": self.n_calls, "n_checks": self.n_checks, "k": self.k,
                "sigma_low": self.sigma_low, "sigma_high": self.sigma_high,
                "fraction_accurate": (self.n_checks - self.n_candidate - self.n_high) / n,
                "fraction_candidate": self.n_candidate / n,
                "fraction_high": self.n_high / n,
                "max": float(eps.max()) if eps.size else float("nan"),
                "mean": float(eps.mean()) if eps.size else float("nan")}

    # -- state ------------------------------------------------------------------------

    def get_state(self):
        """Arrays and JSON metadata that rebuild the ensemble with its counters."""
        arrays = {"ens_history": np.array(self.history, dtype=np.float64).reshape(-1, 2)}
        for k, m in enumerate(self.models):
            arrays.update(m._list_arrays(f"ens{k}_"))
        meta = {"kind": "deepmd-ensemble", "paths": [str(m.path) for m in self.models],
                "versions": [m.version for m in self.models], "id": self.id,
                "version": self.version, "type_map": list(self.models[0].type_names),
                "symbols": None if self.models[0].symbols is None else list(self.models[0].symbols),
                "k": self.k, "sigma_low": self.sigma_low, "sigma_high": self.sigma_high,
                "max_fraction_high": self.max_fraction_high, "stop_on_high": self.stop_on_high,
                "n_calls": self.n_calls, "n_candidate": self.n_candidate, "n_high": self.n_high,
                "last_check_call": self.last_check_call, "warned": self._warned}
        return arrays, meta

    @classmethod
    def from_state(cls, arrays, meta) -> DeePMDEnsemble:
        """Inverse of :meth:`get_state`."""
        ens = cls(meta["paths"], meta.get("symbols"), k=meta["k"], sigma_low=meta["sigma_low"],
                  sigma_high=meta["sigma_high"], max_fraction_high=meta["max_fraction_high"],
                  stop_on_high=meta["stop_on_high"], type_map=meta.get("type_map"))
        for m, v in zip(ens.models, meta["versions"]):
            if m.version != v:
                raise ValueError(f"model file {m.path} changed since the checkpoint")
        for k, m in enumerate(ens.models):
            m._restore_list(arrays, f"ens{k}_")
        hist = np.asarray(arrays.get("ens_history", np.zeros((0, 2)))).reshape(-1, 2)
        ens.history = [(int(c), float(e)) for c, e in hist]
        ens.n_calls = int(meta["n_calls"])
        ens.n_checks = len(ens.history)
        ens.n_candidate = int(meta["n_candidate"])
        ens.n_high = int(meta["n_high"])
        ens.last_check_call = int(meta["last_check_call"])
        ens.last_model_deviation = ens.history[-1][1] if ens.history else float("nan")
        ens._warned = bool(meta["warned"])
        return ens

    def __repr__(self):
        return (f"DeePMDEnsemble({[m.path.name for m in self.models]}, k={self.k}, "
                f"sigma=({self.sigma_low:g}, {self.sigma_high:g}) eV/Å, "
                f"checks={self.n_checks}, fraction_high={self.fraction_high:.3f})")
