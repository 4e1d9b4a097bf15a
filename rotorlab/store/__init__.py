"""Trajectory store (zarr v3 + xarray, DESIGN §3) and import/export of trajectories.

>>> from rotorlab.store import TrajectoryStore, open_store

The store layer itself (``trajectory.py``, ``io.py``) never imports the materials catalog
or topology detection; :func:`import_trajectory` here is the thin convenience layer that
turns ``material="LiBH4"`` into a topology labeller for :func:`rotorlab.store.io.import_trajectory`.
"""

from __future__ import annotations

from rotorlab.store import io as _io
from rotorlab.store.io import export_extxyz, export_netcdf
from rotorlab.store.trajectory import (
    DAMAGED_GROUP,
    FRAME_VARS,
    LOCK_GROUP,
    REQUIRED_ATTRS,
    Damage,
    NotAStore,
    StoreDamaged,
    StoreExists,
    StoreLocked,
    TrajectoryStore,
    VerifyReport,
    frame_validity,
    open_store,
)

__all__ = [
    "TrajectoryStore",
    "open_store",
    "export_netcdf",
    "export_extxyz",
    "import_trajectory",
    "FRAME_VARS",
    "REQUIRED_ATTRS",
    "StoreExists",
    "NotAStore",
    "StoreLocked",
    "StoreDamaged",
    "Damage",
    "VerifyReport",
    "frame_validity",
    "LOCK_GROUP",
    "DAMAGED_GROUP",
]


def catalog_labeller(material: str, rotors=None):
    """Topology callable for a catalog material (rotors detected on the first frame).

    Returns ``None`` when ``material`` is not in the catalog (the trajectory is then
    imported without rotors; ``material`` stays a label).

    Parameters
    ----------
    material : str
        Catalog name (``rotorlab materials``).
    rotors : list of str, optional
        Unit names treated as rotors (default: the material's).

    Returns
    -------
    callable or None
        ``labeller(atoms) -> rotorlab.topology.Topology``.
    """
    from rotorlab import materials

    try:
        mat = materials.catalog(material)
    except KeyError:
        return None
    def label(atoms):
        return materials.detect(atoms, material=mat, rotors=rotors)

    return label


def import_trajectory(path, format: str | None = None, *, store_path,
                      material: str | None = None, topology=None, rotors=None, **kwargs):
    """Import a trajectory file into a new store (see :func:`rotorlab.store.io.import_trajectory`
    for every parameter).

    Convenience over the data-layer function: for a catalog ``material`` (and no
    ``topology``) the rotors are detected on the first frame through the materials
    package and the material's mobile species and charge are recorded.

    Parameters
    ----------
    path : str or path-like
        Trajectory file.
    format : str, optional
        ASE format name.
    store_path : str or path-like
        Directory of the new store.
    material : str, optional
        Material label; a catalog name also labels rotors and mobile ions.
    topology : callable, optional
        Labeller ``topology(atoms)`` (overrides the catalog lookup).
    rotors : list of str, optional
        Unit names treated as rotors for a catalog material.
    **kwargs
        Passed on unchanged.

    Returns
    -------
    TrajectoryStore
    """
    if topology is None and material is not None:
        topology = catalog_labeller(material, rotors)
    return _io.import_trajectory(path, format, store_path=store_path, material=material,
                                 topology=topology, **kwargs)
