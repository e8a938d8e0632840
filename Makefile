VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint pytest install demo clean bench bench-scale bench-replicas fuzz

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Lint and type-check the product, then the whole test suite (with a fast slice of the fuzz sets).
test: lint pytest

# ruff (lint and format), mypy and the import contracts of pyproject.toml (layers, no cycles).
lint: $(STAMP)
	$(BIN)/ruff check controller tests benchmarks
	$(BIN)/ruff format --check controller tests benchmarks
	$(BIN)/mypy controller
	$(BIN)/lint-imports

# In parallel with pytest-xdist: most tests wait on subprocesses and sockets, so on a 2-core
# machine 3 workers beat 2. PYTEST_WORKERS=0 runs serially in one process; PYTEST_ARGS adds
# pytest arguments (e.g. PYTEST_ARGS="-m 'not server'"). Tests are spread over the workers (xdist's
# default --dist load): no module relies on its tests running in order or in one process; its
# module-scoped fixtures (a parsed Dockerfile, a browser, a read-only workspace) are per worker.
PYTEST_WORKERS ?= 3
PYTEST_ARGS ?=
pytest: $(STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

# The embedded demo: AWS emulated on 127.0.0.1, a local git repo from desired_state/.
demo: $(STAMP)
	$(BIN)/pointsman demo $(DEMO_ARGS)

# Figures, not pass/fail: AWS calls and time per reconcile on a larger emulated estate.
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_reconcile.py

# Figures at scale under AWS's quotas: 100 and 1,000 functions behind a proxy answering 429 like AWS
# (converged plan, an apply of 1 %, an import of the whole estate, a plan of 10,000 aliases not yet created,
# reads vs the minimum, throttling, peak RSS). Takes many minutes; BENCH_ARGS='--scenario "new aliases plan"' runs one.
bench-scale: $(STAMP)
	$(BIN)/python benchmarks/bench_scale.py $(BENCH_ARGS)

# Replicas sharing targets through a DynamoDB lease table (moto's server): three `pointsman run`
# processes, 12 targets; SIGKILL one, SIGSTOP another past its lease; takeover times, writes from the
# paused replica after it lost its leases, double owners. About three minutes; BENCH_ARGS='--targets 6 --lease 3 --renew 2 --retry 0.5 --interval 3' is quick.
bench-replicas: $(STAMP)
	$(BIN)/python benchmarks/bench_replicas.py $(BENCH_ARGS)

# Reliability figures: the full bad-input corpus, bad command lines, the fault-injection
# matrix and the HTTP attacks (cases, tracebacks, hangs, harmful states, converged on rerun).
fuzz: $(STAMP)
	$(BIN)/python benchmarks/fuzz.py $(FUZZ_ARGS)
