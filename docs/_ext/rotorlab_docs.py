"""Sphinx extension of the rotorlab docs.

* ``builder-inited``: runs :func:`generate.generate` (material, model, notebook, API and
  "reproduce the study" pages into ``docs/generated/``) and mocks the optional packages
  that are not installed, so every module is documented.
* ``autodoc-process-docstring`` (before numpydoc): a section heading that numpydoc does
  not know (e.g. "Definitions (DESIGN §5)" or "Crash safety" in a module docstring) becomes
  a rubric, so its text is kept instead of dropped.
* ``missing-reference``: a cross-reference to a re-exported name
  (``rotorlab.potentials.resolve``) is resolved to the object's defining module
  (``rotorlab.potentials.registry.resolve``). Anything still unresolved stays a warning,
  which ``-W`` turns into an error.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import generate

# numpydoc's section names (NumpyDocString.sections)
_NUMPYDOC_SECTIONS = {
    "Signature", "Summary", "Extended Summary", "Parameters", "Returns", "Yields", "Receives",
    "Raises", "Warns", "Other Parameters", "Attributes", "Methods", "See Also", "Notes",
    "Warnings", "References", "Examples", "Index",
}


def _on_builder_inited(app):
    docs = Path(app.srcdir)
    res = generate.generate(docs.parent, docs / "generated")
    if res["mock"]:
        mocks = list(app.config.autodoc_mock_imports or [])
        app.config.autodoc_mock_imports = mocks + [m for m in res["mock"] if m not in mocks]
    from sphinx.util import logging

    logging.getLogger(__name__).info(
        f"rotorlab docs: generated {len(res['materials'])} material, {len(res['models'])} "
        f"model, {len(res['notebooks'])} notebook and {len(res['api'])} API pages"
        + (f"; mocked {', '.join(res['mock'])}" if res["mock"] else ""))


_UNDERLINE = re.compile(r"^\s*([-=~^])\1{2,}\s*$")


def headings_to_rubrics(lines: list) -> None:
    """Turn underlined headings that are not numpydoc sections into rubrics, in place."""
    i = 0
    while i < len(lines) - 1:
        title, under = lines[i].strip(), lines[i + 1]
        if (title and _UNDERLINE.match(under) and len(under.strip()) >= len(title) - 2
                and " ".join(w.capitalize() for w in title.split()) not in _NUMPYDOC_SECTIONS
                and title not in _NUMPYDOC_SECTIONS):
            indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
            lines[i:i + 2] = [f"{indent}.. rubric:: {title}", ""]
        i += 1


def _on_docstring(app, what, name, obj, options, lines):
    headings_to_rubrics(lines)


def _lookup(target: str):
    parts = target.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except Exception:
            continue
        try:
            for p in parts[i:]:
                obj = getattr(obj, p)
        except AttributeError:
            return None
        return obj
    return None


def _canonical(obj) -> str | None:
    if inspect.ismodule(obj):
        return obj.__name__
    f = getattr(obj, "py_func", obj)
    mod, qual = getattr(f, "__module__", None), getattr(f, "__qualname__", None)
    if mod and qual and mod.startswith("rotorlab"):
        return f"{mod}.{qual}"
    return None


def _on_missing_reference(app, env, node, contnode):
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    cands = [target]
    mod = node.get("py:module")
    if mod and not target.startswith("rotorlab"):
        cands.append(f"{mod}.{target}")
        cls = node.get("py:class")
        if cls:
            cands.append(f"{mod}.{cls}.{target}")
    domain = env.get_domain("py")
    for t in cands:
        if not t.startswith("rotorlab"):
            continue
        obj = _lookup(t)
        canon = _canonical(obj) if obj is not None else None
        if not canon or canon == t:
            continue
        new = node.deepcopy()
        new["reftarget"] = canon
        for role in (node.get("reftype"), "obj"):
            res = domain.resolve_xref(env, node["refdoc"], app.builder, role, canon, new,
                                      contnode)
            if res is not None:
                return res
    # An instance attribute (described in its class's *Attributes* section, so it has no
    # target of its own): link to the class.
    if node.get("reftype") in ("attr", "obj"):
        for t in cands:
            if not t.startswith("rotorlab") or "." not in t:
                continue
            parent, attr = t.rsplit(".", 1)
            cls = _lookup(parent)
            if not inspect.isclass(cls) or attr.startswith("_"):
                continue
            canon = _canonical(cls)
            if canon and attr in (inspect.getdoc(cls) or ""):
                new = node.deepcopy()
                new["reftarget"] = canon
                res = domain.resolve_xref(env, node["refdoc"], app.builder, "class", canon,
                                          new, contnode)
                if res is not None:
                    return res
    return None


def _on_process_bases(app, name, obj, options, bases):
    """Hide private base classes (``_Analyzer``): they are not part of the API."""
    bases[:] = [b for b in bases if not getattr(b, "__name__", "").startswith("_")] or bases[:0]


def setup(app):
    app.connect("builder-inited", _on_builder_inited)
    app.connect("autodoc-process-docstring", _on_docstring, priority=400)
    app.connect("missing-reference", _on_missing_reference)
    app.connect("autodoc-process-bases", _on_process_bases)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
