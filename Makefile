# Two entry points, both from a fresh clone: `make demo` and `make test` (see README).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --disable-pip-version-check -q -c constraints.txt
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test test-quick lint clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) torch
	$(PIP) -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/alliance demo

test: $(VENV)/.installed $(VENV)/.llm-installed
	$(VENV)/bin/ruff check src tests benchmarks
	$(PY) -m pytest

# The llm tests need the local model server: installed here (llama-cpp-python compiles from source, minutes).
$(VENV)/.llm-installed: $(VENV)/.installed
	$(PIP) -e '.[test,llm]'
	touch $@

# Skips the tests that need the local language-model server.
test-quick: $(VENV)/.installed
	$(PY) -m pytest -m "not llm"

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) alliance-demo alliance-out .pytest_cache .ruff_cache
