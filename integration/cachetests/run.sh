#!/usr/bin/env bash
# Runs the public HTTP caching conformance suite (http-cache-tests, from the
# npm registry) against an edge with a pure RFC 9111 behavior, and prints how
# many of the suite's required tests pass. Used by `make conformance`; not
# part of `make test` (it needs the npm registry and takes about a minute).
#
#   integration/cachetests/run.sh [edgegate-binary]
#
# MIN_REQUIRED fails the run below that many required passes.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-bin/edgegate}
version=${CACHE_TESTS_VERSION:-0.4.5}
origin_port=${ORIGIN_PORT:-18000}
edge_port=${EDGE_PORT:-18080}
min=${MIN_REQUIRED:-0}

for c in node npm curl; do
	command -v "$c" >/dev/null || { echo "conformance: $c is needed (apt-get install nodejs npm curl)" >&2; exit 1; }
done
[ -x "$bin" ] || { echo "conformance: no edgegate binary at $bin (make build)" >&2; exit 1; }
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

cd "$work"
npm pack --silent "http-cache-tests@$version" >/dev/null
tar xzf "http-cache-tests-$version.tgz"
(cd package && npm install --silent --no-save --omit=dev --ignore-scripts --no-audit --no-fund node-fetch@2 >/dev/null)

cat >edge.yaml <<YAML
edge:
  location: CT1
  listen: {http: "127.0.0.1:$edge_port", https: "127.0.0.1:0"}
  certificates: {self_signed: [localhost]}
distributions:
  - aliases: [localhost]
    viewer_protocol_policy: allow-all
    origins:
      - {id: suite, domain_name: localhost, connect_to: "127.0.0.1:$origin_port", protocol_policy: http-only, http_port: $origin_port}
    default_behavior:
      target: suite
      allowed_methods: [GET, HEAD, OPTIONS, PUT, POST, PATCH, DELETE]
      cache_policy: {default_ttl: 0, key: {query_strings: all}}
YAML

(cd package && npm_config_port=$origin_port npm_config_protocol=http npm_config_pidfile="$work/server.pid" \
	exec node server/server.mjs >"$work/server.log" 2>&1) &
pids+=($!)
"$bin" edge -config edge.yaml >"$work/edge.log" 2>&1 &
pids+=($!)

# Bounded wait until both answer HTTP at all.
up() { [ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: localhost' "http://127.0.0.1:$1/" 2>/dev/null)" != 000 ]; }
for i in $(seq 1 100); do
	up "$origin_port" && up "$edge_port" && break
	[ "$i" = 100 ] && { echo "conformance: the edge or the suite's server did not start" >&2; cat "$work"/*.log >&2; exit 1; }
	sleep 0.1
done

(cd package && NODE_OPTIONS=--dns-result-order=ipv4first npm_config_base="http://localhost:$edge_port" \
	npm_package_config_id= npm_config_id= node --no-warnings cli.mjs >"$work/results.json")
node "$here/summary.mjs" "$work/package" "$work/results.json" "$min"
