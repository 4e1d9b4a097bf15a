"""nglview over a rotorlab store, for notebooks: lazy frames through an nglview
``Trajectory`` adaptor, rotors coloured by constraint mode, cations highlighted, the unit cell
and mobile-ion density isosurfaces from cube files.

**The version fix.** nglview 4.0.1's Python side asks the browser for the widget module
``nglview-js-widgets`` version ``4.0`` while its wheel installs the JupyterLab extension
3.1.5; JupyterLab then shows an error box instead of the view. :func:`fix_versions` makes
every nglview widget ask for the installed extension's version. It must run before nglview
is imported (nglview creates a widget at import); importing this module does that, so import
``rotorlab.viz.nglview_adaptor`` before (or instead of) ``nglview``.

Importing this module does not import nglview; the functions do.
"""

from __future__ import annotations

import json
import sys
import types
import warnings
from pathlib import Path

import numpy as np

from rotorlab.viz.ngl import CATION_COLOUR, MODE_COLOURS, StoreFrames, atoms_pdb

__all__ = ["installed_extension_version", "fix_versions", "StoreTrajectory", "show_store",
           "add_isosurface"]

_FIXED: str | None = None
_SEEDED: str | None = None


def _extension_dirs():
    try:
        from jupyter_core.paths import jupyter_path

        roots = [Path(p) for p in jupyter_path("labextensions")]
    except ImportError:  # pragma: no cover - jupyter_core comes with ipywidgets
        roots = []
    roots.append(Path(sys.prefix) / "share" / "jupyter" / "labextensions")
    return roots


def installed_extension_version() -> str | None:
    """Version of the installed JupyterLab extension ``nglview-js-widgets`` (None if absent)."""
    for root in _extension_dirs():
        pkg = root / "nglview-js-widgets" / "package.json"
        if pkg.is_file():
            try:
                return str(json.loads(pkg.read_text())["version"])
            except (ValueError, KeyError, OSError):
                continue
    return None


def _same_minor(a: str, b: str) -> bool:
    return a.split(".")[:2] == b.split(".")[:2]


def _preseed() -> str | None:
    """Provide ``nglview._frontend`` with the installed extension's version before nglview
    is imported (finds nglview without importing it). Returns the version set, or None."""
    if "nglview" in sys.modules or "nglview._frontend" in sys.modules:
        return None
    ext = installed_extension_version()
    if ext is None:
        return None
    import importlib.util

    try:
        spec = importlib.util.find_spec("nglview")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    src = Path(list(spec.submodule_search_locations)[0]) / "_frontend.py"
    asked = None
    if src.is_file():
        ns: dict = {}
        exec(compile(src.read_text(), str(src), "exec"), ns)  # nglview's one-line version file
        asked = ns.get("__frontend_version__")
    if asked is not None and _same_minor(str(asked), ext):
        return None
    mod = types.ModuleType("nglview._frontend")
    mod.__frontend_version__ = ext
    mod.__file__ = str(src)
    sys.modules["nglview._frontend"] = mod
    global _SEEDED
    _SEEDED = ext
    return ext


def fix_versions() -> str | None:
    """Make every nglview widget request the installed frontend version (and import nglview).

    Returns
    -------
    str or None
        The version now requested when it differs from what nglview asks for, else None
        (versions already match, or no extension is installed).

    Notes
    -----
    Importing this module already provides ``nglview._frontend`` with the installed
    version when nglview has not been imported yet, so every widget class (and the colour
    registry nglview creates at import) is built with it. If nglview was imported first,
    the classes' trait defaults and the registry instance are patched instead and a warning
    says that widgets created before may still show the error.
    """
    global _FIXED
    if _FIXED is not None:
        return _FIXED or None
    seeded = _preseed() or _SEEDED
    import ipywidgets
    import nglview  # noqa: F401

    ext = installed_extension_version()
    asked = getattr(sys.modules.get("nglview._frontend"), "__frontend_version__", None)
    if seeded is not None or ext is None or (asked is not None and _same_minor(str(asked), ext)):
        _FIXED = seeded or ""
        return seeded
    seen = set()
    stack = [ipywidgets.Widget]
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            if sub in seen:
                continue
            seen.add(sub)
            stack.append(sub)
            if not sub.__module__.startswith("nglview"):
                continue
            for name in ("_view_module_version", "_model_module_version"):
                tr = sub.class_traits().get(name)
                if tr is not None:
                    tr.default_value = ext
                    getattr(sub, "_trait_default_generators", {}).pop(name, None)
    reg = getattr(sys.modules.get("nglview.color"), "ColormakerRegistry", None)
    if reg is not None:
        reg._view_module_version = ext
        reg._model_module_version = ext
    warnings.warn("nglview was imported before rotorlab.viz.nglview_adaptor: widgets created "
                  "before this call may still show a version error; import rotorlab's adaptor "
                  "first", RuntimeWarning, stacklevel=2)
    _FIXED = ext
    return ext


