# Two commands matter: `make run` and `make test`. Both bootstrap .venv from the pinned
# dependencies in pyproject.toml and are fast when nothing changed.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ARTIFACT := artifacts/default
# Re-install only when pyproject.toml or the C extension changes (the stamp records which was installed).
STAMP := $(VENV)/.stamp-$(shell cat pyproject.toml service/_fastpath.c | sha256sum | cut -c1-16)

.PHONY: run test lint typecheck artifact venv bench clean lock tools teacher

$(STAMP):
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch is pinned to the CPU build that lies on this machine's disk; never let pip resolve
	# an unpinned torch (that would download a multi-GB CUDA build).
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[train,dev]'
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

# requirements/serve*.txt: the fully pinned serving runtime the Docker image (and its test) install.
lock:
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
