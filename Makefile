PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-slow test-unit lint docs properties bench-scale bench-throughput \
	bench-hops bench-million bench-sources bench-recovery bench-hol bench-flow bench-series bench-duplicates bench-items chaos \
	clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# DEMO_ARGS passes options, e.g. DEMO_ARGS="--io-delay 2 --hold" (python -m samples.inflate_prices.demo --help).
demo: $(STAMP)
	$(BIN)/python -m samples.inflate_prices.demo $(DEMO_ARGS)

# Three processes (each with its own dev server): the tests mostly wait on the server, so three
# keep two cores busy. The slow tests (the package built and installed, 2,500 chains past
# Temporal's pending-activity limit, 200 pages waiting for 100 worker slots at hand-overs, the
# worst-case payloads and 1,000 failed pages and items) run one at a time in `make test-slow`,
# where no other test competes for the cores; CI runs both.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 3 --dist worksteal -m "not slow" \
		--cov=batch_orchestra --cov-report=term:skip-covered

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

# The quick tests that start no server (the pure core, codecs, budgets, validation, the import
# graph): tests/conftest.py marks them `unit`. About half a minute; for the edit-test loop, not
# instead of make test (which runs them too).
test-unit: $(STAMP)
	$(BIN)/python -m pytest -q -m unit

# The pure core's property tests at length (tests/test_properties.py, HYPOTHESIS_PROFILE=long):
# 2,000 random runs of 80 steps each by default, about 5 minutes on 2 shared cores;
# PROPERTY_EXAMPLES=n for another count. `make test` runs 25 derandomized ones (seconds).
properties: $(STAMP)
	HYPOTHESIS_PROFILE=long HYPOTHESIS_EXAMPLES=$(or $(PROPERTY_EXAMPLES),2000) \
		$(BIN)/python -m pytest -q -p no:cacheprovider --timeout 0 tests/test_properties.py

# The API reference from the docstrings (pdoc) into build/api/ (open build/api/index.html);
# any warning pdoc gives fails it (docs/api.py). A few seconds; CI builds it too.
docs: $(STAMP)
	$(BIN)/python docs/api.py build/api

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench-scale: $(STAMP)
	$(BIN)/python -m bench.scale

bench-throughput: $(STAMP)
	$(BIN)/python -m bench.throughput

# Item workflows: ours against a plain loop and the sliding-window pattern (ITEMS_ARGS, e.g.
# ITEMS_ARGS="--items 2000 --open 200"); about 15 minutes at the default 10,000 items. Writes
# bench/results/items.json and items.png.
bench-items: $(STAMP)
	$(BIN)/python -m bench.items --json bench/results/items.json --plot bench/results/items.png \
		$(ITEMS_ARGS)

bench-hops: $(STAMP)
	$(BIN)/python -m bench.hops --page-ms 10
	$(BIN)/python -m bench.hops --page-ms 10 --stock-server

bench-million: $(STAMP)
	$(BIN)/python -m bench.million --pages 1000000 --parallelism 20 --lookahead 10

# 200,000 rows by default (a few minutes on 2 shared cores); ROWS=1000000 for the full run.
bench-sources: $(STAMP)
	$(BIN)/python -m bench.sources --rows $(or $(ROWS),200000)

# A SIGKILLed worker's pages: how long they wait with and without heartbeats (about 5 minutes).
bench-recovery: $(STAMP)
	$(BIN)/python -m bench.recovery

bench-duplicates: $(STAMP)
	$(BIN)/python -m bench.duplicates --out bench/results/duplicates.json

bench-hol: $(STAMP)
	$(BIN)/python -m bench.hol --out bench/results/hol.txt

# Flow control against a simulated downstream (about 35 minutes on 2 shared cores; FLOW_ARGS=--quick: about 7).
bench-flow: $(STAMP)
	$(BIN)/python -m bench.flow $(FLOW_ARGS)

# Series: tick latency, actions per tick, catch-up and a chaos run (about 5 minutes).
bench-series: $(STAMP)
	$(BIN)/python -m bench.series $(SERIES_ARGS)

# Not part of `make test`: several minutes. CHAOS_ARGS passes options, e.g. CHAOS_ARGS="--seed 7".
chaos: $(STAMP)
	$(BIN)/python -m bench.chaos $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache build/api
