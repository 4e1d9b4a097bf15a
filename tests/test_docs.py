"""Documentation: generated pages, the internal link checker and (slow) the full Sphinx build.

The fast tests need only rotorlab; the build test needs the ``docs`` extra and skips
cleanly without it (``make docs`` installs it).
"""

import importlib.util
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXT = ROOT / "docs" / "_ext"
sys.path.insert(0, str(EXT))

import check_links  # noqa: E402
import generate  # noqa: E402


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("docs") / "generated"
    res = generate.generate(ROOT, out)
    return out, res


# ------------------------------------------------------------------------ generation


def test_model_page_from_card(generated):
    out, res = generated
    card = json.loads((ROOT / "datasets/models/tiny-LiBH4/card.json").read_text())
    assert "tiny-LiBH4" in res["models"]
    page = (out / "models" / "tiny-LiBH4.md").read_text()
    # a test fixture is flagged as such, not presented as a model of LiBH4
    assert ":::{warning}" in page and "NOT a physical model" in page
    assert "analytic NumPy force field" in page                 # teacher
    for m in card["models"]:                                      # every file and its errors
        assert m["file"] in page
        assert generate._fmt(m["rmse_force_test_meV_per_A"]) in page
        assert generate._fmt(m["rmse_energy_test_meV_per_atom"]) in page
    assert str(card["data"]["n_train"]) in page and str(card["data"]["n_test"]) in page
    assert "[LiBH4](../materials/LiBH4.md)" in page               # linked to its material
    # the compressed copy is not an ensemble member
    members = page.split("ensemble members (first drives) | ")[1].split("|")[0]
    assert "model-compressed.pb" not in members and "model-seed3.pb" in members


def test_model_page_renders_unknown_card_fields(tmp_path):
    d = tmp_path / "datasets" / "models" / "x-Li3PS4"
    d.mkdir(parents=True)
    card = {"id": "x-Li3PS4", "material": "Li3PS4", "purpose": "production",
            "teacher": "SevenNet-0 (7net-0), sevenn 0.13.0",
            "sanity_checks": {"anions_bonded_20ps": True, "msd_slope": 0.98},
            "known_limits": ["teacher softening: forces ~10 % low"],
            "inference_ms_per_step": {"quick": 9.1, "paper": 61.0},
            "something_new": {"nested": {"deep": 1}}}
    (d / "card.json").write_text(json.dumps(card))
    page = generate.model_page(d / "card.json", ["Li3PS4"])
    assert "## Sanity checks" in page and "0.98" in page
    assert "## Known limits" in page and "teacher softening" in page
    assert "## Speed" in page and "61" in page
    assert "## Other card fields" in page and "deep" in page   # nothing in a card is dropped
    assert "10.1021/acs.jctc.4c00190" in page                   # the teacher's paper is cited
    assert ":::{warning}" not in page


def test_material_pages_match_the_catalog(generated):
    from rotorlab import materials

    out, res = generated
    assert res["materials"] == materials.names()
    for name in materials.names():
        page = (out / "materials" / f"{name}.md").read_text()
        m = materials.catalog(name)
        assert f"# {m.name}" in page
        assert f"{m.timestep:g} fs" in page
        try:
            atoms = materials.get(name, "quick")
        except Exception:
            continue                      # no bundled structure: the page says so
        # atoms per size, checked against the built structure, not the catalog's numbers
        assert f"= {len(atoms)} atoms" in page
        assert f"detected in the quick cell: {len(atoms)} atoms" in page
    index = (out / "materials" / "index.md").read_text()
    assert all(f"[{n}]({n}.md)" in index for n in materials.names())


