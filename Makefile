# Two commands matter: `make run` and `make test`. Both bootstrap .venv from the pinned
# dependencies in pyproject.toml and are fast when nothing changed.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ARTIFACT := artifacts/default
# Re-install only when pyproject.toml changes (the stamp records which version was installed).
STAMP := $(VENV)/.stamp-$(shell sha256sum pyproject.toml | cut -c1-16)

.PHONY: run test lint typecheck artifact venv bench clean

$(STAMP):
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch is pinned to the CPU build that lies on this machine's disk; never let pip resolve
	# an unpinned torch (that would download a multi-GB CUDA build).
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[train,dev]'
	rm -f $(VENV)/.stamp-* && touch $@

venv: $(STAMP)

$(ARTIFACT)/metadata.json: | $(STAMP)
	$(PY) -m model train --name default --quantize

artifact: $(ARTIFACT)/metadata.json
	@echo "default artifact: $(ARTIFACT) (report: $(ARTIFACT)/report/report.md)"

run: artifact
	$(PY) -m service serve --artifact $(ARTIFACT)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

test: lint typecheck
	$(VENV)/bin/pytest

bench: artifact
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) artifacts .pytest_cache .mypy_cache .ruff_cache
