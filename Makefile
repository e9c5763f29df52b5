# Quick start: `make demo` runs examples/quickstart.py, `make test` runs the test suite.
# Each creates the virtual environment .venv (Python >= 3.10) and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) examples/quickstart.py

# The suite runs three times: as configured; with every fused group forced through the
# numpy block-by-block kernels with tiny blocks (GRAPHC_SMALL_GROUP=0,
# GRAPHC_BLOCK_ELEMENTS=7, GRAPHC_NATIVE=0), so that the kernel path and its block edges
# meet every test graph; and with every fused group forced through native C kernels
# (GRAPHC_SMALL_GROUP=0), built into a cache of the run's own.
test: $(STAMP)
	$(PY) -m pytest -n 2 tests
	GRAPHC_SMALL_GROUP=0 GRAPHC_BLOCK_ELEMENTS=7 GRAPHC_NATIVE=0 $(PY) -m pytest -n 2 tests
	rm -rf .graphc-test-cache
	GRAPHC_SMALL_GROUP=0 GRAPHC_CACHE_DIR=.graphc-test-cache $(PY) -m pytest -n 2 tests

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis *.egg-info .graphc-test-cache
