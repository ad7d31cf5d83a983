# make bench: side-by-side benchmark of uwsgi-gluster against the native plugin
# (scripts/bench.py; results in bench-results/bench.json and docs/bench.png).
#
#   make bench                          DURATION=10 CONNECTIONS=30 by default
#   make bench BENCH_ARGS='--only ours'
#   make bench-profile                  py-spy on our worker under the 14 B and mixed loads

.PHONY: bench-profile

# matplotlib and py-spy: the optional `bench` extra of setup.cfg
$(BENCH_STAMP): $(STAMP) setup.cfg
	$(BIN)/pip install -q -e '.[test,lint,gevent,bench]'
	touch $@

bench: venv gluster $(BENCH_STAMP)  ## side-by-side benchmark against the native plugin (~2 min, docs/bench.png)
	$(BIN)/python scripts/bench.py $(BENCH_ARGS)

bench-profile: venv gluster $(BENCH_STAMP)  ## py-spy on our worker under the bench loads: top functions
	$(BIN)/python scripts/bench.py --profile $(BENCH_ARGS)
