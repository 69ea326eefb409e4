PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean install

# The virtualenv is (re)built when missing or when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,lint]'
	touch $(STAMP)

install: $(STAMP)

# Exit status 1 means "there are fixes to show", which is the point of the demo.
demo: $(STAMP)
	@$(BIN)/sqla-fix apply --dry-run samples/ || test $$? -eq 1

# The suite runs in parallel, one worker per core.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto

lint: $(STAMP)
	$(BIN)/ruff check codemods tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build *.egg-info

# Speed lives here, as ratios measured within one run (never in tests).
bench: $(STAMP)
	$(BIN)/python bench/bench.py
