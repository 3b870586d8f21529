# camsort: every target sets up what it needs from the repo's own files.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SITE := site
NODE_STAMP := node_modules/.installed
export PATH := $(CURDIR)/$(BIN):$(CURDIR)/node_modules/.bin:$(PATH)
# TensorFlow is chatty on import; keep logs readable.
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONUNBUFFERED := 1
# Material for MkDocs prints a banner about its successor on every build; the build output stays readable.
export NO_MKDOCS_2_WARNING := 1

.PHONY: setup test test-fast demo demo-shadow demo-loop soak bench bench-archive package lint docs clean

setup: $(STAMP) $(NODE_STAMP)

# Rebuilt whenever a requirement file or pyproject.toml changes (a "stale" venv).
$(STAMP): requirements.txt requirements-train.txt requirements-dev.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

# The Serverless Framework (pinned in package.json / package-lock.json).
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The unit tier runs on its own first: alone, its conftest also refuses TensorFlow/onnx/moto imports.
test: setup
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/mkdocs build --strict --quiet --site-dir $(SITE)
	$(BIN)/python -m pytest tests/unit
	$(BIN)/python -m pytest tests/functional tests/e2e

# No moto server, nothing slow: every test that needs the server is marked e2e (tests/conftest.py).
test-fast: setup
	$(BIN)/python -m pytest tests/unit
	$(BIN)/python -m pytest -m "not slow and not e2e" tests/functional

demo: setup
	$(BIN)/camsort demo

# make passes no flags to a target: `make demo-shadow` = `camsort demo --shadow`.
demo-shadow: setup
	$(BIN)/camsort demo --shadow

# The labelling loop: sample -> label (the page's API, ground truth for a person) -> train ->
# candidate -> shadow -> compare -> promote; held-out accuracy before and after.
demo-loop: setup
	$(BIN)/camsort demo --loop --cameras 3 --frames 80 --rate 0 --no-bad-objects --no-fine-tune --train-per-label 12

# 2,000 frames, 20 cameras, 2 worker processes, ~5% faults, SIGKILLs: nothing may be lost.
soak: setup
	$(BIN)/camsort soak

bench: setup
	$(BIN)/camsort bench

# The head on Dask vs one process from a generated Parquet archive (bench/archive_training.py):
# 100k rows by default; `make bench-archive ARCHIVE_ROWS=1000000` for the 1M figure (about an hour).
ARCHIVE_ROWS ?= 100000
bench-archive: setup
	nice $(BIN)/python -m bench.archive_training --rows $(ARCHIVE_ROWS)

package: setup
	$(BIN)/camsort package

# The documentation site (mkdocs.yml, docs/): strict, so a broken link, anchor or generated
# figure fails. Offline: no plugin downloads anything. Open site/index.html.
docs: setup
	$(BIN)/mkdocs build --strict --site-dir $(SITE)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) node_modules .cache .pytest_cache .serverless build dist $(SITE)
