# uwsgi-gluster: every entry point a user or CI needs. Run as root on Debian.
#
#   make            build ./uwsgi with UWSGI_PROFILE (default: glusterfs), see profiles/
#   make run        set everything up, start local GlusterFS, serve the demo volume on :9090
#   make test       set everything up and run the whole test suite
#   make bench      side-by-side benchmark against the native plugin

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: all deps venv gluster run test unit bench clean

all: uwsgi

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

venv: $(STAMP)

# the Debian packages (GlusterFS, libgfapi headers, libcap, pcre2, wrk, the native plugin...)
deps:
	scripts/gluster-env install

gluster:
	scripts/gluster-env up

run: venv gluster
	scripts/gluster-env volume demo
	$(BIN)/python scripts/seed.py demo
	$(BIN)/uwsgi-gluster --ini ini/demo.ini

test: venv gluster
	$(BIN)/python -m pytest -p no:cacheprovider -ra $(PYTEST_ARGS)

# pure units: the test files directly under tests/ (no glusterd, no ./uwsgi, no system
# user); tests/integration, tests/cluster and tests/build need the machine
UNIT_TESTS = $(sort $(wildcard tests/test_*.py))

unit: venv
	$(BIN)/python -m pytest -p no:cacheprovider -ra $(UNIT_TESTS) $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build uwsgi

-include mk/*.mk
