"""Package hygiene: light import, bundled data present, version consistent."""

import subprocess
import sys

import rotorlab


def test_import_is_light():
    code = (
        "import sys, rotorlab, rotorlab.materials, rotorlab.topology;"
        "heavy=[m for m in ('numba','tensorflow','deepmd','panel','nglview','ipywidgets','torch')"
        " if m in sys.modules]; print(heavy)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_bundled_structures_present():
    from rotorlab._paths import structures_dir

    d = structures_dir()
    assert (d / "PROVENANCE.md").exists()
    for name in rotorlab.materials.names():
        mat = rotorlab.materials.catalog(name)
        if mat.structure:
            assert (d / mat.structure).exists(), mat.structure


def test_version_matches_metadata():
    from importlib.metadata import version

    assert version("rotorlab") == rotorlab.__version__
