# camsort: every target sets up what it needs from the repo's own files.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
export PATH := $(CURDIR)/$(BIN):$(CURDIR)/node_modules/.bin:$(PATH)
# TensorFlow is chatty on import; keep logs readable.
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONUNBUFFERED := 1

.PHONY: setup test test-fast demo soak bench package lint clean

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

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not slow and not e2e"

demo: setup
	$(BIN)/camsort demo

# 2,000 frames, 20 cameras, 2 worker processes, ~5% faults, SIGKILLs: nothing may be lost.
soak: setup
	$(BIN)/camsort soak

bench: setup
	$(BIN)/camsort bench

package: setup
	$(BIN)/camsort package

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) node_modules .cache .pytest_cache .serverless build dist
