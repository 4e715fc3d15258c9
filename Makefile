# Humans and CI run the same commands.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint clean venv browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	touch $(STAMP)

venv: $(STAMP)

# The browser tests (tests/integration/test_ui_browser.py, test_ui_pipeline.py) drive Debian's Chromium through
# Playwright; nothing is downloaded at test time. Installed once (as root, as CI runs), then skipped.
CHROMIUM := /usr/lib/chromium/chromium
browser:
	@if [ -x $(CHROMIUM) ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "make browser: $(CHROMIUM) is missing; as root run: apt-get install chromium fonts-liberation" >&2; exit 1; fi; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation

demo: $(STAMP)
	$(BIN)/watcher demo $(DEMO_ARGS)

# Two pytest processes, each with its own brokers; a process that runs out of tests takes queued
# ones from the other (worksteal). The suite mostly waits on brokers and workers, so two halve it
# on two cores. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
test: $(STAMP) browser
	$(BIN)/python -m pytest -q $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist worksteal) $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check watcher tests

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
