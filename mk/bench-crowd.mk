# make bench-crowd: many clients, side by side in one run: tuned nginx over FUSE, the
# native plugin behind uWSGI's http router, and ours in gevent mode (ini/many-clients.ini)
# (scripts/bench_crowd.py; results in bench-results/bench-crowd.json). Installs Debian's
# nginx when missing (its service is not started: the bench runs an nginx of its own).
#
#   make bench-crowd                                   DURATION=30, 2,000 readers, 1,000 slow heads
#   make bench-crowd BENCH_ARGS='--scale 0.25'         a busy machine: a quarter of the clients
#   make bench-crowd BENCH_ARGS='--only ours --scenario a'

.PHONY: bench-crowd

bench-crowd: venv gluster  ## many slow clients: ours (gevent) vs nginx over FUSE vs native (~5 min)
	@dpkg-query -W -f='$${Status}' nginx 2>/dev/null | grep -q "install ok installed" || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null; }
	$(BIN)/python scripts/bench_crowd.py $(BENCH_ARGS)