def test_provenance_and_licence_lookup(tmp_path):
    s = tmp_path / "datasets" / "structures"
    (s / "study").mkdir(parents=True)
    (s / "study" / "LICENSE").write_text("MIT License\n\nCopyright (c) 2026 Someone\n")
    (s / "study" / "X.poscar").write_text("")
    (s / "own.cif").write_text("")
    (s / "PROVENANCE.md").write_text(
        "text\n\n| file | source | level |\n|---|---|---|\n"
        "| `study/X.poscar` | the study, MIT | S |\n| `own.cif` | built here | M |\n")
    assert "MIT License — Copyright (c) 2026 Someone" in generate.licence_of(s, "study/X.poscar")
    assert generate.licence_of(s, "own.cif") is None
    rows = generate.provenance_rows(s, "study/X.poscar")
    assert len(rows) == 1 and ("level", "S") in rows[0][1]
    assert generate.provenance_rows(s, "own.cif")[0][1][1] == ("source", "built here")


def test_generator_never_touches_a_foreign_directory(tmp_path):
    foreign = tmp_path / "generated"
    foreign.mkdir()
    (foreign / "mine.md").write_text("user data")
    with pytest.raises(FileExistsError, match="not made by"):
        generate.generate(ROOT, foreign)
    assert (foreign / "mine.md").read_text() == "user data"
    assert sorted(p.name for p in foreign.iterdir()) == ["mine.md"]


def test_notebook_gallery_and_reproduce_page(generated):
    out, res = generated
    nbs = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb")) \
        if (ROOT / "notebooks").is_dir() else []
    assert res["notebooks"] == nbs
    gallery = (out / "notebooks" / "index.md").read_text()
    have = {n[:2] for n in nbs}
    for num in generate.EXPECTED_NOTEBOOKS:
        if num not in have:
            assert f"`notebooks/{num}_*.ipynb`" in gallery   # missing ones are listed
    for n in nbs:
        assert (out / "notebooks" / f"{n}.ipynb").read_bytes() == \
            (ROOT / "notebooks" / f"{n}.ipynb").read_bytes()
    rep = (out / "reproduce.md").read_text()
    for fig in ("Fig. 2d", "Fig. 2e", "Fig. 2f", "Fig. 3a–e", "Fig. 3f", "Fig. 4a", "Fig. 4b",
                "Fig. 5", "Fig. 6", "Fig. S12", "Fig. S25"):
        assert f"| {fig} |" in rep
    assert "rotorlab campaign datasets/campaigns/study_<material>.yaml -o DIR" in rep
    assert "rotorlab report DIR" in rep


def test_api_pages_document_each_object_once(generated):
    out, res = generated
    mods = generate.discover_modules(ROOT / "rotorlab")
    assert res["api"] == mods
    assert "rotorlab.spec" in mods and "rotorlab.potentials.registry" in mods
    assert not any(part.startswith("_") for m in mods for part in m.split(".")[1:])
    seen = {}
    for m in mods:
        text = (out / "api" / f"{m}.rst").read_text()
        for line in text.splitlines():
            if line.startswith((".. autoclass::", ".. autofunction::", ".. autodata::")):
                target = line.split("::")[1].strip()
                assert target not in seen, f"{target} documented in {seen.get(target)} and {m}"
                seen[target] = m
    # re-exported names are documented where they are defined
    assert seen["rotorlab.spec.RunSpec"] == "rotorlab.spec"
    assert seen["rotorlab.potentials.registry.resolve"] == "rotorlab.potentials.registry"
    assert seen["rotorlab.md.simulation.Simulation"] == "rotorlab.md.simulation"
    # numba kernels are documented as functions
    assert seen["rotorlab.md.constraints.project_velocities"] == "rotorlab.md.constraints"
    assert ".. autofunction:: rotorlab.md.constraints.project_velocities" in \
        (out / "api" / "rotorlab.md.constraints.rst").read_text()


