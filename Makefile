VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint pytest install demo clean bench fuzz

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Lint and type-check the product, then the whole test suite (with a fast slice of the fuzz sets).
test: lint pytest

lint: $(STAMP)
	$(BIN)/ruff check controller
	$(BIN)/mypy controller

pytest: $(STAMP)
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

# The embedded demo: AWS emulated on 127.0.0.1, a local git repo from desired_state/.
demo: $(STAMP)
	$(BIN)/pointsman demo $(DEMO_ARGS)

# Figures, not pass/fail: AWS calls and time per reconcile on a larger emulated estate.
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_reconcile.py

# Reliability figures: the full bad-input corpus, bad command lines, the fault-injection
# matrix and the HTTP attacks (cases, tracebacks, hangs, harmful states, converged on rerun).
fuzz: $(STAMP)
	$(BIN)/python benchmarks/fuzz.py $(FUZZ_ARGS)
