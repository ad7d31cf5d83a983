# Building ./uwsgi from a uWSGI build profile (README.rst, "Building a real uwsgi binary").
#
#   make                          ./uwsgi with profiles/glusterfs.ini
#   UWSGI_PROFILE=path/to/x.ini make
#   PKG_CONFIG_PATH=/opt/glusterfs/lib/pkgconfig make
#
# The pinned uWSGI source is downloaded from PyPI and built outside the clone,
# cached in $(UWSGI_GLUSTER_CACHE)/<hash of profile, version, python, pkg-config>;
# a rerun with the same inputs only relinks.

UWSGI_PROFILE ?= glusterfs
UWSGI_GLUSTER_CACHE ?= /var/cache/uwsgi-gluster
export UWSGI_GLUSTER_CACHE

.PHONY: uwsgi build-test

# Always asks the builder: it decides from its cache key whether to compile.
uwsgi: deps $(STAMP)  ## build ./uwsgi (uWSGI from the pinned sdist, profile UWSGI_PROFILE, cached)
	$(BIN)/python scripts/uwsgi_build.py build --profile '$(UWSGI_PROFILE)' --output uwsgi

build-test: uwsgi  ## tests/build: ./uwsgi, cap, serving the inis of ini/
	$(BIN)/python -m pytest -p no:cacheprovider -ra tests/build $(PYTEST_ARGS)

# The C plugin for the uwsgi-gluster launcher (pyuwsgi): profiles/plugins/glusterfs.c
# compiled with pyuwsgi's own --cflags against the same version's headers, into the
# venv (uwsgi_gluster/cplugin.py loads it; without it the launcher answers in Python)
PYPLUGIN := $(VENV)/lib/uwsgi-gluster/glusterfs_plugin.so

.PHONY: pyplugin

pyplugin: deps $(PYPLUGIN)  ## build the launcher's C plugin into .venv (done by make, make test, make run)

$(PYPLUGIN): $(STAMP) profiles/plugins/glusterfs.c scripts/uwsgi_build.py
	@$(BIN)/python scripts/uwsgi_build.py pyplugin --venv '$(VENV)'
