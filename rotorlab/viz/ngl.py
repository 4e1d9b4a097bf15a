"""The NGL.js 3D view of the app: structures from ASE as PDB text, rotors coloured by
constraint mode, mobile cations highlighted, the unit cell, play/scrub through frames read
lazily from a store, and a mobile-ion density isosurface (a cube file).

NGL.js itself is *not* part of rotorlab's source: :func:`install_ngl` fetches the ``ngl`` npm
package (version :data:`NGL_VERSION`) with ``npm pack`` into a cache directory (the Makefile,
``.ci/run`` and Binder's ``postBuild`` call it; ``rotorlab app`` calls it when the file is
missing and npm is available), and :func:`ngl_js_path` finds it. The served app exposes the
directory as the static route ``/ngl`` (``panel serve --static-dirs ngl=DIR``).

Panel is imported only by :func:`ngl_view_class` (never at import time).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["NGL_VERSION", "MODE_COLOURS", "CATION_COLOUR", "ngl_cache_dir", "ngl_js_path",
           "install_ngl", "StoreFrames", "atoms_pdb", "display_positions", "styles_for",
           "cube_text", "iso_level", "ngl_view_class", "NGLUnavailable"]

#: Version of the ``ngl`` npm package the view is written against.
NGL_VERSION = "2.5.0"

#: Colour of the rotor atoms per constraint mode (UC: free rotors).
MODE_COLOURS = {"UC": "#2ca02c", "TC": "#17becf", "RC": "#ff7f0e", "RTC": "#d62728",
                "RTVC": "#9467bd", "RVC": "#8c564b"}
#: Colour of the mobile cations.
CATION_COLOUR = "#1f77b4"


class NGLUnavailable(FileNotFoundError):
    """NGL.js is not installed and cannot be fetched here (the message says how)."""


def ngl_cache_dir() -> Path:
    """Directory that holds ``ngl.js`` (``$ROTORLAB_NGL_DIR``, else
    ``$XDG_CACHE_HOME/rotorlab/ngl-<version>``, else ``~/.cache/rotorlab/ngl-<version>``)."""
    env = os.environ.get("ROTORLAB_NGL_DIR")
    if env:
        return Path(env).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "rotorlab" / f"ngl-{NGL_VERSION}"


def _valid_js(path: Path) -> bool:
    try:
        if path.stat().st_size < 100_000:
            return False
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return b"NGL" in head or b"ngl" in head


def ngl_js_path(install: bool = False) -> Path:
    """Path of the installed ``ngl.js``.

    Parameters
    ----------
    install : bool
        Fetch it with :func:`install_ngl` when it is missing.

    Returns
    -------
    Path

    Raises
    ------
    NGLUnavailable
        Not installed (and ``install`` is False, or npm is missing).
    """
    path = ngl_cache_dir() / "ngl.js"
    if _valid_js(path):
        return path
    if install:
        return install_ngl()
    raise NGLUnavailable(
        f"NGL.js {NGL_VERSION} is not installed (looked for {path}). Install it with "
        "'rotorlab app --install-ngl' (needs npm), or put the ngl npm package's dist/ngl.js "
        "into a directory and set ROTORLAB_NGL_DIR to it.")


def install_ngl(dest: str | os.PathLike | None = None, npm: str = "npm",
                timeout: float = 300.0) -> Path:
    """Fetch the ``ngl`` npm package with ``npm pack`` and keep its ``dist/ngl.js``.

    Parameters
    ----------
    dest : path, optional
        Target directory (default :func:`ngl_cache_dir`). Only ``ngl.js`` (and
        ``LICENSE``) are written there; nothing else is touched.
    npm : str
        The npm executable.
    timeout : float
        Seconds to wait for npm.

    Returns
    -------
    Path
        The installed ``ngl.js``.

    Raises
    ------
    NGLUnavailable
        npm is missing or failed; the message says what to do instead.
    """
    dest = Path(dest) if dest is not None else ngl_cache_dir()
    exe = shutil.which(npm)
    if exe is None:
        raise NGLUnavailable(
            f"npm is not installed, so NGL.js {NGL_VERSION} cannot be fetched. Install Node.js/"
            f"npm and run 'rotorlab app --install-ngl', or download the npm package "
            f"ngl@{NGL_VERSION}, and set ROTORLAB_NGL_DIR to a directory holding its "
            "dist/ngl.js.")
    with tempfile.TemporaryDirectory(prefix="rotorlab-ngl-") as tmp:
        try:
            proc = subprocess.run([exe, "pack", f"ngl@{NGL_VERSION}", "--silent"], cwd=tmp,
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise NGLUnavailable(f"'npm pack ngl@{NGL_VERSION}' timed out after {timeout:g} s") \
                from exc
        tgz = Path(tmp) / f"ngl-{NGL_VERSION}.tgz"
        if proc.returncode != 0 or not tgz.is_file():
            raise NGLUnavailable(f"'npm pack ngl@{NGL_VERSION}' failed: "
                                 f"{(proc.stderr or proc.stdout).strip()[-500:]}")
        with tarfile.open(tgz, "r:gz") as tf:
            member = tf.extractfile("package/dist/ngl.js")
            data = member.read() if member is not None else b""
            try:
                lic = tf.extractfile("package/LICENSE")
                lic_data = lic.read() if lic is not None else b""
            except KeyError:
                lic_data = b""
    if len(data) < 100_000:
        raise NGLUnavailable(f"ngl@{NGL_VERSION} has no usable dist/ngl.js")
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / "ngl.js"
    part = dest / "ngl.js.part"
    part.write_bytes(data)
    os.replace(part, out)
    if lic_data:
        (dest / "LICENSE").write_bytes(lic_data)
    return out


# --------------------------------------------------------------------------------------
# structures and frames
# --------------------------------------------------------------------------------------


def display_positions(positions, cell, rotor_id) -> np.ndarray:
    """Positions for display: each rotor wrapped into the cell by its centre, each other
    atom wrapped on its own (rotors stay whole, so bonds drawn once stay right).

    Parameters
    ----------
    positions : ndarray (n_atoms, 3)
        Cartesian [Å] (stored positions are unwrapped).
    cell : ndarray (3, 3)
        Row lattice vectors [Å].
    rotor_id : ndarray (n_atoms,)
        Rotor index per atom, -1 for atoms in no rotor.

    Returns
    -------
    ndarray (n_atoms, 3)
        [Å].
    """
    x = np.asarray(positions, dtype=float)
    cell = np.asarray(cell, dtype=float)
    rid = np.asarray(rotor_id)
    frac = x @ np.linalg.inv(cell)
    shift = -np.floor(frac)
    rotors = rid >= 0
    if rotors.any():
        n = int(rid.max()) + 1
        cnt = np.bincount(rid[rotors], minlength=n).astype(float)
        centre = np.stack([np.bincount(rid[rotors], weights=frac[rotors, k], minlength=n)
                           for k in range(3)], axis=1) / np.maximum(cnt, 1)[:, None]
        shift[rotors] = -np.floor(centre[rid[rotors]])
    return (frac + shift) @ cell


def atoms_pdb(atoms) -> str:
    """PDB text (with CRYST1, so NGL draws the unit cell) of an :class:`ase.Atoms`."""
    import ase.io

    buf = io.StringIO()
    ase.io.write(buf, atoms, format="proteindatabank")
    return buf.getvalue()


class StoreFrames:
    """Lazy frame reader over a trajectory store or Dataset: reads one frame when asked.

    Parameters
    ----------
    store_or_ds : path or xarray.Dataset
        A rotorlab trajectory store (opened with :func:`rotorlab.store.open_store`).
    """

    def __init__(self, store_or_ds):
        import xarray as xr

        if isinstance(store_or_ds, xr.Dataset):
            self.ds = store_or_ds
        else:
            from rotorlab.store import open_store

            self.ds = open_store(store_or_ds)
        ds = self.ds
        self.symbols = [str(s) for s in np.asarray(ds["species"].values)]
        self.rotor_id = np.asarray(ds["rotor_id"].values) if "rotor_id" in ds else \
            np.full(len(self.symbols), -1)
        kinds = np.asarray(ds["rotor_kind"].values) if "rotor_kind" in ds else np.array([])
        self.rotor_kind = [str(k) for k in kinds]
        self.mobile = ds.attrs.get("mobile_species")
        self.mode = ds.attrs.get("constraint_mode", "UC")

    @property
    def n_frames(self) -> int:
        return int(self.ds.sizes["frame"])

    def positions(self, i: int) -> np.ndarray:
        """Display positions of frame ``i``, (n_atoms, 3) [Å]."""
        i = int(i)
        if not 0 <= i < self.n_frames:
            raise IndexError(f"frame {i} out of range (0..{self.n_frames - 1})")
        x = np.asarray(self.ds["positions"][i].values)
        return display_positions(x, self.cell(i), self.rotor_id)

    def cell(self, i: int = 0) -> np.ndarray:
        """Cell of frame ``i``, (3, 3) [Å]."""
        return np.asarray(self.ds["cell"][int(i)].values, dtype=float)

    def atoms(self, i: int = 0):
        """Frame ``i`` as :class:`ase.Atoms`."""
        import ase

        return ase.Atoms(self.symbols, positions=self.positions(i), cell=self.cell(i), pbc=True)

    def pdb(self, i: int = 0) -> str:
        return atoms_pdb(self.atoms(i))

    def styles(self) -> list:
        return styles_for(self.symbols, self.rotor_id, self.rotor_kind, self.mode, self.mobile)


def _mode_of(kind: str, mode) -> str:
    if isinstance(mode, str):
        try:
            import json

            m = json.loads(mode)
            if isinstance(m, dict):
                return str(m.get(kind, "UC"))
        except ValueError:
            return mode
        return mode
    if isinstance(mode, dict):
        return str(mode.get(kind, "UC"))
    return "UC"


def _sele(idx) -> str:
    return "@" + ",".join(str(int(i)) for i in idx) if len(idx) else "none"


def styles_for(symbols, rotor_id, rotor_kind, mode="UC", mobile=None) -> list:
    """NGL representations as ``[selection, colour, representation, radius_scale]`` rows:
    rotors coloured by the constraint mode of their kind, mobile cations highlighted,
    everything else by element.

    Parameters
    ----------
    symbols : sequence of str (n_atoms,)
    rotor_id : ndarray (n_atoms,)
        Rotor index, -1 outside rotors.
    rotor_kind : sequence of str (n_rotors,)
    mode : str or mapping
        Constraint mode, or per-kind modes.
    mobile : str, optional
        Mobile species.

    Returns
    -------
    list of list
    """
    symbols = np.asarray(symbols)
    rid = np.asarray(rotor_id)
    rows = []
    by_mode: dict[str, list] = {}
    for r, kind in enumerate(rotor_kind):
        by_mode.setdefault(_mode_of(kind, mode), []).extend(np.flatnonzero(rid == r).tolist())
    for m, idx in sorted(by_mode.items()):
        rows.append([_sele(sorted(idx)), MODE_COLOURS.get(m.upper(), "#7f7f7f"), "ball+stick",
                     1.0])
    if mobile:
        cat = np.flatnonzero((symbols == mobile) & (rid < 0))
        if cat.size:
            rows.append([_sele(cat), CATION_COLOUR, "spacefill", 0.45])
    rest = np.flatnonzero((rid < 0) & (symbols != (mobile or "")))
    if rest.size:
        rows.append([_sele(rest), "element", "ball+stick", 1.0])
    return rows


def cube_text(density, cell, symbols=(), positions=None, comment="rotorlab mobile-ion density") -> str:
    """A Gaussian cube file as text (what NGL reads for an isosurface).

    Parameters
    ----------
    density : ndarray or xarray.DataArray (na, nb, nc)
        Values on the voxel-centred fractional grid (e.g. ``MobileIonDensity.probability``).
    cell : ndarray (3, 3)
        [Å].
    symbols : sequence of str, optional
        Atoms written into the file.
    positions : ndarray (n, 3), optional
        [Å].
    """
    from ase.data import atomic_numbers

    from rotorlab.analysis.structure import write_cube

    data = np.asarray(getattr(density, "values", density), dtype=float)
    pos = np.zeros((0, 3)) if positions is None else np.asarray(positions, float)
    with tempfile.NamedTemporaryFile("w+", suffix=".cube", delete=False) as fh:
        name = fh.name
    try:
        write_cube(name, data, np.asarray(cell, float), pos,
                   [atomic_numbers[s] for s in symbols], comment=comment)
        return Path(name).read_text()
    finally:
        os.unlink(name)


def iso_level(density, fraction: float = 0.5) -> float:
    """Isosurface value enclosing the densest voxels that hold ``fraction`` of the total
    (so the surface shows where the ions spend that share of their time).

    Parameters
    ----------
    density : ndarray (na, nb, nc)
    fraction : float in (0, 1)

    Returns
    -------
    float
        In the units of ``density``.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    v = np.sort(np.asarray(getattr(density, "values", density), float).ravel())[::-1]
    total = v.sum()
    if not total > 0:
        raise ValueError("the density is zero everywhere")
    k = int(np.searchsorted(np.cumsum(v), fraction * total))
    return float(v[min(k, v.size - 1)])


