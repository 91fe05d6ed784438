# Two commands on a fresh machine with only Python: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run run-dapr dapr test bench db-stop clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

## run: start PostgreSQL (embedded, under .data/, unless POSTGRES_URL is set), the sidecar and all five apps.
## Ctrl-C stops the apps and the sidecar, then the embedded PostgreSQL this target started.
run: $(STAMP)
	@if [ -z "$$POSTGRES_URL" ]; then \
		POSTGRES_URL="$$($(PY) -m common.devdb start)" || exit 1; export POSTGRES_URL; \
		trap '$(PY) -m common.devdb stop' EXIT; trap 'exit 130' INT TERM; \
	fi; \
	$(PY) -m sidecar run -f dapr.yaml

## dapr: find Dapr (daprd, placement, scheduler) of the pinned 1.18 release, or build it once from its Go
## modules into ~/.cache/dapr-saga (needs Go 1.26+; the first build takes many minutes). Stdlib only: no venv.
dapr:
	$(PYTHON) -m realdapr install

## run-dapr: `make run`, on real Dapr: placement and scheduler on ports 6050/6060, one daprd per app, the
## workflow state store in the embedded PostgreSQL (or POSTGRES_URL). Needs `make dapr` first. `exec`, so
## that a SIGTERM to make reaches the launcher, which stops everything it started, PostgreSQL included.
run-dapr: $(STAMP)
	exec $(PY) -m realdapr run -f dapr.yaml

## test: every test (unit, integration on real PostgreSQL, end-to-end through the sidecar)
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

## bench: the engine benchmark: the sidecar, durabletask's in-memory backend (and real daprd: BENCH_ARGS='--systems sidecar peer daprd')
bench: $(STAMP)
	$(PY) -m bench.engines $(BENCH_ARGS)

clean:
	rm -rf .sidecar .data
