# The README's two commands: `make demo` (set up + run the demo) and `make test` (set up + run the tests).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test test-fast test-slow lint bench clean

$(BIN)/lakehouse-phi: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[spark,local,test,databricks]"
	touch $@

setup: $(BIN)/lakehouse-phi

demo: setup
	$(BIN)/lakehouse-phi demo

test: setup
	$(BIN)/python -m pytest -q

# the no-Spark lane (no JVM, no Spark Connect server), on every core
test-fast: setup
	$(BIN)/python -m pytest -q -m "not spark" -n auto

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

# ruff and mypy as configured in pyproject.toml ([tool.ruff], [tool.mypy]); CI runs it after the tests.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: setup
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) demo_output .pytest_cache
