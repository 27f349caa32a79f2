# Entry points. Every target installs what it needs first (bin/setup is idempotent and fast when nothing changed).
SHELL := /bin/bash
ENV := source bin/env &&

.PHONY: setup demo demo-stop explorer lint test test-stateful test-forge chaos gas bench bench-e2e load fuzz-proxy clean

setup:
	@bin/setup

## The main job: local anvil, deploy, the hosted-training scenario (scripts/demo.py), then the explorer.
## make demo CHAIN=ganache plays it on Ganache (npm ganache 7.9.2) instead; make demo VERIFIED=1 plays it in
## verified mode (every checkpoint settled or rolled back on ezkl accuracy proofs; docs/zk.md, "The verified demo").
CHAIN ?= anvil
VERIFIED ?=
demo: setup
	@CHAIN=$(CHAIN) SPLITLEDGER_DEMO_VERIFIED=$(VERIFIED) bin/demo

## Stops the chain and the explorer that `make demo` left running.
demo-stop:
	@for p in var/demo/explorer.pid var/demo/node.pid var/demo/anvil.pid; do [ -f $$p ] && kill $$(cat $$p) 2>/dev/null; rm -f $$p; done; true

## The protocol explorer on a chain of your choice: make explorer ARGS="--rpc URL --deployment FILE".
explorer: setup
	@$(ENV) splitledger explorer $(ARGS)

## ruff and mypy as configured in pyproject.toml (bin/run-tests runs them first too).
lint: setup
	@bin/lint

## The whole test suite (what CI runs).
test: setup
	@$(ENV) bin/run-tests

## Only the stateful invariant test; SPLITLEDGER_STATEFUL_EXAMPLES=10000 for the nightly-style run.
test-stateful: setup
	@$(ENV) python -m pytest -p no:cacheprovider tests/contracts/test_market_invariants.py

## Only the Foundry invariant suite (foundry/test, docs/reliability.md): 256 runs, the books checked after every
## call; FOUNDRY_PROFILE=ci for what the suite runs (10,000 runs). ARGS go to forge test.
test-forge: setup
	@$(ENV) forge test --offline $(ARGS)

## Chaos runs (chaos/, docs/reliability.md): N seeded fault schedules from SEED on (default 20 from 1), each
## played and checked; a failing seed is printed with the command that replays it. ARGS go to python -m chaos.
chaos: setup
	@$(ENV) python -m chaos --seed $(or $(SEED),1) --runs $(or $(N),20) $(ARGS)

## Gas table of every market call, written to docs/gas.md.
gas: setup
	@$(ENV) brownie run scripts/gas_table.py

## Benchmarks (printed ratios, not tests).
bench: setup
	@$(ENV) python bench/bench_container.py

## The protocol end to end (anvil, 3 proxy processes, a source and a hosting node process) beside centralized
## training of the same rows: make bench-e2e ARGS="--rows 10000 100000" (or --quick; docs/benchmarks.md, "End to end").
bench-e2e: setup
	@$(ENV) python bench/bench_e2e.py $(ARGS)

## Load: N sources uploading to 3 proxies while a hosting node quotes, trains and settles; per-endpoint latency,
## errors and RSS (docs/reliability.md, "Load"): make load ARGS="--sources 50 --duration 120" (or --quick). Exits 1
## on any error.
load: setup
	@$(ENV) python bench/load.py $(ARGS)

## schemathesis against a real proxy process (its own venv, .venv-fuzz); FUZZ_MAX_EXAMPLES, FUZZ_MAX_TIME bound it.
fuzz-proxy: setup
	@bin/fuzz-proxy

clean:
	rm -rf build reports .stamps .hypothesis deployments/development.json foundry/out foundry/cache
