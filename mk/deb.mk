# The Debian package for the distribution's uwsgi (README.rst, "Debian package").
#
#   make deb      uwsgi-gluster_<version>_<arch>.deb: our glusterfs_plugin.so built by
#                 /usr/bin/uwsgi --build-plugin, uwsgi_gluster + the gfapi binding for
#                 the system python3; then lintian (warnings fail the build)
#   make deb-test the tests that run Debian's /usr/bin/uwsgi with it (tests/distro)

DEB_UWSGI ?= /usr/bin/uwsgi

.PHONY: deb deb-test

deb: deps $(STAMP)  ## uwsgi-gluster_<version>_<arch>.deb for Debian's uwsgi (replaces uwsgi-plugin-glusterfs), lintian
	deb=$$($(BIN)/python scripts/build_deb.py --uwsgi '$(DEB_UWSGI)' --pip $(BIN)/pip) && \
	lintian --fail-on error,warning --pedantic "$$deb"

deb-test: deb gluster  ## the tests of Debian's /usr/bin/uwsgi with our plugin and the .deb (tests/distro)
	$(BIN)/python -m pytest -p no:cacheprovider -ra tests/distro $(PYTEST_ARGS)
