"""rotorlab.training: configurations, teachers, dpdata sets, DeePMD training, the resumable
loop (state file), the stop rule and the refusal to mix teachers.

The labeller here is rotorlab's reference force field (no torch needed); SevenNet/CHGNet
tests skip cleanly without the ``train`` extra. The end-to-end test runs real ``dp train``
/ ``freeze`` / ``compress`` on a tiny network.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rotorlab.materials import get
from rotorlab.materials import detect
from rotorlab.training import configs as C


@pytest.fixture(scope="module")
def cell():
    """β-Li3PS4, 32 atoms (catalog variant: always available in CI). The tests' tiny students
    are trained on this cell's reference-force-field minimum; the study's α cell sits far from
    that minimum (it releases ~0.18 eV/atom under the reference force field)."""
    return get("Li3PS4", (1, 1, 1), variant="beta-Pnma")


@pytest.fixture(scope="module")
def topo(cell):
    return detect(cell)


@pytest.fixture(scope="module")
def ref_teacher(cell):
    from rotorlab.training.teachers import ReferenceTeacher

    t = ReferenceTeacher()
    t.prepare(cell)
    return t


def _frac(a):
    return np.linalg.solve(a.cell.array.T, a.positions.T).T


# ----------------------------------------------------------------------- configurations


def test_strained_copies_have_bounded_symmetric_strain(cell):
    frames = C.strained(cell, 12, max_strain=0.03, rng=3)
    eps_all = []
    for a in frames:
        eps = np.array(a.info["strain"])
        assert np.allclose(eps, eps.T)
        assert np.abs(eps).max() <= 0.03 + 1e-12
        assert np.allclose(a.cell.array, cell.cell.array @ (np.eye(3) + eps))
        # atoms move with the cell: fractional coordinates kept
        assert np.allclose(_frac(a), _frac(cell), atol=1e-10)
        eps_all.append(eps)
    eps_all = np.array(eps_all)
    # the bound is actually used (uniform on [-0.03, 0.03])
    assert np.abs(eps_all).max() > 0.02
    assert abs(eps_all.mean()) < 0.01
    assert cell.info["material"] == "Li3PS4"  # input untouched


def test_rattled_copies_have_requested_spread(cell):
    frames = C.rattled(cell, 20, stdev=0.05, rng=4)
    d = np.concatenate([(a.positions - cell.positions).ravel() for a in frames])
    assert d.std() == pytest.approx(0.05, rel=0.1)
    assert abs(d.mean()) < 0.01


def _rotor_internal_distances(positions, cell_array, topo, r):
    whole = topo.whole_positions(positions, cell_array)
    x = whole[topo.rotor_members(r)]
    return np.linalg.norm(x[:, None] - x[None], axis=-1)


def test_rotor_rotation_is_rigid_and_leaves_other_atoms(cell, topo):
    frames = C.rotor_rotated(cell, 6, topology=topo, rng=5, fraction=0.5, min_dist=1.8)
    assert len(frames) == 6
    cellm = cell.cell.array
    in_rotor = topo.rotor_id >= 0
    rotated_any = False
    for a in frames:
        chosen = a.info["rotated_rotors"]
        assert len(chosen) >= 1
        moved = np.zeros(len(a), bool)
        for r in range(topo.n_rotors):
            d0 = _rotor_internal_distances(cell.positions, cellm, topo, r)
            d1 = _rotor_internal_distances(a.positions, cellm, topo, r)
            np.testing.assert_allclose(d1, d0, atol=1e-9)  # bond lengths and angles kept
            m = topo.masses[topo.rotor_members(r)][:, None]
            w0 = topo.whole_positions(cell.positions, cellm)[topo.rotor_members(r)]
            w1 = topo.whole_positions(a.positions, cellm)[topo.rotor_members(r)]
            com0 = (m * w0).sum(0) / m.sum()
            com1 = (m * w1).sum(0) / m.sum()
            dcom = com1 - com0
            dcom -= cellm.T @ np.round(np.linalg.solve(cellm.T, dcom))
            assert np.linalg.norm(dcom) < 1e-9  # rotation about the centre of mass
            if np.abs(w1 - w0).max() > 1e-6:
                moved[topo.rotor_members(r)] = True
                assert r in chosen
        np.testing.assert_allclose(a.positions[~in_rotor], cell.positions[~in_rotor], atol=0)
        assert np.all(np.array(a.info["rotation_angles"]) > 0)
        rotated_any |= moved.any()
        assert C.min_distance(a) >= 1.8
    assert rotated_any


def test_random_rotation_is_proper_and_uniform():
    rng = np.random.default_rng(0)
    zs = []
    for _ in range(400):
        r = C.random_rotation(rng)
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(r) == pytest.approx(1.0)
        zs.append(r[2, 2])
    # uniform on SO(3): the rotated z axis is uniform on the sphere, <cos> = 0, <cos^2> = 1/3
    zs = np.array(zs)
    assert abs(zs.mean()) < 0.1
    assert np.mean(zs ** 2) == pytest.approx(1 / 3, abs=0.05)
    r = C.random_rotation(rng, max_angle=0.2)
    assert np.arccos((np.trace(r) - 1) / 2) <= 0.2 + 1e-12


def test_cation_displacements(cell, topo):
    frames = C.cation_displaced(cell, 8, topology=topo, rng=6, fraction=0.25,
                                displacement=(0.3, 0.9), min_dist=1.5)
    mobile = set(np.asarray(topo.mobile).tolist())
    for a in frames:
        idx = np.array(a.info["displaced"])
        d = np.array(a.info["displacement"])
        assert set(idx.tolist()) <= mobile
        assert len(idx) == round(0.25 * len(mobile))
        np.testing.assert_allclose(a.positions[idx] - cell.positions[idx], d, atol=1e-12)
        assert np.all((np.linalg.norm(d, axis=1) >= 0.3) & (np.linalg.norm(d, axis=1) <= 0.9))
        others = np.setdiff1d(np.arange(len(a)), idx)
        np.testing.assert_array_equal(a.positions[others], cell.positions[others])
        assert C.min_distance(a) >= 1.5


def test_contacts_ignore_a_rotors_own_bonds_libh4():
    """BH4- has B-H 1.21 A, shorter than any contact the generators allow: rotor rotations
    and cation displacements of LiBH4 must judge contacts between units only (they used to
    find no LiBH4 copy at all), and still reject a real overlap between units."""
    a = get("LiBH4", (1, 1, 1))
    t = detect(a)
    g = C.unit_groups(t)
    assert C.min_distance(a) < 1.3                      # the B-H bond
    contact = C.min_distance(a, groups=g)
    assert contact > 1.5
    # brute force over 27 images, pairs between different units only
    best = np.inf
    frac = np.array([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)])
    shifts = frac @ a.cell.array
    for p in range(len(a)):
        for q in range(len(a)):
            if g[p] == g[q]:
                continue
            d = np.linalg.norm(a.positions[q] + shifts - a.positions[p], axis=1).min()
            best = min(best, d)
    assert contact == pytest.approx(best, abs=1e-9)
    for x in C.cation_displaced(a, 4, topology=t, rng=2, min_dist=1.5):
        assert C.min_distance(x, groups=g) >= 1.5
    rot = C.rotor_rotated(a, 4, topology=t, rng=2, min_dist=1.5)
    assert len(rot) == 4 and all(x.info["rotated_rotors"] for x in rot)
    for x in rot:
        assert C.min_distance(x, groups=g) >= 1.5
    # an overlap between units is still seen: put a Li on top of an H of another unit
    h = int(np.flatnonzero(a.get_chemical_symbols() == np.array("H"))[0])
    li = int(np.asarray(t.mobile)[0])
    b = a.copy()
    pos = b.positions
    pos[li] = pos[h] + [0.5, 0, 0]
    b.positions = pos
    assert C.min_distance(b, groups=g) == pytest.approx(0.5, abs=1e-9)
    with pytest.raises(ValueError, match="groups has shape"):
        C.min_distance(a, groups=g[:-1])


# ----------------------------------------------------------------------------- teachers


def test_reference_teacher_stress_is_energy_strain_derivative(cell, ref_teacher):
    a = C.rattled(cell, 1, 0.03, rng=7)[0]
    lab = ref_teacher.label(a)
    e0 = lab.get_potential_energy()
    s = lab.get_stress(voigt=False)
    vol = a.get_volume()
    h = 1e-5
    for i, j in ((0, 0), (1, 1), (0, 1), (1, 2)):
        es = []
        for sign in (+1, -1):
            eps = np.zeros((3, 3))
            eps[i, j] = eps[j, i] = sign * h / (2 if i != j else 1)
            b = a.copy()
            b.set_cell(a.cell.array @ (np.eye(3) + eps), scale_atoms=True)
            es.append(ref_teacher.label(b).get_potential_energy())
        deriv = (es[0] - es[1]) / (2 * h)  # dE/dε_ij (ε_ij = ε_ji: both components)
        assert s[i, j] == pytest.approx(deriv / vol, rel=2e-4, abs=1e-7)
    # forces are −∇E
    k = 5
    b1, b2 = a.copy(), a.copy()
    b1.positions[k, 0] += 1e-5
    b2.positions[k, 0] -= 1e-5
    fd = -(ref_teacher.label(b1).get_potential_energy()
           - ref_teacher.label(b2).get_potential_energy()) / 2e-5
    assert lab.get_forces()[k, 0] == pytest.approx(fd, rel=1e-4, abs=1e-6)
    assert lab.info["teacher"] == "rotorlab:reference"
    assert np.isfinite(e0)


def test_reference_teacher_needs_a_registered_structure(cell):
    from rotorlab.training.teachers import ReferenceTeacher

    t = ReferenceTeacher()
    with pytest.raises(ValueError, match="prepare"):
        t.label(cell)


def test_make_teacher_specs(cell):
    from rotorlab.training.teachers import ASETeacher, make_teacher

    with pytest.raises(ValueError, match="unknown teacher"):
        make_teacher("dft-please")
    with pytest.raises(ValueError, match="ase:module:factory"):
        make_teacher("ase:only-module")
    t = make_teacher("ase:ase.calculators.lj:LennardJones")
    assert isinstance(t, ASETeacher) and t.id == "ase:ase.calculators.lj:LennardJones"
    lab = t.label(cell)
    assert lab.get_forces().shape == (len(cell), 3)
    assert lab.get_stress().shape == (6,)
    assert lab.info["teacher"] == t.id


def test_sevenn_teacher_labels_offline(cell):
    pytest.importorskip("sevenn")
    from rotorlab.training.teachers import make_teacher

    t = make_teacher("7net-0", threads=1)
    lab = t.label(cell)
    assert t.id == "sevenn:7net-0" and t.describe()["version"]
    f = lab.get_forces()
    assert np.isfinite(f).all() and lab.get_stress().shape == (6,)
    # no net force on a periodic cell
    np.testing.assert_allclose(f.sum(0), 0.0, atol=1e-3)


def test_chgnet_teacher_resets_between_cell_sizes(cell):
    pytest.importorskip("chgnet")
    from rotorlab.training.teachers import make_teacher

    t = make_teacher("chgnet", threads=1)
    e1 = t.label(cell).get_potential_energy()
    e2 = t.label(cell.repeat((2, 1, 1))).get_potential_energy()
    assert e2 == pytest.approx(2 * e1, rel=1e-4)


# --------------------------------------------------------------------------------- data


def _labelled(cell, teacher, n=6, seed=8):
    return [teacher.label(a) for a in C.rattled(cell, n, 0.04, rng=seed)]


def test_dpdata_set_round_trips_labels(tmp_path, cell, ref_teacher):
    pytest.importorskip("dpdata", reason="dpdata is needed to write DeePMD data sets")
    from rotorlab.training import data as D

    frames = _labelled(cell, ref_teacher) + _labelled(cell.repeat((1, 1, 2)), _prep(
        ref_teacher, cell.repeat((1, 1, 2))), n=2)
    meta = D.write_set(frames, tmp_path / "set", ["Li", "P", "S"], ref_teacher.describe())
    assert meta["n_frames"] == 8 and meta["teacher"]["id"] == "rotorlab:reference"
    arrs = D.load_arrays(tmp_path / "set")
    for v in arrs.values():
        nf = v["energy"].shape
        assert len(nf) == 1 and v["force"].shape == (nf[0], len(v["type"]), 3)
        assert v["virial"].shape == (nf[0], 3, 3) and v["box"].shape == (nf[0], 3, 3)
    assert sorted(len(v["type"]) for v in arrs.values()) == [32, 64]
    tmap = ["Li", "P", "S"]
    by_n = {}
    for a in frames:
        by_n.setdefault(len(a), []).append(a)
    for arr in arrs.values():
        fr = by_n[len(arr["type"])]
        assert arr["type_map"] == tmap
        syms = [tmap[t] for t in arr["type"]]
        for k, a in enumerate(fr):
            # dpdata's ase/structure reader keeps the atom order
            order = np.arange(len(a))
            assert syms == a.get_chemical_symbols()
            assert arr["energy"][k] == pytest.approx(a.get_potential_energy(), abs=1e-9)
            np.testing.assert_allclose(arr["force"][k], a.get_forces()[order], atol=1e-9)
            np.testing.assert_allclose(arr["coord"][k], a.positions[order], atol=1e-9)
            # virial = −stress·V (eV)
            np.testing.assert_allclose(arr["virial"][k],
                                       -a.get_stress(voigt=False) * a.get_volume(), atol=1e-8)
    # archive round trip
    arc = D.archive(tmp_path / "set", tmp_path / "set.tar.xz")
    D.extract(arc, tmp_path / "copy")
    back = D.load_arrays(tmp_path / "copy")
    for k in arrs:
        np.testing.assert_array_equal(back[k]["force"], arrs[k]["force"])
    with pytest.raises(ValueError, match="not empty"):
        D.write_set(frames, tmp_path / "set", tmap, ref_teacher.describe())


def _prep(teacher, atoms):
    teacher.prepare(atoms)
    return teacher


def test_teacher_mixing_is_refused(tmp_path, cell, ref_teacher):
    pytest.importorskip("dpdata", reason="dpdata is needed to write DeePMD data sets")
    from rotorlab.training import data as D

    frames = _labelled(cell, ref_teacher, n=2)
    D.write_set(frames, tmp_path / "a", ["Li", "P", "S"], ref_teacher.describe())
    other = [f.copy() for f in frames]
    for o, f in zip(other, frames):
        o.calc = f.calc
        o.info["teacher"] = "sevenn:7net-0"
    D.write_set(other, tmp_path / "b", ["Li", "P", "S"], {"id": "sevenn:7net-0"})
    assert D.check_teacher([tmp_path / "a"]) == "rotorlab:reference"
    with pytest.raises(D.TeacherMismatch, match="different teachers"):
        D.check_teacher([tmp_path / "a", tmp_path / "b"])
    with pytest.raises(D.TeacherMismatch):
        D.check_teacher([tmp_path / "a"], "sevenn:7net-0")
    # a frame of another teacher cannot enter a set
    with pytest.raises(D.TeacherMismatch):
        D.write_set(other, tmp_path / "c", ["Li", "P", "S"], ref_teacher.describe())
    assert not (tmp_path / "c").exists()


# ------------------------------------------------------------------- loop: state machine


class _FakeLoop:
    """Replaces the expensive steps by cheap ones that record each execution."""

    calls: list = []
    fraction = [0.5, 0.9, 0.999]

    @staticmethod
    def install(loop, fraction=None, crash_in=None):
        log = _FakeLoop.calls
        fr = fraction or _FakeLoop.fraction

        def mk(step, final=False):
            def f(*args):
                key = step if final else (args[0], step)
                if crash_in == key and not getattr(loop, "_crashed", False):
                    loop._crashed = True
                    raise RuntimeError(f"crash inside {key}")
                log.append(key)
                if step == "explore":
                    it = args[0]
                    frac = fr[min(it, len(fr) - 1)]
                    return {"frames": 100, "fraction_accurate": frac, "n_candidates": 10}
                if step == "configs":
                    return {"n_configs": 10}
                return {}
            return f

        for s in ("configs", "label", "train", "test", "explore"):
            setattr(loop, f"step_{s}", mk(s))
        for s in ("production", "card"):
            setattr(loop, f"step_{s}", mk(s, final=True))
        return loop


def _settings(**kw):
    from rotorlab.training.loop import Settings

    base = dict(material="Li3PS4", type_map=["Li", "P", "S"], temperatures=[600, 900],
                auto_snapshot=False, max_iterations=5, budget_hours=10.0)
    base.update(kw)
    return Settings(**base)


def _new_loop(path, cell, ref_teacher, **kw):
    from rotorlab.training.loop import TrainingLoop

    return TrainingLoop.create(path, cell, teacher="reference", settings=_settings(**kw),
                               teacher_obj=ref_teacher)


def _open(path, ref_teacher):
    from rotorlab.training.loop import TrainingLoop

    return TrainingLoop.open(path, teacher_obj=ref_teacher)


def test_loop_stops_when_converged_and_runs_final_steps(tmp_path, cell, ref_teacher,
                                                        monkeypatch):
    monkeypatch.setenv("ROTORLAB_TRAIN_QUIET", "1")
    _FakeLoop.calls = []
    loop = _FakeLoop.install(_new_loop(tmp_path / "w", cell, ref_teacher))
    state = loop.run()
    # 0.5, 0.9 < 0.995 <= 0.999: three iterations, then production and card
    assert state["stop_reason"] == "converged" and state["stopped_at_iteration"] == 2
    assert len(state["iterations"]) == 3
    assert _FakeLoop.calls[-2:] == ["production", "card"]
    assert state["status"] == "finished"


def test_loop_stops_at_max_iterations_and_on_budget(tmp_path, cell, ref_teacher, monkeypatch):
    monkeypatch.setenv("ROTORLAB_TRAIN_QUIET", "1")
    _FakeLoop.calls = []
    loop = _FakeLoop.install(_new_loop(tmp_path / "m", cell, ref_teacher, max_iterations=2),
                             fraction=[0.1])
    assert loop.run()["stop_reason"] == "max_iterations"
    assert len(loop.state["iterations"]) == 2
    # budget: an iteration that took 2 h with a 1 h budget stops before the next one
    loop = _FakeLoop.install(_new_loop(tmp_path / "b", cell, ref_teacher, budget_hours=1.0),
                             fraction=[0.1])
    orig = loop._mark

    def slow_mark(it, step, seconds, info=None):
        return orig(it, step, 1440.0 if it is not None else seconds, info)

    loop._mark = slow_mark
    state = loop.run()
    assert state["stop_reason"] == "budget" and state["stopped_at_iteration"] == 1
    assert "production" in state["completed"]


def test_a_member_finished_on_a_shorter_schedule_is_extended_not_reused(tmp_path,
                                                                          monkeypatch):
    """Resuming with a larger --next-steps inside an interrupted train step once kept the
    members that had finished on the old schedule (Na2B10H10: two members at 1500 steps,
    two at 4000, one record saying 4000). A shorter finished model now continues from its
    checkpoint; the shorter one is kept aside, never overwritten."""
    from rotorlab.training import dp

    runs = []
    monkeypatch.setattr(dp, "_run", lambda args, d, threads, log: runs.append(list(args)))
    monkeypatch.setattr(dp, "freeze", lambda d, name, threads=1: (Path(d) / name).write_text(
        f"model after run {len(runs)}"))
    d = tmp_path / "member.0"

    def cfg(n):
        return {"training": {"numb_steps": n}}

    first = dp.train(cfg(1500), d)
    assert first["reused"] is False and first["steps"] == 1500 and len(runs) == 1
    assert "--restart" not in runs[0]
    (d / "checkpoint").write_text("model_checkpoint_path: model.ckpt")  # what dp train leaves
    (d / "model.ckpt.index").write_text("")
    again = dp.train(cfg(1500), d)  # the same schedule: reused, nothing run
    assert again["reused"] is True and len(runs) == 1
    more = dp.train(cfg(4000), d)
    assert more["reused"] is False and more["steps"] == 4000 and len(runs) == 2
    assert "--restart" in runs[1] and more["extended"] == {"from_steps": 1500,
                                                           "kept": "model.1500-steps.pb"}
    assert (d / "model.1500-steps.pb").read_text() == "model after run 1"
    assert (d / "model.pb").read_text() == "model after run 2"
    assert json.loads((d / "train_info.1500-steps.json").read_text())["steps"] == 1500
    assert dp.train(cfg(4000), d)["reused"] is True and len(runs) == 2
    # fewer steps than done: the longer model is reused
    assert dp.train(cfg(2000), d)["reused"] is True and len(runs) == 2
    # no checkpoint to continue from: reused, and the record says it is shorter than asked
    for f in ("checkpoint", "model.ckpt.index"):
        (d / f).unlink()
    short = dp.train(cfg(8000), d)
    assert short["reused"] is True and short["steps"] == 4000 and len(runs) == 2
    assert short["shorter_than_asked"] == {"asked": 8000, "checkpoint": False}


def test_reopened_loop_trains_a_new_production_model(tmp_path, cell, ref_teacher, monkeypatch):
    """Reopening a finished loop (more iterations or budget) must not reuse the old
    production model: the old one is moved aside, kept, and a new one trained."""
    monkeypatch.setenv("ROTORLAB_TRAIN_QUIET", "1")
    from rotorlab.training import dp

    runs = []
    monkeypatch.setattr(dp, "_run", lambda args, d, threads, log: runs.append(Path(d)))
    monkeypatch.setattr(dp, "freeze", lambda d, name, threads=1: (Path(d) / name).write_text(
        f"model {len(runs)}"))
    monkeypatch.setattr(dp, "compress", lambda m, c, **k: Path(c).write_text(Path(m).read_text()))
    monkeypatch.setattr(dp, "test", lambda m, d: {"force_rmse_meV_A": 1.0})
    monkeypatch.setattr(dp, "pin_energy_bias", lambda m, d, o: (
        Path(o).write_text(Path(m).read_text()), {"delta_eV": {}})[1])
    _FakeLoop.calls = []
    path = tmp_path / "w"
    loop = _FakeLoop.install(_new_loop(path, cell, ref_teacher, max_iterations=2), fraction=[0.1])
    del loop.step_production  # the real production step, on the patched dp calls
    state = loop.run()
    assert state["stop_reason"] == "max_iterations"
    assert state["production"]["train"]["reused"] is False
    assert state["production"]["last_iteration"] == 1
    assert (path / "production" / "train" / "model.pb").read_text() == "model 1"
    for grow, last, kept in ((3, 2, "production.iter.001"), (4, 3, "production.iter.002")):
        loop = _FakeLoop.install(_open(path, ref_teacher), fraction=[0.1])
        del loop.step_production
        loop.settings.max_iterations = grow
        loop.state["settings"]["max_iterations"] = grow
        loop.reopen_iterations()
        assert "production" not in loop.state and not (path / "production").exists()
        state = loop.run()
        assert state["production"]["train"]["reused"] is False, state["production"]
        assert state["production"]["last_iteration"] == last
        assert (path / "production" / "train" / "model.pb").read_text() == f"model {last}"
        prev = state["previous_productions"][-1]
        assert prev["moved_to"] == kept and prev["last_iteration"] == last - 1
        assert (path / prev["model"]).read_text() == f"model {last - 1}"  # kept, not deleted
        assert (path / prev["compressed"]).is_file()
    assert len(runs) == 3 and len(state["previous_productions"]) == 2
    # a name already taken is never overwritten
    (path / "production.iter.003").mkdir()
    (path / "production.iter.003" / "mine.txt").write_text("user file")
    loop = _open(path, ref_teacher)
    loop.reopen_iterations()
    assert (path / "production.iter.003" / "mine.txt").read_text() == "user file"
    assert (path / "production.iter.003-2" / "train" / "model.pb").read_text() == "model 3"


def _patch_dp_calls(monkeypatch):
    """dp train/freeze/compress/test/pin replaced by cheap fakes; returns the run dirs."""
    from rotorlab.training import dp

    runs = []
    monkeypatch.setattr(dp, "_run", lambda args, d, threads, log: runs.append(
        (Path(d), list(args))))
    monkeypatch.setattr(dp, "freeze", lambda d, name, threads=1: (Path(d) / name).write_text(
        f"model {len(runs)}"))
    monkeypatch.setattr(dp, "compress", lambda m, c, **k: Path(c).write_text(Path(m).read_text()))
    monkeypatch.setattr(dp, "test", lambda m, d: {"force_rmse_meV_A": 1.0})
    monkeypatch.setattr(dp, "pin_energy_bias", lambda m, d, o: (
        Path(o).write_text(Path(m).read_text()), {"delta_eV": {}})[1])
    return runs


def test_more_iterations_end_in_a_prepared_refit_and_a_retrain_gets_its_network(
        tmp_path, cell, ref_teacher, monkeypatch):
    """refit_production + reopen_iterations(keep_refit=True): the new iterations run, then
    the production step continues the kept model on all data (not a model from scratch);
    a retrain from scratch trains the production model with its own network and keeps the
    old one."""
    monkeypatch.setenv("ROTORLAB_TRAIN_QUIET", "1")
    from rotorlab.training.card import _production_network, _refit_record
    from rotorlab.training.loop import StateError

    runs = _patch_dp_calls(monkeypatch)
    _FakeLoop.calls = []
    path = tmp_path / "w"
    loop = _FakeLoop.install(_new_loop(path, cell, ref_teacher, max_iterations=2), fraction=[0.1])
    del loop.step_production
    loop.run()
    first = (path / "production" / "model.pb").read_text()
    # refit prepared on the finished loop, then two more iterations that keep it
    loop = _FakeLoop.install(_open(path, ref_teacher), fraction=[0.1])
    del loop.step_production
    rec = loop.refit_production(steps=120, limit_pref_e=7.0)
    loop.settings.max_iterations = 4
    loop.state["settings"]["max_iterations"] = 4
    loop.reopen_iterations(keep_refit=True)
    assert loop.state["refit"]["after_reopen"] is True and loop.state["stop_reason"] is None
    _FakeLoop.calls.clear()
    state = loop.run()
    assert (2, "explore") in _FakeLoop.calls and (3, "train") in _FakeLoop.calls
    prod = state["production"]
    assert prod["last_iteration"] == 3 and prod["steps"] == 120
    assert prod["train"]["init_frz_model"].endswith(rec["init_model"])
    assert (path / rec["init_model"]).read_text() == first  # continued from the kept model
    cfg = json.loads((path / "production" / "train" / "input.json").read_text())
    assert cfg["loss"]["limit_pref_e"] == 7.0 and cfg["training"]["numb_steps"] == 120
    assert _refit_record(prod["refit"])["after_reopen"] is True
    # without keep_refit a reopen drops the refit (a production model from scratch)
    loop = _open(path, ref_teacher)
    loop.refit_production(steps=50)
    loop.reopen_iterations()
    assert "refit" not in loop.state
    # a retrain from scratch with a wider fitting net; the ensemble keeps its network
    loop = _FakeLoop.install(_open(path, ref_teacher), fraction=[0.1])
    del loop.step_production
    loop.run()   # no new iteration (max_iterations reached): a production model from scratch
    assert loop.state["production"]["train"].get("init_frz_model") is None
    before = (path / "production" / "model.pb").read_text()
    loop = _FakeLoop.install(_open(path, ref_teacher), fraction=[0.1])
    del loop.step_production
    with pytest.raises(StateError, match="fitting must be a list of positive"):
        loop.refit_production(scratch=True, network={"fitting": [0, 8]})
    with pytest.raises(StateError, match="unknown network keys"):
        loop.refit_production(network={"rcut": 6.0})
    with pytest.raises(StateError, match="axis_neuron 99 exceeds"):
        loop.refit_production(network={"neuron": [4, 8], "axis_neuron": 99})
    n_runs = len(runs)
    rec = loop.refit_production(network={"fitting": [48, 48]}, start_pref_v=0.5)
    assert rec["scratch"] and rec["init_model"] is None and rec["kept_model"]
    assert rec["steps"] == loop.settings.production_steps
    assert rec["start_lr"] == loop.settings.start_lr
    state = loop.run()
    prod = state["production"]
    assert len(runs) == n_runs + 1 and "init_frz_model" not in " ".join(runs[-1][1])
    assert prod["train"].get("init_frz_model") is None
    cfg = json.loads((path / "production" / "train" / "input.json").read_text())
    assert cfg["model"]["fitting_net"]["neuron"] == [48, 48]
    assert cfg["model"]["descriptor"]["neuron"] == list(loop.settings.neuron)
    assert cfg["loss"]["start_pref_v"] == 0.5
    net = _production_network(state["settings"], prod["refit"])
    assert net["fitting"] == [48, 48] and net["neuron"] == list(loop.settings.neuron)
    assert state["settings"]["fitting"] == [120, 120, 120]  # the ensemble's is unchanged
    assert (path / rec["kept_model"]).read_text() == before  # the old model is kept


def test_added_frames_are_labelled_next_iteration_keep_own_labels_and_survive_a_clone(
        tmp_path, cell, ref_teacher, monkeypatch):
    """add_frames: a finished loop gets one more iteration whose configurations include the
    frames; frames labelled by the loop's own teacher keep their labels, others (another
    teacher, none) are labelled; none becomes held-out data; a clone restores them."""
    pytest.importorskip("dpdata", reason="dpdata is needed to write DeePMD data sets")
    monkeypatch.setenv("ROTORLAB_TRAIN_QUIET", "1")
    from ase import Atoms

    from rotorlab.training import data as D
    from rotorlab.training.loop import StateError, TrainingLoop
    from rotorlab.training.snapshot import snapshot

    path = tmp_path / "w"
    loop = _FakeLoop.install(_new_loop(path, cell, ref_teacher, max_iterations=1), fraction=[0.1])
    assert loop.run()["stop_reason"] == "max_iterations"
    with pytest.raises(StateError, match="no frames"):
        loop.add_frames([])
    na = cell.copy()
    na.symbols[0] = "Na"
    with pytest.raises(StateError, match=r"elements \['Na'\] are not in"):
        loop.add_frames([na])
    with pytest.raises(StateError, match="periodic cell"):
        loop.add_frames([Atoms("Li2", positions=[[0, 0, 0], [2, 0, 0]])])
    assert "added_frames" not in loop.state  # refused: nothing queued
    raw = C.rattled(cell, 4, 0.03, rng=3)
    raw[0].info["split"] = "test"              # must not become held-out data
    own = [ref_teacher.label(a) for a in C.rattled(cell, 2, 0.03, rng=4)]
    from ase.calculators.singlepoint import SinglePointCalculator

    doubled = []
    for a in own:   # labels the teacher would not give: kept, so they must come back
        f2 = 2.0 * a.get_forces()
        a.calc = SinglePointCalculator(a, energy=a.get_potential_energy(), forces=f2,
                                       stress=a.get_stress())
        doubled.append(f2)
    other = ref_teacher.label(C.rattled(cell, 1, 0.03, rng=5)[0])
    other.info["teacher"] = "7net-0"           # another teacher's labels: relabelled
    res = loop.add_frames(raw + own + [other], source="user-md")
    assert res == {"iteration": 1, "n_frames": 7, "n_labelled": 2,
                   "file": "added/iter.001.extxyz"}
    assert loop.state["stop_reason"] is None and loop.settings.max_iterations == 2
    assert "7 frames added for iteration 1" in loop.state["notes"][-1]
    # a clone (state + snapshot only) gets the queued frames back
    snapshot(path)
    clone = tmp_path / "clone"
    clone.mkdir()
    shutil.copy2(path / "state.json", clone / "state.json")
    shutil.copytree(path / "snapshot", clone / "snapshot")
    again = TrainingLoop.open(clone, teacher_obj=ref_teacher)
    assert len(again._added(1)) == 7
    # the next iteration runs the real configs and label steps (the same object: reopening
    # would redo the fake iteration 0, whose data the fakes never wrote)
    del loop.step_configs, loop.step_label, loop.step_production
    _patch_dp_calls(monkeypatch)
    n_calls = []
    real = ref_teacher.label
    monkeypatch.setattr(ref_teacher, "label", lambda a: (n_calls.append(1), real(a))[1])
    state = loop.run()
    assert state["stop_reason"] == "max_iterations"
    it1 = state["iterations"][1]
    assert it1["configs"]["sources"] == {"explore": 0, "added": 7, "added_with_labels": 2}
    assert it1["label"]["n_train"] == 7 and "n_test" not in it1["label"]
    assert len(n_calls) == 5   # 4 unlabelled + 1 of another teacher
    arr = next(iter(D.load_arrays(path / "data" / "iter.001").values()))
    for f2 in doubled:
        assert any(np.allclose(f, f2, atol=1e-6) for f in arr["force"])
    assert not (path / "data" / "test").exists()
    assert D.read_meta(path / "data" / "iter.001")["sources"].get("user-md") == 7
    # frames cannot join an iteration that is part-way
    part = _new_loop(tmp_path / "part", cell, ref_teacher)
    part._mark(0, "configs", 1.0, {})
    with pytest.raises(StateError, match="iteration 0 is part-way"):
        part.add_frames(raw[:1])
    # once labelled, the snapshot no longer carries the queued file
    snapshot(path)
    assert not list((path / "snapshot").glob("added-iter.*"))
    assert (path / "snapshot" / "data-iter.001.tar.xz").is_file()


def test_max_neighbours_counts_each_type_in_a_periodic_lattice(tmp_path):
    """Simple cubic, a = 2 Å, 27 sites, one P: within 2.1 Å every site has 6 neighbours,
    within 2.9 Å 18 (6 + 12 at 2.83 Å); at most one of them is the P."""
    pytest.importorskip("dpdata", reason="dpdata is needed to write DeePMD data sets")
    from ase.build import bulk
    from ase.calculators.singlepoint import SinglePointCalculator

    from rotorlab.training import data as D

    a = bulk("Li", "sc", a=2.0).repeat((3, 3, 3))
    a.symbols[0] = "P"
    a.calc = SinglePointCalculator(a, energy=0.0, forces=np.zeros((27, 3)), stress=np.zeros(6))
    a.info["source"] = "lattice"
    D.write_set([a], tmp_path / "set", ["Li", "P", "S"], {"id": "test"})
    assert D.max_neighbours([tmp_path / "set"], 2.1) == [6, 1, 0]
    assert D.max_neighbours([tmp_path / "set"], 2.9) == [18, 1, 0]
    assert D.max_neighbours([], 2.9) == []


def test_a_refit_keeps_the_models_sel_when_new_data_fit_and_refuses_when_not(
        tmp_path, cell, ref_teacher, monkeypatch):
    monkeypatch.setenv("ROTORLAB_TRAIN_QUIET", "1")
    from rotorlab.training import data as D
    from rotorlab.training import dp
    from rotorlab.training.loop import StateError

    _patch_dp_calls(monkeypatch)
    path = tmp_path / "w"
    loop = _FakeLoop.install(_new_loop(path, cell, ref_teacher, max_iterations=1), fraction=[0.1])
    del loop.step_production
    loop.run()
    monkeypatch.setattr(dp, "frozen_sel", lambda m: [12, 40, 40])
    for need, ok in (([12, 40, 36], True), ([11, 41, 36], False)):
        loop = _FakeLoop.install(_open(path, ref_teacher), fraction=[0.1])
        del loop.step_production
        loop.refit_production(steps=50)
        loop.state["refit"]["last_iteration"] = -1  # every data set counts as new
        (path / "data" / "iter.000").mkdir(parents=True, exist_ok=True)
        (path / "data" / "iter.000" / D.META).write_text(json.dumps(
            {"teacher": {"id": loop.state["teacher"]["id"]}, "type_map": ["Li", "P", "S"]}))
        monkeypatch.setattr(D, "max_neighbours", lambda sets, rcut, need=need: need)
        if not ok:
            with pytest.raises(StateError, match=r"need \[11, 41, 36\] neighbours.*sel "
                                                 r"\[12, 40, 40\].*--retrain-production"):
                loop.run()
            assert "production" not in loop.state["completed"]
            loop.state["stop_reason"] = "max_iterations"
            loop.save()
            continue
        loop.run()
        cfg = json.loads((path / "production" / "train" / "input.json").read_text())
        assert cfg["model"]["descriptor"]["sel"] == [12, 40, 40]


def test_exploration_settings_are_validated_and_change_later_explorations(tmp_path, cell,
                                                                          ref_teacher):
    from rotorlab.training.loop import StateError, check_exploration

    assert check_exploration(explore_modes=["uc", "RTC"], explore_steps=[100.0],
                             explore_temperatures=None) == {
        "explore_modes": ["UC", "RTC"], "explore_steps": [100]}
    for kw, msg in (({"explore_modes": ["XC"]}, "unknown constraint modes"),
                    ({"explore_steps": [0]}, "positive integers"),
                    ({"explore_steps": [1.5]}, "positive integers"),
                    ({"explore_temperatures": [-5]}, "positive"),
                    ({"explore_temperatures": []}, "must not be empty"),
                    ({"explore_cell": [1]}, "unknown exploration settings")):
        with pytest.raises(StateError, match=msg):
            check_exploration(**kw)
    loop = _new_loop(tmp_path / "w", cell, ref_teacher)
    loop.state["timings"]["iter.000/explore"] = 100.0
    loop.state["timings"]["iter.000/train"] = 10.0
    loop.state["iterations"] = [{"iteration": 0, "explore": {"steps": 2000}}]
    est = loop._iteration_estimate(1)
    assert loop.set_exploration(explore_steps=[2000, 8000], explore_modes=["UC"]) == [
        "explore_steps [2000, 4000, 8000] -> [2000, 8000]",
        "explore_modes ['UC', 'RC', 'RTC', 'RTVC'] -> ['UC']"]
    assert loop.set_exploration(explore_modes=["UC"]) == []
    again = _open(tmp_path / "w", ref_teacher)
    assert again.settings.explore_steps == [2000, 8000] and again.settings.explore_modes == ["UC"]
    assert "exploration changed" in again.state["notes"][-1]
    # the estimate scales the exploration time the last iteration recorded (2000 steps)
    assert loop._iteration_estimate(1) == pytest.approx(est + 100.0 * (8000 / 2000 - 4000 / 2000))


def test_loop_resumes_after_a_kill_at_every_step_boundary(tmp_path, cell, ref_teacher,
                                                          monkeypatch):
    monkeypatch.setenv("ROTORLAB_TRAIN_QUIET", "1")
    from rotorlab.training.loop import STEPS

    _FakeLoop.calls = []
    ref = _FakeLoop.install(_new_loop(tmp_path / "ref", cell, ref_teacher))
    ref.run()
    expected = list(_FakeLoop.calls)
    boundaries = [(it, s) for it in range(3) for s in STEPS] + [(None, "production")]
    _FakeLoop.calls = []
    path = tmp_path / "killed"
    loop = _FakeLoop.install(_new_loop(path, cell, ref_teacher))
    for b in boundaries:
        loop.stop_after = b
        with pytest.raises(KeyboardInterrupt):
            loop.run()
        assert json.loads((path / "state.json").read_text())["status"] == "interrupted"
        loop = _FakeLoop.install(_open(path, ref_teacher))  # a new process: state from disk
    state = loop.run()
    assert _FakeLoop.calls == expected  # every step exactly once, in order
    assert state["completed"] == ref.state["completed"]
    assert state["stop_reason"] == "converged" and len(state["sessions"]) == len(boundaries) + 1


def test_loop_redoes_a_step_killed_inside(tmp_path, cell, ref_teacher, monkeypatch):
    monkeypatch.setenv("ROTORLAB_TRAIN_QUIET", "1")
    _FakeLoop.calls = []
    path = tmp_path / "w"
    loop = _FakeLoop.install(_new_loop(path, cell, ref_teacher), crash_in=(1, "train"))
    with pytest.raises(RuntimeError, match="crash inside"):
        loop.run()
    assert "iter.001/label" in loop.state["completed"]
    assert "iter.001/train" not in loop.state["completed"]
    n_before = len(_FakeLoop.calls)
    loop = _FakeLoop.install(_open(path, ref_teacher))
    loop.run()
    assert _FakeLoop.calls[n_before] == (1, "train")  # continues with the killed step
    assert _FakeLoop.calls.count((1, "label")) == 1


def test_loop_refuses_existing_state_and_other_teacher(tmp_path, cell, ref_teacher):
    from rotorlab.training.data import TeacherMismatch
    from rotorlab.training.loop import StateError, TrainingLoop
    from rotorlab.training.teachers import make_teacher

    _new_loop(tmp_path / "w", cell, ref_teacher)
    with pytest.raises(StateError, match="already holds"):
        _new_loop(tmp_path / "w", cell, ref_teacher)
    other = make_teacher("ase:ase.calculators.lj:LennardJones")
    with pytest.raises(TeacherMismatch, match="refusing"):
        TrainingLoop.open(tmp_path / "w", teacher_obj=other)
    with pytest.raises(StateError, match="no training loop"):
        TrainingLoop.open(tmp_path / "empty")


def test_label_step_continues_chunk_wise(tmp_path, cell, ref_teacher, monkeypatch):
    pytest.importorskip("dpdata", reason="dpdata is needed to write DeePMD data sets")
    monkeypatch.setenv("ROTORLAB_TRAIN_QUIET", "1")
    from rotorlab.training.loop import write_frames

    loop = _new_loop(tmp_path / "w", cell, ref_teacher, label_chunk=3, train_supercells=[[1, 1, 1]])
    d = loop.iter_dir(0) / "configs"
    d.mkdir(parents=True)
    write_frames(d / "pending.extxyz", C.rattled(cell, 7, 0.03, rng=9))
    calls = []
    real = ref_teacher.label

    def flaky(a):
        if len(calls) == 4:
            calls.append("boom")
            raise RuntimeError("teacher died")
        calls.append(1)
        return real(a)

    monkeypatch.setattr(ref_teacher, "label", flaky)
    with pytest.raises(RuntimeError, match="teacher died"):
        loop.step_label(0)
    assert len(list((loop.iter_dir(0) / "label").glob("chunk-*.extxyz"))) == 1
    calls.clear()
    monkeypatch.setattr(ref_teacher, "label", real)
    counted = []
    monkeypatch.setattr(ref_teacher, "label", lambda a: (counted.append(1), real(a))[1])
    info = loop.step_label(0)
    assert len(counted) == 4  # only the frames of the two missing chunks
    assert info["n_train"] == 7


def _tiny_libh4_model():
    pytest.importorskip("deepmd", reason="deepmd-kit runs the student")
    from rotorlab._paths import datasets_dir

    return datasets_dir() / "models" / "tiny-LiBH4" / "model-compressed.pb"


def test_student_vs_teacher_is_zero_for_the_student_itself_and_not_for_another(tmp_path):
    """Invariant: with the student as its own teacher (same forces through ASE, same start,
    same velocities) the two runs coincide, so both distances are 0 while two student runs
    from other velocities differ; with another labeller the distance is positive."""
    from rotorlab.training.checks import anion_centre_species, student_vs_teacher
    from rotorlab.training.teachers import ReferenceTeacher

    model = _tiny_libh4_model()
    a = get("LiBH4", (2, 2, 1))
    a.info["material"] = "LiBH4"
    assert anion_centre_species(detect(a)) == "B"
    assert anion_centre_species(detect(get("Li3PS4", (1, 1, 1), variant="beta-Pnma"))) == "P"

    class Self:
        id = "student-itself"

        def prepare(self, atoms):
            pass

        def calculator(self, atoms):
            from deepmd.calculator import DP

            return DP(str(model))

    r = student_vs_teacher(model, a, Self(), 500.0, 40, tmp_path / "self", timestep=0.5,
                           equilibration_steps=20, nbins=60)
    assert r["exploded"] is None
    assert r["cation"] == "Li" and r["rdf"]["pair"] == "Li-B" and r["steps"] == 40
    assert r["rdf"]["teacher_vs_student"] < 1e-9 and r["vacf"]["teacher_vs_student"] < 1e-9
    assert r["rdf"]["student_vs_student"] > 1e-3 and r["vacf"]["student_vs_student"] > 1e-4
    assert r["rdf"]["first_peak_A"]["teacher"] == r["rdf"]["first_peak_A"]["student"]
    other = student_vs_teacher(model, a, ReferenceTeacher("LiBH4"), 500.0, 40, tmp_path / "ref",
                               timestep=0.5, equilibration_steps=20, nbins=60)
    assert other["rdf"]["teacher_vs_student"] > 1e-3 and other["vacf"]["teacher_vs_student"] > 1e-5
    # the student runs are the same in both calls (same model, start and seeds)
    assert other["rdf"]["student_vs_student"] == pytest.approx(r["rdf"]["student_vs_student"])
    json.dumps(other)  # plain JSON for the card


# ------------------------------------------------------------------- loop: end to end


@pytest.mark.slow
def test_pipeline_end_to_end_with_reference_labeller(tmp_path, cell, ref_teacher, monkeypatch):
    """configs → label → dp train (2 tiny members) → test → explore (UC, RTVC) → production
    (train, freeze, compress) → card; then a snapshot restores the state elsewhere."""
    pytest.importorskip("dpdata", reason="dpdata is needed to write DeePMD data sets")
    monkeypatch.setenv("ROTORLAB_TRAIN_QUIET", "1")
    from rotorlab.training import card
    from rotorlab.training.loop import TrainingLoop
    from rotorlab.training.snapshot import snapshot

    out = tmp_path / "model"
    loop = _new_loop(tmp_path / "w", cell, ref_teacher, test_temperature=750.0,
                     train_supercells=[[1, 1, 1]], test_supercell=[1, 1, 1], n_strain=4,
                     n_rattle=8, n_rotor=3, n_cation=3, md_frames=8, md_interval=2, md_start=4,
                     large_n_each=0, large_md_frames=0, test_md_frames=6, test_md_interval=3,
                     test_md_start=6, members=2, first_steps=300, production_steps=300,
                     rcut=4.5, neuron=[4, 8], axis_neuron=4, fitting=[16, 16], start_lr=5e-3,
                     stop_lr=1e-4, explore_modes=["UC", "RTVC"], explore_steps=[60],
                     frame_interval=10, skip_frames=1, max_candidates=4, max_iterations=1,
                     label_chunk=10, output_dir=str(out), auto_snapshot=True,
                     sigma_low=0.02, sigma_high=50.0, sanity_steps=60,
                     sanity_teacher_steps=30)
    state = loop.run()
    assert state["stop_reason"] == "max_iterations" and state["status"] == "finished"
    it0 = state["iterations"][0]
    src = it0["label"]["sources"]
    assert src["strain"] == 4 and src["rattle"] == 8 and src["md"] == 16
    assert it0["label"]["n_test"] == 6
    # the students learned something: forces on held-out frames (another temperature)
    # correlate with the teacher's
    from deepmd.infer import DeepPot

    from rotorlab.training.data import load_arrays

    test = next(iter(load_arrays(tmp_path / "w" / "data" / "test").values()))
    dp = DeepPot(str(tmp_path / "w" / state["production"]["model"]))
    tmap = dp.get_type_map()
    atype = np.array([tmap.index(test["type_map"][t]) for t in test["type"]])
    _, f, _ = dp.eval(test["coord"].reshape(len(test["energy"]), -1),
                      test["box"].reshape(-1, 9), atype)[:3]
    r = np.corrcoef(np.asarray(f).ravel(), test["force"].ravel())[0, 1]
    assert r > 0.5, f"force correlation {r:.2f}"
    ptest = state["production"]["test"]
    assert ptest["frozen"]["force_rmse_meV_A"] < ptest["frozen"]["force_std_meV_A"]
    # compression keeps the model
    assert ptest["compressed"]["force_rmse_meV_A"] == pytest.approx(
        ptest["frozen"]["force_rmse_meV_A"], rel=0.05)
    # exploration statistics and candidates
    ex = it0["explore"]
    assert ex["frames"] == 2 * 2 * (60 // 10 + 1 - 1)
    assert ex["accurate"] + ex["candidate"] + ex["failed"] == ex["frames"]
    # products and card
    c = json.loads((out / "card.json").read_text())
    for k in card.REQUIRED_KEYS:
        assert k in c, k
    assert c["force_rmse_test_meV_A"] == pytest.approx(ptest["frozen"]["force_rmse_meV_A"])
    assert c["teacher"]["id"] == "rotorlab:reference"
    assert [m["file"] for m in c["models"]] == ["model.pb", "ensemble-0.pb", "ensemble-1.pb"]
    assert not c["compression"]["shipped"] and c["compression"]["size_bytes"] > 0
    assert not (out / "model-compressed.pb").exists()
    for m in c["models"]:
        assert (out / m["file"]).stat().st_size == m["size_bytes"]
    assert "Table 1" in (out / "README.md").read_text()
    # the card's schedule is what the members were trained for, iteration by iteration
    sched = c["training"]["member_schedule"]
    assert [r["steps"] for r in sched] == [[m["steps"] for m in st["train"]["members"]]
                                           for st in state["iterations"] if st.get("train")]
    assert f"member steps per iteration 0: {sched[0]['steps'][0]} (scratch)" in (
        out / "README.md").read_text()
    # card measurements: inference cost of both models, UC MD sanity with the student
    inf = c["inference_ms_per_step"]
    assert inf["quick_32_atoms_frozen"] > 0 and inf["quick_32_atoms_compressed"] > 0
    from rotorlab.potentials.deepmd import DeePMD

    assert inf["engine"] == DeePMD(tmp_path / "w" / state["production"]["model"]).engine
    assert "catalog_paper_864_atoms_compressed" in inf and "catalog_quick_128_atoms_frozen" in inf
    uc = c["sanity"]["uc_md"]
    assert uc["steps"] == 60, uc
    if uc["exploded"] is None:  # a 300-step student may blow up: then the run is shorter
        assert uc["length_ps"] == pytest.approx(60 * 2.0 / 1000, rel=0.2), uc
        assert uc["steps_run"] == 60
    else:
        assert uc["length_ps"] < 60 * 2.0 / 1000 and not uc["anions_bonded"], uc
        # the card says where and why, without the work directory's path
        assert uc["exploded"].startswith(f"at step {uc['steps_run']} (")
        assert "kept in" not in uc["exploded"] and 0 < uc["steps_run"] <= 60
    assert set(uc["max_bond_A"]) == {"PS4"} and uc["max_bond_A"]["PS4"] > 1.5
    assert uc["anions_bonded"] == (uc["max_bond_A"]["PS4"] < uc["bond_cutoff_A"]["PS4"]
                                   and uc["exploded"] is None)
    assert "vs_teacher" in c["sanity"], c["not_measured"]
    vt = c["sanity"]["vs_teacher"]
    assert vt["steps"] == 30 and vt["cation"] == "Li" and vt["anion_centre"] == "P"
    if uc["exploded"] is None and vt["exploded"] is None:
        assert vt["rdf"]["pair"] == "Li-P" and vt["rdf"]["teacher_vs_student"] > 0
    else:  # the tiny student is unstable at 900 K: the check says where, with no numbers
        assert vt["exploded"] and vt["rdf"] is None and vt["vacf"] is None
    assert "sanity.vs_teacher" not in c["not_measured"]
    # train-check re-measures into the card: a longer UC run and another teacher comparison
    from rotorlab.training.cli_commands import add_parsers
    from rotorlab.training.loop import StateError

    import argparse

    p = argparse.ArgumentParser()
    add_parsers(p.add_subparsers(dest="cmd"))
    monkeypatch.setattr("rotorlab.training.loop.TrainingLoop.teacher",
                        property(lambda self: ref_teacher))
    args = p.parse_args(["train-check", "Li3PS4", "--workdir", str(tmp_path / "w"), "--output",
                         str(out), "--uc-ps", "0.2", "--teacher-steps", "20",
                         "--equilibration-steps", "10", "--inference"])
    assert args.func(args) == 0
    c2 = json.loads((out / "card.json").read_text())
    assert set(c2["inference_ms_per_step"]) == set(inf) and all(
        v > 0 for k, v in c2["inference_ms_per_step"].items() if k.endswith(("frozen",
                                                                             "compressed")))
    assert c2["inference_ms_per_step"]["threads_effective"] >= 0  # 0: TensorFlow's default
    lo = c2["inference_ms_per_step"]["load_average_1min"]  # how busy the machine was
    assert len(lo) == 2 and min(lo) >= 0 and c2["inference_ms_per_step"]["cpus"] >= 1
    assert c2["sanity"]["uc_md"]["steps"] == 100 and c2["sanity"]["vs_teacher"]["steps"] == 20
    assert c2["sanity"]["uc_md"]["temperature_K"] == 900.0
    assert c2["force_rmse_test_meV_A"] == c["force_rmse_test_meV_A"]  # nothing else changed
    assert '"vs_teacher"' in (out / "README.md").read_text()
    assert "## Caveats" in (out / "README.md").read_text()
    # a timing at another thread count goes beside the loop's table, never in its place
    args = p.parse_args(["train-check", "Li3PS4", "--workdir", str(tmp_path / "w"), "--output",
                         str(out), "--inference", "--threads", "2"])
    assert args.func(args) == 0
    c3 = json.loads((out / "card.json").read_text())
    assert c3["inference_ms_per_step"] == c2["inference_ms_per_step"]
    t2 = c3["inference_ms_per_step_by_threads"]["2"]
    assert set(t2) == set(inf) and t2["threads"] == 2
    # in this process TensorFlow was started earlier: the card says what it really used
    from rotorlab.potentials.deepmd import thread_settings

    assert t2["threads_effective"] == thread_settings()["intra"]
    assert "Inference cost with 2 threads" in (out / "README.md").read_text()
    # runs at other temperatures / seeds go beside the main one; a rerun replaces its record
    for _ in range(2):
        args = p.parse_args(["train-check", "Li3PS4", "--workdir", str(tmp_path / "w"),
                             "--output", str(out), "--uc-ps", "0.2", "--uc-temperatures", "300",
                             "--seed", "3"])
        assert args.func(args) == 0
    c5 = json.loads((out / "card.json").read_text())
    assert c5["sanity"]["uc_md"] == c3["sanity"]["uc_md"]
    assert [(r["temperature_K"], r["seed"], r["steps"]) for r in
            c5["sanity"]["uc_md_runs"]] == [(300.0, 3, 100)]
    args = p.parse_args(["train-check", "Li3PS4", "--workdir", str(tmp_path / "w"), "--output",
                         str(out), "--uc-temperatures", "300"])
    with pytest.raises(StateError, match="needs --uc-ps"):
        args.func(args)
    # a clone has no work-directory compressed model: the check compresses the shipped one
    import rotorlab.training.dp as dpmod

    made = []
    real_compress = dpmod.compress

    def spy(model, output, **kw):
        made.append((Path(model), kw))
        return real_compress(model, output, **kw)

    monkeypatch.setattr(dpmod, "compress", spy)
    wcomp = tmp_path / "w" / "production" / "model-compressed.pb"
    wcomp.rename(wcomp.with_suffix(".away"))
    args = p.parse_args(["train-check", "Li3PS4", "--workdir", str(tmp_path / "w"), "--output",
                         str(out), "--inference"])
    assert args.func(args) == 0
    wcomp.with_suffix(".away").rename(wcomp)
    assert made == [(out / "model.pb", {"step": c["compression"]["step"], "threads": 1})]
    c4 = json.loads((out / "card.json").read_text())
    assert set(c4["inference_ms_per_step"]) == set(inf)
    assert not list(out.glob("*compressed*"))  # nothing left beside the shipped files
    bad = json.loads((out / "card.json").read_text())
    bad["material"] = "LiBH4"
    other = tmp_path / "other-model"
    other.mkdir()
    (other / "card.json").write_text(json.dumps(bad))
    args = p.parse_args(["train-check", "Li3PS4", "--workdir", str(tmp_path / "w"), "--output",
                         str(other), "--uc-ps", "0.2"])
    with pytest.raises(StateError, match="not this loop's"):
        args.func(args)
    assert json.loads((other / "card.json").read_text()) == bad  # untouched
    args = p.parse_args(["train-check", "Li3PS4", "--workdir", str(tmp_path / "w"), "--output",
                         str(out)])
    with pytest.raises(StateError, match="nothing to check"):
        args.func(args)
    # the registry reads the model directory (first member drives, compressed copy listed)
    import rotorlab.potentials.registry as reg

    monkeypatch.setattr(reg, "models_dir", lambda: tmp_path)
    bm = reg.model_info("model")
    assert [p.name for p in bm.files] == ["model.pb", "ensemble-0.pb", "ensemble-1.pb"]
    ens = bm.load(cell.get_chemical_symbols(), ensemble=True)
    import warnings

    with warnings.catch_warnings():  # a 300-step model deviates a lot: expected here
        warnings.simplefilter("ignore")
        e, f, _ = ens.compute(cell.positions, cell.cell.array)
    assert np.isfinite(e) and ens.last_model_deviation >= 0
    # the committed part alone restores the loop on another machine
    snap = snapshot(tmp_path / "w")
    assert snap["total_bytes"] < 5e6
    clone = tmp_path / "clone"
    clone.mkdir()
    shutil.copy2(tmp_path / "w" / "state.json", clone / "state.json")
    shutil.copytree(tmp_path / "w" / "snapshot", clone / "snapshot")
    again = TrainingLoop.open(clone, teacher_obj=ref_teacher)
    from rotorlab.training.loop import _GITIGNORE

    assert (clone / ".gitignore").read_text() == _GITIGNORE  # work files stay out of git
    assert (clone / "data" / "iter.000" / "meta.json").is_file()
    assert (clone / "data" / "test" / "meta.json").is_file()
    assert again.state["completed"] == state["completed"]
    assert (clone / state["production"]["model"]).is_file()
    # the production model's per-type energies were pinned on the training data: no mean
    # energy offset there, the same forces as the model as trained
    pin = state["production"]["energy_bias"]
    assert pin["model"] == "production/model.pb" == state["production"]["model"]
    assert abs(state["production"]["train_errors"]["energy_offset_meV_atom"]) < 1e-3
    assert pin["energy_rmse_after_meV_atom"] <= pin["energy_rmse_before_meV_atom"]
    raw = DeepPot(str(tmp_path / "w" / "production" / "train" / "model.pb"))
    e_raw, f_raw, _ = raw.eval(test["coord"].reshape(len(test["energy"]), -1),
                               test["box"].reshape(-1, 9), atype)[:3]
    e_pin, f_pin, _ = dp.eval(test["coord"].reshape(len(test["energy"]), -1),
                              test["box"].reshape(-1, 9), atype)[:3]
    np.testing.assert_array_equal(f_raw, f_pin)
    n_at = np.bincount(atype, minlength=len(tmap))
    shift = sum(n_at[k] * pin["delta_eV"][t] for k, t in enumerate(tmap))
    np.testing.assert_allclose(np.ravel(e_pin) - np.ravel(e_raw), shift, atol=1e-8)
    assert c["training"]["energy_bias"]["delta_eV"] == pin["delta_eV"]
    assert "pinned by least squares" in (out / "README.md").read_text()
    # refit: the finished production model trains further with a larger energy weight;
    # the old model is kept, the new one pinned, compressed and carded
    loop = _open(tmp_path / "w", ref_teacher)
    with pytest.raises(StateError, match="unknown loss prefactors"):
        loop.refit_production(steps=100, limit_pref_energy=5.0)
    before = (tmp_path / "w" / "production" / "model.pb").read_bytes()
    rec = loop.refit_production(steps=150, limit_pref_e=5.0)
    assert rec["loss"]["limit_pref_e"] == 5.0 and rec["loss"]["start_pref_f"] == 1000.0
    assert (tmp_path / "w" / rec["init_model"]).read_bytes() == before
    assert "production" not in loop.state["completed"] and "card" not in loop.state["completed"]
    state = loop.run()
    prod = state["production"]
    assert prod["refit"]["steps"] == 150 and prod["steps"] == 150
    assert prod["train"]["init_frz_model"].endswith("refit-base/model.pb")
    cfg = json.loads((tmp_path / "w" / "production" / "train" / "input.json").read_text())
    assert cfg["loss"]["limit_pref_e"] == 5.0 and cfg["training"]["numb_steps"] == 150
    assert abs(prod["train_errors"]["energy_offset_meV_atom"]) < 1e-3
    kept = state["previous_productions"][-1]
    assert (tmp_path / "w" / kept["model"]).read_bytes() == before  # kept, not deleted
    c4 = json.loads((out / "card.json").read_text())
    assert c4["training"]["refit"]["steps"] == 150
    assert c4["training"]["refit"]["loss"]["limit_pref_e"] == 5.0
    assert c4["energy_rmse_test_meV_atom"] == pytest.approx(
        prod["test"]["frozen"]["energy_rmse_meV_atom"])
    assert "refitted: 150 more steps" in (out / "README.md").read_text()
    # a retrain from scratch with a wider fitting net than the ensemble's: DeePMD-kit
    # builds that network (the frozen graph's fitting layers have the new width)
    loop = _open(tmp_path / "w", ref_teacher)
    rec = loop.refit_production(steps=120, network={"fitting": [24, 24]})
    state = loop.run()
    prod = state["production"]
    assert prod["train"].get("init_frz_model") is None and prod["steps"] == 120
    g = DeepPot(str(tmp_path / "w" / prod["model"]))
    e5, f5, _ = g.eval(test["coord"].reshape(len(test["energy"]), -1),
                       test["box"].reshape(-1, 9), atype)[:3]
    assert np.isfinite(f5).all()
    import tensorflow as tf

    gdef = tf.compat.v1.GraphDef()
    gdef.ParseFromString((tmp_path / "w" / prod["model"]).read_bytes())
    shapes = {n.name: [d.size for d in n.attr["value"].tensor.tensor_shape.dim]
              for n in gdef.node if n.op == "Const" and "layer_" in n.name
              and n.name.endswith("/matrix") and "filter" not in n.name}
    assert shapes and {s[-1] for s in shapes.values()} == {24, 1}, shapes
    c5 = json.loads((out / "card.json").read_text())
    assert c5["training"]["production_network"]["fitting"] == [24, 24]
    assert c5["training"]["fitting"] == [16, 16] and c5["training"]["refit"]["scratch"]
    readme = (out / "README.md").read_text()
    assert "retrained from scratch: 120 steps" in readme and "fitting [24, 24]" in readme
    # a refit needs a finished loop
    fresh = _new_loop(tmp_path / "fresh", cell, ref_teacher)
    with pytest.raises(StateError, match="has not finished"):
        fresh.refit_production(steps=10)


def test_cli_parser_and_resume_errors(tmp_path):
    import argparse

    from rotorlab.training.cli_commands import add_parsers
    from rotorlab.training.loop import StateError

    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command")
    add_parsers(sub)
    args = p.parse_args(["train", "Li3PS4", "--workdir", str(tmp_path / "w"), "--resume",
                         "--budget-hours", "1.5", "--teacher", "reference"])
    assert args.budget_hours == 1.5 and args.resume
    with pytest.raises(StateError, match="no training loop"):
        args.func(args)
    args = p.parse_args(["train", "Li3PS4", "--workdir", str(tmp_path / "w2"), "--add-frames",
                         str(tmp_path / "x.extxyz")])
    with pytest.raises(StateError, match="give --resume"):
        args.func(args)
    assert not (tmp_path / "w2").exists()


def test_resume_applies_loop_settings_and_refuses_ensemble_changes():
    import argparse
    from types import SimpleNamespace

    from rotorlab.training.cli_commands import _apply_resume_settings, add_parsers
    from rotorlab.training.loop import StateError

    p = argparse.ArgumentParser()
    add_parsers(p.add_subparsers(dest="command"))

    def fake():
        st = SimpleNamespace(max_iterations=10, production_steps=20000, next_steps=1500, jobs=2,
                             members=4, first_steps=2500, threads=1, explore_supercell=None,
                             train_supercells=[[2, 2, 1]])
        calls = []
        loop = SimpleNamespace(settings=st, state={"settings": dict(vars(st)), "notes": [],
                                                   "stop_reason": "max_iterations"},
                               save=lambda: calls.append("save"),
                               reopen_iterations=lambda keep_refit=False: calls.append(
                                   "reopen+refit" if keep_refit else "reopen"))
        st.explore_steps, st.explore_modes, st.explore_temperatures = [1000], ["UC", "RC"], None
        return loop, calls

    loop, calls = fake()
    args = p.parse_args(["train", "Li3PS4", "--resume", "--max-iterations", "5",
                         "--production-steps", "30000"])
    _apply_resume_settings(loop, args)
    assert loop.settings.max_iterations == 5 and loop.state["settings"]["production_steps"] == 30000
    assert loop.settings.next_steps == 1500 and "reopen" in calls and "save" in calls
    assert "max_iterations 10 -> 5" in loop.state["notes"][-1]
    loop, calls = fake()
    _apply_resume_settings(loop, p.parse_args(["train", "Li3PS4", "--resume"]))
    assert calls == [] and loop.state["notes"] == []  # nothing given, nothing changed
    with pytest.raises(StateError, match="--members cannot change"):
        _apply_resume_settings(loop, p.parse_args(["train", "Li3PS4", "--resume", "--members", "2"]))
    # the exploration cell may grow on resume (e.g. Na3OBH4: from its 36-atom training cell)
    loop, calls = fake()
    _apply_resume_settings(loop, p.parse_args(["train", "Na3OBH4", "--resume",
                                               "--explore-supercell", "2", "2", "2"]))
    assert loop.settings.explore_supercell == [2, 2, 2]
    assert loop.state["settings"]["explore_supercell"] == [2, 2, 2]
    assert "explore_supercell [2, 2, 1] -> [2, 2, 2]" in loop.state["notes"][-1]
    loop, calls = fake()  # the same cell as now: nothing changes
    _apply_resume_settings(loop, p.parse_args(["train", "Na3OBH4", "--resume",
                                               "--explore-supercell", "2", "2", "1"]))
    assert calls == [] and loop.state["notes"] == []
    with pytest.raises(StateError, match="three positive integers"):
        _apply_resume_settings(loop, p.parse_args(["train", "Na3OBH4", "--resume",
                                                   "--explore-supercell", "0", "2", "2"]))
    # exploration lengths, modes and temperatures steer later explorations
    loop, calls = fake()
    _apply_resume_settings(loop, p.parse_args(
        ["train", "Na3OBH4", "--resume", "--explore-steps", "1000", "12000", "--explore-modes",
         "uc", "--explore-temperatures", "550", "800", "--max-iterations", "12"]),
        keep_refit=True)
    assert loop.settings.explore_steps == [1000, 12000] and loop.settings.explore_modes == ["UC"]
    assert loop.state["settings"]["explore_temperatures"] == [550.0, 800.0]
    assert "explore_modes ['UC', 'RC'] -> ['UC']" in loop.state["notes"][-1]
    assert "reopen+refit" in calls  # a prepared refit survives the reopen
    with pytest.raises(StateError, match="unknown constraint modes"):
        _apply_resume_settings(loop, p.parse_args(["train", "Na3OBH4", "--resume",
                                                   "--explore-modes", "UC", "QC"]))
    args = p.parse_args(["train", "Na2B10H10", "--resume", "--production-fitting", "240", "240",
                         "--production-steps", "100"])
    from rotorlab.training.cli_commands import _network_args

    assert _network_args(args) == {"fitting": [240, 240]}


def test_an_anion_is_bonded_while_its_intact_bonds_connect_it():
    """The UC sanity check once called an anion broken when any bond passed 1.3x the
    covalent radii, with one cutoff per anion kind taken from its first bond's elements.
    closo-B10H10 failed that in the teacher's own MD (B-B edges to 2.33 Å at 675 K, cage
    whole) while its B-H bonds were held to the B-B cutoff. Now each bond has its own
    cutoff and an anion counts as broken only when its intact bonds no longer connect it."""
    from types import SimpleNamespace

    from rotorlab.training.checks import anion_bonds, connected_anions

    # connectivity alone: a 4-ring (anion 0), a 3-atom star (anion 1), one free atom
    bonds = np.array([[0, 1], [1, 2], [2, 3], [3, 0], [4, 5], [4, 6]])
    rid = np.array([0, 0, 0, 0, 1, 1, 1, -1])
    intact = np.array([[1, 1, 1, 1, 1, 1],    # whole
                       [0, 1, 1, 1, 1, 1],    # one ring edge long: still one piece
                       [0, 1, 0, 1, 1, 1],    # two opposite ring edges: two pieces
                       [1, 1, 1, 1, 0, 1]], bool)  # an arm left the star
    assert connected_anions(intact, bonds, rid).tolist() == [
        [True, True], [True, True], [False, True], [True, False]]
    # geometry: a B3 triangle with an H on B0; one B-B edge stretches, then H leaves
    topo = SimpleNamespace(symbols=["B", "B", "B", "H", "Na"],
                           bonds=[[0, 1], [1, 2], [0, 2], [0, 3]],
                           rotor_id=[0, 0, 0, 0, -1], rotor_kind=["X"])
    f0 = [[5, 5, 5], [6.8, 5, 5], [5.9, 6.56, 5], [5, 3.8, 5], [12, 12, 12]]
    f1 = [[5, 5, 5], [6.8, 5, 5], [5.0, 6.8, 5], [5, 3.8, 5], [12, 12, 12]]  # B1-B2 2.55 Å
    f2 = [[5, 5, 5], [6.8, 5, 5], [5.0, 6.8, 5], [5, 2.9, 5], [12, 12, 12]]  # B0-H 2.10 Å
    x = np.array([f0, f1, f2], float)
    cells = np.repeat(np.eye(3)[None] * 20.0, 3, axis=0)
    whole = anion_bonds(x[:2], cells[:2], topo)
    assert whole["anions_bonded"] and whole["bonds_stretched"]
    assert whole["anion_criterion"] == "connected" and whole["broken_anions_max"] == 0
    assert whole["max_bond_A"]["X B-B"] == pytest.approx(np.hypot(1.8, 1.8))
    assert whole["max_bond_A"]["X B-H"] == pytest.approx(1.2)
    assert whole["bond_cutoff_A"]["X B-B"] == pytest.approx(1.3 * 2 * 0.84)
    assert whole["bond_cutoff_A"]["X B-H"] == pytest.approx(1.3 * (0.84 + 0.31))
    broken = anion_bonds(x, cells, topo)
    assert not broken["anions_bonded"] and broken["broken_anions_max"] == 1
    assert broken["broken_frames"] == 1 and broken["n_frames"] == 3
    assert broken["max_bond_A"]["X B-H"] == pytest.approx(2.1)
    # an anion kind with one element pair keeps the plain kind as its key
    star = SimpleNamespace(symbols=["P", "S", "S"], bonds=[[0, 1], [0, 2]],
                           rotor_id=[0, 0, 0], rotor_kind=["PS4"])
    y = np.array([[[5, 5, 5], [7.05, 5, 5], [5, 7.05, 5]]], float)
    rec = anion_bonds(y, cells[:1], star)
    assert list(rec["max_bond_A"]) == ["PS4"] and rec["anions_bonded"]


def test_msd_slope_ballistic_and_brownian():
    from rotorlab.training.checks import msd_slope

    rng = np.random.default_rng(11)
    nf, n = 2000, 40
    t = np.arange(nf) * 0.01
    masses = np.ones(n + 1)
    masses[-1] = 1e6  # a heavy frame atom keeps the centre of mass still
    mobile = np.arange(n)
    walk = np.cumsum(rng.normal(0, 0.1, size=(nf, n + 1, 3)), axis=0)
    walk[:, -1] = 0.0
    assert msd_slope(walk, masses, mobile, t)["slope"] == pytest.approx(1.0, abs=0.1)
    v = rng.normal(size=(1, n + 1, 3))
    v[:, -1] = 0.0
    ball = t[:, None, None] * v
    assert msd_slope(ball, masses, mobile, t)["slope"] == pytest.approx(2.0, abs=0.02)


@pytest.mark.slow
def test_network_sweep_records_speed_and_accuracy(tmp_path, cell, ref_teacher):
    pytest.importorskip("dpdata", reason="dpdata is needed to write DeePMD data sets")
    from rotorlab.training import data as D
    from rotorlab.training.sweep import sweep

    tm = ["Li", "P", "S"]
    D.write_set(_labelled(cell, ref_teacher, n=10, seed=12), tmp_path / "train", tm,
                ref_teacher.describe())
    D.write_set(_labelled(cell, ref_teacher, n=3, seed=13), tmp_path / "test", tm,
                ref_teacher.describe())
    cands = [{"name": "a", "rcut": 4.0, "neuron": [4, 8], "axis_neuron": 4, "fitting": [8, 8]},
             {"name": "b", "rcut": 4.5, "neuron": [8, 16], "axis_neuron": 4, "fitting": [16]}]
    rows = sweep([tmp_path / "train"], tmp_path / "test", cell, candidates=cands, steps=100,
                 workdir=tmp_path / "sw", type_map=tm)
    assert [r["name"] for r in rows] == ["a", "b"]
    for r in rows:
        assert r["steps_per_s"] > 0 and r["inference_ms_frozen"] > 0
        assert r["inference_ms_compressed"] > 0 and r["test"]["n_frames"] == 3
        assert r["size_bytes"]["frozen"] > 0
    assert json.loads((tmp_path / "sw" / "sweep.json").read_text()) == rows
    # a bigger descriptor has more parameters: a bigger frozen file
    assert rows[1]["size_bytes"]["frozen"] > rows[0]["size_bytes"]["frozen"]


def test_gr_reach_and_the_cell_the_card_checks_in(tmp_path):
    from ase.geometry import get_distances

    from rotorlab import materials
    from rotorlab.training import checks
    from rotorlab.training.card import check_cell

    cells = {}
    for sc in ((2, 2, 1), (2, 2, 2)):
        a = materials.get("Na3OBH4", sc)
        a.info["material"] = "Na3OBH4"
        cells[sc] = a
        r_max, nearest = checks.gr_reach(a)
        # half the smallest perpendicular width of the (cubic) cell; brute-force nearest pair
        assert r_max == pytest.approx(0.5 * min(a.cell.lengths()))
        na = [i for i, s in enumerate(a.get_chemical_symbols()) if s == "Na"]
        b = [i for i, s in enumerate(a.get_chemical_symbols()) if s == "B"]
        _, d = get_distances(a.positions[na], a.positions[b], cell=a.cell, pbc=True)
        assert nearest == pytest.approx(d.min())
    # the 36-atom cell's g(r) (2.29 Å) does not reach the nearest Na-B pair (3.23 Å)
    assert checks.gr_reach(cells[(2, 2, 1)])[0] < checks.gr_reach(cells[(2, 2, 1)])[1]

    class FakeLoop:
        def __init__(self, kinds):
            self.kinds = kinds

        def _cell(self, kind):
            if kind not in self.kinds:
                raise KeyError(kind)
            return self.kinds[kind]

    narrow, wide = cells[(2, 2, 1)], cells[(2, 2, 2)]
    assert check_cell(FakeLoop({"explore": narrow, "test": wide})) is wide
    assert check_cell(FakeLoop({"explore": wide, "test": narrow})) is wide
    assert check_cell(FakeLoop({"explore": narrow})) is narrow  # nothing wider: the widest
    # the comparison refuses a cell whose g(r) misses the first shell, before any MD
    with pytest.raises(ValueError, match="compare in a wider cell"):
        checks.student_vs_teacher("no-model.pb", narrow, None, 800.0, 10, tmp_path)


def test_card_schedule_records_the_members_own_steps():
    """A resumed loop whose settings changed, with a member reused from the shorter schedule:
    the card says what each iteration's members were trained for, not the settings."""
    from rotorlab.training import card

    iters = [{"iteration": 0, "train": {"steps": 2500, "start_lr": 2e-3, "init": "scratch",
                                        "members": [{"steps": 2500}, {"steps": 2500}]}},
             {"iteration": 1, "train": {"steps": 4000, "start_lr": 1e-3,
                                        "init": "previous members",
                                        "members": [{"steps": 1500}, {"steps": 4000}]}},
             {"iteration": 2}]
    rows = card._member_schedule(iters)
    assert [r["steps"] for r in rows] == [[2500, 2500], [1500, 4000]]
    text = card._schedule_text({"member_schedule": rows, "first_steps": 9, "next_steps": 9})
    assert text == ("member steps per iteration 0: 2500 (scratch); "
                    "1: 1500/4000 (previous members)")
    # an old card without the schedule falls back to the settings
    assert "first iteration 9 steps" in card._schedule_text(
        {"first_steps": 9, "next_steps": 9})
