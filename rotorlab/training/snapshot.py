"""A small, committable snapshot of a training loop's work directory, and its restoration.

``python -m rotorlab.training.snapshot WORKDIR`` writes ``WORKDIR/snapshot/``:

* ``structures/unit.extxyz`` — the structure the loop started from;
* ``data-iter.NNN.tar.xz``, ``data-test.tar.xz`` — every labelled data set (dpdata npy);
* ``members/member.K.pb`` (+ ``members.json``) — the latest trained ensemble (dropped
  once the finished products in the output directory hold it);
* ``candidates-iter.NNN.extxyz`` — the latest exploration's candidates (not yet labelled);
* ``added-iter.NNN.extxyz`` — frames queued by ``TrainingLoop.add_frames`` for an iteration
  not yet labelled;
* ``production/model.pb`` — the production model, once trained (likewise);

and prints the paths to ``git add`` with their sizes. Everything else in the work
directory (checkpoints, trajectories, logs) is re-creatable and ignored by the work
directory's ``.gitignore``. :func:`restore` (called by ``TrainingLoop.open``) rebuilds a
work directory from ``state.json`` + ``snapshot/`` on another machine, and forgets the
completed steps whose outputs the snapshot does not hold, so they are redone.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

__all__ = ["snapshot", "restore", "output_dir", "main"]


def _state(wd: Path) -> dict:
    from rotorlab.training.loop import STATE_FILE

    return json.loads((wd / STATE_FILE).read_text())


def _iters_done(state, step):
    return sorted(int(k.split("/")[0][5:]) for k in state["completed"]
                  if k.startswith("iter.") and k.endswith("/" + step))


def snapshot(workdir) -> dict:
    """Write ``workdir/snapshot/`` (see module docstring).

    Returns
    -------
    dict
        ``paths`` (to commit, relative to the current directory when inside it) → bytes,
        ``total_bytes``.
    """
    from rotorlab.training import data as D

    wd = Path(workdir)
    state = _state(wd)
    snap = wd / "snapshot"
    snap.mkdir(exist_ok=True)
    (snap / "structures").mkdir(exist_ok=True)
    shutil.copy2(wd / "structures" / "unit.extxyz", snap / "structures" / "unit.extxyz")
    for it in _iters_done(state, "label"):
        src = wd / "data" / f"iter.{it:03d}"
        dst = snap / f"data-iter.{it:03d}.tar.xz"
        if src.is_dir() and not dst.is_file():
            D.archive(src, dst)
    test = wd / "data" / "test"
    if (test / D.META).is_file() and not (snap / "data-test.tar.xz").is_file():
        D.archive(test, snap / "data-test.tar.xz")
    trained = _iters_done(state, "train")
    mdir = snap / "members"
    shipped = _shipped(state, wd)
    if shipped:
        # the finished products hold the ensemble and the production model: no copies here
        for p in (mdir, snap / "production"):
            if p.is_dir():
                shutil.rmtree(p)  # made by an earlier snapshot
        trained = []
    if trained:
        last = trained[-1]
        old = json.loads((mdir / "members.json").read_text()) if (mdir / "members.json").is_file() \
            else {}
        if old.get("iteration") != last:
            if mdir.is_dir():
                shutil.rmtree(mdir)  # made by an earlier snapshot
            mdir.mkdir()
            k = 0
            while (wd / f"iter.{last:03d}" / "train" / f"member.{k}" / "model.pb").is_file():
                shutil.copy2(wd / f"iter.{last:03d}" / "train" / f"member.{k}" / "model.pb",
                             mdir / f"member.{k}.pb")
                k += 1
            (mdir / "members.json").write_text(json.dumps({"iteration": last, "members": k}) + "\n")
    labelled = set(_iters_done(state, "label"))
    for p in snap.glob("added-iter.*.extxyz"):
        p.unlink()  # made by an earlier snapshot; rewritten below while still needed
    for it, rec in sorted((state.get("added_frames") or {}).items()):
        src = wd / rec["file"]
        if int(it) not in labelled and src.is_file():   # once labelled, data-iter holds them
            shutil.copy2(src, snap / f"added-iter.{int(it):03d}.extxyz")
    explored = _iters_done(state, "explore")
    for p in snap.glob("candidates-iter.*.extxyz"):
        p.unlink()
    if explored:
        last = explored[-1]
        src = wd / f"iter.{last:03d}" / "explore" / "candidates.extxyz"
        if src.is_file():
            shutil.copy2(src, snap / f"candidates-iter.{last:03d}.extxyz")
    if "production" in state["completed"] and not shipped:
        (snap / "production").mkdir(exist_ok=True)
        shutil.copy2(wd / state["production"]["model"], snap / "production" / "model.pb")
    paths = {}
    base = Path.cwd()
    for p in [wd / ".gitignore", wd / "state.json", *sorted(q for q in snap.rglob("*")
                                                             if q.is_file())]:
        if p.is_file():
            try:
                rel = str(p.relative_to(base))
            except ValueError:
                rel = str(p)
            paths[rel] = p.stat().st_size
    return {"paths": paths, "total_bytes": int(sum(paths.values()))}


def output_dir(state, workdir) -> Path | None:
    """The loop's output directory: in the repository layout (work directory
    ``datasets/training/<material>``) the same clone's ``datasets/models/<material>``,
    wherever the clone lives; otherwise the recorded ``output_dir``."""
    out = state["settings"].get("output_dir")
    if not out:
        return None
    wd = Path(workdir).resolve()
    if wd.parent.name == "training" and wd.parent.parent.name == "datasets":
        # the repository layout: always this clone's own datasets/models/<material>
        return wd.parent.parent / "models" / state["material"]
    p = Path(out)
    return p if p.is_absolute() else wd / p


def _shipped(state, workdir):
    """The output directory, when the card step has copied the products there."""
    if "card" not in state["completed"]:
        return None
    d = output_dir(state, workdir)
    if d is None or not (d / "card.json").is_file():
        return None
    card = json.loads((d / "card.json").read_text())
    files = [m["file"] for m in card.get("models", [])]
    if "model.pb" in files and all((d / f).is_file() for f in files):
        return d
    return None


def _drop_from(state, it, step_order, first):
    keep = []
    drop = set(step_order[step_order.index(first):])
    for k in state["completed"]:
        if k.startswith(f"iter.{it:03d}/") and k.split("/")[1] in drop:
            continue
        keep.append(k)
    state["completed"] = keep


def restore(workdir) -> list:
    """Rebuild a work directory's files from its ``snapshot/`` (idempotent).

    Steps recorded as completed whose outputs are neither on disk nor in the snapshot are
    forgotten (they run again), as are all final steps when the production model is
    missing.

    Returns
    -------
    list of str
        What was restored or forgotten.
    """
    from rotorlab.training import data as D
    from rotorlab.training.loop import FINAL_STEPS, STATE_FILE, STEPS, _write_json

    wd = Path(workdir)
    state = _state(wd)
    snap = wd / "snapshot"
    did = []
    unit = wd / "structures" / "unit.extxyz"
    if not unit.is_file() and (snap / "structures" / "unit.extxyz").is_file():
        unit.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(snap / "structures" / "unit.extxyz", unit)
        did.append("structures/unit.extxyz")
    for arc in sorted(snap.glob("data-*.tar.xz")):
        name = arc.name[len("data-"):-len(".tar.xz")]
        dst = wd / "data" / name
        if not (dst / D.META).is_file():
            if dst.exists():
                shutil.rmtree(dst)
            D.extract(arc, dst)
            did.append(f"data/{name}")
    shipped = _shipped(state, wd)
    if shipped is not None:
        last = state["production"]["last_iteration"]
        card = json.loads((shipped / "card.json").read_text())
        members = [m["file"] for m in card["models"] if m["file"].startswith("ensemble-")]
        for k, f in enumerate(members):
            dst = wd / f"iter.{last:03d}" / "train" / f"member.{k}" / "model.pb"
            if not dst.is_file():
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(shipped / f, dst)
                (dst.parent / "train_info.json").write_text(json.dumps(
                    {"model": str(dst), "restored_from": str(shipped / f)}) + "\n")
                did.append(str(dst.relative_to(wd)))
        dst = wd / state["production"]["model"]
        if not dst.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(shipped / "model.pb", dst)
            did.append(str(dst.relative_to(wd)))
    mj = snap / "members" / "members.json"
    if mj.is_file():
        m = json.loads(mj.read_text())
        for k in range(m["members"]):
            dst = wd / f"iter.{m['iteration']:03d}" / "train" / f"member.{k}" / "model.pb"
            if not dst.is_file():
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(snap / "members" / f"member.{k}.pb", dst)
                (dst.parent / "train_info.json").write_text(json.dumps(
                    {"model": str(dst), "restored_from_snapshot": True}) + "\n")
                did.append(str(dst.relative_to(wd)))
    for c in snap.glob("candidates-iter.*.extxyz"):
        it = int(c.name.split(".")[1])
        dst = wd / f"iter.{it:03d}" / "explore" / "candidates.extxyz"
        if not dst.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(c, dst)
            did.append(str(dst.relative_to(wd)))
    for c in snap.glob("added-iter.*.extxyz"):
        it = int(c.name.split(".")[1])
        rec = (state.get("added_frames") or {}).get(str(it))
        dst = wd / (rec["file"] if rec else f"added/iter.{it:03d}.extxyz")
        if not dst.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(c, dst)
            did.append(str(dst.relative_to(wd)))
    pm = snap / "production" / "model.pb"
    if "production" in state["completed"] and pm.is_file():
        dst = wd / state["production"]["model"]
        if not dst.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(pm, dst)
            did.append(str(dst.relative_to(wd)))
    # forget completed steps whose outputs are missing
    before = list(state["completed"])
    its = sorted({int(k.split("/")[0][5:]) for k in state["completed"] if k.startswith("iter.")})
    for it in its:
        d = wd / f"iter.{it:03d}"

        def done(step, it=it):
            return f"iter.{it:03d}/{step}" in state["completed"]

        if done("configs") and not done("label") and not (d / "configs" / "pending.extxyz").is_file():
            _drop_from(state, it, STEPS, "configs")
        if done("label") and not (wd / "data" / f"iter.{it:03d}" / D.META).is_file():
            _drop_from(state, it, STEPS, "configs")
        members = list((d / "train").glob("member.*/model.pb"))
        if done("train") and len(members) < state["settings"]["members"]:
            if done("explore") and (it + 1) in its and (
                    f"iter.{it + 1:03d}/train" in state["completed"]):
                continue  # superseded by the next iteration's members
            _drop_from(state, it, STEPS, "train")
        if done("explore") and not (d / "explore" / "candidates.extxyz").is_file() and (
                f"iter.{it + 1:03d}/configs" not in state["completed"]):
            _drop_from(state, it, STEPS, "explore")
    if "production" in state["completed"] and not (wd / state["production"]["model"]).is_file():
        state["completed"] = [k for k in state["completed"] if k not in FINAL_STEPS]
    forgotten = [k for k in before if k not in state["completed"]]
    if forgotten:
        if state.get("stop_reason") and not any(k in state["completed"] for k in FINAL_STEPS):
            pass
        did += [f"forgot {k}" for k in forgotten]
        _write_json(wd / STATE_FILE, state)
    return did


def main(argv=None) -> int:
    """``python -m rotorlab.training.snapshot WORKDIR``: write the snapshot, print git paths."""
    p = argparse.ArgumentParser(prog="python -m rotorlab.training.snapshot",
                                description=__doc__.splitlines()[0])
    p.add_argument("workdir")
    a = p.parse_args(argv)
    res = snapshot(a.workdir)
    for path, size in res["paths"].items():
        print(f"{size / 1e6:9.3f} MB  {path}")
    print(f"{res['total_bytes'] / 1e6:9.3f} MB  total")
    print("git add " + " ".join(res["paths"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
