# 3-node GlusterFS cluster in network namespaces, for reliability tests (root only).
#
#   make cluster-up       build it (idempotent; ~8 s from scratch, ~1 s when up)
#   make cluster-down     kill its processes, delete namespaces, /etc/netns entries, state
#   make cluster-status   processes, links, peers, bricks
#   make cluster-test     tests/cluster (brings the cluster up itself)

.PHONY: cluster-up cluster-down cluster-status cluster-test

cluster-up:
	scripts/gluster-cluster up

cluster-down:
	scripts/gluster-cluster down

cluster-status:
	scripts/gluster-cluster status

cluster-test: venv
	$(BIN)/python -m pytest -p no:cacheprovider -ra tests/cluster $(PYTEST_ARGS)
