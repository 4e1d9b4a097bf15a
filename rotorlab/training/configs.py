"""Initial configurations for training: strained, rattled, rotor-rotated, cation-displaced,
and short teacher MD.

Every generator takes an unperturbed periodic structure (``ase.Atoms``) and returns new
``Atoms`` objects (the input is never modified) with ``info["source"]`` naming the
perturbation and its parameters recorded in ``info`` (strain tensor, rotation angles,
displaced atoms). Rotors and mobile ions come from rotorlab's topology detection
(:func:`rotorlab.topology.detect`), so the same code serves every material of the catalog
and user structures with ``atoms.info["material"]`` or an explicit topology.

>>> frames = strained(atoms, 20, max_strain=0.03, rng=1) + rotor_rotated(atoms, 20, rng=2)
"""

from __future__ import annotations

import math

import numpy as np
from ase.geometry import get_distances

__all__ = ["strained", "rattled", "rotor_rotated", "cation_displaced", "teacher_md",
           "min_distance", "unit_groups", "random_rotation"]


def _rng(rng):
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def min_distance(atoms, rmax=3.0, groups=None) -> float:
    """Smallest interatomic distance [Å] over periodic images (capped at ``rmax``).

    Parameters
    ----------
    atoms : ase.Atoms
    rmax : float
        Search radius [Å]; ``rmax`` is returned when no pair is closer.
    groups : (n_atoms,) int array, optional
        Pairs inside one group (e.g. the atoms of one rotor anion, whose bonds are shorter
        than any contact between units) are ignored; default: every pair counts.
    """
    if groups is None:
        from rotorlab.md.simulation import min_pair_distance

        return float(min_pair_distance(np.ascontiguousarray(atoms.positions, dtype=float),
                                       np.ascontiguousarray(atoms.cell.array, dtype=float),
                                       float(rmax)))
    from ase.neighborlist import neighbor_list

    groups = np.asarray(groups)
    if groups.shape != (len(atoms),):
        raise ValueError(f"groups has shape {groups.shape}, expected ({len(atoms)},)")
    i, j, d = neighbor_list("ijd", atoms, float(rmax))
    d = d[groups[i] != groups[j]]
    return float(d.min()) if d.size else float(rmax)


def unit_groups(topology) -> np.ndarray:
    """Per-atom unit label: the rotor index for rotor atoms, a unique negative label otherwise.

    Used with :func:`min_distance` so that a rotor's own bonds (B–H 1.2 Å in BH4⁻) do not
    count as close contacts.
    """
    n = int(topology.n_atoms)
    groups = -1 - np.arange(n)
    for r in range(topology.n_rotors):
        groups[np.asarray(topology.rotor_members(r), dtype=int)] = r
    return groups


def _topology(atoms, topology):
    if topology is not None:
        return topology
    from rotorlab.materials import detect

    return detect(atoms)


def strained(atoms, n, max_strain=0.03, rng=None, rattle=0.0):
    """Homogeneously strained copies: random symmetric strain, every component ≤ max_strain.

    Parameters
    ----------
    atoms : ase.Atoms
    n : int
        Number of copies.
    max_strain : float, default 0.03
        Bound on every component of the symmetric strain tensor ε (dimensionless);
        components are uniform in [−max_strain, max_strain]. Cell ``h' = h (1 + ε)``, atoms
        move with the cell (fractional coordinates kept).
    rattle : float, default 0
        Extra Gaussian displacement [Å] per Cartesian component.

    Returns
    -------
    list of ase.Atoms
        ``info["source"] = "strain"``, ``info["strain"]`` the 3×3 ε (nested list).
    """
    rng = _rng(rng)
    out = []
    for _ in range(int(n)):
        e = rng.uniform(-max_strain, max_strain, size=(3, 3))
        e = np.triu(e) + np.triu(e, 1).T
        a = atoms.copy()
        a.set_cell(atoms.cell.array @ (np.eye(3) + e), scale_atoms=True)
        if rattle:
            a.positions = a.positions + rng.normal(0.0, rattle, size=a.positions.shape)
        a.info["source"] = "strain"
        a.info["strain"] = e.tolist()
        out.append(a)
    return out


