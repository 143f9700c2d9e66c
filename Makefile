# The two commands a newcomer needs:  make dev  (run it)  and  make test  (test it).
SHELL := /bin/bash

.PHONY: setup build dev test ci test-native test-e2e bench bench-load bench-faults bench-worker bench-registry bench-cost bench-accounts size fmt lint

setup:
	bash scripts/setup.sh

build: setup
	bash scripts/build-worker.sh
	cargo build --quiet --bin sekisho

dev: setup
	bash scripts/dev.sh

test: setup
	cargo test --all-targets
	$(MAKE) --no-print-directory build
	node --test --test-concurrency=1 tests/e2e/
	bash scripts/size.sh

# What CI checks (.ci/run): formatting, clippy with -D warnings for the native crates and for the Worker on
# wasm32, then every test (`make test`, which ends with the Worker's size against its budget in scripts/size.sh).
ci: setup
	cargo fmt --all --check
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory test

test-native:
	cargo test --all-targets

test-e2e: build
	node --test --test-concurrency=1 tests/e2e/

bench:
	cargo bench --bench pipeline

# 2,000 signed requests over three channels, 10% duplicates, 32 concurrent, through workerd on 127.0.0.1.
bench-load: build
	node tests/e2e/load.mjs 2000 32

# Fault injection: backends flapping between 200, 500, 302, hangs and a refused port while 600 signed requests
# (10% duplicates) arrive; every accepted event must end delivered or dead-lettered, counted exactly.
bench-faults: build
	node tests/e2e/faults.mjs 600 16

# Sekisho's built Worker next to a plain JavaScript Worker doing the same job (benches/worker/reference.js) and the
# platform floor (benches/worker/floor.js: the job's IO without the job), each in its own workerd process, driven
# alternately by autocannon (LINE 1 event / 20 events, WeChat safe mode); about two minutes. Not part of
# `make test`. Where the time goes: node benches/worker/profile.mjs sekisho line-1; cold starts: startup.mjs.
# The registry at 10 and at 100,000 accounts side by side (ack p50/p99, memory), and KV reads per request for
# warm, cold and unknown-account traffic; about five minutes.
bench-registry: build
	node benches/worker/registry.mjs 100000 1000

bench-worker: setup
	bash scripts/build-worker.sh
	node benches/worker/bench.mjs

# What an accepted event costs at Cloudflare's list prices (benches/cost/prices.json): bounded workloads through
# workerd behind a meter that counts every billable operation through the bindings, per workload and in total,
# next to the floor of the design; exactly-once delivery asserted. About 3 minutes.
bench-cost: build
	node benches/cost/bench.mjs

# The capacity model's load run: 1,000 LINE events over 50 accounts, requests counted per Durable Object; fails
# if any object takes more than its share.
bench-accounts: build
	node benches/cost/accounts.mjs 1000 50

size:
	bash scripts/size.sh

fmt:
	cargo fmt --all

lint:
	cargo clippy --all-targets -- -D warnings
	cargo clippy -p sekisho-worker --target wasm32-unknown-unknown -- -D warnings
