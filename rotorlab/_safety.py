"""One overwrite policy for every output rotorlab writes (stores, structure files, result
directories).

Rules (issue 8):

* an existing output is refused unless the caller passes ``overwrite=True``
  (``--overwrite`` on the command line);
* even with ``overwrite=True`` rotorlab only replaces something of its own kind: a
  rotorlab trajectory store (recognised by its marker), a regular file for a file output,
  or a directory that rotorlab marked as its own output (:func:`mark_output_dir`);
* never ``/``, the home directory, the working directory or any directory above them,
  and never a symbolic link (the link target may be anywhere);
* never an output inside an input store (or any input), and never an output that
  contains an input.

:func:`check_output` applies these rules before any work is done; every refusal is a
one-line message in the user's terms.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["OutputExists", "UnsafeOutput", "check_output", "protected_reason",
           "mark_output_dir", "OUTPUT_MARKER", "OUTPUT_KINDS", "describe_contents"]

#: File rotorlab writes into every output directory it creates (see :func:`mark_output_dir`).
OUTPUT_MARKER = ".rotorlab-output"
#: Kinds of output :func:`check_output` knows.
OUTPUT_KINDS = ("file", "directory", "store")

_REPLACE_HINT = "pass --overwrite (CLI) / overwrite=True (Python) to replace it"


class OutputExists(FileExistsError):
    """The output path exists and ``overwrite`` was not given."""


class UnsafeOutput(ValueError):
    """The output may not be written or replaced at all (not rotorlab's, protected, or
    inside an input)."""


def _abs(path) -> Path:
    """Absolute, normalised path *without* resolving the last component's symlink."""
    p = Path(os.path.abspath(os.path.expanduser(os.fspath(path))))
    return p.parent.resolve() / p.name if p.name else p.resolve()


def protected_reason(path) -> str | None:
    """Why ``path`` must never be replaced, or ``None``.

    Protected: the file-system root, the home directory, the current working directory,
    and every directory above the working or home directory.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    str or None
        A short reason such as ``"the working directory"``.
    """
    p = _abs(path)
    try:
        rp = p.resolve()
    except OSError:
        rp = p
    cwd = Path.cwd().resolve()
    home = Path.home().resolve()
    for cand in {p, rp}:
        if cand == Path(cand.anchor):
            return "the file-system root"
        if cand == cwd:
            return "the working directory"
        if cand == home:
            return "the home directory"
        if cand in cwd.parents:
            return "a parent of the working directory"
        if cand in home.parents:
            return "a parent of the home directory"
    return None


def describe_contents(path: Path) -> str:
    """``"it holds 3 files"``-style summary of a directory (for messages)."""
    try:
        entries = list(Path(path).iterdir())
    except OSError:
        return "it cannot be listed"
    nf = sum(1 for e in entries if not e.is_dir())
    nd = len(entries) - nf
    parts = []
    if nf:
        parts.append(f"{nf} file{'s' if nf != 1 else ''}")
    if nd:
        parts.append(f"{nd} folder{'s' if nd != 1 else ''}")
    return "it is empty" if not parts else "it holds " + " and ".join(parts)


def mark_output_dir(path, kind: str) -> Path:
    """Create directory ``path`` (if needed) and mark it as a rotorlab output of ``kind``.

    A later :func:`check_output` with ``kind="directory"`` and ``overwrite=True`` accepts
    a directory only when it carries this marker (or is empty).

    Parameters
    ----------
    path : str or path-like
    kind : str
        Free-form producer name, e.g. ``"analysis results"``.

    Returns
    -------
    pathlib.Path
        The marker file.
    """
    d = Path(path)
    d.mkdir(parents=True, exist_ok=True)
    m = d / OUTPUT_MARKER
    m.write_text(json.dumps({"producer": "rotorlab", "kind": str(kind)}) + "\n")
    return m


def _is_marked_dir(path: Path) -> bool:
    try:
        return json.loads((path / OUTPUT_MARKER).read_text()).get("producer") == "rotorlab"
    except (OSError, ValueError, AttributeError):
        return False


def _inside(a: Path, b: Path) -> bool:
    """Whether ``a`` is ``b`` or lies below it."""
    return a == b or b in a.parents