# --------------------------------------------------------------------------------------
# the Panel component (created on first use: Panel is imported here only)
# --------------------------------------------------------------------------------------

_ESM = r"""
function loadNGL(src) {
  if (window.NGL) return Promise.resolve(window.NGL);
  if (!window.__rotorlabNGL) {
    window.__rotorlabNGL = new Promise((resolve, reject) => {
      const s = document.createElement("script");
      s.src = src;
      s.onload = () => window.NGL ? resolve(window.NGL) : reject(new Error("NGL did not load from " + src));
      s.onerror = () => reject(new Error("could not load NGL.js from " + src));
      document.head.appendChild(s);
    });
  }
  return window.__rotorlabNGL;
}

export async function render({ model, el }) {
  const div = document.createElement("div");
  div.className = "rotorlab-ngl";
  div.style.width = model.view_width + "px";
  div.style.height = model.view_height + "px";
  div.setAttribute("data-ngl-status", "loading");
  el.appendChild(div);
  let NGL;
  try {
    NGL = await loadNGL(model.ngl_src);
  } catch (e) {
    div.textContent = "3D view unavailable: " + e.message;
    div.setAttribute("data-ngl-status", "error");
    return;
  }
  const stage = new NGL.Stage(div, { backgroundColor: "white" });
  let comp = null;
  let surf = null;
  let gen = 0;

  async function loadCube() {
    if (surf) { stage.removeComponent(surf); surf = null; }
    if (!model.cube) return;
    const my = gen;
    const c = await stage.loadFile(new Blob([model.cube], { type: "text/plain" }), { ext: "cube" });
    if (my !== gen) { stage.removeComponent(c); return; }
    surf = c;
    surf.addRepresentation("surface", { isolevelType: "value", isolevel: model.iso_level,
                                        color: model.iso_colour, opacity: 0.55, side: "double" });
    div.setAttribute("data-ngl-surface", "yes");
  }

  function setCoords() {
    if (!comp || !model.coords || !model.coords.length) return;
    const xyz = new Float32Array(model.coords);
    if (xyz.length !== comp.structure.atomCount * 3) return;
    comp.structure.updatePosition(xyz);
    comp.updateRepresentations({ position: true });
    div.setAttribute("data-ngl-frame", String(model.frame));
  }

  async function loadStructure() {
    gen += 1;
    const my = gen;
    stage.removeAllComponents();
    comp = null; surf = null;
    div.removeAttribute("data-ngl-surface");
    if (!model.pdb) { div.setAttribute("data-ngl-status", "empty"); return; }
    const c = await stage.loadFile(new Blob([model.pdb], { type: "text/plain" }), { ext: "pdb" });
    if (my !== gen) return;
    comp = c;
    comp.addRepresentation("unitcell", { color: "#444444" });
    for (const row of model.reps) {
      const [sele, colour, kind, radius] = row;
      const p = { sele: sele, radiusScale: radius };
      if (colour === "element") p.colorScheme = "element"; else p.color = colour;
      comp.addRepresentation(kind, p);
    }
    setCoords();
    await loadCube();
    stage.autoView();
    // tilt away from the c axis so that atoms stacked along c do not hide each other
    stage.viewerControls.spin([1, 0, 0], -0.9);
    stage.viewerControls.spin([0, 1, 0], 0.35);
    div.setAttribute("data-ngl-status", "rendered");
  }

  model.on("pdb", loadStructure);
  model.on("reps", loadStructure);
  model.on(["coords", "frame"], setCoords);
  model.on(["cube", "iso_level"], loadCube);
  model.on("remove", () => stage.dispose());
  await loadStructure();
}
"""

