# uwsgi-gluster: every entry point a user or CI needs. Run as root on Debian.
# `make help` lists the targets (the `## ` text after each one) and the variables.
#
#   make            build ./uwsgi with UWSGI_PROFILE (default: glusterfs), see profiles/
#   make run        set everything up, start local GlusterFS, serve the demo volume on :9090
#   make test       set everything up and run the whole test suite
#   make bench      side-by-side benchmark against the native plugin

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# the `bench` extra (matplotlib, py-spy): here, not in mk/bench.mk, because mk/bench-nginx.mk
# and mk/bench-crowd.mk are included before it and expand it in their prerequisites
BENCH_STAMP := $(VENV)/.bench-installed
RUN_PORT ?= 9090

.PHONY: all help deps venv gluster run test unit bench clean clean-all

all: uwsgi pyplugin  ## build ./uwsgi and the launcher's C plugin (.venv/lib/uwsgi-gluster)

help:  ## list the targets and the variables they read
	@echo "usage: make TARGET [VARIABLE=value ...]"
	@echo
	@awk -F ':[^#]*## ' '/^[a-z][a-z0-9-]*:[^=]*## /{printf "  make %-15s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo
	@echo "variables: RUN_PORT (make run, default 9090), PYTEST_ARGS (test targets), UWSGI_PROFILE and"
	@echo "  UWSGI_GLUSTER_CACHE (./uwsgi), DURATION (soak, bench), BENCH_ARGS, DRY_RUN=1 (clean-all)"

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,lint,gevent]'
	touch $@

venv: $(STAMP)  ## create .venv with the package (editable), gevent, the test and lint tools

deps:  ## install the Debian packages (GlusterFS, libgfapi headers, libcap, pcre2, wrk, native plugin)
	scripts/gluster-env install

gluster:  ## start the local glusterd (installs it first when missing)
	@scripts/gluster-env up

run: venv pyplugin gluster  ## serve the demo volume on http://127.0.0.1:9090/ (RUN_PORT=...; Ctrl-C stops)
	@scripts/gluster-env volume demo
	@$(BIN)/python scripts/seed.py demo
	@$(BIN)/uwsgi-gluster --set-placeholder demo-port=$(RUN_PORT) --ini ini/demo.ini

test: venv pyplugin gluster lint  ## ruff and mypy, then the whole suite: units, integration, ./uwsgi build, 3-node cluster
	$(BIN)/python -m pytest -p no:cacheprovider -ra $(PYTEST_ARGS)

# pure units: the test files directly under tests/ (no glusterd, no ./uwsgi, no system
# user); tests/integration, tests/cluster and tests/build need the machine
UNIT_TESTS = $(sort $(wildcard tests/test_*.py))

unit: venv  ## the pure unit tests only (tests/test_*.py: seconds, nothing set up on the machine)
	$(BIN)/python -m pytest -p no:cacheprovider -ra $(UNIT_TESTS) $(PYTEST_ARGS)

# what the targets make inside the clone (all in .gitignore)
CLONE_FILES = $(strip $(VENV) build dist uwsgi bench-results uwsgi_gluster.egg-info $(wildcard uwsgi-gluster_*.deb))

clean:  ## remove the files made in the clone: .venv, build/, dist/, ./uwsgi, bench-results/, egg-info, the .deb
	rm -rf $(CLONE_FILES)

# scripts/clean-machine says what it removes and what it leaves (glusterd, Debian packages);
# CLEAN_VOLUMES, CLEAN_CLUSTER, CLEAN_USER, UWSGI_GLUSTER_CACHE narrow it down
clean-all:  ## DESTRUCTIVE: clean, plus the demo/test/bench volumes and bricks, test cluster, test user, build cache (DRY_RUN=1 prints)
ifdef DRY_RUN
	@scripts/clean-machine --dry-run
	@echo "[clean-machine] would run: rm -rf $(CLONE_FILES)" >&2
else
	scripts/clean-machine
	rm -rf $(CLONE_FILES)
endif

-include mk/*.mk
