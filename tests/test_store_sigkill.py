"""SIGKILL of a writer at random moments (issue 8): never more lost than the unfinished
chunk, never a store that ``info --verify`` reports as damaged, and the run resumes.

20 seeded trials: 16 of a plain append/checkpoint writer (random chunk sizes and kill
times) and 4 of a real ``rotorlab run`` of the LiBH4 quick cell (reference potential),
killed anywhere from start-up through store creation, equilibration and production; one of
those leaving a store are resumed and compared bit for bit with an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from rotorlab.store import TrajectoryStore, open_store

sys.path.insert(0, str(Path(__file__).parent))
from test_store import assert_frames_equal, make_frames  # noqa: E402

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
RUNNER = [sys.executable, "-c", "import sys; from rotorlab.cli import main; sys.exit(main())"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}

WRITER = textwrap.dedent("""
    import sys, numpy as np
    sys.path.insert(0, {tests!r})
    from test_store import new_store, make_frames
    st = new_store({path!r}, chunk_frames={chunk})
    i = 0
    while True:
        k = 1 + (i % 3)
        st.append(make_frames(i, k))
        i += k
        if i % {cp} < k:
            st.write_checkpoint({{"x": np.full(3, float(i))}}, {{"step": i}})
        print(i, st.n_frames_committed, flush=True)
""")


def _verify_clean(path):
    from rotorlab.cli import main

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # uncommitted tail: expected
        rc = main(["info", "--verify", str(path)])
        assert rc == 0, f"info --verify reports damage in {path}"
        return TrajectoryStore.open(path, "r").verify()


def test_sigkill_plain_writer_16_trials(tmp_path, capsys):
    rng = np.random.default_rng(2026)
    outcomes = []
    for trial in range(16):
        chunk = int(rng.integers(1, 8))
        cp = int(rng.integers(3, 12))
        target = int(rng.integers(3, 30))
        delay = float(rng.uniform(0, 0.05))
        p = tmp_path / f"w{trial}.zarr"
        code = WRITER.format(tests=str(Path(__file__).parent), path=str(p), chunk=chunk, cp=cp)
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        appended = committed_seen = 0
        try:
            deadline = time.time() + 60
            while appended < target and time.time() < deadline:
                line = proc.stdout.readline()
                if not line:
                    raise AssertionError(f"writer died: {proc.stderr.read()}")
                appended, committed_seen = map(int, line.split())
            time.sleep(delay)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait()
        rep = _verify_clean(p)
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            st = TrajectoryStore.open(p, "a")
        assert all("dropped" in str(w.message) for w in rec), [str(w.message) for w in rec]
        n = st.n_frames
        # never more lost than the unfinished chunk
        assert n >= committed_seen and n >= appended - chunk, (n, appended, chunk)
        assert_frames_equal(st.to_xarray(), make_frames(0, n), n)
        if st.has_checkpoint:
            arrays, meta = st.read_checkpoint()
            assert st.checkpoint_n_frames <= n
            np.testing.assert_array_equal(arrays["x"], np.full(3, float(meta["step"])))
        st.append(make_frames(n, 2 * chunk + 1))  # resume appending
        st.close()
        assert_frames_equal(open_store(p), make_frames(0, n + 2 * chunk + 1), n + 2 * chunk + 1)
        outcomes.append(f"plain chunk={chunk} appended={appended} committed_seen={committed_seen}"
                        f" kept={n} uncommitted_on_disk={rep.uncommitted} dropped_warnings="
                        f"{len(rec)} -> verify ok, resumed")
    with capsys.disabled():
        print("\n" + "\n".join(outcomes))


def _run_cli(args, **kw):
    return subprocess.run(RUNNER + args, capture_output=True, text=True, env=ENV, **kw)


RUN = ["run", "LiBH4", "-T", "600", "--steps", "120", "--frame-interval", "2",
       "--checkpoint-interval", "20", "--potential", "reference", "--seed", "3", "-q"]


def _committed_on_disk(p: Path) -> int:
    """The writer's committed frame count, read like any reader would (no lock)."""
    try:
        return int(json.loads((p / "zarr.json").read_text())["attributes"]["n_frames_committed"])
    except (OSError, ValueError, KeyError):
        return -1


