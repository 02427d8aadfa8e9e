# The two commands a new user needs: `make run` and `make test`.
# Both (re)build the project venv from pyproject.toml when it changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: run test lint unit e2e bench setup clean chromium

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/tracedrill run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

test: $(STAMP) lint chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The web UI's browser test drives the system Chromium (Playwright never downloads a browser here).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the browser test"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "make test needs Chromium for the web UI browser test: install it (Debian/Ubuntu: sudo apt-get install chromium)" >&2; \
	    exit 1; \
	  fi; }

# moto is no project dependency: only the benchmark installs it (extra "bench"), for side-by-side figures.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]' || echo "moto is not installable here: results.md will say so"
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
