# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := var/demo
export BENTOML_DO_NOT_TRACK := true
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true

.PHONY: setup browser demo stop test test-seconds lint bench bench-quick clean

setup: $(STAMP)

# Reinstall only when the dependency list changes (idempotent).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

DEMO_PORT ?= 3000
# Signs the demo's trigger webhooks (examples/demo_triggers.yaml); a demo value, not a secret.
DEMO_HOOK_SECRET := journey-demo-webhook-secret

demo: setup
	@if [ -f $(DEMO)/serve.pid ]; then JOURNEY_HOME=$(DEMO) $(BIN)/journey stop; fi
	rm -rf $(DEMO)
	$(BIN)/journey simulate --customers 20000 --days 365 --seed 42 --out $(DEMO)/sim
	$(BIN)/journey ingest $(DEMO)/sim/events --store $(DEMO)/events.duckdb
	$(BIN)/journey ingest examples/crm_export.csv --mapping examples/crm_mapping.yaml --store $(DEMO)/events.duckdb
	$(BIN)/journey summary --store $(DEMO)/events.duckdb
	$(BIN)/journey attributes $(DEMO)/sim/customers --store $(DEMO)/events.duckdb
	$(BIN)/journey features --as-of 2025-10-01 --store $(DEMO)/events.duckdb --out $(DEMO)/snapshots
	$(BIN)/journey labels --as-of 2025-10-01 --horizon 30 --store $(DEMO)/events.duckdb --out $(DEMO)/snapshots
	JOURNEY_HOME=$(DEMO) $(BIN)/journey train --experiment experiments/default.yaml --store $(DEMO)/events.duckdb --out $(DEMO)/snapshots
	JOURNEY_HOME=$(DEMO) $(BIN)/journey uplift --experiment experiments/uplift.yaml --store $(DEMO)/events.duckdb
	JOURNEY_HOME=$(DEMO) $(BIN)/journey train --experiment experiments/survival.yaml --store $(DEMO)/events.duckdb --out $(DEMO)/snapshots
	JOURNEY_HOME=$(DEMO) $(BIN)/journey promote --store $(DEMO)/events.duckdb --out $(DEMO)/snapshots
	JOURNEY_HOME=$(DEMO) $(BIN)/journey compare --out $(DEMO)/reports
	JOURNEY_HOME=$(DEMO) $(BIN)/journey personas --as-of 2026-01-01 --store $(DEMO)/events.duckdb
	JOURNEY_HOME=$(DEMO) $(BIN)/journey score --as-of 2026-01-01 --store $(DEMO)/events.duckdb
	JOURNEY_HOME=$(DEMO) $(BIN)/journey segments --by tier,stage
	JOURNEY_HOME=$(DEMO) $(BIN)/journey kpis --by persona
	umask 077; JOURNEY_HOME=$(DEMO) $(BIN)/journey keys create demo --role admin > $(DEMO)/demo.key
	umask 077; JOURNEY_HOME=$(DEMO) $(BIN)/journey keys create marketer --role marketer > $(DEMO)/marketer.key
	JOURNEY_HOME=$(DEMO) JOURNEY_STORE=$(DEMO)/events.duckdb JOURNEY_AS_OF=2026-01-01T00:00:00Z \
		JOURNEY_TRIGGERS=examples/demo_triggers.yaml JOURNEY_WEBHOOK_SECRET=$(DEMO_HOOK_SECRET) \
		$(BIN)/journey serve --detach --port $(DEMO_PORT)
	$(BIN)/python examples/predict_request.py http://127.0.0.1:$(DEMO_PORT) $(DEMO)/demo.key C0000051
	$(BIN)/python examples/recommend_request.py http://127.0.0.1:$(DEMO_PORT) $(DEMO)/demo.key C0000051 C0000007 C0000123
	JOURNEY_WEBHOOK_SECRET=$(DEMO_HOOK_SECRET) \
		$(BIN)/python examples/trigger_demo.py http://127.0.0.1:$(DEMO_PORT) $(DEMO)/demo.key 8787
	@echo "The service is still running on http://127.0.0.1:$(DEMO_PORT)/v1 (docs: /v1/docs; key in $(DEMO)/demo.key)."
	@echo "Marketer dashboard: http://127.0.0.1:$(DEMO_PORT)/v1/dashboard#key=$$(cat $(DEMO)/marketer.key)"
	@echo "  (key in $(DEMO)/marketer.key; the part after # stays in the browser, never sent or logged)"
	@echo "Stop it with: JOURNEY_HOME=$(DEMO) $(BIN)/journey stop   (or: make stop)"

stop:
	JOURNEY_HOME=$(DEMO) $(BIN)/journey stop

# The dashboard's browser tests drive Debian's Chromium: installed here when missing (as root,
# or through sudo when it needs no password); without it those tests skip and say why.
CHROMIUM := /usr/bin/chromium

browser:
	@if [ ! -x $(CHROMIUM) ]; then \
		if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
		else echo "note: $(CHROMIUM) is missing and cannot be installed here; browser tests will skip"; exit 0; fi; \
		echo "installing Debian's chromium for the browser tests"; \
		{ $$SUDO apt-get install -y -q chromium >/dev/null 2>&1 || \
		  { $$SUDO apt-get update -q >/dev/null 2>&1 && $$SUDO apt-get install -y -q chromium >/dev/null 2>&1; }; } || \
		echo "note: installing chromium failed; browser tests will skip"; \
	fi

# Two processes, each taking whole test files (a file's fixtures are built once), longest first
# (tests/scheduling.py): most tests wait on a server or a child process, so the two cores
# overlap them. `make test-seconds` measures each file's seconds again for that order.
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

test: setup browser
	$(PYTEST)

test-seconds: setup browser
	$(PYTEST) --write-scope-seconds

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy features journey benchmarks models training serving tests

# Benchmarks write their figures to benchmarks/results/NAME.json. The features benchmark creates
# benchmarks/.venv-peers (featuretools, lifetimes: pinned apart from Journey) on first use.
BENCHES := simulate features spark_query quality serving nba segments attribution personas load score_run survival drift history_memory

bench: setup
	for b in $(BENCHES); do $(BIN)/python benchmarks/$$b.py || exit 1; done

bench-quick: setup
	for b in $(BENCHES); do $(BIN)/python benchmarks/$$b.py --quick || exit 1; done

clean:
	@if [ -f $(DEMO)/serve.pid ] && [ -x $(BIN)/journey ]; then JOURNEY_HOME=$(DEMO) $(BIN)/journey stop; fi
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
