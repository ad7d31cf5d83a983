# make bench-nginx: uwsgi-gluster against tuned nginx over a FUSE mount of the same
# volume, in one run (scripts/bench_nginx.py; results in bench-results/bench-nginx.json
# and docs/bench-nginx.png). Installs Debian's nginx when missing (its service is not
# started: the bench runs an nginx of its own).
#
#   make bench-nginx                     DURATION=10 by default
#   make bench-nginx BENCH_ARGS='--socket http-socket'

.PHONY: bench-nginx

bench-nginx: venv gluster uwsgi pyplugin $(BENCH_STAMP)  ## ours against tuned nginx over a FUSE mount, one run of 3 alternating rounds (~6 min, docs/bench-nginx.png)
	@dpkg-query -W -f='$${Status}' nginx 2>/dev/null | grep -q "install ok installed" || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null; }
	$(BIN)/python scripts/bench_nginx.py $(BENCH_ARGS)

.PHONY: nginx-profile

nginx-profile: venv gluster $(BENCH_STAMP)  ## py-spy on our worker 1 under each bench-nginx load (ours only)
	$(BIN)/python scripts/bench_nginx.py --profile $(BENCH_ARGS)
