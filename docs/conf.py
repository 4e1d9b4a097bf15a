"""Sphinx configuration of the rotorlab documentation.

Build: ``make docs`` (warnings are errors, cross-references nitpicky, relative links in the
HTML checked by ``docs/_ext/check_links.py``). Pages for the materials, the bundled models,
the notebooks and the API are generated at build time by ``docs/_ext/generate.py`` into
``docs/generated/`` (not committed).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(ROOT))          # document this checkout, not an installed copy

import rotorlab  # noqa: E402

project = "rotorlab"
author = "rotorlab developers"
copyright = "2026, rotorlab developers"
release = rotorlab.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_nb",
    "rotorlab_docs",          # docs/_ext/rotorlab_docs.py: page generation, xref repair
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints", "jupyter_execute",
                    "generated/screenshots.md"]   # included by guide/app.md
templates_path = []

# -- cross-references: nitpicky for rotorlab's own objects --------------------------------
nitpicky = True
# No network in CI, so no intersphinx: names of other packages and numpydoc's type words
# cannot resolve and are not checked. Everything under ``rotorlab.`` is.
nitpick_ignore_regex = [
    (r"py:.*", r"(?!rotorlab\b).*"),
    # private modules (``rotorlab._safety`` ...) are not part of the API reference
    (r"py:.*", r"rotorlab\._.*"),
]
# Parts that other work adds (docstrings may already name them): a reference to one that is
# not in this checkout is not checked; once it exists, references to it are.
LANDING = ("training", "campaign", "viz", "app", "geometry")
for _part in LANDING:
    if not ((ROOT / "rotorlab" / _part).is_dir() or (ROOT / "rotorlab" / f"{_part}.py").is_file()):
        nitpick_ignore_regex.append((r"py:.*", rf"rotorlab\.{_part}(\..*)?"))

# -- autodoc / numpydoc ---------------------------------------------------------------------
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"             # numpydoc's Parameters sections carry the types
autodoc_mock_imports: list[str] = []
autosummary_generate = False           # the API pages are written by generate.py
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

# -- MyST / notebooks -----------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
# Notebooks are committed with their outputs and rendered as they are; one committed
# without outputs is executed ("auto"), and an error in it fails the build.
nb_execution_mode = os.environ.get("ROTORLAB_DOCS_EXECUTE", "auto")
nb_execution_timeout = 900
nb_execution_raise_on_error = True
nb_execution_in_temp = True          # files a notebook writes stay out of the source tree
nb_execution_show_tb = True
nb_merge_streams = True
# Widget views (nglview, Panel) need a live kernel; their static fallbacks are shown.
# notebooks use ### for their sections under the # title
suppress_warnings = ["mystnb.unknown_mime_type", "myst.header"]

# -- HTML -----------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"rotorlab {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"index": [], "getting-started": []}
html_show_sourcelink = False
