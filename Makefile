# Quarterdeck: `make demo` opens the cockpit on the bundled demo; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test
STAMP_LINKS := $(VENV)/.installed-links
# Exact versions for the suite and CI (snapshots need byte-identical Textual); the
# package itself only states ranges.
CONSTRAINTS := constraints.txt
# The folders that install as `quarterdeck.*`. The editable install is a tree of links
# (setuptools' "strict" mode) so mypy sees real modules; it is rebuilt when a file or
# folder is added, moved or removed.
PACKAGE_DIRS := core tui screens personas workflows
PACKAGE_TREE := $(shell find $(PACKAGE_DIRS) -name __pycache__ -prune -o -print 2>/dev/null)

SHELL := bash
.SHELLFLAGS := -o pipefail -c

.PHONY: demo test lint typecheck bench system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip 'setuptools>=77' wheel

EDITABLE := --config-settings editable_mode=strict -e
# Byte-compile the link tree: with PYTHONDONTWRITEBYTECODE set (as on some CI images and
# dev machines) nothing else would, and every command would compile its modules again.
COMPILE := $(BIN)/python -m compileall -q -j 0 build > /dev/null

$(STAMP_RUN): pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) $(EDITABLE) '.[demo]'
	$(COMPILE)
	touch $@ $(STAMP_LINKS)

$(STAMP_TEST): pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) $(EDITABLE) '.[dev]'
	$(COMPILE)
	touch $@ $(STAMP_RUN) $(STAMP_LINKS)

# The link tree: quick (no dependency resolution), redone whenever the tree changes.
$(STAMP_LINKS): $(PACKAGE_TREE) pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation $(EDITABLE) .
	$(COMPILE)
	touch $@

system-deps:
	@bash scripts/install-system-deps.sh

demo: $(STAMP_RUN) $(STAMP_LINKS)
	$(BIN)/quarterdeck demo

# What CI runs (.ci/run): lint, layering contracts, types, then the suite on two workers
# (pytest-xdist). Most of the suite waits on the processes it starts, so two workers halve
# the wall time on CI's two cores. --dist loadfile keeps each module on one worker (its
# module fixtures — a built wheel, a sandbox — are made once); the slow modules come first
# (tests/conftest.py) and the order is kept (--no-loadscope-reorder).
PYTEST_WORKERS ?= 2
test: $(STAMP_TEST) $(STAMP_LINKS) system-deps
	$(MAKE) --no-print-directory lint typecheck
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

lint: $(STAMP_TEST) $(STAMP_LINKS)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# mypy reads the link tree (MYPYPATH) and reports paths in the repository.
typecheck: $(STAMP_TEST) $(STAMP_LINKS)
	MYPYPATH="$$(echo build/__editable__.quarterdeck-*)" $(BIN)/mypy \
		| sed 's|build/__editable__[^/]*/quarterdeck/||'

bench: $(STAMP_TEST) $(STAMP_LINKS)
	$(BIN)/python benchmarks/runner_overhead.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
