# rotorlab: two commands on a fresh machine.
#   make demo   create .venv, install rotorlab, run the main job on the bundled defaults
#   make test   create .venv with the test, app and docs extras, run the whole test suite
#               (the docs build, warnings as errors, is one of the tests)
#   make app    serve the interactive Explorer on http://127.0.0.1:5006/explorer
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
PIPQ   := $(PIP) install --quiet --disable-pip-version-check
EXTRAS ?= test

.PHONY: demo test venv bench app clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIPQ) --upgrade pip 2>&1 | grep -v "is ignored" || true

# Re-install whenever pyproject.toml changes (stamp per extras set).
$(VENV)/.stamp-$(EXTRAS): pyproject.toml | $(VENV)/bin/python
	$(PIPQ) -e ".[$(EXTRAS)]" 2>&1 | grep -v "is ignored" || true
	$(PY) -c "import rotorlab, numba, xarray, zarr, ase, deepmd" 
	@case ",$(EXTRAS)," in *,app,*) $(PY) -m rotorlab.viz.ngl --install ;; esac
	touch $@

venv: $(VENV)/.stamp-$(EXTRAS)

demo:
	$(MAKE) venv EXTRAS=app
	$(VENV)/bin/rotorlab demo --outdir results/demo

test:
	$(MAKE) venv EXTRAS=test,app,docs
	$(PY) -m pytest -q -p no:cacheprovider --timeout=900 --durations=25 $(PYTEST_ARGS)

app:
	$(MAKE) venv EXTRAS=app
	$(VENV)/bin/rotorlab app

bench:
	$(MAKE) venv EXTRAS=bench
	@for f in benchmarks/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) results .pytest_cache

# Documentation: warnings are errors (-W), cross-references nitpicky (-n), then every
# relative link in the built HTML is checked (no network needed). Output: docs/_build/html.
.PHONY: docs
DOCS_OUT ?= docs/_build/html
docs:
	$(MAKE) venv EXTRAS=app,docs
	$(PY) -m sphinx -b html -n -W --keep-going -d docs/_build/doctrees docs $(DOCS_OUT)
	$(PY) docs/_ext/check_links.py $(DOCS_OUT)
