"""The version has one source (``rotorlab/__init__.py``) and every consumer agrees with it."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import rotorlab

ROOT = Path(__file__).resolve().parents[1]


def test_version_is_pep440():
    assert re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?",
                        rotorlab.__version__), rotorlab.__version__


def test_cli_version_agrees():
    r = subprocess.run([sys.executable, "-m", "rotorlab.cli", "--version"], capture_output=True,
                       text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"rotorlab {rotorlab.__version__}"


def test_pyproject_reads_the_one_source():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in cfg["project"], "a second, static version in pyproject.toml"
    assert "version" in cfg["project"]["dynamic"]
    assert cfg["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "rotorlab.__version__"}


def test_version_is_a_literal_setuptools_reads_statically():
    # setuptools' ``attr:`` reads a literal assignment without importing the package
    import ast

    tree = ast.parse((ROOT / "rotorlab" / "__init__.py").read_text())
    values = [n.value.value for n in tree.body if isinstance(n, ast.Assign)
              and any(getattr(t, "id", None) == "__version__" for t in n.targets)
              and isinstance(n.value, ast.Constant)]
    assert values == [rotorlab.__version__]


def test_setuptools_resolves_the_same_version():
    import pytest
    import setuptools

    if int(setuptools.__version__.split(".")[0]) < 77:   # the build backend needs >= 77
        pytest.skip(f"setuptools {setuptools.__version__} < 77 cannot read this pyproject")
    from setuptools.config.pyprojecttoml import read_configuration

    conf = read_configuration(ROOT / "pyproject.toml", expand=True)
    assert conf["project"]["version"] == rotorlab.__version__


def test_citation_cff_version_and_references():
    import yaml

    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"].startswith("1.2")
    assert str(cff["version"]) == rotorlab.__version__, "bump CITATION.cff with __version__"
    text = (ROOT / "CITATION.cff").read_text()
    assert "2501.02440" in str(cff["preferred-citation"])          # the reference study
    assert "10.1021/acs.jctc.4c00190" in text                        # SevenNet (teacher)
    assert all("title" in r and "authors" in r for r in cff["references"])


def test_changelog_has_the_current_version():
    text = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(rf"^## \[{re.escape(rotorlab.__version__)}\]", text, re.M)