def test_sigkill_rotorlab_run_4_trials_and_bitwise_resume(tmp_path, capsys):
    ref = tmp_path / "ref.zarr"
    r = _run_cli(RUN + ["-o", str(ref)], timeout=300)
    assert r.returncode == 0, r.stderr
    want = open_store(ref)
    n_ref = want.sizes["frame"]
    rng = np.random.default_rng(7)
    # kill moments: during start-up (no store yet), then when the live store has reached a
    # random committed frame count (read from disk like a reader) plus a random delay
    plans = [("startup", 0.3, 0.0)] + [("production", int(rng.integers(1, n_ref - 15)),
                                        float(rng.uniform(0, 0.3))) for _ in range(3)]
    outcomes = []
    compared = False
    for trial, (phase, at, delay) in enumerate(plans):
        p = tmp_path / f"k{trial}.zarr"
        proc = subprocess.Popen(RUNNER + RUN + ["-o", str(p)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=ENV)
        if phase == "startup":
            time.sleep(at)
        else:
            deadline = time.time() + 240
            while _committed_on_disk(p) < at and proc.poll() is None and time.time() < deadline:
                time.sleep(0.005)
            time.sleep(delay)
        finished = proc.poll() is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert not finished or phase == "startup", f"trial {trial} finished before the kill"
        if not p.exists():  # killed before the store was renamed into place
            leftovers = [q.name for q in tmp_path.iterdir() if q.name.startswith(f".{p.name}")]
            outcomes.append(f"run killed {at} s after start: no store yet "
                            f"(hidden build dirs left: {len(leftovers)})")
            continue
        rep = _verify_clean(p)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # uncommitted tail: expected
            ts = TrajectoryStore.open(p, "r")
        n_cp = ts.checkpoint_n_frames
        assert n_cp is not None and ts.n_frames_committed >= n_cp  # checkpoint consistent
        kept = ts.n_frames_committed
        r = _run_cli(["resume", str(p), "-q"], timeout=300)
        assert r.returncode == 0, r.stderr
        got = open_store(p)
        assert got.sizes["frame"] == n_ref
        for v in ("positions", "velocities", "conserved_energy", "step"):  # bit for bit
            np.testing.assert_array_equal(got[v].values, want[v].values, err_msg=v)
        compared = True
        assert _verify_clean(p).ok
        outcomes.append(f"run killed in {phase} ({at} frames committed + {delay:.2f} s): "
                        f"{kept} committed frames, checkpoint at {n_cp} frames, uncommitted "
                        f"{rep.uncommitted} -> verify ok, resumed to {n_ref} frames"
                        + ", bit-identical to the uninterrupted run")
    assert compared, "no trial left a store to resume"
    with capsys.disabled():
        print("\n" + "\n".join(outcomes))


def test_leftover_of_a_killed_atomic_write_is_silent_in_r_and_removed_in_a(tmp_path):
    # zarr writes zarr.json through a temporary "zarr.<hex>.partial"; a SIGKILL between the
    # two leaves it, and zarr then warns that the object is not part of the hierarchy
    from test_store import new_store

    p = tmp_path / "s.zarr"
    st = new_store(p, chunk_frames=2)
    st.append(make_frames(0, 4))
    st.close()
    left = p / "zarr.0123456789abcdef0123456789abcdef.partial"
    left.write_text("{")
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        ro = TrajectoryStore.open(p, "r")
        assert ro.n_frames == 4
    assert [str(w.message) for w in rec] == [] and left.is_file()  # read-only: untouched
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        rw = TrajectoryStore.open(p, "a")
        assert rw.n_frames == 4
        rw.close()
    assert [str(w.message) for w in rec] == [] and not left.exists()


def test_append_open_of_a_foreign_zarr_group_deletes_nothing(tmp_path):
    import zarr

    from rotorlab.store.trajectory import NotAStore

    p = tmp_path / "theirs.zarr"
    zarr.open_group(p, mode="w", zarr_format=3)
    mine = p / "zarr.0123456789abcdef0123456789abcdef.partial"
    mine.write_text("theirs")
    with pytest.raises(NotAStore):
        TrajectoryStore.open(p, "a")
    assert mine.read_text() == "theirs"
