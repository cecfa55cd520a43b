# 3DPrintForge developer commands. `make run` starts the hub; `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Every install takes the exact versions in constraints.txt (`make lock` refreshes it).
CONSTRAINTS := constraints.txt

.PHONY: install lock run test lint typecheck pytest openapi bench bench-ws bench-soak bench-ui bench-history bench-outbox bench-queue bench-overload bench-add-printers clean

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c $(CONSTRAINTS) -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Resolve pyproject.toml's ranges afresh in a scratch environment and pin the result.
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install -q --upgrade pip
	.lock-venv/bin/pip install -q -e '.[dev]'
	( echo "# Exact versions every install uses; refresh with \`make lock\` after changing pyproject.toml."; \
	  .lock-venv/bin/pip freeze --exclude-editable | grep -v '^printforge' ) > $(CONSTRAINTS)
	rm -rf .lock-venv

run: install
	$(BIN)/printforge serve --config config/embedded.toml

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

# Two worker processes by default, whole files to each, so module fixtures such as the
# browser's Chromium stay in one; `make test PYTEST_WORKERS=0` runs serially (docs/testing.md).
PYTEST_WORKERS ?= 2
pytest: install
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadfile

test: lint typecheck pytest

openapi: install
	$(BIN)/python -m api.openapi_dump docs/openapi.json

# Benchmarks (docs/performance.md): simulator, hub and load generators in separate processes.
bench: install
	$(BIN)/python bench/bench_hub.py all

bench-ws: install
	$(BIN)/python bench/bench_hub.py ws

bench-soak: install
	$(BIN)/python bench/bench_hub.py soak

# The print queue's dispatcher: 1,000 simulated printers, 10,000 queued jobs (docs/performance.md).
bench-queue: install
	$(BIN)/python bench/bench_queue.py

# The dashboard in Debian's Chromium: 200 printers at 60x, the overview open for 60 s.
bench-ui: install
	$(BIN)/python bench/bench_ui.py

# Print history at a million rows on SQLite and PostgreSQL (docs/performance.md).
bench-history: install
	$(BIN)/python bench/bench_history.py

# Webhook deliveries through the outbox (docs/performance.md).
bench-outbox: install
	$(BIN)/python bench/bench_outbox.py

# Past saturation: 4,000 simulated Bambu printers, intake, shed counts, RSS, health, SIGTERM.
bench-overload: install
	$(BIN)/python bench/bench_overload.py

# POST /api/printers one at a time up to 2,000 printers: seconds per batch of 100.
bench-add-printers: install
	$(BIN)/python bench/bench_add_printers.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
