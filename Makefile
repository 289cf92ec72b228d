# Endcap. The two set-up commands are `make run` and `make test` (README.md);
# both install what they need first (Debian packages via scripts/deps.sh, Go
# modules), so they work on a fresh Debian machine with nothing else done.

SHELL     := /bin/bash
GO        ?= go
BIN       ?= bin
VAR       ?= var
# Fuzz budgets are execution counts, not durations: with a duration, Go
# 1.26's fuzz coordinator can fail a clean run with "context deadline
# exceeded" on a loaded machine (golang/go#75804, fixed in Go 1.27).
FUZZTIME  ?= 30000x
BENCHTIME ?= 1x
# Demo region size for `make run` (small) and `make bench` (the 1M region).
DEMO_CUSTOMERS       ?= 2000
BENCH_DEMO_CUSTOMERS ?= 1000000

.PHONY: all deps build run demo test fuzz bench lint clean help

all: build

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 10

deps: ## install missing Debian packages (apt-get, sudo when not root) and Go modules
	@scripts/deps.sh
	@$(GO) mod download

build: deps ## build every binary into bin/
	$(GO) build -o $(BIN)/ ./cmd/...

demo: build ## generate the small demo region as a standalone file, var/demo/region.db (once)
	@mkdir -p $(VAR)/demo
	@if [ -f $(VAR)/demo/region.db ]; then echo "demo region: $(VAR)/demo/region.db (exists; make clean to regenerate)"; \
	else $(BIN)/demodata --customers $(DEMO_CUSTOMERS) --out $(VAR)/demo/region.db; fi

run: build ## start the store on this machine: a 3-node hub seeded with the demo region (Ctrl-C stops)
	$(BIN)/endcap --data $(VAR)/run --customers $(DEMO_CUSTOMERS)

test: deps ## vet, run every test, fuzz the decoders briefly
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 15m ./...
	$(MAKE) --no-print-directory fuzz

fuzz: ## run each fuzz target for FUZZTIME executions (default 30000x, ~10s)
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./retail/
	$(GO) test -run '^$$' -fuzz '^FuzzRowChangeJSON$$' -fuzztime $(FUZZTIME) ./retail/
	$(GO) test -run '^$$' -fuzz '^FuzzRowChangeFast$$' -fuzztime $(FUZZTIME) ./retail/
	$(GO) test -run '^$$' -fuzz '^FuzzAppendChangesJSON$$' -fuzztime $(FUZZTIME) ./retail/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeMessage$$' -fuzztime $(FUZZTIME) ./replication/
	$(GO) test -run '^$$' -fuzz '^FuzzParseChanges$$' -fuzztime $(FUZZTIME) ./replication/
	$(GO) test -run '^$$' -fuzz '^FuzzScanStream$$' -fuzztime $(FUZZTIME) ./devices/
	$(GO) test -run '^$$' -fuzz '^FuzzMachine$$' -fuzztime $(FUZZTIME) ./devices/sim/

bench: build ## run the benchmarks and the 1M-customer demo generation; see docs/benchmarks.md
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...
	$(GO) run ./cmd/applybench
	$(BIN)/hubbench --hub-binary $(BIN)/hub
	cd hub/logstorebench && $(GO) test -run '^$$' -bench . -benchtime 3s
	$(GO) test -run '^$$' -bench ScanLatency -benchtime 5x ./devices/
	@mkdir -p $(VAR)/bench && rm -f $(VAR)/bench/region-1m.db*
	/usr/bin/time -v $(BIN)/demodata --customers $(BENCH_DEMO_CUSTOMERS) --out $(VAR)/bench/region-1m.db 2>&1 | \
		grep -E 'demodata|Elapsed|Maximum resident' ; ls -l $(VAR)/bench/region-1m.db
	$(BIN)/syncbench --hub-binary $(BIN)/hub --edge-binary $(BIN)/edge --cache-dir $(VAR)/bench --bootstrap-customers $(BENCH_DEMO_CUSTOMERS)

lint: deps ## gofmt, go vet, staticcheck (pinned in go.mod as a tool)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

clean: ## remove built binaries and generated data
	rm -rf $(BIN) $(VAR)
	$(GO) clean -testcache