def rattled(atoms, n, stdev=0.05, rng=None):
    """Copies with independent Gaussian displacements of every atom.

    Parameters
    ----------
    stdev : float
        Standard deviation [Å] per Cartesian component.

    Returns
    -------
    list of ase.Atoms
        ``info["source"] = "rattle"``.
    """
    rng = _rng(rng)
    out = []
    for _ in range(int(n)):
        a = atoms.copy()
        a.positions = a.positions + rng.normal(0.0, stdev, size=a.positions.shape)
        a.info["source"] = "rattle"
        a.info["rattle_stdev"] = float(stdev)
        out.append(a)
    return out


def random_rotation(rng, max_angle=None) -> np.ndarray:
    """A random rotation matrix: uniform on SO(3), or by an angle ≤ ``max_angle`` [rad]
    about a uniformly random axis."""
    rng = _rng(rng)
    if max_angle is None:
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        w, x, y, z = q
        return np.array([
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    ang = rng.uniform(0.0, max_angle)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(ang) * k + (1 - math.cos(ang)) * k @ k


def rotor_rotated(atoms, n, topology=None, rng=None, fraction=0.5, max_angle=None,
                  min_dist=1.8, max_tries=40):
    """Copies in which rotor anions are rigidly rotated about their centres of mass.

    Each chosen rotor (made whole across the boundary) gets an independent random
    orientation: uniform on SO(3) by default ("random anion orientations"), or a rotation
    by at most ``max_angle``. Bond lengths and angles inside every rotor are preserved
    exactly; the other atoms do not move. Rotors are placed one after the other; a draw
    that brings any two atoms closer than ``min_dist`` is redrawn, and after every
    ``max_tries // 4`` failed draws the largest allowed angle is halved (dense packings
    such as Li3PS4 leave no room for some orientations).

    Parameters
    ----------
    topology : rotorlab.topology.Topology, optional
        Default ``detect(atoms)`` (needs ``atoms.info["material"]``).
    fraction : float, default 0.5
        Fraction of rotors rotated (at least one).
    max_angle : float, optional
        [rad]; default: any orientation.
    min_dist : float
        Smallest allowed contact [Å] between different units (a rotor's own bonds do not count).

    Returns
    -------
    list of ase.Atoms
        ``info["source"] = "rotor"``, ``info["rotated_rotors"]`` the rotor indices and
        ``info["rotation_angles"]`` their rotation angles [rad].

    Raises
    ------
    ValueError
        No rotors.
    """
    rng = _rng(rng)
    topo = _topology(atoms, topology)
    if topo.n_rotors == 0:
        raise ValueError("structure has no rotors to rotate")
    cell = np.asarray(atoms.cell.array, dtype=float)
    whole = topo.whole_positions(np.asarray(atoms.positions, dtype=float), cell)
    per_halving = max(1, int(max_tries) // 4)
    groups = unit_groups(topo)
    out = []
    for _ in range(int(n)):
        k = max(1, int(round(fraction * topo.n_rotors)))
        chosen = np.sort(rng.choice(topo.n_rotors, size=k, replace=False))
        a = atoms.copy()
        done, angles = [], []
        for r in chosen:
            idx = topo.rotor_members(r)
            m = topo.masses[idx][:, None]
            xr = whole[idx]
            com = (m * xr).sum(0) / m.sum()
            bound = max_angle
            for t in range(int(max_tries)):
                if t and t % per_halving == 0:
                    bound = math.pi if bound is None else bound
                    bound = 0.5 * bound
                rot = random_rotation(rng, bound)
                x = np.array(a.positions)
                x[idx] = com + (xr - com) @ rot.T
                trial = a.copy()
                trial.positions = x
                if min_distance(trial, rmax=min_dist + 0.5, groups=groups) >= min_dist:
                    a = trial
                    done.append(int(r))
                    angles.append(float(np.arccos(np.clip((np.trace(rot) - 1) / 2, -1, 1))))
                    break
        if not done:
            continue
        a.info["source"] = "rotor"
        a.info["rotated_rotors"] = done
        a.info["rotation_angles"] = angles
        out.append(a)
    return out


def cation_displaced(atoms, n, topology=None, rng=None, fraction=0.25, displacement=(0.3, 1.0),
                     min_dist=1.6, max_tries=50):
    """Copies in which a random subset of the mobile cations is displaced.

    Parameters
    ----------
    fraction : float, default 0.25
        Fraction of mobile ions moved (at least one).
    displacement : (float, float)
        Range [Å] of the displacement length (uniform), direction uniform on the sphere.
    min_dist : float
        Redraw a copy whose closest contact between different units is below this [Å]
        (a rotor's own bonds do not count).

    Returns
    -------
    list of ase.Atoms
        ``info["source"] = "cation"``, ``info["displaced"]`` the atom indices and
        ``info["displacement"]`` their displacement vectors [Å].
    """
    rng = _rng(rng)
    topo = _topology(atoms, topology)
    mobile = np.asarray(topo.mobile, dtype=int)
    if mobile.size == 0:
        raise ValueError("structure has no mobile ions")
    lo, hi = float(displacement[0]), float(displacement[1])
    groups = unit_groups(topo)
    k = max(1, int(round(fraction * mobile.size)))
    cell = np.asarray(atoms.cell.array, dtype=float)
    pbc = atoms.pbc
    out = []
    for _ in range(int(n)):
        # ions are placed one after the other (each redrawn up to max_tries times, an ion
        # that finds no room is replaced by another), so dense frameworks such as LiBH4,
        # where most 1 Å moves bring a Li within 1.6 Å of an H, still yield copies
        pos = np.array(atoms.positions, dtype=float)
        moved = {}
        for ion in rng.permutation(mobile):
            if len(moved) == k:
                break
            others = np.flatnonzero(groups != groups[ion])
            for _try in range(int(max_tries)):
                v = rng.normal(size=3)
                v *= rng.uniform(lo, hi) / np.linalg.norm(v)
                _, dist = get_distances(pos[ion] + v, pos[others], cell=cell, pbc=pbc)
                if dist.min() >= min_dist:
                    pos[ion] += v
                    moved[int(ion)] = v
                    break
        if len(moved) < k:
            raise RuntimeError(f"only {len(moved)} of {k} cations could be displaced by "
                               f"{lo}-{hi} Å keeping every contact between units >= "
                               f"{min_dist} Å ({max_tries} tries each)")
        chosen = sorted(moved)
        a = atoms.copy()
        a.positions = pos
        a.info["source"] = "cation"
        a.info["displaced"] = chosen
        a.info["displacement"] = [moved[i].tolist() for i in chosen]
        out.append(a)
    return out


def teacher_md(atoms, teacher, temperature, steps, interval=2, start=20, timestep=2.0,
               friction=0.02, rng=None, progress=None):
    """Short Langevin MD with the teacher; the visited frames come out already labelled.

    Parameters
    ----------
    teacher : rotorlab.training.teachers.Teacher
    temperature : float
        [K].
    steps : int
        MD steps.
    interval, start : int
        Keep every ``interval``-th frame from step ``start`` on.
    timestep : float
        [fs].
    friction : float
        Langevin friction [1/fs].

    Returns
    -------
    list of ase.Atoms
        Labelled frames (``SinglePointCalculator``; ``info["source"] = "md"``,
        ``info["temperature"]``, ``info["step"]``, ``info["teacher"]``).

    Raises
    ------
    RuntimeError
        Two atoms closer than 0.6 Å (the teacher MD blew up).
    """
    from ase import units
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

    rng = _rng(rng)
    a = atoms.copy()
    a.calc = teacher.calculator(a)
    MaxwellBoltzmannDistribution(a, temperature_K=temperature, rng=rng)
    Stationary(a)
    dyn = Langevin(a, timestep * units.fs, temperature_K=temperature, friction=friction / units.fs,
                   rng=rng)
    frames = []
    for step in range(1, int(steps) + 1):
        dyn.run(1)
        if step >= start and (step - start) % interval == 0:
            e = float(a.get_potential_energy())
            f = np.array(a.get_forces())
            s = np.array(a.get_stress(voigt=True))
            fr = atoms.copy()
            fr.set_cell(a.cell)
            fr.positions = a.get_positions(wrap=True)
            fr.calc = SinglePointCalculator(fr, energy=e, forces=f, stress=s)
            fr.info.update(source="md", temperature=float(temperature), step=step,
                           teacher=teacher.id)
            if min_distance(fr, rmax=1.0) < 0.6:
                raise RuntimeError(f"teacher MD at {temperature} K: atoms closer than 0.6 Å at "
                                   f"step {step}")
            frames.append(fr)
            if progress is not None:
                progress(step, steps)
    return frames
