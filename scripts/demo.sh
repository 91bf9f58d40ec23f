#!/usr/bin/env bash
# The single-host quick start: installs what is missing, builds, then starts
# the whole system on loopback with the file registry under .data/demo:
#   monitor-judger (judger-1), monitor-proxy --role bonnie (bonnie-1),
#   monitor-agent (finds bonnie-1 in the registry),
# runs examples/monitor-demo against it, and shows the demo's first minute
# through `monitorctl query` once the judger has closed it, checking that its
# total is what the demo says it sent. Then an alarm: the rules of
# examples/rules/ are added, the demo app runs a minute with a fault (--slow),
# the webhook receiver (examples/webhook_sink.py) gets the firing
# notification, a healthy minute resolves it, and `monitorctl rule test`
# replays the rule (and a tuned one) on what was stored. monitor-dashboard runs
# beside them all along: it prints its URL and a user to sign in with.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== installing what is missing and building the daemons, monitorctl and the demo (the first run takes minutes)"
scripts/build.sh --demo

data=".data/demo"
rm -rf "$data"
mkdir -p "$data"
cp -r examples/registry "$data/registry"  # services, attrs and their judger (examples/registry/README.md)
registry="file:$data/registry"
ring="/monitor-demo-$$"
export MONITOR_RING="$ring"  # the parts' own health metrics go to this agent too
out="$data/aggregates.jsonl"
judger_query="127.0.0.1:7301"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -f "/dev/shm$ring"
}
trap cleanup EXIT

# Waits until registry entry $1 exists (the part registered itself), or shows
# the part's log $2 and fails.
await_entry() {
  for _ in $(seq 1 50); do
    [ -f "$data/registry/$1.json" ] && return 0
    sleep 0.2
  done
  echo "!! $1 did not come up; its log:" >&2
  cat "$2" >&2
  exit 1
}

build/agent/monitor-agent --ring "$ring" --socket "$data/agent.sock" --output "$out" --server-id 1 \
  --registry "$registry" --dc dc1 --spool-dir "$data/agent-spool" 2> "$data/agent.log" &
pids+=($!)
agent=$!
build/judger/monitor-judger --name judger-1 --listen 127.0.0.1:7300 --query-listen "$judger_query" \
  --data-dir "$data/judger" --registry "$registry" --server-id 1 --dashboard-url http://127.0.0.1:7303 \
  2> "$data/judger.log" &
pids+=($!)
judger=$!
await_entry judgers/judger-1 "$data/judger.log"
build/proxy/monitor-proxy --role bonnie --name bonnie-1 --listen 127.0.0.1:7200 --dc dc1 \
  --registry "$registry" --data-dir "$data/bonnie" --server-id 1 2> "$data/bonnie.log" &
pids+=($!)
bonnie=$!
await_entry proxies/bonnie-1 "$data/bonnie.log"
build/dashboard/monitor-dashboard --listen 127.0.0.1:7303 --registry "$registry" --server-id 1 \
  2> "$data/dashboard.log" &
pids+=($!)
dashboard=$!
build/console/monitorctl role add everything '*' --registry "$registry" > /dev/null
build/console/monitorctl user add demo --new-password demo --role everything --registry "$registry" > /dev/null
dashboard_url="http://127.0.0.1:7303"
chart="#/chart?service=Shop.Api&attr=Request.LatencyUs&op=HIST_P99&servers=total,1,2,3&range=1h"
echo "== the dashboard: $dashboard_url (sign in as demo, password demo), open while the demo runs;"
echo "   the demo's p99 latency per server: $dashboard_url/$chart"
hooks="$data/notifications.jsonl"
python3 examples/webhook_sink.py 7302 "$hooks" 2> "$data/webhook.log" &
pids+=($!)
sink=$!
echo "== alarm rules: the system's own (examples/rules/monitor.rules) and the demo's (examples/rules/shop.rules)"
build/console/monitorctl rule add examples/rules/monitor.rules --registry "$registry"
build/console/monitorctl rule add examples/rules/shop.rules --registry "$registry"
echo "== running: monitor-agent -> monitor-proxy (bonnie-1, 127.0.0.1:7200) -> monitor-judger (judger-1," \
  "queries on $judger_query); registry $data/registry"

