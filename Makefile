# Quick start: `make demo` runs examples/quickstart.py, `make test` runs the test suite.
# Each creates the virtual environment .venv (Python >= 3.10) and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test fuzz install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) examples/quickstart.py

# The suite runs four times: as configured; with every fused group forced through the
# numpy block-by-block kernels with tiny blocks (GRAPHC_SMALL_GROUP=0,
# GRAPHC_BLOCK_ELEMENTS=7, GRAPHC_NATIVE=0), so that the kernel path and its block edges
# meet every test graph; with every fused group forced through native C kernels
# (GRAPHC_SMALL_GROUP=0), built for this machine into a cache of the run's own (a fresh
# temporary folder outside the checkout, which the layering test walks meanwhile); and
# the same built for an AVX2 machine (GRAPHC_MARCH=x86-64-v3, its own cache), whose libmvec
# functions round differently from AVX-512's: a tolerance that only fits this CPU
# fails here, not on the next machine (skipped on a CPU without AVX2).
# The numpy-program tests run a second time on the Triton backend (its interpreter on a
# machine without a GPU); the numpy backend's other modes skip tests/triton, whose
# kernels do not read those settings.
TRITON_PROGRAMS := tests/test_numpy_frontend.py tests/test_numpy_math.py \
  tests/test_numpy_more.py tests/test_nn.py tests/test_indexing.py tests/test_random.py \
  tests/test_autodiff_models.py
test: $(STAMP)
	$(PY) -m pytest -n 2 tests
	GRAPHC_TEST_BACKEND=triton $(PY) -m pytest -n 2 $(TRITON_PROGRAMS)
	GRAPHC_SMALL_GROUP=0 GRAPHC_BLOCK_ELEMENTS=7 GRAPHC_NATIVE=0 $(PY) -m pytest -n 2 tests --ignore=tests/triton
	cache=$$(mktemp -d) && GRAPHC_SMALL_GROUP=0 GRAPHC_CACHE_DIR=$$cache \
	  $(PY) -m pytest -n 2 tests --ignore=tests/triton; status=$$?; rm -rf $$cache; exit $$status
	if grep -qw avx2 /proc/cpuinfo 2>/dev/null; then cache=$$(mktemp -d) && \
	  GRAPHC_SMALL_GROUP=0 GRAPHC_MARCH=x86-64-v3 GRAPHC_CACHE_DIR=$$cache \
	  $(PY) -m pytest -n 2 tests --ignore=tests/triton; status=$$?; rm -rf $$cache; exit $$status; \
	else echo "make test: this CPU cannot run x86-64-v3 (AVX2) code; that run is skipped"; fi

# The long fuzz runs (.ci/fuzz): random graphs against the interpreter in every backend
# mode, and random graph texts at the parser (nothing but a GraphcError may escape).
fuzz: $(STAMP)
	$(PY) -m graphc fuzz --examples 20000
	$(PY) -m graphc fuzz --parse 100000

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis *.egg-info build
