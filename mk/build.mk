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
