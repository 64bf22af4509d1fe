# Two commands do all set-up on a fresh machine with Python 3.11+ and make:
#   make run   - install, build a demo workspace from sample_data/, train, show the runs
#   make test  - install with test extras, lint, check the layers and types, run the whole
#                suite, then install the built wheel into a fresh venv and smoke-test it
#   make test-fast - the suite less its slow modules (servers, daemons, browser, Dask,
#                whole loops; see SLOW_MODULES in tests/conftest.py), for your own loop
#   make test-busy - `make test` three times in a row while two processes burn both cores

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# `make run` works on a fresh copy, so sample_data/ stays as shipped (the README's tour
# copies it too, and must find no workspace in it).
DEMO := build/demo/churn
MLYARD := $(CURDIR)/$(BIN)/mlyard

.PHONY: run test test-fast test-busy lint wheel-smoke bench bench-startup sample-data clean-demo

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "mlyard needs Python 3.11 or newer; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	rm -rf $(DEMO) && mkdir -p $(dir $(DEMO)) && cp -r sample_data/churn $(DEMO)
	rm -rf $(DEMO)/.mlyard
	cd $(DEMO) && $(MLYARD) ingest data/
	cd $(DEMO) && $(MLYARD) train
	cd $(DEMO) && $(MLYARD) models promote latest --reason "make run"
	@# On a terminal, end in the UI; elsewhere (a pipe, CI) print the run instead.
	cd $(DEMO) && if [ -t 0 ] && [ -t 1 ]; then $(MLYARD) tui; \
		else $(MLYARD) runs show latest; fi

# The installed layout (mlyard/core, mlyard/storage, mlyard/tui) as links to the repo's
# folders, for the tools that read packages from disk instead of importing them.
TREE := build/tree

$(TREE)/mlyard:
	mkdir -p $@
	for f in __init__.py __main__.py py.typed; do ln -sfn ../../../mlyard/$$f $@/$$f; done
	for d in core storage tui; do ln -sfn ../../../$$d $@/$$d; done

lint: $(VENV)/.installed-test | $(TREE)/mlyard
	$(BIN)/ruff check .
	cd $(TREE) && PYTHONPATH=. ../../$(BIN)/lint-imports ../../pyproject.toml --no-cache
	cd $(TREE) && ../../$(BIN)/mypy --config-file ../../pyproject.toml -p mlyard

# Two workers (the machine has two cores; most tests wait on processes and servers), each
# taking whole files, so a module's shared project is built once.
test: lint
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=10
	$(MAKE) --no-print-directory wheel-smoke

test-fast: $(VENV)/.installed-test
	MLYARD_TEST_FAST=1 $(BIN)/python -m pytest -q -n 2 --dist worksteal -m "not slow"

wheel-smoke: $(BIN)/python
	PYTHON=$(BIN)/python scripts/wheel_smoke.sh

test-busy: $(VENV)/.installed-test
	scripts/test_busy.sh

bench: $(VENV)/.installed-test
	$(BIN)/python bench/run_all.py

bench-startup: $(VENV)/.installed-test
	$(BIN)/python -m bench.bench_startup

sample-data: $(BIN)/python
	$(BIN)/python sample_data/generate.py

clean-demo:
	rm -rf $(DEMO) sample_data/churn/.mlyard sample_data/demand/.mlyard
