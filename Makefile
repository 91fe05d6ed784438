# Two commands on a fresh machine with only Python: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run run-dapr run-cluster dapr k8s-tools check test fuzz bench bench-system chaos db-stop clean

$(STAMP): pyproject.toml
	@echo "Setting up $(VENV): the first time takes a minute or two; pip's progress follows."
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --progress-bar on -e '.[test,bench]'
	touch $(STAMP)

## run: start PostgreSQL (embedded, under .data/, unless POSTGRES_URL is set), the sidecar and all five apps.
## The sidecar enforces the WorkflowAccessPolicy files in components/access-policies/ (as daprd with mTLS).
## Ctrl-C or SIGTERM stops the apps and the sidecar, then the embedded PostgreSQL if this target started it.
## `exec`, so that a SIGTERM to make reaches devtools.devdb, which passes it on; once every app answers, it prints
## where the console, the APIs and their docs are (--banner).
run: $(STAMP)
	exec $(PY) -m devtools.devdb run --banner dapr.yaml -- $(PY) -m sidecar run -f dapr.yaml --policies components/access-policies

## dapr: find Dapr (daprd, placement, scheduler, sentry) of the pinned 1.18 release, or build it once from its Go
## modules into ~/.cache/dapr-saga (needs Go 1.26+; the first build takes many minutes; an install without sentry,
## as `dapr init` makes, gets sentry built beside it in the cache). Stdlib only: no venv.
dapr:
	$(PYTHON) -m realdapr install

## k8s-tools: kustomize built from its Go module, and the Kubernetes API's and Dapr's schemas from theirs, for the
## checks of deploy/ (tests/integration/deploy; skipped without them). Stdlib only: no venv. About a minute once.
k8s-tools:
	$(PYTHON) -m devtools.k8s install

## run-dapr: `make run`, on real Dapr as production runs it: sentry (mTLS; its trust root made once in
## .data/dapr/sentry/), placement and scheduler on ports 6070/6050/6060, one daprd per app with the access
## policies of components/access-policies/ and signed workflow history, a watchdog that restarts a wedged daprd,
## the workflow state store in the embedded PostgreSQL (or POSTGRES_URL). Needs `make dapr` first.
run-dapr: $(STAMP)
	exec $(PY) -m devtools.devdb run --banner dapr.yaml -- $(PY) -m realdapr run -f dapr.yaml --policies components/access-policies

## run-cluster: real Dapr across simulated hosts (Linux network namespaces on a bridge; needs root): a
## control-plane host (sentry, placement, scheduler), a PostgreSQL host and NODES app hosts (default 2), each
## running one replica of every app with its own daprd, all as deploy/cluster renders it (kustomize).
## Each app at http://127.0.0.1:<its Service port + 10000> (order-api and the console: 18000), spread over its
## replicas. Ctrl-C removes everything; `python -m realdapr.cluster down` removes what a killed run left. Needs
## `make dapr` and `make k8s-tools` first. CLUSTER_ARGS passes options (`--nodes 3`; `--help`).
run-cluster: $(STAMP)
	exec $(PY) -m realdapr.cluster run $(if $(NODES),--nodes $(NODES)) --env FAULTS_ENABLED=true --env FAULTS_ALLOW_REMOTE=true --env OPERATOR_ALLOW_REMOTE=true $(CLUSTER_ARGS)

## check: the static gates, which `make test` runs first: ruff (lint, then format), mypy (pyproject.toml says
## what and how strictly), the import layers (devtools/layers.py: the apps stand on common alone) and the module
## sizes (devtools/sizes.py: no module of the product or the tools over 400 lines)
check: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m devtools.layers
	$(PY) -m devtools.sizes

## test: `make check`, then every test (unit, integration on real PostgreSQL, end-to-end on the sidecar and,
## after `make dapr`, on real daprd). LEVEL=unit|integration|e2e runs one level (pytest -m LEVEL); PYTEST_ARGS
## passes anything else to pytest.
test: check
	$(PY) -m pytest $(if $(LEVEL),-m $(LEVEL)) $(PYTEST_ARGS)

## fuzz: every app's API against its OpenAPI document, 500 generated requests per operation (over 1,000 per app;
## make test runs 15)
fuzz: $(STAMP)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-500} $(PY) -m pytest tests/e2e/test_fuzz.py --engine sidecar -s -p no:cacheprovider

## bench: the engine benchmark: the sidecar, durabletask's in-memory backend (and real daprd: BENCH_ARGS='--systems sidecar peer daprd')
bench: $(STAMP)
	$(PY) -m bench.engines $(BENCH_ARGS)

## bench-system: the whole system under load beside an engine-free saga (BENCH_ARGS='--engine dapr' for real
## daprd, '--engine both' for the sidecar and real daprd in the same run; `python -m bench.system --help`).
## Sends about 21,000 orders with the defaults: many minutes. BENCH_ARGS='--topology cluster': the 2-node cluster
## of `make run-cluster` (root).
bench-system: $(STAMP)
	$(PY) -m bench.system $(BENCH_ARGS)

## chaos: the whole system under a seeded mixed workload (1,000 orders at concurrency 16) while faults, app and
## runner SIGKILLs and PostgreSQL restarts are injected at random (on real Dapr, CHAOS_ARGS='--engine dapr', also
## SIGKILLs of single daprds and of placement, scheduler and sentry); then every order is checked through the REST
## APIs (exit 1 on any violation). CHAOS_ARGS passes options (`--orders 200 --engine dapr --seed 7`;
## `python -m chaos --help`). Several minutes. CHAOS_ARGS='--topology cluster': on the 2-node cluster of
## `make run-cluster` (root), adding node crashes, node pauses and network partitions.
chaos: $(STAMP)
	$(PY) -m chaos $(CHAOS_ARGS)

clean:
	rm -rf .sidecar .data
