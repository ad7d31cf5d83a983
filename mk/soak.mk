# Soak test against the 3-node cluster with rotating faults (root only; not part of `make test`).
#
#   make soak                    10 minutes of checked load, faults every 30 s
#   make soak DURATION=120       shorter (also INTERVAL=s per row, FAULT_EVERY=s)
#
# Table on stdout; plot in bench-results/soak.png and docs/soak.png; exit 1 on any
# failed or corrupt response.

.PHONY: soak

DURATION ?= 600
INTERVAL ?= 10
FAULT_EVERY ?= 30

soak: venv gluster  ## 10 min of checked load with faults on the cluster (DURATION=s), docs/soak.png
	$(BIN)/python -c 'import matplotlib' 2>/dev/null || $(BIN)/pip install -q matplotlib
	DURATION=$(DURATION) INTERVAL=$(INTERVAL) FAULT_EVERY=$(FAULT_EVERY) $(BIN)/python scripts/soak.py
