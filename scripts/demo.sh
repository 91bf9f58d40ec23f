#!/usr/bin/env bash
# The single-host demo: installs what is missing, builds, starts monitor-agent,
# runs examples/monitor-demo against it, and shows the per-second aggregates
# as they arrive; at the end it checks the agent's totals against what the
# demo says it sent.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== building (the first run takes a couple of minutes)"
scripts/build.sh

data=".data/demo"
mkdir -p "$data"
ring="/monitor-demo-$$"
out="$data/aggregates.jsonl"
: > "$out"
build/agent/monitor-agent --ring "$ring" --socket "$data/agent.sock" --output "$out" --server-id 1 \
  2> "$data/agent.log" &
agent=$!
cleanup() { kill "$agent" 2>/dev/null || true; wait "$agent" 2>/dev/null || true; rm -f "/dev/shm$ring"; }
trap cleanup EXIT
sleep 0.5

echo "== monitor-agent is running (pid $agent); per-second aggregates of Shop.Api as they arrive:"
# --pid: the follower ends when the agent does, taking its pipeline with it.
tail -n +1 -f --pid="$agent" "$out" | grep --line-buffered '"service":"Shop.Api"' |
  grep --line-buffered -E '"op":"(SUM|HIST)"' | cut -c1-160 &
MONITOR_RING="$ring" build/examples/monitor-demo 8 | tee "$data/demo.out"
# A statsd client can report through the socket too.
python3 - "$data/agent.sock" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"shop.api.checkout.clicks:3|c|#server_id:2\nshop.api.checkout.clicks:4|c|#server_id:2\n", sys.argv[1])
PY
sleep 4  # the agent writes a second out once its 2 s late window has passed
kill -TERM "$agent"; wait "$agent" || true
wait  # the follower pipeline, which ends with the agent

python3 - "$out" "$data/demo.out" <<'PY'
import json, re, sys
records = [json.loads(l) for l in open(sys.argv[1])]
sent = re.search(r"Orders.Placed \(SUM = (\d+)\)", open(sys.argv[2]).read())
orders = sum(r["value"] for r in records if r["attr"] == "Orders.Placed" and r["op"] == "SUM")
clicks = sum(r["value"] for r in records if r["attr"] == "Checkout.Clicks" and r["op"] == "SUM")
latency = [r for r in records if r["attr"] == "Request.LatencyUs" and r["op"] == "HIST"]
print(f"\n== agent totals: Orders.Placed SUM = {orders} (demo sent {sent.group(1)}), "
      f"Checkout.Clicks SUM via statsd = {clicks} (sent 7), "
      f"{sum(r['count'] for r in latency)} latency reports in {len(latency)} per-second histograms")
health = {}
for r in records:  # counters (SUM) add up over the run; gauges (LAST) keep the latest
    if r["service"] == "Monitor.Agent" and r["op"] == "SUM":
        health[r["attr"]] = health.get(r["attr"], 0) + r["value"]
    elif r["service"] == "Monitor.Agent" and r["op"] == "LAST":
        health[r["attr"]] = r["value"]
print("== agent health (Monitor.Agent, whole run):", ", ".join(f"{k}={v}" for k, v in sorted(health.items())))
sys.exit(0 if int(sent.group(1)) == orders and clicks == 7 else 1)
PY
echo "== output: $out, agent log: $data/agent.log"
