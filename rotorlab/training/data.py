"""Labelled data in DeePMD-kit's own format, through dpdata, tagged with its teacher.

A *data set* is a directory written by :func:`write_set`:

* one DeePMD npy system per composition/size (``dpdata.MultiSystems.to_deepmd_npy``:
  ``type.raw``, ``type_map.raw``, ``set.000/{coord,box,energy,force,virial}.npy``), built
  with ``dpdata.LabeledSystem(atoms, fmt="ase/structure", type_map=...)`` so the virial is
  dpdata's ``−stress·V`` [eV];
* ``meta.json``: teacher id and versions, the fixed ``type_map``, frame counts per source.

Sets labelled by different teachers are never combined: :func:`check_teacher` raises
:class:`TeacherMismatch`. :func:`archive` / :func:`extract` pack a set into one
``.tar.xz`` for the repository.

>>> write_set(labelled_frames, "data/iter.000/init", type_map=["Li", "P", "S"],
...           teacher={"id": "sevenn:7net-0", "version": "0.13.0"})
"""

from __future__ import annotations

import json
import os
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np

__all__ = ["TeacherMismatch", "write_set", "read_meta", "systems", "check_teacher",
           "load_arrays", "archive", "extract", "frame_count", "META"]

META = "meta.json"


class TeacherMismatch(ValueError):
    """Data labelled by different teachers would be mixed."""


def _teacher_id(teacher) -> str:
    if isinstance(teacher, str):
        return teacher
    if isinstance(teacher, dict):
        return str(teacher["id"])
    return str(teacher.id)


def _teacher_dict(teacher) -> dict:
    if isinstance(teacher, str):
        return {"id": teacher}
    if isinstance(teacher, dict):
        return dict(teacher)
    return teacher.describe()


def write_set(frames, directory, type_map, teacher, extra=None) -> dict:
    """Write labelled frames as a DeePMD npy data set (one system per atom count/formula).

    Parameters
    ----------
    frames : sequence of ase.Atoms
        Labelled (a calculator with energy, forces and stress). ``info["teacher"]``, when
        present, must equal the teacher's id.
    directory : path
        New directory (must not exist or be empty).
    type_map : sequence of str
        Fixed element order of the models (every element of the frames must be in it).
    teacher : Teacher, dict or str
        The labeller (its ``id`` is stored).
    extra : dict, optional
        More metadata for ``meta.json``.

    Returns
    -------
    dict
        The metadata written.

    Raises
    ------
    TeacherMismatch
        A frame carries another teacher's id.
    ValueError
        No frames, elements outside ``type_map``, missing stress, non-empty directory.
    """
    import dpdata

    frames = list(frames)
    if not frames:
        raise ValueError("no frames to write")
    tid = _teacher_id(teacher)
    type_map = [str(t) for t in type_map]
    d = Path(directory)
    if d.exists() and any(d.iterdir()):
        raise ValueError(f"{d} exists and is not empty; refusing to overwrite")
    sources = Counter()
    ms = dpdata.MultiSystems(type_map=type_map)
    for a in frames:
        other = a.info.get("teacher")
        if other is not None and other != tid:
            raise TeacherMismatch(f"frame labelled by {other!r} given to a set of {tid!r}")
        extra_el = sorted(set(a.get_chemical_symbols()) - set(type_map))
        if extra_el:
            raise ValueError(f"elements {extra_el} are not in type_map {type_map}")
        if a.calc is None or "stress" not in a.calc.results:
            raise ValueError("every frame needs a calculator with energy, forces and stress")
        ms.append(dpdata.LabeledSystem(a, fmt="ase/structure", type_map=type_map))
        sources[str(a.info.get("source", "unknown"))] += 1
    d.mkdir(parents=True, exist_ok=True)
    ms.to_deepmd_npy(str(d), set_size=10 ** 9)
    meta = {"teacher": _teacher_dict(teacher), "type_map": type_map, "n_frames": len(frames),
            "sources": dict(sorted(sources.items())),
            "systems": {p.name: frame_count(p) for p in systems(d)},
            "n_atoms": sorted({len(a) for a in frames})}
    if extra:
        meta.update(extra)
    _write_json(d / META, meta)
    return meta


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def read_meta(directory) -> dict:
    """``meta.json`` of a data set.

    Raises
    ------
    FileNotFoundError
        Not a data set written by :func:`write_set`.
    """
    p = Path(directory) / META
    if not p.is_file():
        raise FileNotFoundError(f"{directory} is not a rotorlab data set (no {META})")
    return json.loads(p.read_text())


def systems(directory) -> list:
    """DeePMD system directories (those with ``type.raw``) under ``directory``, sorted."""
    d = Path(directory)
    return sorted(p.parent for p in d.rglob("type.raw"))


