"""Measurements for the model card: inference cost, physical sanity under MD, cross-check
teachers.

* :func:`inference_ms` — milliseconds per energy+force call of a model on a cell;
* :func:`md_sanity` — rotorlab UC MD with the model: every anion stays bonded (maximum
  intra-rotor bond length against the detection cutoff), the mobile ions' MSD log-log
  slope (≈ 1 when diffusive), the MD cost per step;
* :func:`cross_check` — force/energy errors of the model against another teacher on the
  held-out frames, next to the disagreement of the two teachers themselves;
* :func:`student_vs_teacher` — student and teacher MD from the same state: cation–anion
  g(r) and cation VACF, against the noise floor of two student runs.

Every function returns plain JSON-able dicts with units in the key names.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

__all__ = ["inference_ms", "md_sanity", "cross_check", "msd_slope", "frames_from_set",
           "student_vs_teacher", "anion_centre_species", "gr_reach"]


def inference_ms(model, atoms, n_calls=10, warmup=2) -> float:
    """Median wall time [ms] of one energy+force(+virial) call of a DeePMD model on ``atoms``
    (rotorlab's default engine; see :func:`inference_timing`)."""
    return inference_timing(model, atoms, n_calls, warmup)[0]


def inference_timing(model, atoms, n_calls=10, warmup=2) -> tuple:
    """``(median ms per call, engine)`` of a DeePMD model on ``atoms`` through
    :class:`rotorlab.potentials.deepmd.DeePMD` (engine ``"c"``: DeePMD-kit's C API with a
    Verlet list, reused between these calls as between MD steps; ``"python"``: its Python
    ``DeepPot``)."""
    from rotorlab.potentials.deepmd import DeePMD

    ff = DeePMD(str(model), atoms.get_chemical_symbols())
    x = np.ascontiguousarray(atoms.positions, dtype=float)
    c = np.ascontiguousarray(atoms.cell.array, dtype=float)
    for _ in range(int(warmup)):
        ff.compute(x, c)
    ts = []
    for _ in range(int(n_calls)):
        t0 = time.perf_counter()
        ff.compute(x, c)
        ts.append(time.perf_counter() - t0)
    return float(1e3 * np.median(ts)), ff.engine


def msd_slope(positions, masses, mobile, time_ps, window=(0.1, 0.5)):
    """MSD of the mobile ions (system COM drift removed, all time origins) and its log-log
    slope over lags in ``window`` (fractions of the run).

    Parameters
    ----------
    positions : ndarray, shape (F, N, 3)
        Unwrapped [Å].
    masses : ndarray, shape (N,)
    mobile : ndarray of int
    time_ps : ndarray, shape (F,)

    Returns
    -------
    dict
        ``slope`` (1), ``msd_end_A2`` (MSD at the longest fitted lag, Å²), ``window_ps``.
    """
    x = np.asarray(positions, float)
    m = np.asarray(masses, float)
    com = (x * m[None, :, None]).sum(1) / m.sum()
    y = x[:, mobile] - com[:, None, :]
    nf = y.shape[0]
    lags = np.unique(np.clip(np.round(np.geomspace(max(1, window[0] * nf), window[1] * nf, 12)
                                      ).astype(int), 1, nf - 1))
    msd = np.array([np.mean(np.sum((y[k:] - y[:-k]) ** 2, axis=-1)) for k in lags])
    dt = float(time_ps[1] - time_ps[0]) if nf > 1 else 1.0
    slope = float(np.polyfit(np.log(lags * dt), np.log(msd), 1)[0]) if len(lags) > 1 else None
    return {"slope": slope, "msd_end_A2": float(msd[-1]),
            "window_ps": [float(lags[0] * dt), float(lags[-1] * dt)]}


def md_sanity(model, atoms, temperature, steps, workdir, *, timestep=2.0, frame_interval=20,
              seed=0, bond_scale=1.3) -> dict:
    """UC MD with the model: anions bonded, mobile ions diffusing, cost per step.

    Parameters
    ----------
    model : path
        Frozen (or compressed) DeePMD model.
    atoms : ase.Atoms
        Start structure (``info["material"]`` for the topology).
    temperature : float
        [K] (the material's highest study temperature).
    steps : int
        MD steps (20 ps at 2 fs = 10000).
    workdir : path
        Where the trajectory store goes (replaced if this function made it before).

    Returns
    -------
    dict
        ``temperature_K``, ``length_ps``, ``ms_per_step``, the keys of
        :func:`anion_bonds` (``anions_bonded`` here also false when the run exploded),
        ``msd`` (see :func:`msd_slope`), ``exploded`` (None, or where and why the run blew
        up, see :func:`explosion_text`), ``steps`` (asked) and ``steps_run`` (done).
    """
    from rotorlab.md.simulation import Simulation, SimulationExploded
    from rotorlab.store import open_store
    from rotorlab.materials import detect

    topo = detect(atoms)
    wd = Path(workdir)
    wd.mkdir(parents=True, exist_ok=True)
    store = wd / "sanity.zarr"
    t0 = time.perf_counter()
    exploded = None
    sim = Simulation(atoms, potential=str(model), mode="UC", temperature=float(temperature),
                     timestep=timestep, steps=int(steps), store=str(store),
                     frame_interval=int(frame_interval), seed=int(seed), progress=False,
                     overwrite=True)
    n_run = int(steps)
    try:
        sim.run()
    except SimulationExploded as exc:
        exploded = explosion_text(exc, timestep)
        n_run = int(exc.step) if exc.step is not None else n_run
    sec = time.perf_counter() - t0
    ds = open_store(store)
    x = np.asarray(ds["positions"].values, float)
    cells = np.asarray(ds["cell"].values, float)
    tps = np.asarray(ds["time"].values, float)
    bond = anion_bonds(x, cells, topo, bond_scale=bond_scale)
    ok = exploded is None and bond["anions_bonded"]
    res = {"temperature_K": float(temperature), "length_ps": float(tps[-1] - tps[0]),
           "steps": int(steps), "steps_run": n_run,
           "ms_per_step": round(1e3 * sec / max(n_run, 1), 3),
           "n_atoms": len(atoms), **bond, "anions_bonded": bool(ok), "exploded": exploded}
    if len(tps) > 10:
        res["msd"] = msd_slope(x, np.asarray(topo.masses), np.asarray(topo.mobile), tps)
    return res


def anion_bonds(x, cells, topo, *, bond_scale=1.3) -> dict:
    """Whether every anion stays in one piece along a trajectory.

    A bond of the topology counts as intact while it is shorter than ``bond_scale`` times
    the sum of its two elements' covalent radii. An anion is *bonded* in a frame when its
    intact bonds still connect all its atoms: an atom that leaves (H from BH4, S from PS4)
    disconnects it, while one long edge of a cage does not (closo-B10H10's B–B edges reach
    2.3 Å at 675 K in the teacher's own MD, past the 2.18 Å cutoff, with the cage whole).

    Parameters
    ----------
    x : ndarray, shape (n_frames, n_atoms, 3)
        Positions [Å].
    cells : ndarray, shape (n_frames, 3, 3)
        Cell rows [Å].
    topo : Topology
        ``bonds`` (pairs), ``rotor_id`` (per atom, -1 outside anions), ``rotor_kind``,
        ``symbols``.
    bond_scale : float

    Returns
    -------
    dict
        ``anions_bonded`` (bool: every anion connected in every frame), ``anion_criterion``
        (``"connected"``), ``broken_anions_max`` (most anions apart in one frame),
        ``broken_frames`` (frames with an anion apart) of ``n_frames``,
        ``max_bond_A`` / ``bond_cutoff_A`` (longest bond and its cutoff per anion kind, or
        per ``"KIND A-B"`` when a kind has several element pairs), ``bonds_stretched`` (any
        bond past its cutoff, connected or not).
    """
    from ase.data import atomic_numbers, covalent_radii

    from rotorlab.geometry import minimum_image

    x = np.asarray(x, float)
    sym = np.asarray(topo.symbols).astype(str)
    bonds = np.asarray(topo.bonds, dtype=int).reshape(-1, 2)
    rid = np.asarray(topo.rotor_id, dtype=int)
    out = {"anion_criterion": "connected", "max_bond_A": {}, "bond_cutoff_A": {},
           "bonds_stretched": False, "broken_anions_max": 0, "broken_frames": 0,
           "n_frames": int(len(x)), "anions_bonded": True}
    if not bonds.size:
        return out
    cells = np.asarray(cells, float)
    r = np.linalg.norm(minimum_image(x[:, bonds[:, 1]] - x[:, bonds[:, 0]], cells[:, None]),
                       axis=-1)
    z = np.array([atomic_numbers[e] for e in sym])
    cut = bond_scale * (covalent_radii[z[bonds[:, 0]]] + covalent_radii[z[bonds[:, 1]]])
    kinds = np.asarray(topo.rotor_kind).astype(str)[rid[bonds[:, 0]]]
    pairs = np.array(["-".join(sorted((sym[i], sym[j]))) for i, j in bonds])
    for k in sorted(set(kinds.tolist())):
        in_k = kinds == k
        several = len(set(pairs[in_k].tolist())) > 1
        for pr in sorted(set(pairs[in_k].tolist())):
            sel = in_k & (pairs == pr)
            key = f"{k} {pr}" if several else k
            out["max_bond_A"][key] = float(r[:, sel].max())
            out["bond_cutoff_A"][key] = float(cut[sel][0])
    intact = r < cut
    out["bonds_stretched"] = bool(not intact.all())
    conn = connected_anions(intact, bonds, rid)
    broken = (~conn).sum(axis=1)
    out["broken_anions_max"] = int(broken.max()) if broken.size else 0
    out["broken_frames"] = int((broken > 0).sum())
    out["anions_bonded"] = bool(conn.all())
    return out


def connected_anions(intact, bonds, rotor_id):
    """Per frame and anion: do the intact bonds connect all of the anion's atoms?

    Parameters
    ----------
    intact : ndarray of bool, shape (n_frames, n_bonds)
    bonds : ndarray of int, shape (n_bonds, 2)
        Atom pairs, each inside one anion.
    rotor_id : ndarray of int, shape (n_atoms,)
        Anion of each atom, -1 for atoms outside anions.

    Returns
    -------
    ndarray of bool, shape (n_frames, n_anions)
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    intact = np.asarray(intact, bool)
    bonds = np.asarray(bonds, dtype=int).reshape(-1, 2)
    rid = np.asarray(rotor_id, dtype=int)
    members = np.flatnonzero(rid >= 0)
    n, n_rot = len(rid), int(rid.max()) + 1 if members.size else 0
    out = np.ones((len(intact), n_rot), bool)
    for f in range(len(intact)):
        e = bonds[intact[f]]
        g = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
        lab = connected_components(g, directed=False)[1][members]
        lo = np.full(n_rot, n)
        hi = np.full(n_rot, -1)
        np.minimum.at(lo, rid[members], lab)
        np.maximum.at(hi, rid[members], lab)
        out[f] = lo == hi
    return out


def explosion_text(exc, timestep) -> str:
    """Where and why an MD run blew up, for a card: ``"at step 6180 (3.09 ps): ..."``.

    Only the step, the time and the reason are kept: the exception's advice and the
    location of its store belong to the machine that ran it, not to a shipped card.

    Parameters
    ----------
    exc : Exception
        Usually :class:`rotorlab.md.simulation.SimulationExploded` (``step``, ``reason``).
    timestep : float
        MD time step [fs].
    """
    step = getattr(exc, "step", None)
    reason = getattr(exc, "reason", None) or str(exc)
    if step is None:
        return str(reason)
    return f"at step {int(step)} ({int(step) * float(timestep) / 1000.0:.2f} ps): {reason}"


def frames_from_set(directory):
    """The frames of a data set as labelled ``ase.Atoms`` (energy, forces, stress)."""
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    from rotorlab.training.data import load_arrays

    out = []
    for arr in load_arrays(directory).values():
        syms = [arr["type_map"][t] for t in arr["type"]]
        for k in range(arr["energy"].shape[0]):
            a = Atoms(syms, positions=arr["coord"][k], cell=arr["box"][k], pbc=True)
            vol = abs(np.linalg.det(arr["box"][k]))
            s = -arr["virial"][k] / vol if "virial" in arr else None
            kw = {} if s is None else {"stress": np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2],
                                                           s[0, 2], s[0, 1]])}
            a.calc = SinglePointCalculator(a, energy=float(arr["energy"][k]),
                                           forces=arr["force"][k], **kw)
            out.append(a)
    return out


def cross_check(model, test_dir, teacher, material=None) -> dict:
    """Errors of the model against another teacher on the held-out frames.

    Returns
    -------
    dict
        ``teacher`` (id), ``n_frames``, ``model_vs_teacher`` and ``teacher_vs_main``
        (force RMSE meV/Å, energy RMSE meV/atom after removing the mean offset, since
        teachers have different energy references), ``seconds``.
    """
    from rotorlab.training.dp import _deeppot

    frames = frames_from_set(test_dir)
    t0 = time.perf_counter()
    other = []
    for a in frames:
        b = a.copy()
        if material:
            b.info["material"] = material
        teacher.prepare(b) if hasattr(teacher, "prepare") else None
        other.append(teacher.label(b))
    sec = time.perf_counter() - t0
    dp = _deeppot(model)
    tmap = list(dp.get_type_map())
    fm, fo, fmain, em, eo, emain = [], [], [], [], [], []
    for a, o in zip(frames, other):
        atype = np.array([tmap.index(s) for s in a.get_chemical_symbols()])
        e, f, _ = dp.eval(a.positions.reshape(1, -1), a.cell.array.reshape(1, 9), atype)[:3]
        n = len(a)
        fm.append(np.asarray(f).reshape(n, 3))
        fo.append(o.get_forces())
        fmain.append(a.get_forces())
        em.append(float(np.asarray(e).ravel()[0]) / n)
        eo.append(o.get_potential_energy() / n)
        emain.append(a.get_potential_energy() / n)
    fm, fo, fmain = (np.concatenate(v) for v in (fm, fo, fmain))
    em, eo, emain = (np.array(v) for v in (em, eo, emain))

    def rmse(a, b):
        return float(1e3 * np.sqrt(np.mean((a - b) ** 2)))

    def e_rmse(a, b):
        d = a - b
        return float(1e3 * np.std(d))

    return {"teacher": teacher.id, "n_frames": len(frames), "seconds": round(sec, 1),
            "model_vs_teacher": {"force_rmse_meV_A": rmse(fm, fo),
                                 "energy_rmse_offset_removed_meV_atom": e_rmse(em, eo)},
            "teacher_vs_main": {"force_rmse_meV_A": rmse(fmain, fo),
                                "energy_rmse_offset_removed_meV_atom": e_rmse(emain, eo)}}


def anion_centre_species(topology) -> str:
    """Element standing for the anion's position in a cation–anion g(r): per rotor kind the
    element with the fewest atoms in the unit (ties: the heavier), e.g. B in BH4⁻, P in PS4³⁻
    and P2S6⁴⁻, B in B10H10²⁻; the most common such element over the rotor kinds."""
    from ase.data import atomic_masses, atomic_numbers

    sym = np.asarray(topology.symbols).astype(str)
    votes = {}
    for r in range(topology.n_rotors):
        els, counts = np.unique(sym[np.asarray(topology.rotor_members(r), dtype=int)],
                                return_counts=True)
        order = sorted(zip(counts, [-atomic_masses[atomic_numbers[e]] for e in els], els))
        votes[order[0][2]] = votes.get(order[0][2], 0) + 1
    if not votes:
        raise ValueError("no rotor anions: a cation-anion g(r) needs them")
    return max(sorted(votes), key=votes.get)


def _curve_distance(a, b, x):
    """∫|a − b| dx / ∫|b| dx over the common grid (0 = identical)."""
    den = np.trapezoid(np.abs(b), x)
    return float(np.trapezoid(np.abs(a - b), x) / den) if den > 0 else float("nan")


def gr_reach(atoms) -> tuple:
    """How far a g(r) reaches in this cell and how far the nearest cation–anion pair is.

    Parameters
    ----------
    atoms : ase.Atoms
        Periodic cell (``info["material"]`` for the topology).

    Returns
    -------
    r_max : float
        Half the smallest perpendicular cell width [Å] (the minimum-image g(r) range).
    nearest : float
        Shortest minimum-image distance between a mobile cation and an anion centre [Å]
        (``inf`` when there is no such pair).
    """
    from ase.geometry import get_distances

    from rotorlab.materials import detect

    cell = atoms.cell
    r_max = 0.5 * float(np.min(atoms.cell.volume / np.linalg.norm(
        np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)))
    topo = detect(atoms)
    mobile = np.asarray(topo.mobile, dtype=int)
    centre = anion_centre_species(topo)
    syms = np.asarray(atoms.get_chemical_symbols())
    centres = np.flatnonzero(syms == centre)
    if mobile.size == 0 or centres.size == 0:
        return r_max, float("inf")
    _, d = get_distances(atoms.positions[mobile], atoms.positions[centres], cell=cell, pbc=True)
    return r_max, float(d.min())


def student_vs_teacher(model, atoms, teacher, temperature, steps, workdir, *, timestep=2.0,
                       equilibration_steps=1000, seed=0, r_max=None, nbins=120,
                       max_lag_ps=None) -> dict:
    """Student and teacher MD on the same short run: cation–anion g(r) and cation VACF.

    The student equilibrates UC MD at ``temperature`` from ``atoms``; from its last frame
    the teacher and the student each run ``steps`` UC steps with the same initial
    velocities (same seed, same Nosé–Hoover chain), and the student runs once more with
    other velocities. The teacher–student distance of each curve is reported next to the
    student–student distance of the two independent runs, which is what sampling noise
    alone gives on a run this short (a distance well above it is a real disagreement).

    Parameters
    ----------
    model : path
        DeePMD model (frozen or compressed).
    atoms : ase.Atoms
        Start structure (``info["material"]`` for the topology).
    teacher : rotorlab.training.teachers.Teacher
        Labeller whose ASE calculator drives the reference run.
    temperature : float
        [K].
    steps : int
        Production steps of each of the three runs (every step is stored).
    workdir : path
        Where the stores go (replaced when this function made them before).
    timestep : float
        [fs].
    r_max : float, optional
        g(r) range [Å]; default half the smallest perpendicular cell width.
    max_lag_ps : float, optional
        VACF range; default a third of the run.

    Returns
    -------
    dict
        ``cation``, ``anion_centre``, ``steps``, ``length_ps``, ``temperature_K``;
        ``exploded`` (None, or ``{run: message}`` when a run blew up; then ``rdf`` and
        ``vacf`` are None); ``rdf`` and ``vacf`` each with ``teacher_vs_student`` and ``student_vs_student``
        (relative L1 distance, dimensionless), first-peak position [Å] / first zero
        crossing [ps] of teacher and student; ``teacher_ms_per_step``,
        ``student_ms_per_step``; ``seconds``.
    """
    from rotorlab.analysis.structure import RDF
    from rotorlab.analysis.vibrations import vacf
    from rotorlab.materials import detect
    from rotorlab.md.simulation import Simulation, SimulationExploded
    from rotorlab.potentials.ase import ASECalculator
    from rotorlab.store import open_store

    t_start = time.perf_counter()
    topo = detect(atoms)
    mobile = np.asarray(topo.mobile, dtype=int)
    if mobile.size == 0:
        raise ValueError("no mobile ions: a cation VACF needs them")
    cation = str(np.asarray(topo.symbols).astype(str)[mobile[0]])
    centre = anion_centre_species(topo)
    reach, nearest = gr_reach(atoms)
    if (r_max if r_max is not None else reach) <= nearest:
        raise ValueError(
            f"the {cation}-{centre} g(r) of this {len(atoms)}-atom cell reaches "
            f"{r_max if r_max is not None else reach:.2f} Å, short of the nearest pair "
            f"({nearest:.2f} Å): compare in a wider cell")
    wd = Path(workdir)
    wd.mkdir(parents=True, exist_ok=True)
    common = dict(mode="UC", temperature=float(temperature), timestep=float(timestep),
                  progress=False, overwrite=True)
    head = {"cation": cation, "anion_centre": str(centre), "steps": int(steps),
            "length_ps": float(steps) * timestep / 1000.0, "temperature_K": float(temperature)}

    def exploded(where, exc):
        # an unstable student (or teacher) is a result of this check, not an error of it
        return {**head, "exploded": {where: explosion_text(exc, timestep)}, "rdf": None,
                "vacf": None,
                "seconds": round(time.perf_counter() - t_start, 1)}

    eq = wd / "equilibrated.zarr"
    try:
        Simulation(atoms, potential=str(model), steps=int(equilibration_steps), store=str(eq),
                   frame_interval=max(1, int(equilibration_steps)), seed=int(seed),
                   **common).run()
    except SimulationExploded as exc:
        return exploded("student equilibration", exc)
    start = atoms.copy()
    start.positions = np.asarray(open_store(eq)["positions"].values[-1], dtype=float)
    start.info = dict(atoms.info)
    if hasattr(teacher, "prepare"):
        teacher.prepare(atoms)  # the reference teacher registers the unperturbed cell
        teacher.prepare(start)
    runs = {"teacher": (ASECalculator(teacher.calculator(start), symbols=start), seed + 1),
            "student": (str(model), seed + 1), "student_other": (str(model), seed + 2)}
    curves, cost = {}, {}
    for name, (pot, sd) in runs.items():
        p = wd / f"{name}.zarr"
        t0 = time.perf_counter()
        try:
            Simulation(start, potential=pot, steps=int(steps), store=str(p), frame_interval=1,
                       seed=int(sd), chunk_frames=100, **common).run()
        except SimulationExploded as exc:
            return exploded(name, exc)
        cost[name] = 1e3 * (time.perf_counter() - t0) / max(int(steps), 1)
        ds = open_store(p)
        g = RDF(cation, centre, r_max=r_max, nbins=nbins).compute(ds).rdf
        lag = max_lag_ps if max_lag_ps is not None else float(steps) * timestep / 3000.0
        c = vacf(ds, cation, max_lag_ps=lag).sel(species=cation)
        curves[name] = (np.asarray(g["r"].values), np.asarray(g.values),
                        np.asarray(c["lag_time"].values), np.asarray(c.values))

    def first_zero(t, c):
        k = np.flatnonzero(c <= 0)
        return float(t[k[0]]) if k.size else None

    r, gt = curves["teacher"][:2]
    gs, go = curves["student"][1], curves["student_other"][1]
    t, ct = curves["teacher"][2:]
    cs, co = curves["student"][3], curves["student_other"][3]
    return {**head, "exploded": None,
            "rdf": {"pair": f"{cation}-{centre}",
                    "teacher_vs_student": _curve_distance(gs, gt, r),
                    "student_vs_student": _curve_distance(go, gs, r),
                    "first_peak_A": {"teacher": float(r[np.argmax(gt)]),
                                     "student": float(r[np.argmax(gs)])}},
            "vacf": {"species": cation, "max_lag_ps": float(t[-1]),
                     "teacher_vs_student": _curve_distance(cs, ct, t),
                     "student_vs_student": _curve_distance(co, cs, t),
                     "first_zero_ps": {"teacher": first_zero(t, ct),
                                       "student": first_zero(t, cs)}},
            "teacher_ms_per_step": round(cost["teacher"], 2),
            "student_ms_per_step": round(cost["student"], 2),
            "seconds": round(time.perf_counter() - t_start, 1)}
