# 3-node GlusterFS cluster in network namespaces, for reliability tests (root only).
#
#   make cluster-up       build it (idempotent; ~8 s from scratch, ~1 s when up)
#   make cluster-down     kill its processes, delete namespaces, /etc/netns entries, state
#   make cluster-status   processes, links, peers, bricks
#   make cluster-test     tests/cluster (brings the cluster up itself)

.PHONY: cluster-up cluster-down cluster-status cluster-test

cluster-up:  ## 3-node GlusterFS cluster in network namespaces (idempotent)
	scripts/gluster-cluster up

cluster-down:  ## kill the cluster, delete its namespaces and state
	scripts/gluster-cluster down

cluster-status:  ## cluster processes, links, peers, bricks
	scripts/gluster-cluster status

cluster-test: venv  ## tests/cluster: faults under load on the 3-node cluster
	$(BIN)/python -m pytest -p no:cacheprovider -ra tests/cluster $(PYTEST_ARGS)
