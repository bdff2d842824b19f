# Two entry points for a fresh machine: `make run` (the main job) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
FMNIST := /usr/share/datasets/fashion-mnist

.PHONY: setup data servers run test lint
$(BIN)/edgetune: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

setup: $(BIN)/edgetune data

# Debian ships Fashion-MNIST; install it when missing and we are allowed to.
data:
	@if [ ! -f $(FMNIST)/train-images-idx3-ubyte.gz ] && [ -z "$$EDGETUNE_DATA" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; \
	  else sudo apt-get install -y dataset-fashion-mnist; fi; fi

# The tests start real servers (PostgreSQL, Redis) and a real browser (Chromium, driven by
# Playwright for the HTML report) from Debian's packages.
servers:
	@missing=""; \
	command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $$missing; \
	  else sudo apt-get install -y $$missing; fi; fi

run: setup
	$(BIN)/edgetune run examples/resnet56-fmnist/experiment.yaml
	$(BIN)/edgetune report runs/resnet56-fmnist --format html --format png --format csv --format md

# Two workers: most tests wait on a subprocess, a server or a single-threaded runtime, so both
# cores stay busy (pytest -n 0 runs them one at a time).
test: setup servers
	$(BIN)/pytest -q -n 2 --dist worksteal --durations=25

lint: setup
	$(BIN)/ruff check src tests benchmarks experiments
	$(BIN)/lint-imports
