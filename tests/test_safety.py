"""rotorlab._safety.check_output: one overwrite policy for every output (issue 8 §1, §5)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from rotorlab._safety import (OutputExists, UnsafeOutput, check_output, mark_output_dir,
                              protected_reason)

sys.path.insert(0, str(Path(__file__).parent))
from test_store import make_frames, new_store  # noqa: E402


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A private home and working directory (never the real ones)."""
    h = tmp_path / "home" / "user"
    work = h / "project" / "work"
    work.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(h))
    monkeypatch.chdir(work)
    return h


def test_new_output_is_fine_and_absolute(home):
    p = check_output("new.cif", overwrite=False, kind="file")
    assert p == Path.cwd() / "new.cif" and p.is_absolute()
    assert not p.exists()  # checking creates nothing


def test_existing_file_needs_overwrite_and_stays_untouched(home):
    f = Path("existing.cif")
    f.write_text("user data")
    with pytest.raises(OutputExists, match=r"existing.cif exists; pass --overwrite \(CLI\) / "
                                           r"overwrite=True \(Python\)"):
        check_output(f, overwrite=False, kind="file")
    assert check_output(f, overwrite=True, kind="file") == Path.cwd() / "existing.cif"
    assert f.read_text() == "user data"


def test_only_same_kind_is_replaced(home):
    d = Path("adir")
    d.mkdir()
    (d / "notes.txt").write_text("keep")
    with pytest.raises(UnsafeOutput, match="not a file"):
        check_output(d, overwrite=True, kind="file")
    with pytest.raises(UnsafeOutput, match=r"not a rotorlab output directory \(it holds 1 file\)"):
        check_output(d, overwrite=True, kind="directory")
    # even without --overwrite the message says it is not rotorlab's (no false hint)
    with pytest.raises(UnsafeOutput, match="not a rotorlab output directory"):
        check_output(d, overwrite=False, kind="directory")
    assert (d / "notes.txt").read_text() == "keep"
    with pytest.raises(UnsafeOutput, match="not a directory"):
        Path("f.nc").write_text("x")
        check_output("f.nc", overwrite=True, kind="directory")
    # a directory rotorlab marked as its own output, or an empty one, may be replaced
    mark_output_dir("results", "analysis results")
    (Path("results") / "results.nc").write_text("old")
    with pytest.raises(OutputExists, match="--overwrite"):
        check_output("results", overwrite=False, kind="directory")
    assert check_output("results", overwrite=True, kind="directory").name == "results"
    Path("empty").mkdir()
    assert check_output("empty", overwrite=True, kind="directory").name == "empty"
    assert check_output("empty", overwrite=False, kind="store").name == "empty"
    with pytest.raises(OutputExists):  # an empty *file* is still a file someone made
        Path("empty.cif").write_text("")
        check_output("empty.cif", overwrite=False, kind="file")
    with pytest.raises(ValueError, match="kind must be one of"):
        check_output("x", overwrite=True, kind="folder")


@pytest.mark.parametrize("which", [".", "~", "/", "..", "../..", "cwd-abs", "~/project"])
def test_protected_paths_are_never_replaced(home, which):
    target = {"cwd-abs": str(Path.cwd())}.get(which, which)
    mark_output_dir(".", "would-be results")  # even a marked cwd is protected
    before = sorted(os.listdir("."))
    with pytest.raises(UnsafeOutput, match="never replaces it"):
        check_output(target, overwrite=True, kind="directory")
    assert sorted(os.listdir(".")) == before
    assert protected_reason(target) is not None


def test_protected_reason_names_what(home):
    assert protected_reason(".") == "the working directory"
    assert protected_reason("~") == "the home directory"
    assert protected_reason("/") == "the file-system root"
    assert protected_reason("..") == "a parent of the working directory"
    assert protected_reason("sub") is None


def test_never_inside_an_input_store_nor_containing_one(home):
    st = Path("s.zarr")
    new_store(st).append(make_frames(0, 2))
    for out in ("s.zarr", "s.zarr/results", "s.zarr/positions/x.nc"):
        with pytest.raises(UnsafeOutput, match="input"):
            check_output(out, overwrite=True, kind="directory", inputs=[st])
    Path("runs").mkdir()
    inner = Path("runs") / "a.zarr"
    new_store(inner)
    mark_output_dir("runs", "results")
    with pytest.raises(UnsafeOutput, match="contains the input"):
        check_output("runs", overwrite=True, kind="directory", inputs=[inner])
    # the same input through another spelling (absolute path) is still caught
    with pytest.raises(UnsafeOutput, match="input"):
        check_output(Path.cwd() / "s.zarr" / "r", overwrite=False, kind="directory",
                     inputs=["s.zarr"])
    assert check_output("elsewhere", overwrite=False, kind="directory", inputs=[st])


def test_symlinks_are_not_replaced(home, tmp_path):
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "data").write_text("keep")
    os.symlink(outside, "link")
    with pytest.raises(UnsafeOutput, match="symbolic link"):
        check_output("link", overwrite=True, kind="directory")
    os.symlink(tmp_path / "nothing-here", "dangling")
    with pytest.raises(UnsafeOutput, match="broken symbolic link"):
        check_output("dangling", overwrite=False, kind="file")
    assert (outside / "data").read_text() == "keep"


def test_store_kind_uses_the_store_marker(home):
    from rotorlab.store import NotAStore, StoreExists

    Path("d").mkdir()
    (Path("d") / "user.txt").write_text("mine")
    with pytest.raises(NotAStore, match=r"d exists and is not a rotorlab store \(it holds 1 "
                                        r"file\); choose another -o path"):
        check_output("d", overwrite=True, kind="store")
    assert isinstance(NotAStore("x"), ValueError) and isinstance(StoreExists("x"), FileExistsError)
    new_store(Path("s.zarr"))
    with pytest.raises(StoreExists, match="replace this rotorlab store"):
        check_output("s.zarr", overwrite=False, kind="store")
    assert check_output("s.zarr", overwrite=True, kind="store").name == "s.zarr"
