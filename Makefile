# The README's two commands: `make demo` (set up + run the demo) and `make test` (set up + run the tests).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The pycanon lane's own virtualenv: pycanon pins numpy/pandas/scipy exactly, so it never enters .venv
REF_VENV := .venv-pycanon

.PHONY: setup chromium demo test test-fast test-slow test-pycanon lint bench clean

NATIVE_SRC := native/pyproject.toml native/setup.py native/src/lakehouse_phi_native/__init__.py \
              native/src/lakehouse_phi_native/_hmac.c

$(BIN)/lakehouse-phi: pyproject.toml $(NATIVE_SRC)
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[spark,local,test,databricks,otel]"
	@# the optional native HMAC loop (native/): a C compiler, the Python headers and OpenSSL 3's (libssl-dev)
	@[ -f /usr/include/openssl/sha.h ] || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq libssl-dev; }
	$(BIN)/pip install --quiet ./native
	touch $@

setup: $(BIN)/lakehouse-phi

demo: setup
	$(BIN)/lakehouse-phi demo

# the report's browser test renders it in Debian's headless Chromium (installed once; skipped without it, except
# in CI, where .ci/run installs it and CI=true makes a missing one fail)
chromium:
	@command -v chromium >/dev/null 2>&1 || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; } || \
	  echo "chromium not installed: the report's browser test will be skipped (apt-get install -y chromium)"

test: setup chromium
	$(BIN)/python -m pytest -q

# the no-Spark lane (no JVM, no Spark Connect server), on every core
test-fast: setup chromium
	$(BIN)/python -m pytest -q -m "not spark" -n auto

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

$(REF_VENV)/bin/pytest: pyproject.toml
	$(PY) -m venv $(REF_VENV)
	$(REF_VENV)/bin/pip install --quiet --upgrade pip
	$(REF_VENV)/bin/pip install --quiet -e ".[reference]"
	touch $@

# the k/l reference values against pycanon, in .venv-pycanon (tests/reference; the main suite deselects them)
test-pycanon: $(REF_VENV)/bin/pytest
	$(REF_VENV)/bin/python -m pytest -q -m pycanon tests/reference

# ruff, mypy and the layering contracts as configured in pyproject.toml ([tool.ruff], [tool.mypy],
# [tool.importlinter]); CI runs it after the tests.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: setup
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) $(REF_VENV) demo_output .pytest_cache
