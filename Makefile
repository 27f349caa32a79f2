# Entry points. Every target installs what it needs first (bin/setup is idempotent and fast when nothing changed).
SHELL := /bin/bash
ENV := source bin/env &&

.PHONY: setup demo test test-stateful gas bench clean

setup:
	@bin/setup

## The main job: local anvil, deploy, and the scripted scenario (scripts/demo.py).
demo: setup
	@$(ENV) brownie run scripts/demo.py --silent

## The whole test suite (what CI runs).
test: setup
	@$(ENV) bin/run-tests

## Only the stateful invariant test; SPLITLEDGER_STATEFUL_EXAMPLES=10000 for the nightly-style run.
test-stateful: setup
	@$(ENV) python -m pytest -p no:cacheprovider tests/contracts/test_market_invariants.py

## Gas table of every market call, written to docs/gas.md.
gas: setup
	@$(ENV) brownie run scripts/gas_table.py

## Benchmarks (printed ratios, not tests).
bench: setup
	@$(ENV) python bench/bench_container.py

clean:
	rm -rf build reports .stamps .hypothesis deployments/development.json
