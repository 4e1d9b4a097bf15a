"""Trajectory store (zarr v3 + xarray, DESIGN §3) and import/export of trajectories.

>>> from rotorlab.store import TrajectoryStore, open_store
"""

from rotorlab.store.io import export_extxyz, export_netcdf, import_trajectory
from rotorlab.store.trajectory import FRAME_VARS, REQUIRED_ATTRS, TrajectoryStore, open_store

__all__ = [
    "TrajectoryStore",
    "open_store",
    "export_netcdf",
    "export_extxyz",
    "import_trajectory",
    "FRAME_VARS",
    "REQUIRED_ATTRS",
]
