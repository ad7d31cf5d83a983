# Code checks: ruff and mypy, configured in pyproject.toml, pinned in setup.cfg's `lint`
# extra (installed by `make venv`). `make test` runs it first.
#
#   make lint

.PHONY: lint

lint: venv  ## ruff (whole tree) and mypy (uwsgi_gluster/), config in pyproject.toml
	@status=0; \
	$(BIN)/ruff check . || status=1; \
	$(BIN)/mypy || status=1; \
	exit $$status
