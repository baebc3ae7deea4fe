# edgegate: `make demo` runs the demo, `make test` runs every check. Both do
# their own set-up on a fresh Debian machine (Go 1.26 is the only prerequisite).

GO       ?= go
BIN      := bin/edgegate
PKGS     := ./...
# System packages the tests start for real: redis-server (shared state), goaccess (log compatibility),
# curl (the README's commands are run as written), chromium (the logs report is rendered in a browser).
SYSDEPS  := redis-server goaccess openssl curl chromium
# DEMO_ARGS are extra flags for `edgegate demo` (see `edgegate help demo`), e.g. other ports.
DEMO_ARGS ?=
# BENCH_EDGE_ARGS are flags for the edge benchmark (see
# `go run ./edge/internal/benchedge -h`), e.g. a smoke run:
# make bench-edge BENCH_EDGE_ARGS='-rounds 1 -duration 2s'
BENCH_EDGE_ARGS ?=
# BENCH_LOGS_SIZE is the size of the synthetic log make bench-logs measures.
BENCH_LOGS_SIZE ?= 1GiB
# FUZZTIME is how long make fuzz runs each fuzz target; FUZZMINIMIZETIME
# bounds the minimisation of each new input (Go's default, 60s, would
# stall a short run on its first finds).
FUZZTIME ?= 60s
FUZZMINIMIZETIME ?= 10s
# SOAK_DURATION is how long make soak runs its mixed traffic.
SOAK_DURATION ?= 10m

.PHONY: all build test vet staticcheck deps demo bench clean bench-logs bench-edge compose-certs example-certs fuzz soak

all: build

# A static binary (no libc), to copy to any Linux server of the same
# architecture. -buildvcs=auto stamps the VCS revision `edgegate version`
# prints, even where GOFLAGS turns stamping off.
build:
	CGO_ENABLED=0 $(GO) build -buildvcs=auto -o $(BIN) ./cmd/edgegate

# deps installs what the tests need and a fresh machine lacks. A missing
# dependency must fail the run, never skip a test, so this is not optional.
# h2spec (TestH2spec) is pinned in a module of its own under
# integration/testdata/h2spec.
deps:
	@missing=""; for c in $(SYSDEPS); do command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(SYSDEPS) >/dev/null; \
	fi
	$(GO) mod download
	cd integration/testdata/h2spec && $(GO) mod download

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "not gofmt-formatted:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)

# conformance runs the public HTTP caching test suite (http-cache-tests from
# the npm registry; needs node and npm) against an edge with a pure RFC 9111
# behavior and prints the required tests passed. Not part of `make test`.
# mutants applies each deliberate bug of internal/mutants' list to a copy of
# the module and checks the tests that claim the behaviour fail (each within
# a minute). Not part of `make test`: MUTANTS_ARGS='-run memory' picks some.
MUTANTS_ARGS ?=
.PHONY: mutants
mutants:
	$(GO) run ./internal/mutants $(MUTANTS_ARGS)

.PHONY: conformance
conformance: build
	MIN_REQUIRED=$${MIN_REQUIRED:-140} integration/cachetests/run.sh $(BIN)

staticcheck:
	$(GO) tool staticcheck $(PKGS)

# The integration tests build binaries (make demo, the Dockerfile's static
# build) and run whole stacks, which starves the packages' own load tests
# (1,000 concurrent viewers) on a 2-core machine: they run after the rest.
test: deps vet staticcheck
	$(GO) test -race -timeout 30m $$($(GO) list $(PKGS) | grep -v '/integration$$')
	$(GO) test -race -timeout 30m ./integration/

# The demo keeps its logs in demo-logs/ (edge/, origin/, demo.log,
# pebble.log) for `edgegate logs summary demo-logs/edge`; make clean
# removes them.
demo: build
	./$(BIN) demo -logs demo-logs $(DEMO_ARGS)

# fuzz runs every fuzz target of the module for FUZZTIME, one after the
# other (the seed corpora under testdata/fuzz already run in make test, as
# plain go test runs them). Targets are found with go test -list in the
# packages that define one; a failing input is written to the package's
# testdata/fuzz/FuzzX/ directory: commit it, it becomes a seed.
fuzz:
	@failed=""; \
	for dir in $$(grep -l '^func Fuzz' $$(git ls-files '*_test.go' 2>/dev/null || find . -name '*_test.go') | xargs -n1 dirname | sort -u); do \
		for target in $$(cd $$dir && $(GO) test -list '^Fuzz' . | grep '^Fuzz'); do \
			echo "== $$dir $$target ($(FUZZTIME))"; \
			(cd $$dir && $(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) .) || failed="$$failed $$dir:$$target"; \
		done; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: failing targets:$$failed"; exit 1; fi; echo "fuzz: every target ran clean for $(FUZZTIME)"

# soak runs an edge and an origin tier as processes, with Redis, under
# SOAK_DURATION of mixed traffic, reloads and a Redis restart, sampling
# RSS, goroutines and open fds every 10s: it fails if any trends up after
# the warm-up or a log line is missing (integration/soak_test.go). Not in
# make test: it needs a quiet machine and minutes.
soak: deps
	SOAK_DURATION=$(SOAK_DURATION) $(GO) test -tags soak -run '^TestSoak$$' -v -count=1 -timeout 3h ./integration/

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# demo-logs-origin/ and demo-logs-pebble.log are where demos before the
# built-in CA wrote.
clean:
	rm -rf bin demo-logs demo-logs-origin demo-logs-pebble.log

# bench-logs compares `edgegate logs summary` with GoAccess on a 1 GiB
# (BENCH_LOGS_SIZE) synthetic edge log (generated once into
# $TMPDIR/edgegate-bench-logs and reused): lines per second and peak
# memory of each. Not part of `make test`; the README test runs it small.
bench-logs: build
	$(GO) run ./logs/internal/benchlogs -edgegate ./$(BIN) -size $(BENCH_LOGS_SIZE)

# bench-edge measures edgegate side by side with nginx and Caddy (installed
# with go install at a pinned version) in front of one HTTPS origin: req/s,
# p50, p99, CPU, RSS and writes per request with ratios, results also in
# bin/bench-edge.json; about 11 minutes, plus building Caddy. It needs two
# quiet cores (server on core 0, load generator and origin on core 1). Not
# part of `make test`.
bench-edge: build
	@# nginx (the origin, and an edge to compare with), wrk and h2load (the load generators)
	@missing=""; for c in nginx:nginx wrk:wrk h2load:nghttp2-client taskset:util-linux; do \
		command -v $${c%%:*} >/dev/null 2>&1 || [ -x /usr/sbin/$${c%%:*} ] || missing="$$missing $${c#*:}"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	$(GO) run ./edge/internal/benchedge -edgegate ./$(BIN) $(BENCH_EDGE_ARGS)

# compose-certs regenerates the compose demo's public PKI (Pebble's API,
# the origin tier, the edges' client certificate) in configs/compose/certs.
compose-certs:
	$(GO) run ./internal/democerts -dir configs/compose/certs

# example-certs regenerates the public example PKI that configs/origin.yaml
# and configs/origin-edge.yaml name (configs/certs), so that every file in
# configs/ passes edgegate check as shipped.
example-certs:
	$(GO) run ./internal/democerts -examples -dir configs/certs
