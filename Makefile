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

.PHONY: all build test vet staticcheck deps demo bench clean bench-logs bench-edge compose-certs example-certs

all: build

# A static binary (no libc), to copy to any Linux server of the same
# architecture. -buildvcs=auto stamps the VCS revision `edgegate version`
# prints, even where GOFLAGS turns stamping off.
build:
	CGO_ENABLED=0 $(GO) build -buildvcs=auto -o $(BIN) ./cmd/edgegate

# deps installs what the tests need and a fresh machine lacks. A missing
# dependency must fail the run, never skip a test, so this is not optional.
deps:
	@missing=""; for c in $(SYSDEPS); do command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(SYSDEPS) >/dev/null; \
	fi
	$(GO) mod download

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "not gofmt-formatted:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)

# conformance runs the public HTTP caching test suite (http-cache-tests from
# the npm registry; needs node and npm) against an edge with a pure RFC 9111
# behavior and prints the required tests passed. Not part of `make test`.
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
