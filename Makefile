# rotorlab: two commands on a fresh machine.
#   make demo   create .venv, install rotorlab, run the main job on the bundled defaults
#   make test   create .venv with the test extras, run the whole test suite
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
	touch $@

venv: $(VENV)/.stamp-$(EXTRAS)

demo:
	$(MAKE) venv EXTRAS=app
	$(VENV)/bin/rotorlab demo --outdir results/demo

test:
	$(MAKE) venv EXTRAS=test
	$(PY) -m pytest -q -p no:cacheprovider --timeout=900 $(PYTEST_ARGS)

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