def _trajectory_base():
    fix_versions()
    import nglview

    return nglview.Trajectory, nglview.Structure


_TRAJ = None


def _store_trajectory_class():
    global _TRAJ
    if _TRAJ is not None:
        return _TRAJ
    Trajectory, Structure = _trajectory_base()

    class _StoreTrajectory(Trajectory, Structure):
        """nglview trajectory over a store; one frame is read when the view asks for it."""

        def __init__(self, frames: StoreFrames, stride: int = 1):
            super().__init__()
            self.frames = frames
            self.stride = max(1, int(stride))
            self.ext = "pdb"
            self.params = {}
            self.id = f"rotorlab-{id(self)}"

        def get_coordinates(self, index):
            return self.frames.positions(int(index) * self.stride).astype(np.float32)

        @property
        def n_frames(self):
            return (self.frames.n_frames + self.stride - 1) // self.stride

        def get_structure_string(self):
            return self.frames.pdb(0)

    _TRAJ = _StoreTrajectory
    return _TRAJ


def StoreTrajectory(store_or_ds, stride: int = 1):
    """An nglview ``Trajectory`` + ``Structure`` over a rotorlab store (lazy frames).

    Parameters
    ----------
    store_or_ds : path or xarray.Dataset
    stride : int
        Show every ``stride``-th stored frame.
    """
    frames = store_or_ds if isinstance(store_or_ds, StoreFrames) else StoreFrames(store_or_ds)
    return _store_trajectory_class()(frames, stride)


def _apply_styles(view, frames: StoreFrames, component: int = 0) -> None:
    view.clear_representations(component=component)
    view.add_representation("unitcell", component=component)
    for sele, colour, kind, radius in frames.styles():
        kw = {"selection": sele, "radiusScale": radius, "component": component}
        if colour == "element":
            kw["color"] = "element"
        else:
            kw["color"] = colour
        view.add_representation(kind, **kw)


def show_store(store_or_ds, stride: int = 1, cube: str | Path | None = None,
               iso_fraction: float = 0.5, width: str = "640px", height: str = "420px"):
    """An nglview widget playing a store's trajectory.

    Parameters
    ----------
    store_or_ds : path or xarray.Dataset
        A rotorlab trajectory store.
    stride : int
        Every ``stride``-th frame.
    cube : path, optional
        A cube file (e.g. ``MobileIonDensity.write_cube``) drawn as an isosurface.
    iso_fraction : float
        The isosurface encloses the densest voxels holding this share of the density.
    width, height : str
        CSS size.

    Returns
    -------
    nglview.NGLWidget
        With the frame slider/player; rotors coloured by mode (:data:`MODE_COLOURS`),
        cations in :data:`CATION_COLOUR`.
    """
    fix_versions()
    import nglview

    traj = StoreTrajectory(store_or_ds, stride)
    view = nglview.NGLWidget(traj)
    view.layout.width = width
    view.layout.height = height
    _apply_styles(view, traj.frames)
    if cube is not None:
        add_isosurface(view, cube, iso_fraction=iso_fraction)
    return view


def add_isosurface(view, cube: str | Path, iso_fraction: float = 0.5,
                   colour: str = CATION_COLOUR, opacity: float = 0.5):
    """Add a cube file to an nglview widget as an isosurface.

    Parameters
    ----------
    view : nglview.NGLWidget
    cube : path
        Gaussian cube file.
    iso_fraction : float
        See :func:`rotorlab.viz.ngl.iso_level`.
    colour : str
    opacity : float

    Returns
    -------
    float
        The isosurface value (units of the cube's data).
    """
    from ase.io.cube import read_cube_data

    from rotorlab.viz.ngl import iso_level

    data, _ = read_cube_data(str(cube))
    level = iso_level(data, iso_fraction)
    comp = view.add_component(str(cube))
    comp.add_surface(isolevelType="value", isolevel=level, color=colour, opacity=opacity)
    return level


def structure_widget(atoms):
    """An nglview widget of one :class:`ase.Atoms` (unit cell shown), with the version fix."""
    fix_versions()
    import nglview

    view = nglview.NGLWidget(nglview.TextStructure(atoms_pdb(atoms), ext="pdb"))
    view.add_representation("unitcell")
    return view


__all__ += ["structure_widget", "MODE_COLOURS"]


_preseed()