def check_output(path, *, overwrite: bool, kind: str, inputs: Iterable = ()) -> Path:
    """Check that ``path`` may be written (before any work is done).

    Parameters
    ----------
    path : str or path-like
        The output (file, directory or trajectory store).
    overwrite : bool
        Whether the user allowed replacing an existing output.
    kind : {"file", "directory", "store"}
        What the output is.  With ``overwrite=True`` an existing path is accepted only
        if it is of this kind: a regular file for ``"file"``; a directory carrying the
        marker of :func:`mark_output_dir` (or an empty one) for ``"directory"``; a
        rotorlab trajectory store for ``"store"``.
    inputs : iterable of path-like
        Inputs of the command (stores, structure files).  The output may be neither
        inside an input nor contain one.

    Returns
    -------
    pathlib.Path
        The absolute output path (the caller may now remove/replace it when it exists).

    Raises
    ------
    OutputExists
        ``path`` exists and ``overwrite`` is false.
    UnsafeOutput
        ``path`` is protected, a symbolic link, not of ``kind``, inside an input or
        containing one.
    ValueError
        Unknown ``kind``.
    """
    if kind not in OUTPUT_KINDS:
        raise ValueError(f"kind must be one of {OUTPUT_KINDS}, got {kind!r}")
    shown = os.fspath(path)
    p = _abs(path)
    rp = p.resolve() if p.exists() else p
    for inp in inputs:
        ip = _abs(inp)
        irp = ip.resolve() if ip.exists() else ip
        for out in {p, rp}:
            for i in {ip, irp}:
                if _inside(out, i):
                    raise UnsafeOutput(f"{shown} is {'the input' if out == i else 'inside the input'} "
                                       f"{os.fspath(inp)}; write the output elsewhere — rotorlab "
                                       f"never writes into its inputs")
                if _inside(i, out):
                    raise UnsafeOutput(f"{shown} contains the input {os.fspath(inp)}; choose "
                                       f"another output path")
    why = protected_reason(p)
    if p.is_symlink():
        if not overwrite and not p.exists():
            raise UnsafeOutput(f"{shown} is a broken symbolic link; remove it or choose another "
                               f"output path")
        if overwrite:
            raise UnsafeOutput(f"{shown} is a symbolic link; rotorlab does not replace links "
                               f"(the target may hold anything) — choose another output path")
    if not (p.exists() or p.is_symlink()):
        if why:  # cannot happen for an existing cwd, but keep the rule total
            raise UnsafeOutput(f"{shown} is {why}; choose another output path")
        return p
    if (kind != "file" and not why and p.is_dir() and not p.is_symlink()
            and not any(p.iterdir())):
        return p  # an empty directory: nothing to lose (e.g. made by `mkdir` beforehand)
    # an existing path: protected ones never, then whether it is of the right kind at all,
    # and only then whether the user allowed replacing it
    if why:
        raise UnsafeOutput(f"{shown} is {why}; rotorlab never replaces it — choose another "
                           f"output path")
    if kind == "file":
        if not p.is_file():
            raise UnsafeOutput(f"{shown} exists and is not a file ({describe_contents(p)}); "
                               f"choose another output path — rotorlab only replaces a file "
                               f"with a file")
        exists_msg = f"{shown} exists; {_REPLACE_HINT}"
        exc_type = OutputExists
    elif kind == "directory":
        if not p.is_dir():
            raise UnsafeOutput(f"{shown} exists and is not a directory; choose another output "
                               f"path")
        if any(p.iterdir()) and not _is_marked_dir(p):
            raise UnsafeOutput(f"{shown} exists and is not a rotorlab output directory "
                               f"({describe_contents(p)}); choose another output path — "
                               f"rotorlab only ever replaces its own outputs")
        exists_msg = f"{shown} exists; {_REPLACE_HINT}"
        exc_type = OutputExists
    else:  # store
        from rotorlab.store.trajectory import NotAStore, StoreExists, store_marker_reason

        bad = store_marker_reason(p)
        if bad:
            raise NotAStore(f"{shown} exists and {bad}; choose another -o path — rotorlab "
                            f"only ever overwrites its own stores")
        exists_msg = (f"{shown} exists; pass --overwrite (CLI) / overwrite=True (Python) to "
                      f"replace this rotorlab store")
        exc_type = StoreExists
    if not overwrite:
        raise exc_type(exists_msg)
    return p
    if not overwrite:
        what = {"store": "exists", "file": "exists", "directory": "exists"}[kind]
        raise OutputExists(f"{shown} {what}; {_REPLACE_HINT}")
    if why:
        raise UnsafeOutput(f"{shown} is {why}; rotorlab never replaces it — choose another "
                           f"output path")
    if kind == "file":
        if not p.is_file():
            raise UnsafeOutput(f"{shown} exists and is not a file ({describe_contents(p)}); "
                               f"choose another output path — rotorlab only replaces a file "
                               f"with a file")
    elif kind == "directory":
        if not p.is_dir():
            raise UnsafeOutput(f"{shown} exists and is not a directory; choose another output "
                               f"path")
        if any(p.iterdir()) and not _is_marked_dir(p):
            raise UnsafeOutput(f"{shown} exists and is not a rotorlab output directory "
                               f"({describe_contents(p)}); choose another output path — "
                               f"rotorlab only ever replaces its own outputs")
    else:  # store
        from rotorlab.store.trajectory import store_marker_reason

        bad = store_marker_reason(p)
        if bad:
            raise UnsafeOutput(f"{shown} exists and {bad}; choose another output path — "
                               f"rotorlab only ever overwrites its own stores")
    return p