def test_unknown_docstring_headings_become_rubrics():
    from rotorlab_docs import headings_to_rubrics

    lines = ["Summary.", "", "Definitions (DESIGN §5)", "-----------------------", "* a",
             "", "Parameters", "----------", "x : int"]
    headings_to_rubrics(lines)
    assert ".. rubric:: Definitions (DESIGN §5)" in lines
    assert "-----------------------" not in lines
    assert lines[-3:] == ["Parameters", "----------", "x : int"]     # numpydoc's own kept


# ---------------------------------------------------------------------- link checker


def test_link_checker_finds_broken_files_and_anchors(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "_static").mkdir()
    (tmp_path / "index.html").write_text(
        '<html><body><h1 id="top">t</h1>'
        '<a href="sub/page.html#sec">ok</a><a href="#top">self</a>'
        '<a href="sub/page.html#nope">bad anchor</a><a href="missing.html">bad file</a>'
        '<a href="https://example.org/x.html">external</a><img src="_static/logo.png">'
        '<a href="../outside.html">outside</a></body></html>')
    (tmp_path / "sub" / "page.html").write_text(
        '<html><section id="sec"><a href="../index.html#top">back</a></section></html>')
    broken = check_links.check(tmp_path)
    assert len(broken) == 4, broken
    assert any("#nope" in b and "no anchor" in b for b in broken)
    assert any("missing.html" in b and "no such file" in b for b in broken)
    assert any("_static/logo.png" in b for b in broken)
    assert any("outside.html" in b and "outside" in b for b in broken)
    (tmp_path / "_static" / "logo.png").write_bytes(b"png")
    assert len(check_links.check(tmp_path)) == 3
    assert check_links.main([str(tmp_path)]) == 1


# ------------------------------------------------------------------------ full build


def _docs_tools_missing():
    return [m for m in ("sphinx", "numpydoc", "myst_nb", "pydata_sphinx_theme")
            if importlib.util.find_spec(m) is None]


@pytest.mark.slow
def test_docs_build_with_warnings_as_errors(tmp_path):
    missing = _docs_tools_missing()
    if missing:
        pytest.skip(f"docs extra not installed ({', '.join(missing)}): "
                    "pip install -e '.[docs]' or make docs")
    html = tmp_path / "html"
    t0 = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-n", "-W", "--keep-going", "-q",
         "-d", str(tmp_path / "doctrees"), str(ROOT / "docs"), str(html)],
        capture_output=True, text=True, timeout=1500, cwd=ROOT)
    took = time.perf_counter() - t0
    assert r.returncode == 0, f"docs build failed after {took:.0f} s:\n{r.stdout[-4000:]}\n" \
                              f"{r.stderr[-8000:]}"
    assert check_links.check(html) == []
    for page in ("index.html", "getting-started.html", "guide/constraints.html",
                 "generated/api/index.html", "generated/api/rotorlab.spec.html",
                 "generated/materials/index.html", "generated/models/tiny-LiBH4.html",
                 "generated/reproduce.html", "generated/notebooks/index.html"):
        assert (html / page).is_file(), page
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        assert (html / "generated" / "notebooks" / f"{nb.stem}.html").is_file(), nb.name
    model = (html / "generated" / "models" / "tiny-LiBH4.html").read_text()
    assert "405.85" in model
    print(f"docs build: {took:.1f} s")
    shutil.rmtree(tmp_path / "doctrees", ignore_errors=True)


def test_app_screenshots_page(tmp_path):
    shots = tmp_path / "docs" / "screenshots"
    shots.mkdir(parents=True)
    for name in ("run", "zzz_extra", "setup"):
        (shots / f"{name}.png").write_bytes(b"png")
    out = tmp_path / "gen"
    out.mkdir()
    assert generate.write_screenshots(tmp_path, out) == ["setup.png", "run.png", "zzz_extra.png"]
    text = (out / "screenshots.md").read_text()
    assert text.index("../screenshots/setup.png") < text.index("../screenshots/run.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert generate.write_screenshots(empty, out) == []
    assert "![" not in (out / "screenshots.md").read_text()
