# The two README commands. Both create .venv when missing and install the pinned environment.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
PINS   := requirements/pins.txt
STAMP  := $(VENV)/.installed

.PHONY: demo test lint format clean-venv

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the package metadata or the pins change.
$(STAMP): $(PY) pyproject.toml $(PINS)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c $(PINS) -e '.[train,dev,deepspeed]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/rscovlm demo

# The whole suite; tests/test_style.py runs `ruff check` and `ruff format --check` inside it.
test: $(STAMP)
	$(PY) -m pytest -n 2 -q

lint: $(STAMP)
	$(VENV)/bin/ruff check rscovlm tests benchmarks
	$(VENV)/bin/ruff format --check rscovlm tests benchmarks

format: $(STAMP)
	$(VENV)/bin/ruff format rscovlm tests benchmarks
	$(VENV)/bin/ruff check --fix rscovlm tests benchmarks

clean-venv:
	rm -rf $(VENV)
