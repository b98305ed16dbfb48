# Two commands matter: `make run` and `make test`. Both bootstrap .venv from the pinned
# dependencies in pyproject.toml and are fast when nothing changed.
SHELL := /bin/bash
# A recipe that fails leaves no half-made target behind (e.g. an artifact whose metadata.json was
# written before evaluation failed, which the next `make run` would otherwise serve as done).
.DELETE_ON_ERROR:
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ARTIFACT := artifacts/default
# Every package .venv gets, transitive ones included, pinned (`make lock` regenerates it): a clean
# clone installs the same set whatever PyPI holds that day.
LOCK := requirements/dev.txt
# Re-install only when pyproject.toml, the lock or the C extension changes (the stamp records which).
STAMP := $(VENV)/.stamp-$(shell cat pyproject.toml $(LOCK) service/_fastpath.h service/_fastpath*.c | sha256sum | cut -c1-16)

.PHONY: run test lint typecheck artifact venv bench clean lock tools teacher

# torch (training and tests only; serving never imports it) must be the CPU build: on Linux,
# PyPI's torch is a CUDA build with several GB of nvidia-* wheels. A wheel on this machine's disk
# (pip's find-links, as on the project machines) is used as is; elsewhere it comes from PyTorch's
# CPU index. The project's own install then finds torch satisfied.
TORCH := torch==2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

# $(call install_torch,<python>)
install_torch = $(1) -m pip install --quiet --disable-pip-version-check --no-index --no-deps '$(TORCH)' 2>/dev/null \
	  || $(1) -m pip install --quiet --disable-pip-version-check --index-url $(TORCH_INDEX) '$(TORCH)'

$(STAMP):
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(call install_torch,$(PY))
	$(PY) -m pip install --quiet --disable-pip-version-check -c $(LOCK) -e '.[train,dev]'
	rm -f $(VENV)/.stamp-* && touch $@

venv: $(STAMP)

$(ARTIFACT)/metadata.json: | $(STAMP)
	$(PY) -m model train --name default --quantize

# Regenerates model/assets' teacher soft labels (≈ 11 min on 2 cores); `make artifact` uses them.
teacher: $(STAMP)
	$(PY) -m model teacher

artifact: $(ARTIFACT)/metadata.json
	@echo "default artifact: $(ARTIFACT) (report: $(ARTIFACT)/report/report.md)"

run: artifact
	$(PY) -m service serve --artifact $(ARTIFACT)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# Debian packages the tests drive: docker-compose 1.29 validates docker-compose.yml offline (no
# Docker engine needed); chromium runs the explorer page's browser test (Playwright drives it).
tools:
	@missing=""; command -v docker-compose >/dev/null || missing="$$missing docker-compose"; \
	  command -v chromium >/dev/null || missing="$$missing chromium"; \
	  if [ -n "$$missing" ]; then apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; fi

test: lint typecheck tools
	$(VENV)/bin/pytest

# requirements/dev.txt: what .venv installs (above). requirements/serve*.txt: the fully pinned
# serving runtime the Docker image (and its test) install.
lock:
	rm -rf /tmp/sentiment-lock-dev && $(PYTHON) -m venv /tmp/sentiment-lock-dev
	$(call install_torch,/tmp/sentiment-lock-dev/bin/python)
	/tmp/sentiment-lock-dev/bin/pip install --quiet --disable-pip-version-check '.[train,dev]'
	# torch without its local label (+cpu): the constraint must match a CPU torch from any index.
	{ echo "# Every package 'make run' and 'make test' install into .venv, fully pinned (pip -c)."; \
	  echo "# Regenerate with 'make lock' after changing pyproject.toml's pins."; \
	  /tmp/sentiment-lock-dev/bin/pip freeze --all --disable-pip-version-check | grep -v -e '^sentiment' -e '^pip==' \
	    | sed -E 's/^(torch==[^+]+)[+].*/\1/'; } > $(LOCK).tmp && mv $(LOCK).tmp $(LOCK)
	rm -rf /tmp/sentiment-lock && $(PYTHON) -m venv /tmp/sentiment-lock
	/tmp/sentiment-lock/bin/pip install --quiet --disable-pip-version-check '.[serve]'
	{ echo "# The serving runtime, fully pinned: what the Docker runtime stage installs (pip --no-deps)."; \
	  echo "# Regenerate with 'make lock' after changing pyproject.toml's serving pins."; \
	  /tmp/sentiment-lock/bin/pip freeze --disable-pip-version-check | grep -v '^sentiment'; } > requirements/serve.txt
	sed 's/^onnxruntime==/onnxruntime-gpu==/; 1s/.*/# The GPU serving runtime: serve.txt with onnxruntime-gpu instead of onnxruntime (never both)./' \
	  requirements/serve.txt > requirements/serve-gpu.txt

bench: artifact
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) artifacts .pytest_cache .mypy_cache .ruff_cache
