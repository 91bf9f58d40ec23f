#!/usr/bin/env bash
# Issue 11's Go figure (bench/go/main.go): bindings/go vs datadog-go, one
# goroutine each, against a real monitor-agent. Debian packages datadog-go for
# GOPATH builds (no go.mod), so the bench builds in a GOPATH of its own.
#   bench/binding_go_bench.sh [BUILD_DIR] [REPORTS]
set -euo pipefail
cd "$(dirname "$0")/.."
build="$(cd "${1:-build}" && pwd)"
reports="${2:-500000}"
tmp=$(mktemp -d)
ring="/monitor-binding-go-$$"
cleanup() { kill "${agent:-0}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; rm -f "/dev/shm$ring"; }
trap cleanup EXIT
mkdir -p "$tmp/gopath/src/example.com/monitor" "$tmp/gopath/src/bench"
ln -s "$PWD/bindings/go" "$tmp/gopath/src/example.com/monitor/client"
cp bench/go/main.go "$tmp/gopath/src/bench/"
"$build/agent/monitor-agent" --ring "$ring" --socket "$tmp/agent.sock" --output /dev/null --journal none \
  --spool-dir "$tmp/spool" --no-self-metrics 2> "$tmp/agent.log" &
agent=$!
for _ in $(seq 1 100); do [ -S "$tmp/agent.sock" ] && break; sleep 0.1; done
GO111MODULE=off GOPATH="$tmp/gopath:/usr/share/gocode" GOCACHE="$tmp/cache" go run bench "$tmp/agent.sock" "$reports"
