VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test install demo clean bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache

# The embedded demo: AWS emulated on 127.0.0.1, a local git repo from desired_state/.
demo: $(STAMP)
	$(BIN)/pointsman demo $(DEMO_ARGS)

# Figures, not pass/fail: AWS calls and time per reconcile on a larger emulated estate.
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_reconcile.py
