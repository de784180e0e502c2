# graphmem: `make demo` runs the main job end to end; `make test` runs ruff, mypy and the tests (`make lint`: ruff and mypy alone).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_HOME ?= .graphmem-demo
# torch comes from PyPI; the CPU build is enough for graphmem (set TORCH= to skip the pin)
TORCH ?= torch==2.13.0

.PHONY: install demo test lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@if [ -n "$(TORCH)" ]; then $(BIN)/python -m pip install -q "$(TORCH)" || $(BIN)/python -m pip install -q torch; fi
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

demo: install
	rm -rf $(DEMO_HOME)
	$(BIN)/graphmem --home $(DEMO_HOME) ingest examples/docs
	$(BIN)/graphmem --home $(DEMO_HOME) search --file examples/demo_questions.jsonl -k 5

test: lint
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(DEMO_HOME) .pytest_cache
