# nudge: `make dev` runs the demo shop behind the local edge; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.13 2>/dev/null || echo /root/.pyenv/versions/3.13.0/bin/python3.13)
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8787
SHOP_PORT ?= 8788

.PHONY: dev test unit e2e deploy-check bench setup chromium clean

setup: $(VENV)/.installed node_modules/.installed .dev.vars src/nudge/_bundle.py

$(VENV)/.installed: requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package-lock.json
	npm ci --no-audit --no-fund
	touch $@

.dev.vars:
	cp .dev.vars.example .dev.vars

src/nudge/_bundle.py: $(wildcard rules/*.toml) client/nudge.js scripts/build_bundle.py
	$(PY) scripts/build_bundle.py

chromium:
	@test -x /usr/bin/chromium || { apt-get update -qq && apt-get install -y -qq chromium; }

dev: setup
	PORT=$(PORT) SHOP_PORT=$(SHOP_PORT) scripts/dev.sh

test: setup chromium
	$(PY) -m pytest tests e2e
	npx wrangler deploy --dry-run --outdir dist

bench: setup
	$(PY) bench/ttfb.py

clean:
	rm -rf $(VENV) node_modules .nudge-local dist src/nudge/_bundle.py