_CLASS = None


def ngl_view_class():
    """The Panel component class ``NGLView`` (``panel.custom.JSComponent``).

    Parameters of an instance: ``pdb`` (str, the structure), ``reps`` (see
    :func:`styles_for`), ``coords`` (flat list, n_atoms*3, Å; updates positions without
    reloading), ``frame`` (int, shown frame), ``cube`` (cube-file text), ``iso_level``,
    ``iso_colour``, ``ngl_src`` (URL of ngl.js, default ``/ngl/ngl.js``), ``view_width``,
    ``view_height`` (px).
    """
    global _CLASS
    if _CLASS is not None:
        return _CLASS
    import param
    from panel.custom import JSComponent

    class NGLView(JSComponent):
        """NGL.js stage showing one structure, its frames and an optional isosurface."""

        pdb = param.String(default="")
        reps = param.List(default=[])
        coords = param.List(default=[])
        frame = param.Integer(default=0)
        cube = param.String(default="")
        iso_level = param.Number(default=0.0)
        iso_colour = param.String(default="#1f77b4")
        ngl_src = param.String(default="/ngl/ngl.js")
        view_width = param.Integer(default=640)
        view_height = param.Integer(default=420)

        _esm = _ESM

        def show_frames(self, frames: StoreFrames, i: int = 0):
            """Load the structure of ``frames`` (a :class:`StoreFrames`) at frame ``i``."""
            self.param.update(pdb=frames.pdb(i), reps=frames.styles(), coords=[], frame=int(i))

        def set_frame(self, frames: StoreFrames, i: int):
            """Move the atoms to frame ``i`` (reads that frame only)."""
            self.param.update(coords=frames.positions(i).ravel().round(4).tolist(),
                              frame=int(i))

    _CLASS = NGLView
    return NGLView


def _main(argv=None) -> int:
    """``python -m rotorlab.viz.ngl --install``: fetch NGL.js (what ``make``, ``.ci/run``
    and Binder's ``postBuild`` run); without ``--install``: print where it is."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m rotorlab.viz.ngl",
                                description=f"NGL.js {NGL_VERSION} for rotorlab's app")
    p.add_argument("--install", action="store_true", help="fetch it with npm when missing")
    p.add_argument("--force", action="store_true", help="fetch it again")
    args = p.parse_args(argv)
    try:
        if args.force:
            path = install_ngl()
        else:
            path = ngl_js_path(install=args.install)
    except NGLUnavailable as exc:
        print(f"NGL.js: {exc}")
        return 1
    print(f"NGL.js {NGL_VERSION}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