def max_neighbours(directories, rcut: float) -> list:
    """The largest number of neighbours of each type within ``rcut`` of any atom, over every
    frame of the data sets (periodic images included) — what DeePMD-kit's automatic ``sel``
    is computed from (``sel = ceil4(1.1 × max)``).

    Parameters
    ----------
    directories : sequence of path
        Data sets (:func:`write_set` output).
    rcut : float
        [Å].

    Returns
    -------
    list of int
        One count per type of the data sets' type map.
    """
    from ase import Atoms
    from ase.neighborlist import neighbor_list

    best, tmap = None, None
    for d in directories:
        for arr in load_arrays(d).values():
            if tmap is None:
                tmap = arr["type_map"]
                best = np.zeros(len(tmap), dtype=int)
            elif arr["type_map"] != tmap:
                raise ValueError(f"{d}: type map {arr['type_map']} differs from {tmap}")
            types = arr["type"]
            for pos, box in zip(arr["coord"], arr["box"]):
                a = Atoms(numbers=np.ones(len(types)), positions=pos, cell=box, pbc=True)
                i, j = neighbor_list("ij", a, float(rcut))
                counts = np.zeros((len(types), len(tmap)), dtype=int)
                np.add.at(counts, (i, types[j]), 1)
                best = np.maximum(best, counts.max(axis=0))
    return [] if best is None else [int(x) for x in best]


def frame_count(system) -> int:
    """Frames in one DeePMD npy system."""
    return int(sum(np.load(s / "energy.npy").shape[0] for s in sorted(Path(system).glob("set.*"))))


def check_teacher(directories, teacher=None) -> str:
    """Return the common teacher id of data sets, refusing a mix.

    Parameters
    ----------
    directories : sequence of path
        Data sets (with ``meta.json``).
    teacher : Teacher, dict or str, optional
        Required teacher id.

    Raises
    ------
    TeacherMismatch
        Two sets (or a set and ``teacher``) have different teachers, or different type maps.
    """
    ids = {}
    maps = {}
    for d in directories:
        m = read_meta(d)
        ids[str(d)] = m["teacher"]["id"]
        maps[str(d)] = tuple(m["type_map"])
    want = None if teacher is None else _teacher_id(teacher)
    found = set(ids.values()) | ({want} if want else set())
    if len(found) > 1:
        raise TeacherMismatch(
            "refusing to mix data of different teachers (their energy references differ): "
            + "; ".join(f"{k}: {v}" for k, v in ids.items())
            + (f"; required: {want}" if want else ""))
    if len(set(maps.values())) > 1:
        raise TeacherMismatch(f"data sets have different type maps: {maps}")
    return found.pop() if found else ""


def load_arrays(directory) -> dict:
    """All frames of a data set as arrays grouped by system.

    Returns
    -------
    dict
        system name → dict with ``coord`` (F, N, 3) Å, ``box`` (F, 3, 3) Å, ``energy`` (F,)
        eV, ``force`` (F, N, 3) eV/Å, ``virial`` (F, 3, 3) eV, ``type`` (N,) int,
        ``type_map`` list.
    """
    out = {}
    for s in systems(directory):
        parts = {k: [] for k in ("coord", "box", "energy", "force", "virial")}
        for st in sorted(s.glob("set.*")):
            for k in parts:
                f = st / f"{k}.npy"
                if f.is_file():
                    parts[k].append(np.load(f))
        types = np.loadtxt(s / "type.raw", dtype=int, ndmin=1)
        n = types.size
        arr = {k: np.concatenate(v) for k, v in parts.items() if v}
        arr["energy"] = arr["energy"].reshape(-1)
        arr["coord"] = arr["coord"].reshape(-1, n, 3)
        arr["force"] = arr["force"].reshape(-1, n, 3)
        arr["box"] = arr["box"].reshape(-1, 3, 3)
        if "virial" in arr:
            arr["virial"] = arr["virial"].reshape(-1, 3, 3)
        arr["type"] = types
        arr["type_map"] = (s / "type_map.raw").read_text().split()
        out[str(s.relative_to(directory))] = arr
    return out


def archive(directory, path) -> Path:
    """Pack a data set directory into one ``.tar.xz`` (members relative to the set).

    Raises
    ------
    FileExistsError
        ``path`` exists (archives are written once).
    """
    src = Path(directory)
    dst = Path(path)
    if dst.exists():
        raise FileExistsError(f"{dst} exists")
    read_meta(src)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    with tarfile.open(tmp, "w:xz", preset=9) as tar:
        for p in sorted(src.rglob("*")):
            if p.is_file():
                tar.add(p, arcname=str(p.relative_to(src)))
    os.replace(tmp, dst)
    return dst


def extract(path, directory) -> Path:
    """Unpack an :func:`archive` into ``directory`` (which must not exist or be empty).

    Only regular files with relative paths inside the archive are extracted.
    """
    d = Path(directory)
    if d.exists() and any(d.iterdir()):
        raise ValueError(f"{d} exists and is not empty; refusing to overwrite")
    d.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "r:xz") as tar:
        members = [m for m in tar.getmembers() if m.isfile()]
        for m in members:
            if m.name.startswith("/") or ".." in Path(m.name).parts:
                raise ValueError(f"unsafe path {m.name!r} in {path}")
        tar.extractall(d, members=members, filter="data")
    read_meta(d)
    return d