echo "== per-second aggregates of Shop.Api at the agent, as they arrive:"
# The follower stops once the demo's last second is out (8 s + the agent's 2 s late window).
timeout 13 tail -n +1 -f "$out" | grep --line-buffered '"service":"Shop.Api"' |
  grep --line-buffered -E '"op":"(SUM|HIST)"' | sed -u -E 's/,"buckets":\[[][0-9,]*\]//' &  # whole lines, less the buckets
follower=$!
start=$(date +%s)
build/examples/monitor-demo 8 | tee "$data/demo.out"
# A statsd client can report through the socket too.
python3 - "$data/agent.sock" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"shop.api.checkout.clicks:3|c|#server_id:2\nshop.api.checkout.clicks:4|c|#server_id:2\n", sys.argv[1])
PY
end=$(date +%s)
wait "$follower" || true
sent=$(sed -n 's/.*Orders.Placed (SUM = \([0-9]*\)).*/\1/p' "$data/demo.out")

# The judger closes a minute once the agent's watermark, relayed by Bonnie,
# has passed its end: 2-3 s after it ends (docs/judger.md).
first_minute=$((start - start % 60))
last_minute=$((end - end % 60))
minute_end=$((last_minute + 60))
echo "== waiting $((minute_end + 3 - $(date +%s))) s or so for the judger to close minute(s)" \
  "$(date -u -d @"$first_minute" +%H:%M)-$(date -u -d @"$last_minute" +%H:%M) UTC"
query() {
  build/console/monitorctl query --registry "$registry" --service Shop.Api --from "$first_minute" \
    --to "$((last_minute + 60))" "$@"
}
# Prints the whole command before running it, so it can be run again.
show() {
  echo "\$ $*"
  "$@"
}
range=(--registry "$registry" --from "$first_minute" --to "$((last_minute + 60))")
while [ "$(date +%s)" -lt "$minute_end" ]; do sleep 0.5; done
stored=0
for _ in $(seq 1 120); do  # polls from the minute's end: when does its total become queryable?
  stored=$(query --attr Orders.Placed --op SUM --output json |
    python3 -c 'import json,sys; print(int(sum(p[1] for p in json.load(sys.stdin)["points"])))')
  [ "$stored" = "$sent" ] && break
  sleep 0.5
done
queryable_after=$(python3 -c "import time; print(f'{time.time() - $minute_end:.1f}')")

echo "== Orders.Placed, SUM over all servers:"
show build/console/monitorctl query "${range[@]}" --service Shop.Api --attr Orders.Placed --op SUM
echo "== Request.LatencyUs, p99:"
show build/console/monitorctl query "${range[@]}" --service Shop.Api --attr Request.LatencyUs --op HIST_P99
echo "== Checkout.Clicks of server 2 (sent by a statsd client):"
show build/console/monitorctl query "${range[@]}" --service Shop.Api --attr Checkout.Clicks --op SUM --server 2
echo "== this host, as its agent reports it with nothing configured (Host.System of server 1, docs/host-metrics.md):"
echo "   CPU busy, in hundredths of a percent (AVG of each minute):"
show build/console/monitorctl query "${range[@]}" --service Host.System --attr Cpu.Busy --op AVG --server 1
echo "   memory used, bytes:"
show build/console/monitorctl query "${range[@]}" --service Host.System --attr Mem.UsedBytes --op LAST --server 1
echo "== Bonnie's own health (Monitor.Proxy Reports.Forwarded of server 1):"
show build/console/monitorctl query "${range[@]}" --service Monitor.Proxy --attr Reports.Forwarded --server 1
echo "== the services and the parts, as the console sees them:"
show build/console/monitorctl service list --registry "$registry"
show build/console/monitorctl status --registry "$registry"
echo "== an alarm: the demo app runs 8 s with a fault (--slow: requests 20 times slower)"
# Prints the text of the first notification of kind $1 to arrive within 100 s; fails if none does.
await_notification() {
  for _ in $(seq 1 500); do
    if [ -f "$hooks" ] && python3 - "$hooks" "$1" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    body = json.loads(json.loads(line)["body"])
    if body["kind"] == sys.argv[2]:
        print(body["text"])
        sys.exit(0)
sys.exit(1)
PY
    then return 0; fi
    sleep 0.2
  done
  echo "!! no $1 notification within 100 s; the judger's log:" >&2
  tail -n 20 "$data/judger.log" >&2
  exit 1
}
build/examples/monitor-demo 8 --slow
fault_end=$(date +%s)
fault_minute_end=$((fault_end - fault_end % 60 + 60))
echo "== waiting for the faulty minute to close (its end + 2-3 s, when the agent has sent all of it); the webhook receives:"
await_notification firing | sed 's/^/   | /'
echo "   (received $(python3 -c "import time; print(f'{time.time() - $fault_minute_end:.1f}')") s after the faulty minute's end)"
show build/console/monitorctl alarm list --registry "$registry"
echo "== the fault ends: a healthy minute"
while [ "$(date +%s)" -lt "$fault_minute_end" ]; do sleep 0.5; done
build/examples/monitor-demo 8
await_notification resolved | sed 's/^/   | /'
show build/console/monitorctl alarm history --registry "$registry" --rule Shop.Api.SlowRequests
echo "== trying rules on what was stored: the rule as it is, and a tuned threshold from a file"
show build/console/monitorctl rule test Shop.Api.SlowRequests --since 1h --registry "$registry"
sed -e 's/value > 5000/value > 50000/' -e '/^test/,$d' examples/rules/shop.rules > "$data/tuned.rules"
show build/console/monitorctl rule test Shop.Api.SlowRequests --file "$data/tuned.rules" --since 1h \
  --registry "$registry"

echo "== the same minutes through the dashboard's API, signed in as demo (what its charts draw):"
python3 - "$dashboard_url" <<'PY'
import json, sys, time, urllib.request
url = sys.argv[1]
login = urllib.request.urlopen(urllib.request.Request(url + "/api/login", data=json.dumps(
    {"user": "demo", "password": "demo"}).encode(), headers={"Content-Type": "application/json"}))
cookie = login.headers["Set-Cookie"].split(";")[0]
now = int(time.time())
query = f"/api/series?service=Shop.Api&attr=Orders.Placed&op=SUM&servers=total&from={now - 600}&to={now}"
answer = json.load(urllib.request.urlopen(urllib.request.Request(url + query, headers={"Cookie": cookie})))
for t, v in answer["series"][0]["points"]:
    print(f"   {time.strftime('%H:%M', time.gmtime(t))}Z  Orders.Placed total {v:g}")
PY
echo "== stopping in the order data flows (agent, Bonnie, judger); each part's last health line:"
stop_part() {
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
stop_part "$agent"
stop_part "$bonnie"
stop_part "$judger"
stop_part "$sink"
stop_part "$dashboard"
pids=()
for part in agent bonnie judger; do
  grep -h -E "health:|forwarder:" "$data/$part.log" | tail -n 1
done

echo "== Orders.Placed: the demo sent SUM = $sent; the judger's minutes hold $stored," \
  "queryable $queryable_after s after the minute's end"
echo "== logs and data: $data. To query them again, start the judger on them and run any command above:"
echo "   build/judger/monitor-judger --name judger-1 --listen 127.0.0.1:7300 --query-listen $judger_query \\"
echo "     --data-dir $data/judger --registry $registry &"
echo "   and the dashboard: build/dashboard/monitor-dashboard --registry $registry &  # then $dashboard_url/$chart"
[ "$stored" = "$sent" ]
